"""Irreducible losses for reducible-loss selection (RHO-LOSS; Mindermann et al., ICML 2022):
each sample's loss under a model trained on other data, timed like the static scores.

See :mod:`dynaprune.policies.reducible` for the two forms and the policy that uses them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

import torch
from torch import Tensor

from dynaprune._checks import check_choice
from dynaprune.scores._training import (
    Batches,
    LossFn,
    ModelFactory,
    OptimizerFactory,
    ScoreResult,
    average_runs,
    build_model,
    check_common,
    cross_entropy,
    default_optimizer,
    iter_batches,
    model_device,
    score_pass,
    train_epochs,
)

__all__ = ["FORMS", "irreducible_losses"]

#: The forms of :func:`irreducible_losses`.
FORMS = ("twofold", "holdout")


class _Half:
    """``(indices, x, y)`` batches of ``loader`` restricted to the samples of index ``parity``
    mod 2; re-iterable, one pass per epoch (a scoring run: the masking may sync, once a batch)."""

    def __init__(self, loader: Batches, parity: int, device: torch.device) -> None:
        self.loader, self.parity, self.device = loader, parity, device

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        for idx, x, y in iter_batches(self.loader, self.device):
            keep = idx.remainder(2) == self.parity
            yield idx[keep], x[keep], y[keep]


def irreducible_losses(
    model_factory: ModelFactory,
    loader: Batches,
    *,
    epochs: int,
    form: str = "twofold",
    seed: int = 0,
    train_loader: Batches | None = None,
    optimizer: OptimizerFactory | None = None,
    loss_fn: LossFn | None = None,
    device: torch.device | str | None = None,
    num_samples: int | None = None,
) -> ScoreResult:
    """Irreducible losses of every sample, from models trained on half of the data.

    The data set is split by index parity, as in the published code. ``"holdout"`` trains one
    model on the even half and scores everything (the target trains on the odd half);
    ``"twofold"`` trains one model per half and scores each sample with the model of the other.
    Cost: ``epochs`` epochs over half the data per model, plus one forward pass per model.

    Args:
        model_factory: returns a fresh model (a smaller one than the target's works, as
            reported by Mindermann et al.); see :mod:`dynaprune.scores`.
        loader: ``(x, y)`` batches in data set order, or ``(indices, x, y)``, to score.
        epochs: training epochs of each model (published: 100, with AdamW at lr 1e-3).
        form: ``"twofold"`` or ``"holdout"``.
        seed: the model of half ``h`` is seeded with ``seed + h``.
        train_loader: training batches (e.g. augmented), if not ``loader``'s; each model
            trains on the rows of its half, so batches are about half as large.
        optimizer: builds each model's optimizer (default SGD, lr 0.05).
        loss_fn: per-sample loss ``(logits, y) -> (B,)`` for training and scoring; use the
            target's own (e.g. with its label smoothing) so that the difference is meaningful.
        device: where to train and score; default: where the factory's model lives.
        num_samples: data set size; default: the number of samples ``loader`` yields.

    Returns:
        One irreducible loss per sample (float32, data set order) and the seconds spent.

    Example:
        >>> data = [(torch.randn(8, 3), torch.randint(0, 2, (8,)))]
        >>> il = irreducible_losses(lambda: torch.nn.Linear(3, 2), data, epochs=1)
        >>> il.scores.shape
        torch.Size([8])
    """
    check_common(model_factory, epochs, 1, seed, num_samples, 1)
    check_choice("form", form, FORMS)
    criterion = loss_fn or cross_entropy
    train = loader if train_loader is None else train_loader
    halves = (0,) if form == "holdout" else (0, 1)

    def scorer(model: torch.nn.Module, x: Tensor, y: Tensor) -> Tensor:
        with torch.no_grad():
            return criterion(model(x), y)

    def one_run(half: int) -> Tensor:
        model = build_model(model_factory, device)
        half_batches = _Half(train, half, model_device(model))
        train_epochs(model, half_batches, epochs, optimizer or default_optimizer, criterion)
        return score_pass(model, loader, scorer, num_samples)

    seconds = 0.0
    result: Tensor | None = None
    for half in halves:
        part = average_runs(1, seed + half, partial(_ignore_run, one_run, half))
        seconds += part.seconds
        if result is None:
            result = part.scores
        else:  # the model of half h scores the other half: parity 1 - h
            odd = torch.arange(result.numel(), device=result.device).remainder(2) == 1
            result = torch.where(odd, result, part.scores)
    assert result is not None  # halves is never empty
    return ScoreResult(result, seconds)


def _ignore_run(fn: Callable[[int], Tensor], half: int, _run: int) -> Tensor:
    return fn(half)
