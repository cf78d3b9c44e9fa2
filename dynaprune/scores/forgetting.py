"""Forgetting events (Toneva et al., "An Empirical Study of Example Forgetting during Deep Neural
Network Learning", ICLR 2019), as a static per-sample score.

A forgetting event is a sample classified correctly at one presentation during training and
incorrectly at its next. Samples forgotten often, or never learned, are kept first.

* :func:`forgetting_counts` — the scores from a recorded ``(presentations, N)`` correctness matrix.
* :class:`ForgettingTracker` — counts events on the device during your own training run (plain
  loop or Lightning), with no host sync per step (:mod:`dynaprune.core.forgetting`, where the
  sampler's statistics take it from too).
* :func:`forgetting_scores` — trains fresh models and counts their events.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dynaprune._checks import check_count
from dynaprune.core.forgetting import ForgettingTracker
from dynaprune.scores._training import (
    Batches,
    ModelFactory,
    OnBatch,
    OptimizerFactory,
    ScoreResult,
    check_common,
    model_device,
    train_then_score,
)

__all__ = ["ForgettingTracker", "forgetting_counts", "forgetting_scores"]


def forgetting_counts(correct: Tensor) -> Tensor:
    """Forgetting scores from a recorded ``(presentations, N)`` bool correctness matrix.

    Row ``e`` holds whether each sample was classified correctly at its ``e``-th presentation.
    Returns the float32 number of correct → incorrect transitions per sample, ``inf`` where a
    sample was never correct (those rank highest: they are kept first).

    Example:
        >>> forgetting_counts(torch.tensor([[1, 0, 0], [0, 1, 0], [1, 0, 0]], dtype=torch.bool))
        tensor([1., 1., inf])
    """
    if correct.dim() != 2 or correct.dtype != torch.bool:
        raise ValueError(
            f"correct must be a 2-D bool tensor, got {correct.dtype} of shape "
            f"{tuple(correct.shape)}"
        )
    n = correct.shape[1]
    if n == 0:
        return torch.zeros(0, device=correct.device)
    tracker = ForgettingTracker(n, correct.device)
    everyone = torch.arange(n, device=correct.device)
    for presentation in correct:
        tracker.update(everyone, presentation)
    return tracker.scores()


def forgetting_scores(
    model_factory: ModelFactory,
    loader: Batches,
    *,
    epochs: int,
    runs: int = 1,
    seed: int = 0,
    optimizer: OptimizerFactory | None = None,
    device: torch.device | str | None = None,
    num_samples: int | None = None,
) -> ScoreResult:
    """Forgetting events over ``epochs`` of full training, averaged over ``runs``.

    Higher = forgotten more often = kept first; never learned = ``inf``. Correctness is read
    from each training batch's logits as presented, before the step, so this costs no more
    than the training run itself. Here ``loader`` is the *training* loader: pass
    ``(indices, x, y)`` batches to shuffle.

    Args:
        model_factory: returns a fresh model (see the module docstring).
        loader: training batches, ``(x, y)`` in data set order or ``(indices, x, y)``.
        epochs: epochs of the training run (Toneva et al. track a full 200-epoch run).
        runs: independent runs to average.
        seed: run ``r`` seeds the model factory with ``seed + r``.
        optimizer: builds the optimizer from the parameters (default :func:`default_optimizer`).
        device: where to train; default: where the factory's model lives.
        num_samples: data set size; default ``len(loader.dataset)``.

    Example:
        >>> data = [(torch.randn(8, 3), torch.randint(0, 2, (8,)))]
        >>> result = forgetting_scores(lambda: torch.nn.Linear(3, 2), data, epochs=3, num_samples=8)
        >>> result.scores.shape
        torch.Size([8])
    """
    check_common(model_factory, epochs, runs, seed, num_samples, 1)
    if num_samples is None:
        dataset = getattr(loader, "dataset", None)
        if dataset is None:
            raise ValueError("num_samples is needed for a loader without a .dataset")
        num_samples = check_count("len(loader.dataset)", len(dataset), 1)
    n = num_samples

    trackers: list[ForgettingTracker] = []  # the current run's, created with its model

    def watch(model: nn.Module) -> OnBatch:
        tracker = ForgettingTracker(n, model_device(model))
        trackers.append(tracker)

        def record(idx: Tensor, logits: Tensor, y: Tensor) -> None:
            tracker.update(idx, logits.argmax(1) == y)

        return record

    def score(model: nn.Module, run: int) -> Tensor:
        return trackers[-1].scores()

    return train_then_score(
        model_factory,
        loader,
        score,
        epochs=epochs,
        runs=runs,
        seed=seed,
        optimizer=optimizer,
        device=device,
        watch=watch,
    )
