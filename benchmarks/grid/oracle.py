"""``oracle-clean``: a ceiling for selection that cleans, not a method a user can run.

Under the label noise the benchmark injects itself it knows which labels it flipped. The oracle
draws its budget uniformly from the samples whose labels were *not* flipped, afresh every epoch:
``uniform`` with a perfect noise filter. Whatever a loss-based rule gains by dropping mislabelled
samples, at the same budget and recipe, is bounded by roughly what this oracle gains over
``uniform`` (a rule could add a gain from its priority, which the oracle does not have). If the
oracle does not gain, a rule cannot gain by cleaning in that recipe.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dynaprune import LossStatistics, PruningPolicy, Selection
from dynaprune._select import random_subset, shuffled_indices

__all__ = ["ORACLE", "OracleCleanPolicy", "oracle_policy"]

ORACLE = "oracle-clean"


class OracleCleanPolicy(PruningPolicy):
    """Draws ``num_keep`` samples uniformly from the ``clean`` mask every epoch.

    Args:
        clean: bool ``(N,)``, the samples the policy may draw (their labels are the true ones).

    Raises:
        ValueError: at selection, when the budget exceeds the clean samples.
    """

    def __init__(self, clean: Tensor) -> None:
        if clean.dtype != torch.bool or clean.dim() != 1:
            raise ValueError(
                f"clean must be a 1-D bool mask, got {clean.dtype} {tuple(clean.shape)}"
            )
        self.clean = clean
        self.count = int(clean.sum())

    def select(self, stats: LossStatistics, num_keep: int, generator: torch.Generator) -> Selection:
        if num_keep > self.count:
            raise ValueError(
                f"{ORACLE} keeps only clean samples: num_keep={num_keep} exceeds the "
                f"{self.count} samples whose labels were not flipped"
            )
        if self.clean.numel() != stats.num_samples:
            raise ValueError(
                f"clean has {self.clean.numel()} entries, the statistics {stats.num_samples}"
            )
        mask = random_subset(self.clean.to(stats.device), self.count, num_keep, generator)
        return Selection(shuffled_indices(mask, generator), None, shuffled=True)


def oracle_policy(flipped: Tensor | None) -> OracleCleanPolicy:
    """The oracle over the benchmark's flipped-label mask (``data.flipped``)."""
    if flipped is None:
        raise ValueError(f"{ORACLE} needs label noise the benchmark injects (--label-noise > 0)")
    return OracleCleanPolicy(~flipped.cpu())
