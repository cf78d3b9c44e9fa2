"""The static methods of the benchmark: their scoring recipes, the scoring clock and the columns
that charge it (``scoring_seconds_mean``, ``speedup_with_scoring``)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from benchmarks.grid.cli import main
from benchmarks.grid.config import apply_overrides, load_config, validate_config
from benchmarks.grid.methods import STATIC_METHODS
from benchmarks.grid.static_scores import StaticScorer

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "configs" / "quick.yaml"


def quick(**overrides: object) -> dict:
    return validate_config(apply_overrides(load_config(QUICK), overrides))


@pytest.fixture(scope="module")
def scorer() -> StaticScorer:
    from benchmarks.grid.data import load_data

    cfg = quick(
        **{
            "static.epochs": 1,
            "static.runs": 1,
            "static.forgetting_epochs": 2,
            "static.curvature_directions": 2,
            "pruning.keep_ratios": [0.3, 0.5],
        }
    )
    return StaticScorer(cfg, load_data(cfg["data"]), torch.device("cpu"))


@pytest.mark.parametrize("method", STATIC_METHODS)
def test_every_static_method_scores_each_sample_once_per_seed(
    scorer: StaticScorer, method: str
) -> None:
    n = scorer.data.num_train
    scores, seconds = scorer.scores(method, 0)
    assert scores.shape == (n,) and scores.dtype == torch.float32
    assert not scores.isnan().any() and seconds > 0
    assert scorer.cached(method, 0) and not scorer.cached(method, 1)
    again, same_seconds = scorer.scores(method, 0)
    assert again is scores and same_seconds == seconds  # computed once, charged to every keep
    if method in ("static-herding", "static-kcenter"):
        # class-balanced greedy orders of the largest budget: exactly that many are ranked
        assert int((scores > 0).sum()) == math.ceil(0.5 * n)
    if method == "static-forgetting":
        assert bool((scores >= 0).all())  # counts, or inf for never learned


def test_static_scores_differ_by_seed_and_repeat_for_a_seed(scorer: StaticScorer) -> None:
    first, _ = scorer.scores("static-el2n", 0)
    other, _ = scorer.scores("static-el2n", 1)
    fresh = StaticScorer(scorer.cfg, scorer.data, torch.device("cpu"))
    torch.testing.assert_close(fresh.scores("static-el2n", 0)[0], first)
    assert not torch.equal(first, other)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"pruning.policies": ["static-el3n"]}, r"unknown policy 'static-el3n'"),
        ({"static.runs": 0}, r"static\.runs must be an integer >= 1, got 0"),
        ({"static.epochs": -1}, r"static\.epochs must be an integer >= 0, got -1"),
        ({"static.forgetting_epochs": 0}, r"static\.forgetting_epochs must be an integer >= 1"),
        ({"static.class_balanced": "yes"}, r"static\.class_balanced must be true or false"),
    ],
)
def test_bad_static_config_names_key_and_value(overrides: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        quick(**overrides)


def test_scoring_is_charged_to_total_time_and_speedup(tmp_path: Path) -> None:
    out = tmp_path / "static"
    args = ["--config", str(QUICK), "--out", str(out), "--seeds", "1", "--epochs", "2"]
    args += ["--keep-ratios", "0.3,0.5", "--policies", "uniform,static-el2n"]
    assert main([*args, "--baselines", "full", "--no-progress"]) == 0
    with (out / "runs.csv").open() as handle:
        runs = {(r["method"], r["keep_ratio"]): r for r in csv.DictReader(handle)}
    static = [runs[("static-el2n", k)] for k in ("0.3", "0.5")]
    assert float(static[0]["scoring_seconds"]) > 0
    assert static[0]["scoring_seconds"] == static[1]["scoring_seconds"]  # one scoring per seed
    for run in static:
        assert (
            float(run["total_seconds"])
            > float(run["train_seconds"]) + float(run["scoring_seconds"]) - 1e-9
        )
    assert float(runs[("uniform", "0.5")]["scoring_seconds"]) == 0.0
    with (out / "summary.csv").open() as handle:
        rows = {(r["method"], r["keep_ratio"]): r for r in csv.DictReader(handle)}
    full = float(rows[("full", "1.0")]["train_seconds_mean"])
    for keep, run in zip(("0.3", "0.5"), static, strict=True):
        row = rows[("static-el2n", keep)]
        paid = float(run["train_seconds"]) + float(run["scoring_seconds"])
        assert float(row["speedup_with_scoring"]) == pytest.approx(full / paid)
        assert float(row["speedup_with_scoring"]) < float(row["speedup"])
    uniform = rows[("uniform", "0.5")]
    assert float(uniform["speedup_with_scoring"]) == pytest.approx(float(uniform["speedup"]))
    assert "speedup with scoring" in (out / "summary.md").read_text()
