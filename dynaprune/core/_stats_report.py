"""What :class:`~dynaprune.core.statistics.LossStatistics` reports once per epoch: the
non-finite losses it skipped, and figures for logging. Both read device values."""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from dynaprune.core.statistics import LossStatistics

__all__ = ["report_nonfinite", "summarize"]


def report_nonfinite(stats: LossStatistics, mode: str, epoch: int, *, stacklevel: int) -> None:
    """:meth:`LossStatistics.report_nonfinite`."""
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
        warnings.warn(msg, RuntimeWarning, stacklevel=stacklevel)


def summarize(stats: LossStatistics) -> dict[str, float]:
    """:meth:`LossStatistics.summary`."""
    recorded = stats.count > 0
    scores = stats.mean[recorded]
    if scores.numel() > 1 << 20:  # quantile's input limit; a strided sample is plenty
        scores = scores[:: scores.numel() // (1 << 20) + 1]
    q = torch.tensor([0.1, 0.5, 0.9], device=scores.device)
    quantiles = torch.quantile(scores, q).tolist() if scores.numel() else [math.nan] * 3
    # Summed in float64: a float32 sum of huge (finite) losses would overflow.
    score_mean = scores.mean(dtype=torch.float64).item() if scores.numel() else math.nan
    return {
        "seen_samples": float((stats.seen > 0).sum().item()),
        "processed_samples": float(stats.count.sum(dtype=torch.int64).item()),
        "score_mean": float(score_mean),
        "score_q10": quantiles[0],
        "score_q50": quantiles[1],
        "score_q90": quantiles[2],
        "nonfinite_skipped": float(stats.nonfinite.item()),
    }
