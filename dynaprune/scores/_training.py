"""Shared machinery of the static scores: batches, seeded models, training and scoring passes,
and the recipe they all follow, :func:`train_then_score`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dynaprune._checks import check_count

__all__ = [
    "Batches",
    "LossFn",
    "ModelFactory",
    "OnBatch",
    "OptimizerFactory",
    "ScoreResult",
    "average_runs",
    "build_model",
    "check_common",
    "cross_entropy",
    "default_optimizer",
    "iter_batches",
    "model_device",
    "score_pass",
    "train_epochs",
    "train_then_score",
]

Batches = Iterable[Sequence[Tensor]]
ModelFactory = Callable[[], nn.Module]
OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
LossFn = Callable[[Tensor, Tensor], Tensor]
OnBatch = Callable[[Tensor, Tensor, Tensor], None]


class ScoreResult(NamedTuple):
    """Per-sample scores and the time they took.

    Attributes:
        scores: float32, one per sample in data set order; higher is kept first.
        seconds: wall-clock seconds, training runs included.
    """

    scores: Tensor
    seconds: float


def default_optimizer(params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """SGD with learning rate 0.05, momentum 0.9 and weight decay 5e-4."""
    return torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=5e-4)


def cross_entropy(logits: Tensor, y: Tensor) -> Tensor:
    """Per-sample cross-entropy, shape ``(B,)``."""
    return F.cross_entropy(logits, y, reduction="none")


def iter_batches(loader: Batches, device: torch.device) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """``(indices, x, y)`` on ``device``; ``(x, y)`` batches are numbered in order."""
    offset = 0
    for batch in loader:
        if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
            what = type(batch).__name__
            if isinstance(batch, (tuple, list)):
                what += f" of length {len(batch)}"
            raise ValueError(
                f"loader must yield (x, y) or (indices, x, y) batches (a tuple or list), got {what}"
            )
        if len(batch) == 2:
            x, y = batch
            idx = torch.arange(offset, offset + len(x), device=device)
        else:
            idx, x, y = batch
            idx = idx.to(device, torch.int64, non_blocking=True)
        offset += len(x)
        yield idx, x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def build_model(model_factory: ModelFactory, device: torch.device | str | None) -> nn.Module:
    """Call the factory (inside :func:`average_runs`' seeded run) and move the model."""
    model = model_factory()
    if not isinstance(model, nn.Module):
        raise TypeError(f"model_factory must return an nn.Module, got {type(model).__name__}")
    return model if device is None else model.to(device)


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU if it has none)."""
    param = next(model.parameters(), None)
    return torch.device("cpu") if param is None else param.device


def train_epochs(
    model: nn.Module,
    loader: Batches,
    epochs: int,
    optimizer: OptimizerFactory,
    loss_fn: LossFn,
    on_batch: OnBatch | None = None,
) -> None:
    """Train ``epochs`` epochs; ``on_batch(indices, logits, y)`` sees each batch before its step."""
    if epochs == 0:
        return
    opt = optimizer(model.parameters())
    model.train()
    for _ in range(epochs):
        for idx, x, y in iter_batches(loader, model_device(model)):
            out = model(x)
            if on_batch is not None:
                on_batch(idx, out.detach(), y)
            opt.zero_grad(set_to_none=True)
            loss_fn(out, y).mean().backward()
            opt.step()


def score_pass(
    model: nn.Module,
    loader: Batches,
    fn: Callable[[nn.Module, Tensor, Tensor], Tensor],
    num_samples: int | None,
) -> Tensor:
    """One pass in eval mode; ``fn`` scores a batch. Returns one score per sample."""
    model.eval()
    device = model_device(model)
    parts = [(idx, fn(model, x, y).detach().float()) for idx, x, y in iter_batches(loader, device)]
    if not parts:
        raise ValueError("loader yielded no batches")
    idx = torch.cat([p[0] for p in parts])
    n = idx.numel() if num_samples is None else num_samples
    lo, hi = int(idx.min()), int(idx.max())
    if lo < 0 or hi >= n:
        raise ValueError(f"loader yielded index {lo if lo < 0 else hi}, outside [0, {n})")
    visited = torch.zeros(n, dtype=torch.bool, device=device).index_fill_(0, idx, True)
    if not bool(visited.all()):
        raise ValueError(
            f"loader visited {int(visited.sum())} of {n} samples in the scoring pass; every "
            "sample needs a score (no drop_last, no sampler)"
        )
    return torch.zeros(n, device=device).index_copy_(0, idx, torch.cat([p[1] for p in parts]))


def check_common(
    model_factory: Any, epochs: int, runs: int, seed: int, num_samples: int | None, epochs_min: int
) -> None:
    """Validate the arguments every score function shares."""
    if isinstance(model_factory, nn.Module):
        raise TypeError(
            "model_factory must be a function returning a fresh model, got the model "
            f"{type(model_factory).__name__} itself (to score a trained model, pass "
            "lambda: model with epochs=0 and runs=1)"
        )
    if not callable(model_factory):
        raise TypeError(f"model_factory must be callable, got {type(model_factory).__name__}")
    check_count("epochs", epochs, epochs_min)
    check_count("runs", runs, 1)
    check_count("seed", seed, 0)
    if num_samples is not None:
        check_count("num_samples", num_samples, 1)


def average_runs(runs: int, seed: int, one_run: Callable[[int], Tensor]) -> ScoreResult:
    """Mean of ``one_run(run)`` over ``runs``, timed to the end of the device's work.

    Each run executes with the global RNG forked (``torch.random.fork_rng``) and seeded to
    ``seed + run``: a model factory's default initialisation and training randomness such as
    dropout draw from the global RNG and take no local generator, so this is what makes a run
    reproducible. The caller's RNG state is restored after every run.
    """
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    start = time.perf_counter()
    total: Tensor | None = None
    for run in range(runs):
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(seed + run)
            scores = one_run(run)
        total = scores if total is None else total + scores
    assert total is not None  # runs >= 1, checked by check_common
    result = total / runs
    if result.device.type == "cuda":
        torch.cuda.synchronize(result.device)
    return ScoreResult(result, time.perf_counter() - start)


def train_then_score(
    model_factory: ModelFactory,
    train: Batches,
    score: Callable[[nn.Module, int], Tensor],
    *,
    epochs: int,
    runs: int,
    seed: int,
    optimizer: OptimizerFactory | None = None,
    loss_fn: LossFn = cross_entropy,
    device: torch.device | str | None = None,
    watch: Callable[[nn.Module], OnBatch] | None = None,
) -> ScoreResult:
    """The recipe of every static score: the mean over ``runs`` of a fresh model, seeded with
    ``seed + run`` (:func:`average_runs`), trained ``epochs`` epochs on ``train``, then scored by
    ``score(model, run)``.

    ``watch(model)``, if given, returns an ``on_batch(indices, logits, y)`` that sees each
    training batch before its step (e.g. to count forgetting events).
    """

    def one_run(run: int) -> Tensor:
        model = build_model(model_factory, device)
        on_batch = None if watch is None else watch(model)
        train_epochs(model, train, epochs, optimizer or default_optimizer, loss_fn, on_batch)
        return score(model, run)

    return average_runs(runs, seed, one_run)
