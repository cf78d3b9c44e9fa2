"""Under label noise the benchmark flipped, how well does a run's sampler see the flipped labels?

After each pruned run with ``data.label_noise > 0``, :func:`flag_quality` compares the
sampler's final statistics with the set of flipped labels and :func:`append_flags` writes one
row to ``flags.csv``:

* ``auc_loss`` — the probability that a flipped sample has a higher moving-average loss than a
  kept one (samples with a recorded loss only; 0.5 is chance): what any loss-ranking rule sees;
* ``seen_flipped_share`` — the share of flipped labels among the samples trained on at least
  once (for a static method: in its fixed subset; ``flipped_share`` is what chance keeps);
* for a policy with a noise guard (``guarded_ucb``: ``policy.guard(stats)``): the share it
  flags, the flag's ``precision`` and ``recall`` against the flipped set and its ``auc_flag``
  (for a yes/no flag, the mean of the true-positive and true-negative rates), the mixture's
  separation and the loss threshold.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import torch

__all__ = ["FLAG_COLUMNS", "append_flags", "auc", "cells", "flag_quality", "precision_recall"]

FLAG_COLUMNS = (
    "method",
    "keep_ratio",
    "seed",
    "flipped_share",
    "seen_share",
    "auc_loss",
    "flagged_share",
    "precision",
    "recall",
    "auc_flag",
    "separation",
    "threshold",
    "seen_flipped_share",
)


def auc(score: torch.Tensor, positive: torch.Tensor) -> float:
    from sklearn.metrics import roc_auc_score

    if bool(positive.all()) or not bool(positive.any()):
        return math.nan
    return float(roc_auc_score(positive.numpy(), score.numpy()))


def precision_recall(flag: torch.Tensor, flipped: torch.Tensor) -> tuple[float, float]:
    """Share of the flagged samples that are flipped (``nan`` when none is flagged), and share
    of the flipped samples that are flagged."""
    hits = int((flag & flipped).sum())
    precision = hits / int(flag.sum()) if bool(flag.any()) else math.nan
    return precision, hits / max(1, int(flipped.sum()))


def cells(flag: torch.Tensor, flipped: torch.Tensor | None) -> tuple[str, str]:
    """:func:`precision_recall` as two table cells, ``—`` where there is nothing to report."""
    if flipped is None or not bool(flag.any()):
        return "—", "—"
    precision, recall = precision_recall(flag, flipped)
    return f"{precision:.2f}", f"{recall:.2f}"


def flag_quality(sampler: Any, flipped: torch.Tensor) -> dict[str, float]:
    """Figures of ``sampler``'s statistics (and its policy's guard) against ``flipped``."""
    stats = sampler.stats
    seen = (stats.count > 0).cpu()
    flipped = flipped.cpu()
    row: dict[str, float] = {
        "flipped_share": float(flipped.float().mean()),
        "seen_share": float(seen.float().mean()),
        "auc_loss": auc(stats.mean.cpu()[seen], flipped[seen]),
        "seen_flipped_share": float(flipped[seen].float().mean()) if bool(seen.any()) else math.nan,
    }
    guard = getattr(sampler.policy, "guard", None)
    if guard is None:
        return row
    report = guard(stats)
    flag = report.flagged.cpu()
    row["flagged_share"] = float(flag.float().mean())
    row["precision"], row["recall"] = precision_recall(flag, flipped)
    row["auc_flag"] = auc(flag.float(), flipped)
    row["separation"] = report.separation
    row["threshold"] = report.threshold
    return row


def append_flags(out: Path, spec: Any, row: dict[str, float]) -> None:
    """Append one run's :func:`flag_quality` to ``out / "flags.csv"``."""
    path = out / "flags.csv"
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FLAG_COLUMNS, restval="")
        if new:
            writer.writeheader()
        writer.writerow(
            {"method": spec.method, "keep_ratio": spec.keep_ratio, "seed": spec.seed, **row}
        )
