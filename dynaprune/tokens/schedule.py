"""The keep-rate schedule of EViT and Peeling the Onion: all tokens, then a cosine to the target.

EViT (Liang et al., ICLR 2022; youweiliang/evit, ``helpers.adjust_keep_rate``) and Peeling the
Onion (Kong et al., AAAI 2023; ZLKong/Tri-Level-ViT, ``engine.adjust_keep_rate``, which cites
EViT's) keep every token for ``warmup_epochs`` (10 there), then lower the keep rate along half a
cosine from 1 to the target over ``decay_epochs`` (100 there), and hold the target afterwards.
Both step the cosine once per iteration; here the epoch may be fractional
(``epoch + step / steps_per_epoch``) for the same curve, or whole for one value per epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from dynaprune._checks import check_count, check_fraction

__all__ = ["KeepRateSchedule", "check_epoch"]


def check_epoch(epoch: Any) -> float:
    """``epoch`` as a float if it is a finite real number ``>= 0``, else ``ValueError``."""
    ok = not isinstance(epoch, bool) and isinstance(epoch, (int, float)) and math.isfinite(epoch)
    if not ok or epoch < 0:
        raise ValueError(f"epoch must be a finite number >= 0, got {epoch!r}")
    return float(epoch)


@dataclass(frozen=True)
class KeepRateSchedule:
    """Keep rate 1 for ``warmup_epochs``, then a half cosine down to ``target``.

    Args:
        target: the keep rate reached at ``warmup_epochs + decay_epochs``, in ``(0, 1]``.
        warmup_epochs: epochs at keep rate 1 (10 in both papers).
        decay_epochs: epochs of the cosine (100 in both papers); 0 jumps to ``target``.

    Raises:
        ValueError: for a ``target`` outside ``(0, 1]`` or a negative or non-integer epoch count.

    Example:
        >>> s = KeepRateSchedule(0.5, warmup_epochs=2, decay_epochs=4)
        >>> [round(s(e), 3) for e in range(8)]
        [1.0, 1.0, 1.0, 0.927, 0.75, 0.573, 0.5, 0.5]
        >>> s(2.5) < 1.0   # a fractional epoch steps the cosine within an epoch
        True
    """

    target: float
    warmup_epochs: int = 10
    decay_epochs: int = 100

    def __post_init__(self) -> None:
        check_fraction("target", self.target, open_low=True, open_high=False)
        object.__setattr__(self, "target", float(self.target))
        check_count("warmup_epochs", self.warmup_epochs)
        check_count("decay_epochs", self.decay_epochs)

    @property
    def end_epoch(self) -> int:
        """The first epoch at the target rate."""
        return self.warmup_epochs + self.decay_epochs

    def __call__(self, epoch: float) -> float:
        """The keep rate at ``epoch`` (a whole or fractional epoch, ``>= 0``)."""
        epoch = check_epoch(epoch)
        if epoch < self.warmup_epochs:
            return 1.0
        if epoch >= self.end_epoch:
            return self.target
        progress = (epoch - self.warmup_epochs) / self.decay_epochs
        return self.target + (1.0 - self.target) * 0.5 * (1.0 + math.cos(math.pi * progress))
