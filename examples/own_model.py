"""Does dynamic pruning pay on *your* model and data? Copy this file and replace the two factories.

From the repository root, either from the command line::

    python benchmarks/run.py --model-factory examples/own_model.py:make_model \
        --data-factory examples/own_model.py:make_data --out results/mine \
        --epochs 10 --policies uniform,ucb,infobatch --keep-ratios 0.3,0.5 --seeds 3

or from Python, as below (``python examples/own_model.py``). Either way the benchmark trains
``full``, the full-data curve and every policy at every keep ratio over paired seeds, and writes
``summary.csv``, ``summary.md``, the figures and ``environment.json`` into the folder; add
``--config configs/quick.yaml`` (or your own preset) to take its training settings (optimizer,
learning rate, batch size, schedule, Lightning or plain loop) instead of the defaults.

The contract:

* ``make_model()`` returns a fresh ``nn.Module`` mapping a batch of inputs to class logits. It is
  called once per run, after the run's seed is set, so every method starts from the same
  initialisation at a given seed.
* ``make_data()`` returns ``(train_set, test_set)``: map-style data sets (``__len__`` and
  ``__getitem__``) whose items are ``(input, target)``, ``target`` an integer class. The train set
  is read through a ``DataLoader`` whose sampler is the pruning sampler, so augmentation inside
  ``__getitem__`` runs per item as in your own training; the test set is read once and kept on
  the device.
* The loss is per-sample cross-entropy; pass ``--loss MODULE:FUNCTION`` (or ``loss=`` below) for
  another ``loss(logits, targets)`` that returns one loss per sample.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

NUM_CLASSES = 4
FEATURES = 16


class Blobs(Dataset):
    """A stand-in for your data set: Gaussian blobs, one per class, with some label noise."""

    def __init__(self, size: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        centres = torch.randn(NUM_CLASSES, FEATURES, generator=torch.Generator().manual_seed(0))
        self.y = torch.randint(0, NUM_CLASSES, (size,), generator=generator)
        self.x = 2.0 * centres[self.y] + torch.randn(size, FEATURES, generator=generator)
        noisy = torch.rand(size, generator=generator) < 0.1
        self.y[noisy] = torch.randint(0, NUM_CLASSES, (int(noisy.sum()),), generator=generator)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.x[index], int(self.y[index])


def make_data() -> tuple[Dataset, Dataset]:
    """Your train and test sets (e.g. torchvision.datasets.CIFAR10 with your transforms)."""
    return Blobs(512, seed=1), Blobs(256, seed=2)


def make_model() -> nn.Module:
    """A fresh model (e.g. torchvision.models.resnet18(num_classes=10))."""
    return nn.Sequential(nn.Linear(FEATURES, 64), nn.ReLU(), nn.Linear(64, NUM_CLASSES))


if __name__ == "__main__":
    sys.path.append(str(Path(__file__).resolve().parents[1]))  # the repository root
    from benchmarks.grid.cli import run_own

    run_own(
        make_model,
        make_data,
        "results/own-model",
        overrides={
            "train.epochs": 10,
            "train.batch_size": 32,
            "train.lr": 0.05,
            "pruning.policies": ["uniform", "ucb", "infobatch"],
            "pruning.keep_ratios": [0.3, 0.5],
            "benchmark.seeds": 3,
        },
        overwrite=True,
    )
