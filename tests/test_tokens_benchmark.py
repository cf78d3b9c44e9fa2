"""The ViT benchmark (benchmarks/vit): its plan, methods, one short training run and the summary."""

from __future__ import annotations

import argparse
import csv
import json
import math

import pytest
import torch

from benchmarks.grid.data import DataBundle
from benchmarks.vit.merge import merge_runs
from benchmarks.vit.methods import METHODS, build_method, build_model, schedule_epochs
from benchmarks.vit.report import RUN_COLUMNS, curve_accuracy, summarize
from benchmarks.vit.run import learning_rate, parse_args, plan, train
from dynaprune import DynamicPruningSampler, OnionPolicy
from dynaprune.tokens import TokenPruner


def test_plan_pairs_every_method_with_every_keep_and_seed():
    args = parse_args(["--out", "x", "--seeds", "0", "1", "--epochs", "10", "--curve", "0.5"])
    runs = plan(args)
    assert runs[0] == ("full", 1.0, 0, 10) and ("full-short", 0.5, 1, 5) in runs
    assert len(runs) == 2 * (1 + 1 + 6 * 2)
    assert ("all-three", 0.5, 1, 10) in runs and ("tome", 0.7, 0, 10) in runs


def test_parse_args_rejects_a_keep_out_of_range():
    with pytest.raises(SystemExit, match=r"--keeps and --curve must be in \(0, 1\], got 1.5"):
        parse_args(["--out", "x", "--keeps", "1.5"])


def test_learning_rate_warms_up_then_decays_to_zero():
    assert learning_rate(0.0) == 0.0 and learning_rate(0.05) == pytest.approx(1e-3)
    assert learning_rate(1.0) == pytest.approx(0.0, abs=1e-12)


def test_methods_build_what_they_name():
    assert schedule_epochs(300) == (10, 100)
    built = {}
    for name in METHODS:
        net = build_model("tiny", 32, 10, seed=3)
        built[name] = build_method(name, 0.5, net, 100, 30, seed=3)
    assert built["full"].model is built["full"].net
    assert isinstance(built["tome"].model, TokenPruner) and built["tome"].model.r[0] > 0
    attention = built["attention"].model
    assert isinstance(attention, TokenPruner) and attention.mode == "none"
    assert attention.attn_schedule is not None and attention.attn_schedule.target == 0.5
    three = built["all-three"]
    assert isinstance(three.sampler, DynamicPruningSampler) and three.uses_losses
    assert isinstance(three.sampler.policy, OnionPolicy)
    weights = [m.net.head.weight for m in built.values()]
    assert all(torch.equal(w, weights[0]) for w in weights)  # paired: the same initial weights


@pytest.mark.parametrize("name", ["full", "fuse", "all-three"])
def test_one_short_run_fills_a_row(name):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (48, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (48,), generator=g)
    data = DataBundle(images, labels, images[:20], labels[:20], 10, (0.5,) * 3, (0.25,) * 3)
    args = argparse.Namespace(device="cpu", batch_size=16, amp="none", max_steps=2, at_target=False)
    method = build_method(name, 0.5, build_model("tiny", 32, 10, 0), 48, 2, 0)
    row = train(method, data, args, epochs=2, seed=0)
    assert set(row) == set(RUN_COLUMNS) - {"method", "keep_ratio", "seed"}
    assert row["steps"] == 4 and row["train_images"] == 64 and 0 <= row["final_acc"] <= 100
    assert row["tokens_per_block"] < 64 if name != "full" else row["tokens_per_block"] == 64


def test_curve_accuracy_interpolates_inside_and_is_nan_outside():
    points = [(10.0, 50.0), (30.0, 70.0), (20.0, 65.0)]
    assert curve_accuracy(points, 15.0) == 57.5 and curve_accuracy(points, 30.0) == 70.0
    assert math.isnan(curve_accuracy(points, 5.0)) and math.isnan(curve_accuracy(points, 31.0))


