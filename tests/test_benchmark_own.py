"""Bring your own model and data: the example file runs end to end, from the command line and
from Python, and writes what the presets write."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from benchmarks.grid.cli import run_own
from benchmarks.grid.config import DEFAULTS, apply_overrides, validate_config
from benchmarks.grid.factories import factory_name
from benchmarks.run import main

pytest.importorskip("matplotlib")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "own_model.py"
SHORT = ["--epochs", "2", "--seeds", "1", "--keep-ratios", "0.5", "--device", "cpu"]
SHORT += ["--threads", "1", "--no-progress"]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_the_example_runs_from_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    argv = ["--model-factory", f"{EXAMPLE}:make_model", "--data-factory", f"{EXAMPLE}:make_data"]
    argv += ["--out", str(out), "--policies", "uniform,ucb+sb", "--loop", "plain", *SHORT]
    assert main(argv) == 0
    summary = _rows(out / "summary.csv")
    assert [r["method"] for r in summary] == ["full", "full-same-budget", "uniform", "ucb+sb"]
    # four well-separated blobs, 10 % of labels flipped: every method learns them within two
    # epochs (about 89 % measured) where an untrained or broken run stays near chance, 25 %
    accs = {r["method"]: float(r["test_acc_mean"]) for r in summary}
    assert all(60.0 <= acc <= 100.0 for acc in accs.values()), accs
    for name in ("environment.json", "versions.txt", "accuracy_vs_time.png", "summary.md"):
        assert (out / name).is_file()
    saved = (out / "config.yaml").read_text()
    assert f"{EXAMPLE}:make_model" in saved and f"{EXAMPLE}:make_data" in saved
    assert json.loads((out / "environment.json").read_text())["device"] == "cpu"


def test_the_example_runs_from_python_with_its_own_loss(tmp_path: Path) -> None:
    from examples.own_model import make_data, make_model

    calls = []

    def loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        calls.append(len(y))
        return F.cross_entropy(logits, y, reduction="none")

    overrides = {"train.epochs": 2, "train.device": "cpu", "train.threads": 1}
    overrides |= {"pruning.policies": ["uniform"], "pruning.keep_ratios": [0.5]}
    overrides |= {"benchmark.seeds": 1, "benchmark.warmup_steps": 0}
    rows = run_own(make_model, make_data, tmp_path, loss=loss, overrides=overrides, progress=False)
    assert [r["method"] for r in rows] == ["full", "full-same-budget", "uniform"]
    assert calls and all(size <= DEFAULTS["train"]["batch_size"] for size in calls)


def _own(**overrides: object) -> dict:
    cfg = {"name": "own", **DEFAULTS}
    given = {"model.factory": f"{EXAMPLE}:make_model", "data.factory": f"{EXAMPLE}:make_data"}
    return validate_config(apply_overrides(cfg, {**given, **overrides}))


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"pruning.policies": ["static-el2n"]}, r"'static-el2n' needs a built-in data set"),
        ({"pruning.policies": ["rho"]}, r"'rho' needs a built-in data set"),
        ({"data.loader": "device"}, r"data\.loader must be 'dataloader' with data\.factory"),
        ({"data.factory": "no_such_module_xyz:make"}, r"data\.factory .* cannot import"),
        ({"data.factory": "make_data"}, r"data\.factory must be 'MODULE:FUNCTION'"),
        ({"model.factory": f"{EXAMPLE}:nothing"}, r"model\.factory .* has no 'nothing'"),
        ({"model.factory": None}, r"data\.factory needs a model\.factory too"),
    ],
)
def test_own_model_and_data_are_validated_before_training(overrides: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _own(**overrides)


def test_a_function_passed_from_python_is_recorded_by_name() -> None:
    def make() -> torch.nn.Module:
        return torch.nn.Linear(2, 2)

    name = factory_name(make)
    assert name.endswith("make") and ":" in name
    cfg = _own(**{"model.factory": name})
    assert cfg["model"]["factory"] == name
