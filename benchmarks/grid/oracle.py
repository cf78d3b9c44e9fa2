"""``oracle-clean`` and ``oracle-rate``: ceilings for selection that cleans, not methods a user
can run.

Under the label noise the benchmark injects itself it knows which labels it flipped. The oracle
draws its budget uniformly from the samples whose labels were *not* flipped, afresh every epoch:
``uniform`` with a perfect noise filter. Whatever a loss-based rule gains by dropping mislabelled
samples, at the same budget and recipe, is bounded by roughly what this oracle gains over
``uniform`` (a rule could add a gain from its priority, which the oracle does not have). If the
oracle does not gain, a rule cannot gain by cleaning in that recipe.

``oracle-rate`` knows only *how many* labels were flipped, not which: every epoch it excludes
the share of the samples with the highest moving-average loss that equals the flipped share
(samples not yet measured are never excluded) and draws its budget uniformly from the rest: the
small-loss trick of Co-teaching (Han et al., NeurIPS 2018) with the true noise rate from the
first selection on. Between the two oracles lies what the loss ranking itself loses; below
``oracle-rate``, what estimating the rate loses.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dynaprune import LossStatistics, PruningPolicy, Selection
from dynaprune._select import largest, random_subset, shuffled_indices

__all__ = ["ORACLE", "ORACLES", "OracleCleanPolicy", "OracleRatePolicy", "oracle_policy"]

ORACLE = "oracle-clean"
ORACLES = (ORACLE, "oracle-rate")


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


class OracleRatePolicy(PruningPolicy):
    """Excludes the ``rate`` share of samples with the highest moving-average loss (measured
    ones only), then draws ``num_keep`` uniformly from the rest, every epoch.

    Args:
        rate: the share to exclude, in [0, 1).

    Raises:
        ValueError: at selection, when the budget exceeds the samples left.
    """

    def __init__(self, rate: float) -> None:
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"rate must be in [0, 1), got {rate!r}")
        self.rate = rate

    def select(self, stats: LossStatistics, num_keep: int, generator: torch.Generator) -> Selection:
        n = stats.num_samples
        measured = stats.count > 0
        drop = min(round(self.rate * n), int(measured.sum()))
        score = torch.where(measured, stats.mean, torch.full_like(stats.mean, -math.inf))
        pool = ~largest(score, drop, generator)  # none excluded while drop is 0
        left = n - drop
        if num_keep > left:
            raise ValueError(
                f"oracle-rate: num_keep={num_keep} exceeds the {left} samples left after "
                f"excluding {drop}"
            )
        mask = random_subset(pool, left, num_keep, generator)
        return Selection(shuffled_indices(mask, generator), None, shuffled=True)


def oracle_policy(name: str, flipped: Tensor | None) -> PruningPolicy:
    """The oracle ``name`` (one of :data:`ORACLES`) over the benchmark's flipped-label mask
    (``data.flipped``)."""
    if flipped is None:
        raise ValueError(f"{name} needs label noise the benchmark injects (--label-noise > 0)")
    if name == ORACLE:
        return OracleCleanPolicy(~flipped.cpu())
    if name == "oracle-rate":
        return OracleRatePolicy(float(flipped.float().mean()))
    raise ValueError(f"name must be one of {ORACLES}, got {name!r}")
