"""Benchmark methods of the selection study: in-batch and reducible-loss methods, the full-data
curve, and the equal wall-clock comparison against it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from benchmarks.grid.config import apply_overrides, load_config, validate_config
from benchmarks.grid.full_curve import equal_time_deltas, interpolate, load_timing, run_seconds
from benchmarks.grid.methods import method as parse
from benchmarks.grid.runs import RunSpec, build_grid
from benchmarks.grid.train import EpochRecord, RunResult

QUICK = Path(__file__).resolve().parents[1] / "configs" / "quick.yaml"


def quick(**overrides: object) -> dict:
    return validate_config(apply_overrides(load_config(QUICK), overrides))


@pytest.mark.parametrize(
    ("method", "rule", "keeps", "form"),
    [
        ("uniform", ("uniform", None), (0.3, 1.0), None),
        ("sb", (None, "sb"), (1.0, 0.3), None),
        ("rho-batch", (None, "rho-batch"), (1.0, 0.3), "twofold"),
        ("ucb+sb", ("ucb", "sb"), (math.sqrt(0.3), math.sqrt(0.3)), None),
        ("importance+rho-batch", ("importance", "rho-batch"), (math.sqrt(0.3),) * 2, "twofold"),
        ("rho", ("rho", None), (0.3, 1.0), "twofold"),
        ("rho-holdout", ("rho-holdout", None), (0.3, 1.0), "holdout"),
        ("uniform+anneal", ("uniform", None), (0.3, 1.0), None),
        ("rho-batch:il3", (None, "rho-batch"), (1.0, 0.3), "twofold"),
        ("ucb+rho-batch:il2", ("ucb", "rho-batch"), (math.sqrt(0.3),) * 2, "twofold"),
    ],
)
def test_method_names_parse(method: str, rule: tuple, keeps: tuple, form: str | None) -> None:
    parsed = parse(method)
    assert (parsed.policy, parsed.inbatch) == rule
    assert parsed.keeps(0.3) == pytest.approx(keeps)
    assert parsed.irreducible == form


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"pruning.policies": ["greedy+sb"]}, r"unknown policy 'greedy\+sb' in pruning\.policies"),
        ({"benchmark.curve": [1.0]}, r"benchmark\.curve\[0\] must be in \(0, 1\), got 1\.0"),
        ({"benchmark.curve": 0.7}, r"benchmark\.curve must be a list"),
        ({"reducible.epochs": 0}, r"reducible\.epochs must be an integer >= 1, got 0"),
        ({"pruning.policies": ["rho:il0"]}, r"'rho:il0': only the rho methods take the suffix"),
        ({"pruning.policies": ["sb:il2"]}, r"'sb:il2': only the rho methods take the suffix"),
        ({"reducible.model": "vit"}, r"unknown reducible\.model 'vit'"),
    ],
)
def test_bad_selection_config_is_named(overrides: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        quick(**overrides)


def test_il_suffix_sets_the_irreducible_loss_epochs() -> None:
    assert parse("rho-batch:il3").irreducible_epochs(1) == 3
    assert parse("rho").irreducible_epochs(2) == 2
    # the suffix keeps the method's style, rank and annealing: the same base method
    assert parse("rho-batch:il3").base == "rho-batch"
    assert parse("rho+anneal:il3").anneals
    assert parse("rho+anneal:il3").base == "rho"


@pytest.mark.parametrize("name", ["rho:il3+anneal", "ucb:il2x", "rho-batch:il"])
def test_a_misplaced_il_suffix_is_an_unknown_method(name: str) -> None:
    with pytest.raises(ValueError, match="unknown policy"):
        parse(name)


def test_curve_shares_join_the_budget_baselines() -> None:
    cfg = quick(**{"pruning.keep_ratios": [0.3, 0.5], "benchmark.curve": [0.7, 0.5]})
    grid = build_grid(cfg, 1000)
    shares = [s.keep_ratio for s in grid if s.method == "full-same-budget" and s.seed == 0]
    assert shares == [0.3, 0.5, 0.7]


def _setup(method: str, keep: float) -> tuple:
    from benchmarks.grid.bench import _reducible
    from benchmarks.grid.data import load_data
    from benchmarks.grid.loaders import normalize
    from benchmarks.grid.static_scores import StaticScorer
    from benchmarks.grid.train import prepare_run

    cfg = quick(**{"data.loader": "device", "train.epochs": 1, "pruning.policies": [method]})
    data = load_data(cfg["data"])
    device = torch.device("cpu")
    test = (normalize(data.test_x, data.mean, data.std), data.test_y)
    spec = RunSpec(method, keep, 0, 1)
    policy = il = None
    if parse(method).irreducible is not None:
        policy, il, _ = _reducible(spec, StaticScorer(cfg, data, device), _Quiet())
    return prepare_run(spec, cfg, data, device, policy, il), test, data.num_train


class _Quiet:
    def log(self, *args: object, **kwargs: object) -> None:
        pass


@pytest.mark.parametrize("method", ["sb", "rho-batch"])
def test_inbatch_methods_train_alike_in_both_loops(method: str) -> None:
    """Same parameters from the plain and the Lightning loop, and every loaded sample's loss in
    the statistics (the forward pass feeds them all), though only 30 % are back-propagated."""
    from benchmarks.grid.lightning_loop import train_lightning
    from benchmarks.grid.train import RunClock, train_plain

    params = {}
    for loop, train_fn in (("plain", train_plain), ("lightning", train_lightning)):
        run, test, n = _setup(method, 0.3)
        train_fn(run, RunClock(run, test, 512))
        params[loop] = torch.cat([p.detach().flatten() for p in run.model.parameters()])
        assert int(run.sampler.stats.count.sum()) == n
    torch.testing.assert_close(params["lightning"], params["plain"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("method", ["sb", "ucb+sb", "rho"])
def test_every_method_takes_the_steps_of_uniform(method: str) -> None:
    """An in-batch method loads batch_size / keep samples and back-propagates batch_size, so
    it takes as many optimizer steps of the same size as ``uniform`` at the keep ratio."""
    run, _, _ = _setup(method, 0.3)
    uniform, _, _ = _setup("uniform", 0.3)
    assert abs(run.planned_steps - uniform.planned_steps) <= 1
    if run.selector is not None:
        assert round(run.selector.keep * run.loader._batch) == 32  # quick's batch size


def _result(method: str, keep: float, seed: int, seconds: float, acc: float, steps: int = 10):
    record = EpochRecord(method, keep, seed, 0, steps, 100, seconds, 0.0, 1.0, acc)
    return RunResult(RunSpec(method, keep, seed, 1), [record], seconds, seconds, steps)


def test_equal_time_interpolates_each_seeds_curve() -> None:
    points = [(10.0, 50.0), (20.0, 60.0), (40.0, 70.0)]
    assert interpolate(points, 15.0) == pytest.approx(55.0)
    assert interpolate(points, 30.0) == pytest.approx(65.0)
    assert interpolate(points, 5.0) == pytest.approx(45.0)  # along the first segment
    assert interpolate(points, 50.0) == pytest.approx(75.0)  # along the last segment
    results = [
        _result("full", 1.0, 0, 40.0, 70.0),
        _result("full-same-budget", 0.5, 0, 20.0, 60.0),
        _result("full", 1.0, 1, 40.0, 72.0),
        _result("full-same-budget", 0.5, 1, 20.0, 62.0),
        _result("sb", 0.5, 0, 30.0, 66.0),
        _result("sb", 0.5, 1, 20.0, 61.0),
    ]
    deltas = equal_time_deltas(results, "sb", 0.5)
    assert [(s, t, pytest.approx(d), o) for s, t, d, o in deltas] == [
        (0, 30.0, pytest.approx(1.0), False),
        (1, 20.0, pytest.approx(-1.0), False),
    ]


def test_timing_run_sets_seconds_per_step_and_scoring() -> None:
    timing = load_timing(
        [_result("full", 1.0, 0, 20.0, 0.0, steps=10), _result("rho", 0.5, 0, 8.0, 0.0, steps=4)]
    )
    timing[("rho", 0.5)] = (timing[("rho", 0.5)][0], 3.0)
    grid_run = _result("rho", 0.5, 2, 999.0, 70.0, steps=40)
    assert run_seconds(grid_run, timing) == pytest.approx(2.0 * 40 + 3.0)
    budget = _result("full-same-budget", 0.5, 2, 999.0, 70.0, steps=50)
    assert run_seconds(budget, timing) == pytest.approx(2.0 * 50)  # full's cost per step
    with pytest.raises(ValueError, match="the timing folder has no run of sb at keep 0.5"):
        run_seconds(_result("sb", 0.5, 0, 1.0, 1.0), timing)


def test_every_library_policy_is_a_registered_method() -> None:
    """A library policy is a method by its own name; the policy entries beyond them build
    their policy object."""
    from benchmarks.grid.methods import REGISTRY
    from dynaprune import POLICIES

    policies = {name for name, entry in REGISTRY.items() if entry.kind == "policy"}
    assert set(POLICIES) <= policies
    # the others are variants of a library policy, built from the config (ucb-var)
    assert all(REGISTRY[name].policy is not None for name in policies - set(POLICIES))
    assert "ucb-var" in policies


@pytest.mark.parametrize(
    ("name", "anneals", "static"),
    [
        ("infobatch", True, None),
        ("infobatch+sb", False, None),
        ("ucb+anneal", True, None),
        ("static-el2n+anneal", True, "static-el2n"),
        ("sb+anneal", True, None),
    ],
)
def test_annealing_and_static_methods_parse(name: str, anneals: bool, static: str | None) -> None:
    parsed = parse(name)
    assert (parsed.anneals, parsed.static) == (anneals, static)


def test_an_unknown_method_lists_the_valid_ones() -> None:
    with pytest.raises(
        ValueError, match=r"unknown policy 'ucb\+bogus'; valid policies: \['uniform'"
    ):
        parse("ucb+bogus")


def test_ucb_var_builds_the_variance_form_of_ucb() -> None:
    from benchmarks.grid.methods import method
    from dynaprune import UCBPolicy

    policy = method("ucb-var").make_policy({"train": {"epochs": 5}})
    assert isinstance(policy, UCBPolicy) and policy.spread == "variance"
    assert method("ucb").make_policy({}) == "ucb"
