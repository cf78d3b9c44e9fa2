"""Benchmark harness: config validation before any training, the grid, the report, and an
end-to-end run of the ``quick`` preset with a minimal grid (CI's check that the outputs exist and
hold numbers)."""

from __future__ import annotations

import csv
import json
import math
from importlib import metadata
from pathlib import Path

import pytest
import torch

from benchmarks.grid.cli import main
from benchmarks.grid.config import apply_overrides, load_config, validate_config
from benchmarks.grid.report import SUMMARY_COLUMNS, summarize
from benchmarks.grid.runs import RunSpec, build_grid, make_sampler
from benchmarks.grid.train import EpochRecord, RunResult

ROOT = Path(__file__).resolve().parents[1]

QUICK = ROOT / "configs" / "quick.yaml"


def quick(**overrides: object) -> dict:
    return validate_config(apply_overrides(load_config(QUICK), overrides))


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (
            {"pruning.policies": ["uniform", "greedy"]},
            r"unknown policy 'greedy' in pruning\.policies\[1\]",
        ),
        (
            {"pruning.keep_ratios": [0.5, 1.5]},
            r"pruning\.keep_ratios\[1\] must be in \(0, 1\], got 1\.5",
        ),
        ({"pruning.keep_ratios": [0]}, r"pruning\.keep_ratios\[0\] must be in \(0, 1\], got 0"),
        ({"pruning.keep_ratios": []}, r"pruning\.keep_ratios must be a non-empty list, got \[\]"),
        (
            {"data.dataset": "imagefolder"},
            r"data\.root is required for data\.dataset 'imagefolder'",
        ),
        (
            {"data.dataset": "cifar10", "data.root": "/no/such/dir"},
            r"data\.root '/no/such/dir' does not exist",
        ),
        ({"data.dataset": "mnist"}, r"unknown data\.dataset 'mnist'; valid choices: \['digits'"),
        ({"model.name": "vit"}, r"unknown model\.name 'vit'; valid choices"),
        ({"train.loop": "jax"}, r"unknown train\.loop 'jax'"),
        ({"train.epochs": 0}, r"train\.epochs must be an integer >= 1, got 0"),
        ({"train.lr": -1}, r"train\.lr must be a number in \(0\.0, inf\], got -1"),
        ({"benchmark.seeds": 0}, r"benchmark\.seeds must be a positive count"),
        (
            {"benchmark.baselines": "full"},
            r"benchmark\.baselines must be a list, got 'full'",
        ),
        (
            {"pruning.warmup_epochs": 20},
            r"pruning\.warmup_epochs \(20\) \+ pruning\.anneal_epochs \(0\)",
        ),
        ({"data.streaming": True}, r"data\.streaming=True needs data\.dataset 'imagefolder'"),
    ],
)
def test_bad_config_names_key_and_value(overrides: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        quick(**overrides)


def test_unknown_yaml_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  lrr: 0.1\n")
    with pytest.raises(ValueError, match=r"unknown config key 'train\.lrr'; valid keys: \["):
        load_config(path)


def test_cli_rejects_bad_config_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    code = main(["--config", str(QUICK), "--out", str(out), "--policies", "uniform,bogus"])
    assert code == 2
    assert "unknown policy 'bogus'" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("preset", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.stem)
def test_presets_validate(preset: Path) -> None:
    cfg = validate_config(apply_overrides(load_config(preset), {"train.device": "cpu"}))
    assert cfg["name"] == preset.stem


def test_same_budget_matches_pruned_steps() -> None:
    cfg = quick(**{"pruning.keep_ratios": [0.3], "pruning.warmup_epochs": 2, "benchmark.seeds": 1})
    grid = build_grid(cfg, 1000)
    budget = next(s for s in grid if s.method == "full-same-budget")
    pruned = make_sampler(next(s for s in grid if s.pruned), 1000, cfg)
    size, epochs = cfg["train"]["batch_size"], cfg["train"]["epochs"]
    # counted here: 2 warm-up epochs of 1000 samples, then 14 of round(0.3 * 1000) = 300
    steps = 2 * math.ceil(1000 / size) + (epochs - 2) * math.ceil(300 / size)
    assert (size, epochs, steps) == (32, 16, 204)
    assert budget.max_steps == steps == pruned.total_steps(batch_size=size, epochs=epochs)
    assert budget.epochs == math.ceil(steps / math.ceil(1000 / size))  # the last one cut short
    assert [s.method for s in grid] == [
        "full",
        "full-same-budget",
        "uniform",
        "epsilon_greedy",
        "ucb",
        "soft",
    ]


def _result(method: str, keep: float, accs: list[float], seconds: float) -> RunResult:
    curve = [
        EpochRecord(
            method, keep, 0, i, i + 1, 100 * (i + 1), seconds * (i + 1) / len(accs), 0.01, 1.0, acc
        )
        for i, acc in enumerate(accs)
    ]
    return RunResult(RunSpec(method, keep, 0, len(accs)), curve, seconds, seconds + 1, len(accs))


def test_summary_speedup_and_time_to_target() -> None:
    rows = summarize(
        [
            _result("full", 1.0, [50, 80, 90], 30.0),
            _result("uniform", 0.5, [60, 89.6, 89.0], 15.0),
            _result("soft", 0.5, [40, 70, 80], 15.0),
        ],
        target_drop=0.5,
    )
    by = {r["method"]: r for r in rows}
    assert set(SUMMARY_COLUMNS) == set(rows[0])
    assert by["full"]["keep_ratio"] == 1.0 and by["full"]["speedup"] == 1.0
    assert by["uniform"]["speedup"] == pytest.approx(2.0) and by["uniform"]["ideal_speedup"] == 2.0
    # 89.6 >= 90 - 0.5 first at epoch 1, two thirds into the 15 s run
    assert by["uniform"]["time_to_target_mean"] == pytest.approx(10.0)
    assert by["uniform"]["best_acc_mean"] == 89.6 and by["uniform"]["acc_delta"] == pytest.approx(
        -1.0
    )
    assert by["soft"]["target_reached"] == "0/1" and math.isnan(by["soft"]["time_to_target_mean"])


def test_annealing_methods_match_the_budget_of_the_others() -> None:
    cfg = quick(**{"pruning.keep_ratios": [0.3, 0.5], "train.epochs": 16})
    size = cfg["train"]["batch_size"]
    for keep in (0.3, 0.5):
        plain = make_sampler(RunSpec("uniform", keep, 0, 16), 1000, cfg)
        for method in ("infobatch", "uniform+anneal", "importance+anneal"):
            sampler = make_sampler(RunSpec(method, keep, 0, 16), 1000, cfg)
            assert sampler.anneal_epochs == 16 - math.ceil(0.875 * 16) == 2
            k = sampler.num_keep
            samples = sum(sampler.epoch_length(e) for e in range(16))
            assert samples == 14 * k + 2 * 1000
            # k is rounded once for 14 pruned epochs: within 7 samples (measured: 0 and 6)
            assert abs(samples - 16 * plain.num_keep) <= 7
            steps = sampler.total_steps(batch_size=size, epochs=16)
            assert steps == 14 * math.ceil(k / size) + 2 * math.ceil(1000 / size)
            assert abs(steps - plain.total_steps(batch_size=size, epochs=16)) <= 4  # 2 and 4
    assert make_sampler(RunSpec("infobatch", 0.5, 0, 16), 1000, cfg).stats.momentum == 0.0


def test_paired_deltas_and_missing_full() -> None:
    results = [
        _result("full-same-budget", 0.5, [70.0], 5.0),
        _result("uniform", 0.5, [71.0], 5.0),
        _result("pool_top", 0.5, [69.5], 5.0),
    ]
    rows = {r["method"]: r for r in summarize(results, target_drop=0.5)}  # no full: no crash
    assert rows["uniform"]["delta_vs_budget"] == pytest.approx(1.0)
    assert rows["pool_top"]["delta_vs_budget"] == pytest.approx(-0.5)
    assert rows["pool_top"]["delta_vs_uniform"] == pytest.approx(-1.5)
    assert math.isnan(rows["uniform"]["speedup"])


def test_figures_draw_composed_suffixed_and_annealed_methods(tmp_path: Path) -> None:
    from benchmarks.grid.figures import plot

    methods = ("full", "full-same-budget", "ucb+sb+anneal", "rho-batch:il3", "infobatch")
    results = [_result(m, 1.0 if m == "full" else 0.5, [60.0, 70.0], 5.0) for m in methods]
    for path in plot(tmp_path, results, summarize(results, target_drop=0.5)):
        assert path.read_bytes()[:4] == b"\x89PNG"


def test_bad_anneal_budget_and_label_noise_are_named() -> None:
    with pytest.raises(ValueError, match=r"method 'uniform\+anneal' at keep ratio 0\.1"):
        quick(**{"pruning.policies": ["uniform+anneal"], "pruning.keep_ratios": [0.1]})
    with pytest.raises(ValueError, match=r"unknown policy 'uniform\+warmup'"):
        quick(**{"pruning.policies": ["uniform+warmup"]})
    with pytest.raises(ValueError, match=r"data\.label_noise must be a number in \[0, 1\), got 1"):
        quick(**{"data.label_noise": 1})
    with pytest.raises(ValueError, match=r"train\.eval_every must be an integer >= 1, got 0"):
        quick(**{"train.eval_every": 0})


def test_label_noise_is_fixed_symmetric_and_spares_the_test_set() -> None:
    from benchmarks.grid.data import load_data

    data_cfg = quick()["data"]
    clean = load_data(data_cfg)
    noisy = load_data({**data_cfg, "label_noise": 0.2, "label_noise_seed": 3})
    again = load_data({**data_cfg, "label_noise": 0.2, "label_noise_seed": 3})
    wrong = noisy.train_y != clean.train_y
    assert int(wrong.sum()) == round(0.2 * len(clean.train_y))
    assert torch.equal(noisy.train_y, again.train_y)
    assert torch.equal(noisy.test_y, clean.test_y)
    assert noisy.train_y.min() >= 0 and noisy.train_y.max() < clean.num_classes


def _about_load(warning: str) -> bool:
    """Whether a run's warning is about the machine's load rather than the run."""
    return warning.startswith("CPU pressure")


def _floats(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows, f"{path.name} is empty"
    for row in rows:
        for column in columns:
            assert math.isfinite(float(row[column])), f"{path.name}: {column}={row[column]!r}"
    return rows


@pytest.mark.parametrize(("loop", "loader"), [("lightning", "dataloader"), ("plain", "device")])
def test_quick_preset_end_to_end(tmp_path: Path, loop: str, loader: str) -> None:
    out = tmp_path / "results"
    args = [
        "--config",
        str(QUICK),
        "--out",
        str(out),
        "--seeds",
        "1",
        "--keep-ratios",
        "0.5",
        "--policies",
        "uniform,soft",
        "--epochs",
        "2",
        "--loop",
        loop,
        "--loader",
        loader,
        "--no-progress",
        "--eval-every",
        "2" if loop == "plain" else "1",
    ]
    assert main(args) == 0

    rows = _floats(
        out / "summary.csv",
        (
            "keep_ratio",
            "test_acc_mean",
            "test_acc_std",
            "train_seconds_mean",
            "speedup",
            "samples_processed",
            "dynaprune_share",
        ),
    )
    assert [(r["method"], float(r["keep_ratio"])) for r in rows] == [
        ("full", 1.0),
        ("full-same-budget", 0.5),
        ("uniform", 0.5),
        ("soft", 0.5),
    ]
    assert all(10.0 < float(r["test_acc_mean"]) <= 100.0 for r in rows)  # above chance (10 classes)
    curves = _floats(out / "curves.csv", ("epoch", "samples", "train_seconds"))
    for point in curves:  # evaluated after every second epoch in the plain loop, and the last
        skipped = loop == "plain" and point["epoch"] == "0"
        assert math.isnan(float(point["test_acc"])) == skipped
    runs = _floats(
        out / "runs.csv", ("steps", "planned_steps", "final_acc", "train_seconds", "total_seconds")
    )
    assert len(curves) == sum(int(r["epochs"]) for r in runs)
    assert all(r["steps"] == r["planned_steps"] for r in runs)
    # The contract: no warning about the run itself. A warning about the machine's load (CPU
    # pressure from other processes) says nothing about the code, so it is allowed.
    for run in runs:
        about_the_run = [w for w in run["warnings"].split("; ") if w and not _about_load(w)]
        assert not about_the_run, about_the_run
    budget, pruned = (
        next(r for r in runs if r["method"] == m) for m in ("full-same-budget", "uniform")
    )
    assert budget["steps"] == pruned["steps"]  # the same number of optimizer steps, on all the data
    assert "| full | 1 |" in (out / "summary.md").read_text()
    figures = ("accuracy_vs_time.png", "accuracy_vs_keep.png", "delta_vs_budget.png")
    for figure in (*figures, "accuracy_vs_cost.png"):
        assert (out / figure).read_bytes()[:4] == b"\x89PNG"
    env = json.loads((out / "environment.json").read_text())
    # pip-style versions: what `pip freeze` pins, local version (e.g. "+cpu") included
    assert env["versions"]["torch"] == metadata.version("torch") and env["device"] == "cpu"
    assert load_config(out / "config.yaml")["pruning"]["policies"] == ["uniform", "soft"]
    assert main(args) == 2  # refuses to mix two invocations in one folder


def test_device_loader_yields_sampler_order_and_true_crops() -> None:
    from benchmarks.grid.data import load_data
    from benchmarks.grid.loaders import DeviceLoader, normalize

    data = load_data(quick()["data"])
    order = [5, 3, 9, 0, 7]
    plain = DeviceLoader(data, order, 2, torch.device("cpu"), augment=False, seed=0)  # type: ignore[arg-type]
    images = normalize(data.train_x, data.mean, data.std)
    batches = list(plain)
    assert [len(y) for _, y in batches] == [2, 2, 1] and len(plain) == 3
    assert torch.equal(torch.cat([x for x, _ in batches]), images[order])
    assert torch.equal(torch.cat([y for _, y in batches]), data.train_y[order])

    augmented = DeviceLoader(data, order, 5, torch.device("cpu"), augment=True, seed=0)  # type: ignore[arg-type]
    ((crops, _),) = list(augmented)
    padded = torch.nn.functional.pad(images[order], (4, 4, 4, 4), value=float("nan"))
    padded = torch.where(padded.isnan(), augmented.images[:1, :, :1, :1], padded)  # pad colour
    for crop, source in zip(crops, padded, strict=True):
        candidates = [
            view
            for dy in range(9)
            for dx in range(9)
            for view in (source[:, dy : dy + 8, dx : dx + 8],)
            for view in (view, view.flip(-1))
        ]
        assert any(torch.allclose(crop, view) for view in candidates)


def _colour_tree(root: Path) -> None:
    from PIL import Image

    colours = {"red": (200, 60, 30), "blue": (30, 120, 200)}
    for split, count in (("train", 3), ("test", 2)):
        for name, colour in colours.items():
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                Image.new("RGB", (6, 6), colour).save(folder / f"{i}.png")


def test_image_folder_is_decoded_once_and_cached(tmp_path: Path) -> None:
    from benchmarks.grid.data import load_data

    _colour_tree(tmp_path / "tree")
    cfg = quick(**{"data.dataset": "imagefolder", "data.root": str(tmp_path / "tree")})
    cfg["data"]["cache_dir"] = str(tmp_path / "cache")
    first = load_data(cfg["data"])
    assert first.train_x.shape == (6, 3, 6, 6) and first.train_y.tolist() == [0, 0, 0, 1, 1, 1]
    assert first.num_classes == 2 and first.test_x[0, 0, 0, 0] == 30  # "blue" sorts first
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 1
    cached = load_data(cfg["data"])
    assert torch.equal(cached.train_x, first.train_x) and torch.equal(cached.test_y, first.test_y)


def test_streaming_path_matches_cached_tensors(tmp_path: Path) -> None:
    from benchmarks.grid.data import load_data
    from benchmarks.grid.loaders import make_dataloader

    _colour_tree(tmp_path / "tree")
    overrides = {"data.dataset": "imagefolder", "data.root": str(tmp_path / "tree")}
    cfg = quick(**overrides, **{"data.streaming": True, "data.num_workers": 1})
    cfg["data"]["cache_dir"] = str(tmp_path / "cache")
    data = load_data(cfg["data"])
    assert data.train_files is not None and data.num_train == 6
    order = [4, 0, 2]
    loaders = [
        make_dataloader(data, dict(cfg["data"], streaming=flag), order, 3, False, 0, False)  # type: ignore[arg-type]
        for flag in (True, False)
    ]
    streamed, cached = (next(iter(loader)) for loader in loaders)
    assert torch.allclose(streamed[0], cached[0], atol=1e-5)
    assert streamed[1].tolist() == cached[1].tolist() == [1, 0, 0]


@pytest.mark.parametrize(("policy", "keep"), [("importance", 0.5), ("infobatch", 0.7)])
def test_both_loops_apply_the_policy_loss_weights(policy: str, keep: float) -> None:
    """The Lightning module weights the loss as ``sampler.update`` does in the plain loop.

    Same seed, same device loader: both loops must end at the same parameters, and training
    without the weights must not (so the weights were not all ones and the check can fail).
    """
    from benchmarks.grid.data import load_data
    from benchmarks.grid.lightning_loop import train_lightning
    from benchmarks.grid.loaders import normalize
    from benchmarks.grid.train import RunClock, prepare_run, train_plain

    cfg = quick(**{"data.loader": "device", "train.epochs": 3, "pruning.policies": [policy]})
    data = load_data(cfg["data"])
    device = torch.device("cpu")
    test = (normalize(data.test_x, data.mean, data.std), data.test_y)
    spec = RunSpec(policy, keep, 0, 3)
    params = {}
    for loop, train_fn in (("plain", train_plain), ("lightning", train_lightning)):
        run = prepare_run(spec, cfg, data, device)
        train_fn(run, RunClock(run, test, 256, eval_every=3))
        params[loop] = torch.cat([p.detach().flatten() for p in run.model.parameters()])
    run = prepare_run(spec, cfg, data, device)
    run.sampler.batch_weights = lambda batch, indices=None: torch.ones_like(batch)
    run.sampler.update = lambda losses, indices=None: losses.mean()
    train_plain(run, RunClock(run, test, 256, eval_every=3))
    unweighted = torch.cat([p.detach().flatten() for p in run.model.parameters()])
    torch.testing.assert_close(params["lightning"], params["plain"], rtol=1e-4, atol=1e-5)
    assert (unweighted - params["plain"]).abs().max() > 1e-3


def test_both_loops_feed_correctness_to_onion() -> None:
    """``onion`` needs per-sample correctness: both loops pass it and train the same model."""
    from benchmarks.grid.data import load_data
    from benchmarks.grid.lightning_loop import train_lightning
    from benchmarks.grid.loaders import normalize
    from benchmarks.grid.train import RunClock, prepare_run, train_plain

    cfg = quick(**{"data.loader": "device", "train.epochs": 3, "pruning.policies": ["onion"]})
    data = load_data(cfg["data"])
    test = (normalize(data.test_x, data.mean, data.std), data.test_y)
    spec = RunSpec("onion", 0.5, 0, 3)  # swaps every ceil(3 / 10) = 1 epoch
    params, subsets = {}, {}
    for loop, train_fn in (("plain", train_plain), ("lightning", train_lightning)):
        run = prepare_run(spec, cfg, data, torch.device("cpu"))
        assert run.sampler.policy.swaps_at(1) and run.sampler.policy.swaps_at(2)
        train_fn(run, RunClock(run, test, 256, eval_every=3))
        params[loop] = torch.cat([p.detach().flatten() for p in run.model.parameters()])
        stats = run.sampler.stats
        assert stats.correct is not None and bool((stats.correct != 0).any())
        subsets[loop] = stats.seen == 3  # the subset of the last epoch
    torch.testing.assert_close(params["lightning"], params["plain"], rtol=1e-4, atol=1e-5)
    assert torch.equal(subsets["lightning"], subsets["plain"])
