"""Forgetting events counted on the device: :class:`ForgettingTracker`, their one owner.

A forgetting event (Toneva et al., ICLR 2019) is a sample classified correctly at one
presentation and incorrectly at its next. The tracker keeps one int32 per sample::

    packed = forgets << 2 | learned << 1 | last_correct

``forgets`` counts correct -> incorrect transitions since the last reset, ``learned`` says that
the sample was classified correctly at least once since then, and ``last_correct`` is its last
recorded correctness. A reset zeroes all three, so the first presentation after it is never a
forgetting event. ``forgets`` saturates at ``2**29 - 1``, which takes twice as many
presentations of one sample: no run gets there.

Users feed it in their own training run (:class:`~dynaprune.scores.forgetting.ForgettingTracker`
re-exports it); the sampler's statistics hold one when a policy reads correctness
(:meth:`~dynaprune.core.statistics.LossStatistics.track_correctness`, for ``onion``) and save
its counters under their ``"correct"`` key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from dynaprune._checks import check_count

__all__ = ["ForgettingTracker"]

_LAST = 1
_LEARNED = 2
_SHIFT = 2
_MAX_FORGETS = (1 << 29) - 1


def _advance(packed: Tensor, correct: Tensor) -> Tensor:
    """The packed values after one more presentation whose correctness is ``correct``."""
    forgets = packed >> _SHIFT
    forgot = (packed & _LAST).bool() & ~correct & (forgets < _MAX_FORGETS)
    bit = correct.to(torch.int32)
    return ((forgets + forgot.to(torch.int32)) << _SHIFT) | (packed & _LEARNED) | (bit << 1) | bit


def _pack(forgets: Tensor, learned: Tensor, last_correct: Tensor) -> Tensor:
    """The packed values of the three counters given separately (dynaprune 0.1.0's state)."""
    bits = (learned.to(torch.int32) << 1) | last_correct.to(torch.int32)
    return (forgets.to(torch.int32).clamp(max=_MAX_FORGETS) << _SHIFT) | bits


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
        self.packed[indices] = _advance(self.packed[indices], correct)

    @torch.no_grad()
    def record(self, indices: Tensor, correct: Tensor, has: Tensor) -> None:
        """Advance the samples ``indices`` by one presentation with ``correct`` where the bool
        mask ``has`` is set; all three on :attr:`device`, unchecked (the statistics' own
        writes). Repeated indices must carry equal values, so that their writes agree."""
        packed = self.packed[indices]
        self.packed[indices] = torch.where(has, _advance(packed, correct), packed)

    def scores(self) -> Tensor:
        """float32 forgetting events per sample since the last :meth:`reset`; ``inf`` for a
        sample not classified correctly once since then.

        Example:
            >>> tracker = ForgettingTracker(4)
            >>> tracker.packed = torch.tensor([0, 3, 6, 11], dtype=torch.int32)
            >>> tracker.scores().tolist()
            [inf, 0.0, 1.0, 2.0]
        """
        counts = (self.packed >> _SHIFT).to(torch.float32)
        return counts.masked_fill_((self.packed & _LEARNED) == 0, math.inf)

    def take(self, where: Tensor, packed: Tensor) -> None:
        """Take the counters ``packed`` for the samples of the bool mask ``where`` (another
        copy's, as when ranks merge)."""
        self.packed = torch.where(where, packed, self.packed)

    def reset(self) -> None:
        """Forget the history: counts restart from the next presentation."""
        self.packed.zero_()

    def state_dict(self) -> dict[str, Tensor]:
        """The counters, as a CPU tensor."""
        return {"packed": self.packed.cpu().clone()}

    def load_state_dict(self, state: Mapping[str, Tensor]) -> None:
        """Restore :meth:`state_dict` output onto the current device, validated."""
        if "packed" not in state and "forgets" in state:  # saved by dynaprune 0.1.0
            old = state["forgets"], state["learned"], state["last_correct"]
            state = {"packed": _pack(*old)}
        packed = self.check_packed("state_dict['packed']", state["packed"], self.num_samples)
        self.packed = packed.to(self.device).clone()

    @staticmethod
    def check_packed(name: str, value: Any, num_samples: int) -> Tensor:
        """``value`` if it is a 1-D int32 tensor of ``num_samples`` well-formed packed counters.

        Raises:
            TypeError: if it is not a 1-D int32 tensor.
            ValueError: for another length, or values no sequence of presentations can produce
                (negative, or correct or forgotten without being learned).
        """
        if not isinstance(value, Tensor) or value.ndim != 1 or value.dtype != torch.int32:
            got = (
                f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
                if isinstance(value, Tensor)
                else type(value).__name__
            )
            raise TypeError(f"{name} must be a 1-D int32 tensor, got {got}")
        if value.numel() != num_samples:
            raise ValueError(
                f"{name} holds {value.numel()} samples, but this data set has {num_samples}"
            )
        unlearned = (value & _LEARNED) == 0
        bad = (value < 0) | (unlearned & (value != 0))
        if bool(bad.any()):
            raise ValueError(
                f"{name} holds {int(bad.sum())} impossible values (negative, or correct or "
                "forgotten without being learned): the state is corrupted"
            )
        return value
