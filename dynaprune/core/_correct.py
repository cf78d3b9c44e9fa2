"""Per-sample correctness packed into one int32, for counting forgetting events on the device.

A forgetting event (Toneva et al., ICLR 2019) is a sample classified correctly at one
presentation and incorrectly at its next. When asked to
(:meth:`~dynaprune.core.statistics.LossStatistics.track_correctness`), the statistics keep one int32
per sample::

    packed = forgets << 2 | learned << 1 | last_correct

``forgets`` counts correct -> incorrect transitions since the last reset, ``learned`` says that
the sample was classified correctly at least once since then, and ``last_correct`` is its last
recorded correctness. A reset zeroes all three, so the first presentation after it is never a
forgetting event. ``forgets`` saturates at ``2**29 - 1``, which takes twice as many
presentations of one sample: no run gets there.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

__all__ = ["advance", "check_packed", "forgetting_counts", "pack", "record"]

_LAST = 1
_LEARNED = 2
_SHIFT = 2
_MAX_FORGETS = (1 << 29) - 1


def advance(packed: Tensor, correct: Tensor) -> Tensor:
    """The packed int32 values after one more presentation whose correctness is ``correct``
    (bool, same shape)."""
    forgets = packed >> _SHIFT
    forgot = (packed & _LAST).bool() & ~correct & (forgets < _MAX_FORGETS)
    bit = correct.to(torch.int32)
    return ((forgets + forgot.to(torch.int32)) << _SHIFT) | (packed & _LEARNED) | (bit << 1) | bit


def pack(forgets: Tensor, learned: Tensor, last_correct: Tensor) -> Tensor:
    """The packed int32 values of the three counters given separately."""
    bits = (learned.to(torch.int32) << 1) | last_correct.to(torch.int32)
    return (forgets.to(torch.int32).clamp(max=_MAX_FORGETS) << _SHIFT) | bits


def record(table: Tensor, idx: Tensor, correct: Tensor, has: Tensor) -> None:
    """Advance ``table[idx]`` by one presentation with ``correct`` where ``has`` is set.

    Repeated indices must carry equal values, so that their writes agree.
    """
    packed = table[idx]
    table[idx] = torch.where(has, advance(packed, correct), packed)


def forgetting_counts(packed: Tensor) -> Tensor:
    """Forgetting events per sample as float32, ``inf`` where the sample was never correct.

    Example:
        >>> forgetting_counts(torch.tensor([0, 3, 6, 11], dtype=torch.int32)).tolist()
        [inf, 0.0, 1.0, 2.0]
    """
    counts = (packed >> _SHIFT).to(torch.float32)
    return counts.masked_fill_((packed & _LEARNED) == 0, math.inf)


def check_packed(name: str, value: Any, num_samples: int) -> Tensor:
    """``value`` if it is a 1-D int32 tensor of ``num_samples`` well-formed packed values.

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
            f"{name} holds {int(bad.sum())} impossible values (negative, or correct or forgotten "
            "without being learned): the state is corrupted"
        )
    return value
