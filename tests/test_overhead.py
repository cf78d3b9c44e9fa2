"""Smoke test of the overhead benchmark script: it runs and writes what the issue asks for."""

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

from dynaprune import POLICIES, ImportancePolicy

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "overhead" / "run.py"
ARGS = [
    *("--sizes", "2000,70000", "--keep", "0.3,0.5", "--repeats", "1", "--device", "cpu"),
    *("--threads", "1", "--batch-size", "8", "--update-samples", "1000", "--update-steps", "3"),
    *("--end-to-end", "--e2e-samples", "64", "--e2e-epochs", "1"),
]


def load_script():
    spec = importlib.util.spec_from_file_location("overhead", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_overhead_benchmark_writes_the_json(tmp_path):
    out = tmp_path / "overhead.json"
    threads = torch.get_num_threads()
    try:
        load_script().main([*ARGS, "--json", str(out)])
    finally:
        torch.set_num_threads(threads)  # --threads sets it for the whole process
    result = json.loads(out.read_text())
    assert set(result["selection_vs_randperm"]) == set(POLICIES)
    for by_n in result["selection_vs_randperm"].values():
        assert set(by_n) == {"2000", "70000"}
        assert all(math.isfinite(ratio) and ratio > 0 for ratio in by_n.values())
    assert set(result["selection_vs_randperm_by_keep"]) == {"0.3", "0.5"}
    # the figures are the measured times' own ratios, over the configured run
    assert (result["update_num_samples"], result["batch_size"]) == (1000, 8)
    assert result["update_seconds"] > 0 and 0 < result["step_seconds"] < math.inf
    assert result["update_fraction_of_step"] == pytest.approx(
        result["update_seconds"] / result["step_seconds"]
    )
    assert result["bytes_per_sample"] == 16
    e2e = result["end_to_end"]
    assert (e2e["num_samples"], e2e["epochs"], e2e["ideal_speedup"]) == (64, 1, 2.0)
    full, pruned = e2e["full_seconds"], e2e["pruned_seconds"]
    assert e2e["speedup"] == pytest.approx(full["total"] / pruned["total"])
    # the pruned epoch went through the sampler: its selection and updates were timed
    assert pruned["select"] > 0 and pruned["update"] > 0
    assert all(0 < pruned[k] <= pruned["total"] for k in ("data", "compute"))


def test_importance_steps_are_the_policy_s_own_and_are_all_timed():
    spec = importlib.util.spec_from_file_location("steps", SCRIPT.parent / "importance_steps.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # the timed steps draw what the policy draws, so their times are the policy's
    stats = module.realistic_stats(70_000, torch.device("cpu"))
    idx, weights = module.run_steps(
        stats, 30_000, 0.5, torch.Generator().manual_seed(4), lambda name, fn, *a: fn(*a)
    )
    sel = ImportancePolicy(mix=0.5).select(stats, 30_000, torch.Generator().manual_seed(4))
    assert torch.equal(idx, sel.indices) and torch.equal(weights, sel.weights)
    threads = torch.get_num_threads()
    try:
        medians = module.main(["--n", "70000", "--laps", "2"])
    finally:
        torch.set_num_threads(threads)
    steps = [name for name in medians if name not in ("randperm(N)", "all steps")]
    assert len(steps) == 6
    assert all(0 < medians[name] < math.inf for name in medians)
