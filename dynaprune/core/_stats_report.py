"""The figures :meth:`LossStatistics.summary <dynaprune.core.statistics.LossStatistics.summary>`
reports once per epoch, from the statistics' tensors (passed in: this helper does not import the
class it reports on). Reads device values."""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["summarize"]


def summarize(mean: Tensor, count: Tensor, seen: Tensor, nonfinite: Tensor) -> dict[str, float]:
    """:meth:`LossStatistics.summary` of the statistics with these tensors."""
    scores = mean[count > 0]
    if scores.numel() > 1 << 20:  # quantile's input limit; a strided sample is plenty
        scores = scores[:: scores.numel() // (1 << 20) + 1]
    q = torch.tensor([0.1, 0.5, 0.9], device=scores.device)
    quantiles = torch.quantile(scores, q).tolist() if scores.numel() else [math.nan] * 3
    # Summed in float64: a float32 sum of huge (finite) losses would overflow.
    score_mean = scores.mean(dtype=torch.float64).item() if scores.numel() else math.nan
    return {
        "seen_samples": float((seen > 0).sum().item()),
        "processed_samples": float(count.sum(dtype=torch.int64).item()),
        "score_mean": float(score_mean),
        "score_q10": quantiles[0],
        "score_q50": quantiles[1],
        "score_q90": quantiles[2],
        "nonfinite_skipped": float(nonfinite.item()),
    }
