"""What a sampler does about non-finite losses: :data:`NONFINITE_MODES` and
:func:`report_nonfinite`.

The statistics never record a NaN or infinite loss; they only count them on the device
(:meth:`~dynaprune.core.statistics.LossStatistics.pop_nonfinite`). Once per epoch, at the
boundary, the sampler acts on that count as its ``nonfinite`` argument says.
"""

from __future__ import annotations

import warnings

from dynaprune.core.statistics import LossStatistics

__all__ = ["NONFINITE_MODES", "report_nonfinite"]

#: What a sampler does about non-finite losses at an epoch boundary.
NONFINITE_MODES = ("warn", "raise", "ignore")


def report_nonfinite(stats: LossStatistics, mode: str, epoch: int, *, stacklevel: int = 2) -> None:
    """At an epoch boundary, act on the non-finite losses ``stats`` skipped in ``epoch``.

    ``mode`` is one of :data:`NONFINITE_MODES`: ``"warn"`` warns and resets the count,
    ``"raise"`` raises a ``FloatingPointError`` and keeps the count, so that every later
    attempt raises too, and ``"ignore"`` does nothing (the count keeps growing). Reads a
    device value: call it once per epoch.

    Example:
        >>> import torch
        >>> stats = LossStatistics(2)
        >>> stats.update(torch.tensor([0, 1]), torch.tensor([1.0, float("nan")]), epoch=0)
        >>> report_nonfinite(stats, "raise", epoch=0)
        Traceback (most recent call last):
        ...
        FloatingPointError: 1 non-finite per-sample losses in epoch 0 were not recorded in ...
    """
    if mode == "ignore":
        return
    skipped = stats.pop_nonfinite(reset=mode != "raise")
    if skipped:
        msg = (
            f"{skipped} non-finite per-sample losses in epoch {epoch} were not recorded in "
            "the statistics"
        )
        if mode == "raise":
            raise FloatingPointError(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=stacklevel + 1)
