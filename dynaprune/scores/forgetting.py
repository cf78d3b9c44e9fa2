"""Forgetting events (Toneva et al., "An Empirical Study of Example Forgetting during Deep Neural
Network Learning", ICLR 2019), as a static per-sample score.

A forgetting event is a sample classified correctly at one presentation during training and
incorrectly at its next. Samples forgotten often, or never learned, are kept first.

* :func:`forgetting_counts` — the scores from a recorded ``(presentations, N)`` correctness matrix.
* :class:`ForgettingTracker` — counts events on the device during your own training run (plain
  loop or Lightning), with no host sync per step.
* :func:`forgetting_scores` — trains fresh models and counts their events.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from dynaprune._checks import check_count
from dynaprune.core import _correct
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


class ForgettingTracker:
    """Counts forgetting events per sample during training, on the device, without host syncs.

    Feed it every training batch's correctness *as presented* (before the optimizer step):
    a forgetting event is a sample that was classified correctly at its previous presentation
    and incorrectly now. Indices within one call must be distinct (any epoch order is).

    Args:
        num_samples: number of samples in the data set.
        device: where the counters live (4 bytes per sample).

    Example:
        >>> tracker = ForgettingTracker(3)
        >>> idx = torch.tensor([0, 1, 2])
        >>> for correct in ([1, 1, 0], [0, 1, 0], [1, 0, 0]):
        ...     tracker.update(idx, torch.tensor(correct, dtype=torch.bool))
        >>> tracker.scores().tolist()
        [1.0, 1.0, inf]
    """

    def __init__(self, num_samples: int, device: torch.device | str | None = None) -> None:
        check_count("num_samples", num_samples, 1)
        device = torch.device("cpu" if device is None else device)
        self.num_samples = num_samples
        # counted as the sampler's statistics count them (dynaprune.core._correct)
        self.packed = torch.zeros(num_samples, dtype=torch.int32, device=device)

    @property
    def device(self) -> torch.device:
        return self.packed.device

    def to(self, device: torch.device | str) -> ForgettingTracker:
        """Move the counters to ``device`` in place and return ``self``."""
        self.packed = self.packed.to(device)
        return self

    @torch.no_grad()
    def update(self, indices: Tensor, correct: Tensor) -> None:
        """Record one batch: ``correct[j]`` is whether sample ``indices[j]`` was classified
        correctly, e.g. ``logits.argmax(1) == y``. Both are moved to :attr:`device`."""
        if indices.shape != correct.shape or indices.dim() != 1:
            raise ValueError(
                f"indices and correct must be 1-D of one shape, got {tuple(indices.shape)} and "
                f"{tuple(correct.shape)}"
            )
        indices = indices.to(self.device, torch.int64, non_blocking=True)
        correct = correct.to(self.device, torch.bool, non_blocking=True)
        self.packed[indices] = _correct.advance(self.packed[indices], correct)

    def scores(self) -> Tensor:
        """float32 forgetting counts; ``inf`` for samples never classified correctly."""
        return _correct.forgetting_counts(self.packed)

    def state_dict(self) -> dict[str, Tensor]:
        """The counters, as a CPU tensor."""
        return {"packed": self.packed.cpu().clone()}

    def load_state_dict(self, state: Mapping[str, Tensor]) -> None:
        """Restore :meth:`state_dict` output onto the current device, validated."""
        if "packed" not in state and "forgets" in state:  # saved by dynaprune 0.1.0
            old = state["forgets"], state["learned"], state["last_correct"]
            state = {"packed": _correct.pack(*old)}
        packed = _correct.check_packed("state_dict['packed']", state["packed"], self.num_samples)
        self.packed = packed.to(self.device).clone()


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
    packed = torch.zeros(correct.shape[1], dtype=torch.int32, device=correct.device)
    for presentation in correct:
        packed = _correct.advance(packed, presentation)
    return _correct.forgetting_counts(packed)


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
