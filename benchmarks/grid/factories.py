"""Your own model and data in the grid.

From the command line, name two functions as ``MODULE:FUNCTION`` (a module on the Python path
or in the current directory) or ``path/to/file.py:FUNCTION``::

    python benchmarks/run.py --model-factory examples/own_model.py:make_model \\
        --data-factory examples/own_model.py:make_data --out results/mine --epochs 10

or pass the functions themselves from Python (:func:`run_own`). The model factory takes no
argument and returns a fresh ``nn.Module`` mapping a batch of inputs to class logits; the data
factory takes none and returns ``(train_set, test_set)``, map-style data sets whose items are
``(input, target)`` with an integer class ``target``. The loss is per-sample cross-entropy
(with ``train.label_smoothing``) unless ``--loss MODULE:FUNCTION`` names a function
``loss(logits, targets)`` returning one loss per sample.

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
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Sampler

__all__ = [
    "LossFn",
    "UserData",
    "factory_name",
    "load_user_data",
    "make_loss",
    "resolve",
    "run_own",
    "user_loader",
    "user_model",
]

LossFn = Callable[[Tensor, Tensor], Tensor]
_GIVEN: dict[str, Callable[..., Any]] = {}  # functions passed from Python, by their name


def factory_name(factory: str | Callable[..., Any]) -> str:
    """The name a config records for ``factory``; a function passed from Python is remembered
    under ``module:qualname`` so that :func:`resolve` finds it even where it cannot be imported
    (a lambda, a function of ``__main__``)."""
    if isinstance(factory, str):
        return factory
    if not callable(factory):
        raise TypeError(f"a factory must be a function or 'MODULE:FUNCTION', got {factory!r}")
    name = f"{factory.__module__}:{getattr(factory, '__qualname__', repr(factory))}"
    _GIVEN[name] = factory
    return name


def resolve(name: Any, key: str) -> Callable[..., Any]:
    """The function named ``MODULE:FUNCTION`` or ``path/to/file.py:FUNCTION`` by config ``key``.

    Raises:
        ValueError: naming ``key`` and the value, if it is malformed or cannot be imported.
    """
    if isinstance(name, str) and name in _GIVEN:
        return _GIVEN[name]
    module, _, attr = name.rpartition(":") if isinstance(name, str) else ("", "", "")
    if not module or not attr:
        raise ValueError(f"{key} must be 'MODULE:FUNCTION' or 'FILE.py:FUNCTION', got {name!r}")
    try:
        obj: Any = _import(module)
    except (ImportError, OSError) as error:
        raise ValueError(f"{key} {name!r}: cannot import {module!r} ({error})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{key} {name!r}: {module!r} has no {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{key} {name!r} is not callable")
    return obj


@functools.cache
def _import(module: str) -> Any:
    if module.endswith(".py"):
        path = Path(module).expanduser().resolve()
        spec = importlib.util.spec_from_file_location(f"_factory_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"no Python file at {str(path)!r}")
        loaded = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loaded)
        return loaded
    if os.getcwd() not in sys.path:  # a module of the current directory, as `python -m` finds
        sys.path.append(os.getcwd())
    return importlib.import_module(module)


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


def run_own(
    model_factory: str | Callable[[], nn.Module],
    data_factory: str | Callable[[], tuple[Any, Any]],
    out: str | Path,
    *,
    loss: str | LossFn | None = None,
    config: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> list[dict[str, Any]]:
    """Run the grid on your own model and data from Python; returns the summary rows.

    Args:
        model_factory: a function returning a fresh ``nn.Module``, or its ``MODULE:FUNCTION``.
        data_factory: a function returning ``(train_set, test_set)``, or its name.
        out: the results folder.
        loss: per-sample ``loss(logits, targets)``, or its name; default cross-entropy.
        config: a preset for everything else (default: the built-in defaults).
        overrides: dotted config keys, e.g. ``{"train.epochs": 10, "pruning.policies":
            ["uniform", "ucb"]}``.
        progress: show the live display and log lines.
        overwrite: replace results already in ``out``.

    Example:
        >>> rows = run_own(make_model, make_data, "results/mine",
        ...                overrides={"train.epochs": 10})  # doctest: +SKIP
    """
    from benchmarks.grid.bench import run_benchmark
    from benchmarks.grid.config import DEFAULTS, apply_overrides, load_config, validate_config

    base = load_config(config) if config is not None else {"name": "own", **DEFAULTS}
    given = {
        "model.factory": factory_name(model_factory),
        "data.factory": factory_name(data_factory),
        "train.loss": None if loss is None else factory_name(loss),
        **(overrides or {}),
    }
    cfg = validate_config(apply_overrides(base, given))
    return run_benchmark(cfg, Path(out), progress=progress, overwrite=overwrite)
