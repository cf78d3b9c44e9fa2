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
  to the budget; a splitting draw (one pivotal round, then systematic sampling; Deville & Tillé,
  Biometrika 1998) keeps exactly ``k`` samples with exactly these probabilities, each weighted
  ``(k / N) / π_i`` (1 on average), so the weighted batch loss is an unbiased estimate of the
  full data set's mean loss at every step.

Unseen samples (no recorded loss yet) rank first, as in every dynaprune score policy; NaN scores
count as unseen.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dynaprune._checks import check_fraction
from dynaprune._select import largest, random_prefix, random_subset, shuffled_indices, sum64
from dynaprune._splitting import inclusion_scale, proportional_subset
from dynaprune.core.statistics import LossStatistics
from dynaprune.policies.base import PruningPolicy, Selection

__all__ = ["ImportancePolicy", "InfoBatchPolicy", "PoolTopPolicy"]


def _scores(stats: LossStatistics) -> tuple[Tensor, Tensor, int]:
    """The moving-average loss, the mask of samples with nothing known (unseen or NaN), and
    its count."""
    unknown = stats.mean.isnan()
    unknown |= stats.seen == 0
    return stats.mean, unknown, int(unknown.count_nonzero())


def sampling_weight(stats: LossStatistics, mix: float, unknown: Tensor | None) -> Tensor:
    """``(1 - mix) · loss_i / mean_loss + mix`` of every sample, built in place in one float32
    tensor (4 bytes per sample). Samples of the ``unknown`` mask (unseen or NaN; ``None``: no
    such sample) weigh as the hardest seen one; negative losses weigh as 0."""
    weight = stats.mean.clamp_min(0.0)
    if unknown is not None:
        weight.masked_fill_(unknown, 0.0)
        weight.masked_fill_(unknown, weight.amax())
    mean = max(sum64(weight) / weight.numel(), torch.finfo(torch.float32).tiny)
    return weight.mul_((1.0 - mix) / mean).add_(mix)


def kept_weights(weight: Tensor, idx: Tensor, c: float, share: float) -> Tensor:
    """``share / π_i`` of the samples ``idx``, ``π_i = min(1, c · weight_i)``.

    With ``share = k / N`` the weights average 1 in expectation (off by O(1 / sqrt(k)) in any
    one epoch), so the step size stays the learning rate's. float32 throughout: the weights are
    float32, and only the draw needs the products' float64 rounding.
    """
    return weight.index_select(0, idx).mul_(c).clamp_max_(1.0).reciprocal_().mul_(share)


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

    trusted_selection = True

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


def _check_pool_factor(name: str, value: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 1.0
    ):
        raise ValueError(f"{name} must be a finite number >= 1, got {value!r}")
    return float(value)


class PoolTopPolicy(PruningPolicy):
    """The highest-loss ``num_keep`` samples of a uniform random pool (OrderDP).

    Args:
        pool_factor: pool size over the budget, ``>= 1``; the pool holds
            ``min(N, ceil(pool_factor * num_keep))`` samples. ``1`` is uniform sampling; OrderDP
            keeps the top 60 % of its pool (``5 / 3``). A sample outside the top can still be
            kept whenever the pool misses enough harder ones, and every sample is outside the
            pool with probability ``1 - pool / N``, so no score goes stale for long.

    The k-th highest score of the pool is bracketed from a random sample of the pool (as in
    :func:`dynaprune._select.largest`); with more than 65 536 pooled samples that draw changed
    the random stream of a seed (see "Random streams" in docs/performance.md).

    Example:
        >>> PoolTopPolicy(pool_factor=2.0).pool_factor
        2.0
    """

    trusted_selection = True

    def __init__(self, pool_factor: float = 5.0 / 3.0) -> None:
        self.pool_factor = _check_pool_factor("pool_factor", pool_factor)

    def check_attributes(self) -> None:
        _check_pool_factor(f"{type(self).__name__}.pool_factor", self.pool_factor)

    def select(self, stats: LossStatistics, num_keep: int, generator: torch.Generator) -> Selection:
        n = stats.num_samples
        pool_size = min(n, math.ceil(self.pool_factor * num_keep))
        everyone = torch.ones(n, dtype=torch.bool, device=stats.device)
        pool = random_subset(everyone, n, pool_size, generator)
        if pool_size == num_keep:
            return Selection(shuffled_indices(pool, generator), None, shuffled=True)
        score, unknown, _ = _scores(stats)
        score = score.masked_fill(unknown, math.inf)
        keep = largest(score, num_keep, generator, pool, pool_size)
        return Selection(shuffled_indices(keep, generator), None, shuffled=True)


class ImportancePolicy(PruningPolicy):
    """Loss-proportional sampling of exactly ``num_keep`` samples, with unbiased weights.

    The draw (:func:`dynaprune._splitting.proportional_subset`) is one pivotal round, in which
    sample ``i`` duels sample ``i + N/2``, and systematic sampling of the survivors: exact
    inclusion probabilities and an exact size in a few passes, without shuffling all ``N``
    samples. The two samples of a duel are rarely kept together when their probabilities sum to
    less than 1. Earlier versions drew other subsets for a seed, with the same inclusion
    probabilities (see "Random streams" in docs/performance.md).

    Args:
        mix: share of the sampling weight spread uniformly, in ``(0, 1]``: weight
            ``(1 - mix) · loss_i / mean_loss + mix``. It bounds every inclusion probability from
            below by about ``mix · k / N``, and so every weight from above by ``1 / mix``.
            ``1`` is uniform sampling.

    Example:
        >>> ImportancePolicy(mix=0.5).mix
        0.5
    """

    trusted_selection = True

    def __init__(self, mix: float = 0.5) -> None:
        # mix = 0 would give samples with a near-zero loss unbounded weights
        self.mix = check_fraction("mix", mix, open_low=True, open_high=False)

    def check_attributes(self) -> None:
        check_fraction(f"{type(self).__name__}.mix", self.mix, open_low=True, open_high=False)

    def select(self, stats: LossStatistics, num_keep: int, generator: torch.Generator) -> Selection:
        n = stats.num_samples
        _, unknown, num_unknown = _scores(stats)
        if num_unknown == n or num_keep == n:
            idx = random_prefix(n, num_keep, generator, stats.device)
            return Selection(idx, torch.ones(idx.shape, device=idx.device), shuffled=True)
        weight = sampling_weight(stats, self.mix, unknown if num_unknown else None)
        del unknown
        c = inclusion_scale(weight, num_keep)
        keep = proportional_subset(weight, c, generator)
        idx = shuffled_indices(keep, generator)
        del keep
        return Selection(idx, kept_weights(weight, idx, c, num_keep / n), shuffled=True)
