"""Loss-driven rules from the literature after Raju et al., at an exact budget.

* ``infobatch`` — InfoBatch (Qin et al., "InfoBatch: Lossless Training Speed Up by Unbiased
  Dynamic Data Pruning", ICLR 2024; NUS-HPC-AI-Lab/InfoBatch ``infobatch/infobatch.py``). Score
  = the sample's last loss. Samples at or above the mean score are kept; those below it are
  pruned at random, and the kept ones carry the published weight ``1 / P(kept)``. The published
  code prunes a fixed share ``r`` of the below-mean samples and lets the kept fraction drift
  (users measured 0.8–0.9 kept at a nominal 0.5); here the below-mean draw fills exactly the
  rest of the budget, the only way to compare methods at equal cost. Its final full-data epochs
  (δ = 0.875) are the sampler's ``anneal_epochs``; the last loss is the sampler's moving
  average at ``momentum=0``.
* ``pool_top`` — pool-then-top, as in OrderDP (ICLR 2026): a uniform random pool of
  ``pool_factor × budget`` samples, of which the highest-loss ``budget`` are kept. The pool
  bounds how often any sample can be skipped, so stale low scores are refreshed and no region of
  the data set starves; within the pool, training focuses on what is still hard.
* ``importance`` — importance sampling proportional to loss with unbiased weights (after
  Katharopoulos & Fleuret, "Not All Samples Are Created Equal", ICML 2018): inclusion
  probabilities ``π_i ∝ (1 - mix) · loss_i / mean(loss) + mix``, capped at 1, summing exactly
  to the budget; a systematic (πps) draw keeps exactly ``k`` samples with exactly these
  probabilities, each weighted ``(k / N) / π_i`` (1 on average), so the weighted batch loss is an
  unbiased estimate of the full data set's mean loss at every step.

Unseen samples (no recorded loss yet) rank first, as in every dynaprune score policy; NaN scores
count as unseen.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dynaprune._checks import check_fraction
from dynaprune._select import random_subset, shuffled_indices, top_k_mask
from dynaprune.core.statistics import LossStatistics
from dynaprune.policies.base import PruningPolicy, Selection

__all__ = ["ImportancePolicy", "InfoBatchPolicy", "PoolTopPolicy"]


def _scores(stats: LossStatistics) -> tuple[Tensor, Tensor, int]:
    """The moving-average loss, the mask of samples with nothing known (unseen or NaN), and
    its count."""
    unknown = (stats.seen == 0) | stats.mean.isnan()
    return stats.mean, unknown, int(unknown.count_nonzero())


class InfoBatchPolicy(PruningPolicy):
    """InfoBatch's rule at an exact budget, with its published (unnormalised) weights.

    Every sample whose score is at least the mean score of the seen samples, and every unseen
    one, is kept; when there are more of them than the budget, a uniform random subset of them
    is kept (weight 1). The rest of the budget is drawn uniformly from the below-mean samples,
    each with weight ``1 / P(kept) = n_below / n_drawn``. Unlike :class:`SoftPolicy`, the
    weights are not normalised, so the mean loss (and the step) grows by up to ``N / k`` — the
    published behaviour, kept here as the baseline users know.

    Use it with ``momentum=0`` (the score is the last loss, as published) and
    ``anneal_epochs = total_epochs - ceil(0.875 * total_epochs)`` for the published schedule.

    Example:
        >>> stats = LossStatistics(10)
        >>> InfoBatchPolicy().select(stats, 4, torch.Generator().manual_seed(0)).indices.numel()
        4
    """

    def select(self, stats: LossStatistics, num_keep: int, generator: torch.Generator) -> Selection:
        n = stats.num_samples
        score, unknown, num_unknown = _scores(stats)
        known = ~unknown
        threshold = score.masked_fill(unknown, 0.0).sum() / max(n - num_unknown, 1)
        below = (score < threshold) & known
        num_below = int(below.count_nonzero())
        num_above = n - num_below
        if num_above >= num_keep:
            keep = random_subset(~below, num_above, num_keep, generator)
            idx = shuffled_indices(keep, generator)
            return Selection(idx, torch.ones(idx.shape, device=idx.device), shuffled=True)
        num_drawn = num_keep - num_above
        keep = random_subset(below, num_below, num_drawn, generator)
        keep |= ~below
        idx = shuffled_indices(keep, generator)
        weights = torch.where(below.index_select(0, idx), num_below / num_drawn, 1.0)
        return Selection(idx, weights.to(torch.float32), shuffled=True)


class PoolTopPolicy(PruningPolicy):
    """The highest-loss ``num_keep`` samples of a uniform random pool (OrderDP).

    Args:
        pool_factor: pool size over the budget, ``>= 1``; the pool holds
            ``min(N, ceil(pool_factor * num_keep))`` samples. ``1`` is uniform sampling; OrderDP
            keeps the top 60 % of its pool (``5 / 3``). A sample outside the top can still be
            kept whenever the pool misses enough harder ones, and every sample is outside the
            pool with probability ``1 - pool / N``, so no score goes stale for long.

    Example:
        >>> PoolTopPolicy(pool_factor=2.0).pool_factor
        2.0
    """

    def __init__(self, pool_factor: float = 5.0 / 3.0) -> None:
        if (
            isinstance(pool_factor, bool)
            or not isinstance(pool_factor, (int, float))
            or not math.isfinite(pool_factor)
            or pool_factor < 1.0
        ):
            raise ValueError(f"pool_factor must be a finite number >= 1, got {pool_factor!r}")
        self.pool_factor = float(pool_factor)

    def select(self, stats: LossStatistics, num_keep: int, generator: torch.Generator) -> Selection:
        n = stats.num_samples
        pool_size = min(n, math.ceil(self.pool_factor * num_keep))
        everyone = torch.ones(n, dtype=torch.bool, device=stats.device)
        pool = random_subset(everyone, n, pool_size, generator)
        if pool_size == num_keep:
            return Selection(shuffled_indices(pool, generator), None, shuffled=True)
        score, unknown, _ = _scores(stats)
        score = score.masked_fill(unknown, math.inf)
        keep = top_k_mask(score, num_keep, generator, None, pool)
        return Selection(shuffled_indices(keep, generator), None, shuffled=True)


def inclusion_probabilities(weight: Tensor, k: int) -> Tensor:
    """Probabilities ``min(1, c · weight_i)`` that sum to ``k``: the largest weights are capped
    at 1 and ``c`` is solved for the rest (float64).

    Example:
        >>> inclusion_probabilities(torch.tensor([1.0, 1.0, 8.0]), 2).tolist()
        [0.5, 0.5, 1.0]
    """
    w = weight.to(torch.float64)
    capped = torch.zeros_like(w, dtype=torch.bool)
    for _ in range(64):  # each round caps at least one more sample, or stops
        free = w.masked_fill(capped, 0.0)
        c = (k - int(capped.count_nonzero())) / float(free.sum())
        newly = (free * c > 1.0) & ~capped
        if not bool(newly.any()):
            break
        capped |= newly
    return torch.where(capped, 1.0, w * c).clamp_(max=1.0)


class ImportancePolicy(PruningPolicy):
    """Loss-proportional sampling of exactly ``num_keep`` samples, with unbiased weights.

    Args:
        mix: share of the sampling weight spread uniformly, in ``(0, 1]``: weight
            ``(1 - mix) · loss_i / mean_loss + mix``. It bounds every inclusion probability from
            below by about ``mix · k / N``, and so every weight from above by ``1 / mix``.
            ``1`` is uniform sampling.

    Example:
        >>> ImportancePolicy(mix=0.5).mix
        0.5
    """

    def __init__(self, mix: float = 0.5) -> None:
        # mix = 0 would give samples with a near-zero loss unbounded weights
        self.mix = check_fraction("mix", mix, open_low=True, open_high=False)

    def select(self, stats: LossStatistics, num_keep: int, generator: torch.Generator) -> Selection:
        n = stats.num_samples
        score, unknown, num_unknown = _scores(stats)
        if num_unknown == n or num_keep == n:
            idx = torch.randperm(n, generator=generator, device=stats.device)[:num_keep]
            return Selection(idx, torch.ones(idx.shape, device=idx.device), shuffled=True)
        score = score.clamp_min(0.0)
        top = score.masked_fill(unknown, 0.0).amax()
        score = torch.where(unknown, top, score)  # unseen: as likely as the hardest seen one
        mean = score.mean().clamp_min(torch.finfo(torch.float32).tiny)
        prob = inclusion_probabilities((1.0 - self.mix) * score / mean + self.mix, num_keep)
        # Systematic sampling in a random order: one uniform offset u, and sample i is kept
        # when a point u + m (m = 0 .. k-1) falls into its slice of the cumulative sums. It
        # keeps exactly k samples, each with probability exactly prob_i (all <= 1).
        order = torch.randperm(n, generator=generator, device=stats.device)
        cum = prob.index_select(0, order).cumsum(0)
        cum.mul_(num_keep / cum[-1])
        u = torch.rand((), generator=generator, device=stats.device, dtype=torch.float64)
        u = u.clamp(1e-12, 1.0 - 1e-12)
        hits = torch.floor(cum - u)
        prev = torch.cat([torch.full((1,), -1.0, dtype=hits.dtype, device=hits.device), hits[:-1]])
        keep = torch.zeros(n, dtype=torch.bool, device=stats.device)
        keep[order] = hits > prev
        idx = shuffled_indices(keep, generator)
        # (k / N) / π_i: the weights average 1 in expectation (off by O(1 / sqrt(k)) in any
        # one epoch), so the step size stays the learning rate's.
        weights = (num_keep / n) / prob.index_select(0, idx)
        return Selection(idx, weights.to(torch.float32), shuffled=True)
