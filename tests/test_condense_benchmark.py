"""The condensation benchmark's dynamic-pruning rows and its config checks."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from benchmarks.condense import dynamic as condense_dynamic
from benchmarks.condense import run as condense_run
from dynaprune import DynamicPruningSampler


def _pool(n: int = 40, classes: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, 8, 8, generator=generator)
    y = torch.arange(n) % classes
    return x, y


def test_train_pruned_trains_the_budget_each_epoch_and_feeds_the_losses_back(monkeypatch):
    seen: list[torch.Tensor] = []
    update = DynamicPruningSampler.update

    def spy(self, losses, indices=None, **kwargs):
        seen.append(indices.clone())
        return update(self, losses, indices, **kwargs)

    monkeypatch.setattr(DynamicPruningSampler, "update", spy)
    x, y = _pool()
    condense_dynamic.train_pruned(
        x, y, per_epoch=8, policy="ucb", epochs=3, lr=0.01, batch_size=5, seed=0
    )
    # batches of 5, 5 and ... of the 8 samples of each epoch: 2 batches per epoch
    assert [len(i) for i in seen] == [5, 3] * 3
    epochs = [torch.cat(seen[2 * e : 2 * e + 2]) for e in range(3)]
    assert all(len(set(e.tolist())) == 8 for e in epochs)
    assert len({tuple(sorted(e.tolist())) for e in epochs}) > 1  # re-selected, not fixed


def test_train_pruned_is_deterministic_per_seed():
    x, y = _pool()
    kwargs = dict(per_epoch=8, policy="uniform", epochs=2, lr=0.01, batch_size=256)
    a = condense_dynamic.train_pruned(x, y, seed=3, **kwargs)
    b = condense_dynamic.train_pruned(x, y, seed=3, **kwargs)
    c = condense_dynamic.train_pruned(x, y, seed=4, **kwargs)
    pa, pb, pc = (torch.cat([p.flatten() for p in n.parameters()]) for n in (a, b, c))
    assert torch.equal(pa, pb)
    assert not torch.equal(pa, pc)


def test_dynamic_rows_are_tabled_after_the_condensation_methods(tmp_path: Path):
    rows = [
        {"method": "dynamic-ucb", "ipc": 1, "seed": 0, "images": 10, "test_acc": 20.0},
        {"method": "random", "ipc": 1, "seed": 0, "images": 10, "test_acc": 15.0},
        {"method": "random", "ipc": 1, "seed": 1, "images": 10, "test_acc": 17.0},
    ]
    with (tmp_path / "runs.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(condense_run.RUN_COLUMNS))
        writer.writeheader()
        for r in rows:
            writer.writerow(
                {
                    **r,
                    "net": 0,
                    "train_seconds": 1.0,
                    "scoring_seconds": 0,
                    "cpu_pressure": 0.0,
                    "spec": "",
                }
            )
    condense_run.write_summary(tmp_path)
    with (tmp_path / "summary.csv").open() as handle:
        summary = list(csv.DictReader(handle))
    assert [s["method"] for s in summary] == ["random", "dynamic-ucb"]
    assert float(summary[0]["test_acc_mean"]) == pytest.approx(16.0)


@pytest.mark.parametrize("seeds", [-1, [0, -2], "3", [1.5], None])
def test_condense_run_refuses_bad_seeds(tmp_path: Path, seeds):
    config = tmp_path / "c.yaml"
    config.write_text(f"seeds: {seeds!r}\nmethods: [random]\n".replace("None", "null"))
    with pytest.raises(ValueError, match="seeds"):
        condense_run.main(["--config", str(config), "--out", str(tmp_path / "out")])


def test_condense_dynamic_refuses_unknown_policies(tmp_path: Path):
    with pytest.raises(ValueError, match="--policies.*'uniform,nope'"):
        condense_dynamic.main(
            [
                "--config",
                str(tmp_path / "c.yaml"),
                "--out",
                str(tmp_path),
                "--policies",
                "uniform,nope",
            ]
        )
