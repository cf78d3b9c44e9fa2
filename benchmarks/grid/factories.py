"""Your own model and data in the grid.

From the command line, name two functions as ``MODULE:FUNCTION`` (a module on the Python path
or in the current directory) or ``path/to/file.py:FUNCTION``::

    python benchmarks/run.py --model-factory examples/own_model.py:make_model \\
        --data-factory examples/own_model.py:make_data --out results/mine --epochs 10

or pass the functions themselves from Python (:func:`benchmarks.grid.cli.run_own`). The model
factory takes no argument and returns a fresh ``nn.Module`` mapping a batch of inputs to class
logits; the data factory takes none and returns ``(train_set, test_set)``, map-style data sets
whose items are ``(input, target)`` with an integer class ``target``. The loss is per-sample
cross-entropy (with ``train.label_smoothing``) unless ``--loss MODULE:FUNCTION`` names a
function ``loss(logits, targets)`` returning one loss per sample.

The grid is the same as for the presets (``full``, the full-data curve, every policy and
in-batch method at every keep ratio, paired seeds) and so are ``summary.csv``, the figures and
``environment.json``; ``config.yaml`` records the factories' names. The training set is read
through a ``DataLoader`` (``data.loader: dataloader``; ``data.num_workers`` workers), so any
augmentation inside it runs per item, as in your own training; the test set is read once and
kept on the device for evaluation. The static and reducible-loss methods need the built-in,
decoded data sets and are refused here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Sampler

from benchmarks.grid.factory_names import factory_name, resolve

__all__ = [
    "LossFn",
    "UserData",
    "factory_name",
    "load_user_data",
    "make_loss",
    "resolve",
    "user_loader",
    "user_model",
]

LossFn = Callable[[Tensor, Tensor], Tensor]


@dataclass
class UserData:
    """The data sets of a data factory; the test set is also kept as tensors for evaluation."""

    train_set: Dataset[Any]
    test_set: Dataset[Any]
    test_x: Tensor
    test_y: Tensor

    @property
    def num_train(self) -> int:
        return len(self.train_set)  # type: ignore[arg-type]


def load_user_data(data_cfg: dict[str, Any]) -> UserData:
    """Calls ``data.factory`` and checks what it returns.

    Raises:
        TypeError: if it returns no ``(train_set, test_set)`` pair of sized, indexable data sets
            whose items are ``(input, target)``.
    """
    sets = resolve(data_cfg["factory"], "data.factory")()
    if not isinstance(sets, (tuple, list)) or len(sets) != 2:
        raise TypeError(
            f"data.factory must return (train_set, test_set), got {type(sets).__name__}"
        )
    for which, data in zip(("train_set", "test_set"), sets, strict=True):
        if not (hasattr(data, "__len__") and hasattr(data, "__getitem__")) or len(data) < 1:
            raise TypeError(
                f"data.factory's {which} must be a non-empty map-style data set, got "
                f"{type(data).__name__}"
            )
        item = data[0]
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(f"data.factory's {which} must yield (input, target), got {item!r:.80}")
    train_set, test_set = sets
    xs, ys = zip(*(test_set[i] for i in range(len(test_set))), strict=True)
    test_x = torch.stack([torch.as_tensor(x) for x in xs])
    test_y = torch.as_tensor([int(y) for y in ys], dtype=torch.long)
    return UserData(train_set, test_set, test_x, test_y)


def user_model(cfg: dict[str, Any]) -> nn.Module:
    """A fresh model from ``model.factory``."""
    model = resolve(cfg["model"]["factory"], "model.factory")()
    if not isinstance(model, nn.Module):
        raise TypeError(f"model.factory must return an nn.Module, got {type(model).__name__}")
    return model


def make_loss(train: dict[str, Any]) -> LossFn:
    """The per-sample loss: ``train.loss`` if given, else cross-entropy with the configured
    label smoothing."""
    if train["loss"] is not None:
        return resolve(train["loss"], "train.loss")
    return functools.partial(
        F.cross_entropy, reduction="none", label_smoothing=train["label_smoothing"]
    )


def user_loader(
    data: UserData,
    data_cfg: dict[str, Any],
    sampler: Sampler[int],
    batch_size: int,
    drop_last: bool,
    seed: int,
    pin_memory: bool,
) -> DataLoader[Any]:
    """A ``DataLoader`` over the user's training set whose sampler is the run's sampler."""
    workers = data_cfg["num_workers"]
    return DataLoader(
        data.train_set,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        drop_last=drop_last,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(seed),  # seeds the workers' augmentation RNG
    )
