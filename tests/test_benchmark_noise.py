"""The benchmark's label noise (symmetric and CIFAR-10's asymmetric pairs), the flags it records
about it, and the policies that need the data set's number of classes."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from benchmarks.grid.cli import build_config, parse_args
from benchmarks.grid.config import apply_overrides, load_config, validate_config
from benchmarks.grid.data import ASYMMETRIC_PAIRS, add_label_noise, load_data
from benchmarks.grid.flags import FLAG_COLUMNS, append_flags, flag_quality
from benchmarks.grid.runs import RunSpec, make_sampler
from dynaprune import DynamicPruningSampler, GuardedUCBPolicy, LossStatistics

QUICK = Path(__file__).resolve().parents[1] / "configs" / "quick.yaml"


def test_asymmetric_noise_flips_each_source_class_to_its_pair() -> None:
    labels = torch.arange(10).repeat_interleave(50)
    noisy = add_label_noise(labels, 10, 0.4, seed=1, kind="asymmetric")
    wrong = noisy != labels
    assert int(wrong.sum()) == 5 * 20  # 40 % of each of the five source classes
    for source in range(10):
        flipped = noisy[(labels == source) & wrong]
        if source in ASYMMETRIC_PAIRS:
            assert flipped.numel() == 20 and bool((flipped == ASYMMETRIC_PAIRS[source]).all())
        else:
            assert flipped.numel() == 0
    assert torch.equal(noisy, add_label_noise(labels, 10, 0.4, seed=1, kind="asymmetric"))
    assert not torch.equal(noisy, add_label_noise(labels, 10, 0.4, seed=2, kind="asymmetric"))


def test_asymmetric_noise_needs_ten_classes_and_a_known_kind() -> None:
    with pytest.raises(ValueError, match="needs 10 classes, got num_classes=3"):
        add_label_noise(torch.zeros(6, dtype=torch.long), 3, 0.2, 0, kind="asymmetric")
    with pytest.raises(ValueError, match="kind must be 'symmetric' or 'asymmetric', got 'pair'"):
        add_label_noise(torch.zeros(6, dtype=torch.long), 3, 0.2, 0, kind="pair")
    cfg = apply_overrides(load_config(QUICK), {"data.label_noise_kind": "pairs"})
    with pytest.raises(ValueError, match="data.label_noise_kind.*pairs"):
        validate_config(cfg)


def test_cli_sets_the_learning_rate_and_the_noise_kind() -> None:
    noise = ["--label-noise", "0.4", "--label-noise-kind", "asymmetric"]
    args = parse_args(["--config", str(QUICK), "--out", "x", "--lr", "0.2", *noise])
    cfg = build_config(args)
    assert cfg["train"]["lr"] == 0.2
    assert cfg["data"]["label_noise"] == 0.4 and cfg["data"]["label_noise_kind"] == "asymmetric"


def test_the_data_bundle_knows_which_labels_were_flipped() -> None:
    data_cfg = validate_config(load_config(QUICK))["data"]
    clean = load_data(data_cfg)
    assert clean.flipped is None
    noisy = load_data({**data_cfg, "label_noise": 0.3, "label_noise_kind": "asymmetric"})
    assert noisy.flipped is not None
    assert torch.equal(noisy.flipped, noisy.train_y != clean.train_y)
    assert 0 < int(noisy.flipped.sum()) < len(clean.train_y)


def test_guarded_ucb_gets_the_number_of_classes_from_the_benchmark() -> None:
    cfg = validate_config(load_config(QUICK))
    sampler = make_sampler(RunSpec("guarded_ucb", 0.5, 0, 4), 100, cfg, num_classes=10)
    assert isinstance(sampler.policy, GuardedUCBPolicy)
    assert sampler.policy.num_classes == 10 and sampler.policy.flagged == "drop"
    split = make_sampler(RunSpec("guarded_ucb-split", 0.5, 0, 4), 100, cfg, num_classes=10)
    assert split.policy.num_classes is None
    explore = make_sampler(RunSpec("guarded_ucb-explore", 0.5, 0, 4), 100, cfg, num_classes=10)
    assert explore.policy.flagged == "explore"


def test_flag_quality_against_the_flipped_set(tmp_path: Path) -> None:
    n = 1000
    flipped = torch.zeros(n, dtype=torch.bool)
    flipped[800:] = True
    sampler = DynamicPruningSampler(n, keep_ratio=0.5, policy=GuardedUCBPolicy(num_classes=10))
    # flipped labels above chance (log 10 = 2.3), the rest well below; 50 flipped ones hidden
    losses = torch.where(flipped, 4.0, 0.8) + 0.2 * torch.rand(n, generator=torch.Generator())
    losses[800:850] = 0.9
    sampler.stats.update(torch.arange(n), losses, epoch=0)
    row = flag_quality(sampler, flipped)
    assert row["flipped_share"] == pytest.approx(0.2)
    assert row["seen_share"] == 1.0
    assert row["auc_loss"] == pytest.approx(1 - 0.25 / 2, abs=0.02)  # 50 of 200 look clean
    assert row["precision"] == 1.0 and row["recall"] == pytest.approx(150 / 200)
    assert row["flagged_share"] == pytest.approx(0.15)
    assert row["auc_flag"] == pytest.approx((0.75 + 1.0) / 2)
    assert row["threshold"] >= math.log(10)
    uniform = DynamicPruningSampler(n, keep_ratio=0.5)
    uniform.stats.update(torch.arange(n), losses, epoch=0)
    assert set(flag_quality(uniform, flipped)) == {
        "flipped_share",
        "seen_share",
        "auc_loss",
        "seen_flipped_share",
    }
    assert row["seen_flipped_share"] == pytest.approx(0.2)  # every sample seen
    half = DynamicPruningSampler(n, keep_ratio=0.5)
    half.stats.update(torch.arange(700, 1000), losses[700:], epoch=0)  # 200 of 300 seen flipped
    assert flag_quality(half, flipped)["seen_flipped_share"] == pytest.approx(2 / 3)
    append_flags(tmp_path, RunSpec("guarded_ucb", 0.5, 2, 4), row)
    append_flags(tmp_path, RunSpec("uniform", 0.5, 2, 4), flag_quality(uniform, flipped))
    rows = list(csv.DictReader((tmp_path / "flags.csv").open()))
    assert [r["method"] for r in rows] == ["guarded_ucb", "uniform"]
    assert list(rows[0]) == list(FLAG_COLUMNS) and rows[1]["precision"] == ""


def test_guard_fits_table_reports_the_raw_and_winsorised_fits() -> None:
    from benchmarks.grid.guard_fits import fit_table, top_precision

    g = torch.Generator().manual_seed(0)
    flipped = torch.zeros(10000, dtype=torch.bool)
    flipped[7800:9800] = True
    loss = torch.cat(
        [
            1.8 + 0.5 * torch.randn(7800, generator=g),
            2.7 + 0.3 * torch.randn(2000, generator=g),
            6.0 + 2.0 * torch.randn(200, generator=g),
        ]
    ).clamp_min(0.05)
    early = loss.clone()
    early[::3] = math.nan  # two thirds seen: reported; a selection with too few is skipped
    too_few = torch.full_like(loss, math.nan)
    rows = fit_table([too_few, early, loss], flipped).splitlines()[2:]
    assert len(rows) == 6 and all(r.startswith(("| 1 |", "| 2 |")) for r in rows)
    raw, winsorised = rows[3].split(" | "), rows[4].split(" | ")
    assert raw[4] == "raw" and winsorised[4] == "winsorised at 0.98"
    assert float(raw[5]) < 0.03 and 0.2 < float(winsorised[5]) < 0.4  # the high share
    assert float(winsorised[11].strip(" |")) > 0.85  # recall of the flipped labels' mode
    assert raw[3] == winsorised[3] == top_precision(loss, flipped)  # once per selection


def test_precision_at_the_noise_rate_counts_flipped_among_the_highest_measured_losses() -> None:
    from benchmarks.grid.guard_fits import top_precision

    flipped = torch.tensor([True, True, False, False, False, False])
    loss = torch.tensor([5.0, 0.1, 4.0, 0.2, math.nan, 0.3])  # top 2 measured: samples 0 and 2
    assert top_precision(loss, flipped) == "0.500"
    assert top_precision(loss, None) == "—"


@pytest.mark.parametrize(("text", "seeds"), [("3", [0, 1, 2]), ("1,2", [1, 2]), ("2,", [2])])
def test_seeds_is_a_count_or_a_list(text: str, seeds: list[int]) -> None:
    args = parse_args(["--config", str(QUICK), "--out", "unused", "--seeds", text])
    assert build_config(args)["benchmark"]["seeds"] == seeds


def test_seeds_refuses_what_is_neither(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--config", str(QUICK), "--out", "unused", "--seeds", "1,a"])
    assert "expected a count or comma-separated integers, got '1,a'" in capsys.readouterr().err


def test_resnet8_is_a_residual_network_of_the_benchmark() -> None:
    from benchmarks.grid.models import build_model

    model = build_model("resnet8", (3, 32, 32), 10)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert sum(p.numel() for p in model.parameters()) < 100_000  # narrow: 16/32/64 channels


def test_the_oracle_draws_its_exact_budget_from_the_unflipped_samples_only() -> None:
    from benchmarks.grid.oracle import OracleCleanPolicy, oracle_policy

    flipped = torch.zeros(100, dtype=torch.bool)
    flipped[::4] = True  # 25 flipped
    policy = oracle_policy("oracle-clean", flipped)
    stats, seen = LossStatistics(100), torch.zeros(100, dtype=torch.bool)
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        picked = policy.select(stats, 50, generator).indices.long()
        assert picked.numel() == 50 and picked.unique().numel() == 50
        assert not bool(flipped[picked].any())
        seen[picked] = True
    assert torch.equal(seen, ~flipped)  # drawn afresh: every clean sample comes up
    with pytest.raises(ValueError, match="num_keep=76 exceeds the 75 samples"):
        policy.select(stats, 76, generator)
    with pytest.raises(ValueError, match="oracle-clean needs label noise"):
        oracle_policy("oracle-clean", None)
    with pytest.raises(ValueError, match="name must be one of"):
        oracle_policy("oracle", flipped)
    with pytest.raises(ValueError, match="clean must be a 1-D bool mask"):
        OracleCleanPolicy(torch.ones(4))


def test_the_oracle_needs_label_noise_in_the_config() -> None:
    cfg = load_config(QUICK)
    cfg["pruning"]["policies"] = ["oracle-clean"]
    with pytest.raises(ValueError, match=r"oracle-clean.*data.label_noise must be > 0, got 0.0"):
        validate_config(cfg)
    cfg["data"]["label_noise"] = 0.2
    assert validate_config(cfg)["pruning"]["policies"] == ["oracle-clean"]


def test_the_rate_oracle_excludes_the_flipped_share_of_highest_losses_once_measured() -> None:
    from benchmarks.grid.oracle import OracleRatePolicy, oracle_policy

    flipped = torch.zeros(100, dtype=torch.bool)
    flipped[:20] = True
    policy = oracle_policy("oracle-rate", flipped)
    assert isinstance(policy, OracleRatePolicy) and policy.rate == pytest.approx(0.2)
    stats, generator = LossStatistics(100), torch.Generator().manual_seed(0)
    first = policy.select(stats, 80, generator).indices  # nothing measured: nothing excluded
    assert first.unique().numel() == 80
    # half measured, samples 50-59 the highest: the 20 excluded are all measured ones
    losses = torch.linspace(0.1, 1.0, 50)
    losses[:10] = 5.0
    stats.update(torch.arange(50, 100), losses, epoch=0)
    top = set(range(50, 60)) | set((torch.arange(60, 100)[losses[10:].argsort()[-10:]]).tolist())
    for _ in range(5):
        picked = set(policy.select(stats, 80, generator).indices.tolist())
        assert len(picked) == 80 and not picked & top
    with pytest.raises(ValueError, match="num_keep=81 exceeds the 80 samples left"):
        policy.select(stats, 81, generator)
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\), got 1.0"):
        OracleRatePolicy(1.0)


def test_model_picks_a_built_in_model_and_names_a_bad_one() -> None:
    args = parse_args(["--config", str(QUICK), "--out", "x", "--model", "resnet8"])
    assert build_config(args)["model"]["name"] == "resnet8"
    with pytest.raises(ValueError, match="unknown model.name 'vgg'"):
        build_config(parse_args(["--config", str(QUICK), "--out", "x", "--model", "vgg"]))