def test_summary_pairs_by_seed_against_full_and_its_curve():
    def row(method, keep, seed, epochs, acc, seconds):
        return {"method": method, "keep_ratio": keep, "seed": seed, "epochs": epochs,
                "final_acc": acc, "train_seconds": seconds, "images_per_second": 1.0,
                "seconds_per_epoch": seconds / epochs, "tokens_per_block": 64.0}  # fmt: skip

    rows = [
        row("full", 1.0, 0, 10, 80.0, 100.0),
        row("full", 1.0, 1, 10, 82.0, 100.0),
        row("full-short", 0.5, 0, 5, 70.0, 50.0),
        row("full-short", 0.5, 1, 5, 72.0, 50.0),
        row("drop", 0.5, 0, 10, 79.0, 75.0),
        row("drop", 0.5, 1, 10, 80.0, 75.0),
    ]
    drop = next(s for s in summarize(rows) if s["method"] == "drop")
    assert drop["speedup"] == pytest.approx(100 / 75)
    assert drop["acc_delta"] == pytest.approx(-1.5)  # (79 - 80 + 80 - 82) / 2
    assert drop["delta_vs_curve"] == pytest.approx(3.5)  # 79 - 75, 80 - 77
    assert drop["test_acc_mean"] == 79.5 and drop["seeds"] == 2


def test_at_target_times_every_step_at_the_target_keep_rate():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (32,), generator=g)
    data = DataBundle(images, labels, images[:8], labels[:8], 10, (0.5,) * 3, (0.25,) * 3)
    tokens = {}
    for at_target in (False, True):
        args = argparse.Namespace(
            device="cpu", batch_size=16, amp="none", max_steps=1, at_target=at_target
        )
        method = build_method("drop", 0.5, build_model("tiny", 32, 10, 0), 32, 1, 0)
        tokens[at_target] = train(method, data, args, epochs=1, seed=0)["tokens_per_block"]
    assert tokens[False] == 64  # the first step of the schedule keeps every token
    assert tokens[True] < 64
    assert parse_args(["--out", "x", "--at-target"]).at_target


def _write_part(folder, rows, **config):
    folder.mkdir(parents=True)
    recipe = {"model": "vit-mini", "epochs": 10, "out": str(folder), "seeds": [rows[0][2]]}
    (folder / "config.json").write_text(json.dumps({**recipe, **config}))
    with (folder / "runs.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=RUN_COLUMNS)
        writer.writeheader()
        for method, keep, seed, epochs, acc in rows:
            writer.writerow({"method": method, "keep_ratio": keep, "seed": seed,
                             "epochs": epochs, "steps": 10, "train_images": 1280,
                             "final_acc": acc, "train_seconds": 10.0 * float(keep),
                             "images_per_second": 128 / float(keep), "seconds_per_epoch": 1.0,
                             "tokens_per_block": 64 * float(keep)})  # fmt: skip
    return folder


def test_merge_runs_unions_parts_replaces_reruns_and_writes_the_report(tmp_path):
    a = _write_part(tmp_path / "a", [("full", 1.0, 0, 10, 80.0), ("drop", 0.5, 0, 10, 70.0)])
    b = _write_part(tmp_path / "b", [("full", 1.0, 1, 10, 82.0), ("drop", 0.5, 1, 10, 79.0)])
    out = tmp_path / "out"
    assert merge_runs([a, b], out) == 4
    c = _write_part(tmp_path / "c", [("drop", "0.50", 0, 10, 78.0)])  # a rerun of seed 0
    assert merge_runs([c], out) == 4
    with (out / "summary.csv").open() as f:
        drop = next(r for r in csv.DictReader(f) if r["method"] == "drop")
    assert float(drop["acc_delta"]) == pytest.approx(-2.5)  # 78 - 80, 79 - 82
    assert float(drop["acc_delta_std"]) == pytest.approx(math.sqrt(0.5))
    config = json.loads((out / "config.json").read_text())
    assert config["seeds"] == [0, 1] and config["methods"] == ["drop", "full"]
    assert config["keeps"] == [0.5] and config["out"] == str(out)
    assert (out / "summary.md").exists()


def test_merge_runs_refuses_parts_of_another_recipe_or_nothing(tmp_path):
    a = _write_part(tmp_path / "a", [("full", 1.0, 0, 10, 80.0)])
    b = _write_part(tmp_path / "b", [("full", 1.0, 1, 10, 82.0)], epochs=20)
    with pytest.raises(ValueError, match="epochs=20"):
        merge_runs([a, b], tmp_path / "out")
    with pytest.raises(ValueError, match="no folder"):
        merge_runs([tmp_path / "missing"], tmp_path / "out")


def test_vit_mini_is_vit_lites_depth_and_tokens_at_width_96():
    net = build_model("vit-mini", 32, 10, seed=0)
    assert len(net.blocks) == 6 and net.num_patches == 64
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
