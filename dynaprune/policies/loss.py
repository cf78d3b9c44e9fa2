"""The loss-driven rules: uniform, epsilon-greedy, UCB and soft pruning.

Policies:

* ``uniform`` — a fresh uniform random subset every epoch. In Raju, Daruwalla and Lipasti,
  "Accelerating Deep Learning with Dynamic Data Pruning" (arXiv 2111.12621, 2021), this simple
  baseline already beats static scores at aggressive pruning rates.
* ``epsilon_greedy`` — ``1 - epsilon`` of the budget goes to the highest moving-average losses,
  ``epsilon`` of it uniformly at random to the rest.
* ``ucb`` — like ``epsilon_greedy`` with an upper-confidence score: moving average plus ``c``
  times the moving standard deviation, optionally plus a count bonus ``sqrt(ln t / n_i)``. It
  keeps a random exploration share: ranking by the score alone starves whole regions of the
  data set (tried on CIFAR-10: 33 % test accuracy against 73 % for ``uniform``).

* ``soft`` — unbiased pruning in the spirit of InfoBatch (Qin et al., ICLR 2024): samples whose
  score is at least the mean score are kept, the others are drawn at random, and every
  randomly drawn sample carries the loss weight ``1 / P(kept)``, so the expected gradient summed
  over an epoch equals the full data set's. Unlike InfoBatch it meets the budget exactly.

What is whose. Raju et al. name UCB and epsilon-greedy selection over per-sample loss
statistics; their formulas and constants are not published (only the abstract and a rejected
TMLR version are public, and no official code). The one public reimplementation found (an
unattributed timm fork) scores UCB as EMA mean + ``c`` × EMA *variance*, explores as
epsilon-greedy does, reselects every ``num_epoch_per_selection`` epochs and prunes between a
start and an end epoch. Ours: the standard deviation (the variance's units are squared losses),
the count bonus (UCB1's, off by default), an exploration share in both rules, reselection every
epoch, and warm-up/annealing epochs for the start and end (docs/selection-study.md).

In every score-based policy, samples never seen yet rank above all seen ones, in random order,
so every sample is visited early.

Every built-in policy returns its indices already shuffled, and chooses in O(N) with no sort
(:mod:`dynaprune._select`): at 10**7 samples, about what one ``torch.randperm(N)`` costs, the
floor that any shuffled sampler pays per epoch.
"""

from __future__ import annotations

import math
from abc import abstractmethod

import torch
from torch import Tensor

from dynaprune._checks import check_choice
from dynaprune._select import largest, random_prefix, random_subset, shuffled_indices, sum64
from dynaprune.core.statistics import LossStatistics
from dynaprune.policies.base import PruningPolicy, Selection

__all__ = [
    "EpsilonGreedyPolicy",
    "SoftPolicy",
    "UCBPolicy",
    "UniformPolicy",
]


class UniformPolicy(PruningPolicy):
    """A uniform random subset, drawn afresh every epoch.

    Example:
        >>> stats = LossStatistics(10)
        >>> UniformPolicy().select(stats, 4, torch.Generator().manual_seed(0)).indices.numel()
        4
    """

    trusted_selection = True

    def select(self, stats: LossStatistics, num_keep: int, generator: torch.Generator) -> Selection:
        indices = random_prefix(stats.num_samples, num_keep, generator, stats.device)
        return Selection(indices, None, shuffled=True)


def _greedy(
    score: Tensor, k: int, generator: torch.Generator, unseen: Tensor, num_unseen: int
) -> Tensor:
    """Bool mask of the ``k`` highest scores, the ``num_unseen`` samples of the ``unseen`` mask
    first, in random order."""
    if num_unseen == 0:
        return largest(score, k, generator)
    if num_unseen >= k:
        return random_subset(unseen, num_unseen, k, generator)
    return largest(score.masked_fill(unseen, math.inf), k, generator)


def _check_fraction(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def _check_nonnegative(name: str, value: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _check_random_share(name: str, value: float) -> float:
    share = _check_fraction(name, value)
    if share == 0.0:
        raise ValueError(
            f"{name} must be > 0: without a random part, pruned samples can never be "
            f"represented and the weighted loss is biased; got {value!r}"
        )
    return share


class _ScoreGreedyPolicy(PruningPolicy):
    """Top scores for ``1 - explore`` of the budget, uniform random for the rest."""

    explore: float

    @abstractmethod
    def score(self, stats: LossStatistics) -> Tensor:
        """One float32 score per sample; higher is kept first."""

    def select(self, stats: LossStatistics, num_keep: int, generator: torch.Generator) -> Selection:
        num_greedy = num_keep - round(self.explore * num_keep)
        unseen = stats.seen == 0
        num_unseen = int(unseen.count_nonzero())
        score = self.score(stats)
        # A NaN score (an overflowed variance) means nothing is known: rank it first. Rare:
        # the score is copied only when there is one.
        nan = score.isnan()
        if bool(nan.any()):
            score = score.masked_fill(nan, math.inf)
        del nan
        greedy = _greedy(score, num_greedy, generator, unseen, num_unseen)
        pool_size = stats.num_samples - num_greedy
        keep = random_subset(~greedy, pool_size, num_keep - num_greedy, generator)
        keep |= greedy
        return Selection(shuffled_indices(keep, generator), None, shuffled=True)


class EpsilonGreedyPolicy(_ScoreGreedyPolicy):
    """Highest moving-average losses first, with an ``epsilon`` share drawn at random.

    Args:
        epsilon: share of the budget drawn uniformly from the samples not taken greedily,
            in ``[0, 1]``. ``1`` is the uniform policy; ``0`` is pure top-k, which tends to
            starve easy samples and is not recommended.

    Example:
        >>> policy = EpsilonGreedyPolicy(epsilon=0.25)
        >>> policy.epsilon
        0.25
    """

    trusted_selection = True

    def __init__(self, epsilon: float = 0.3) -> None:
        self.epsilon = _check_fraction("epsilon", epsilon)

    def check_attributes(self) -> None:
        _check_fraction(f"{type(self).__name__}.epsilon", self.epsilon)

    @property
    def explore(self) -> float:  # type: ignore[override]
        return self.epsilon

    def score(self, stats: LossStatistics) -> Tensor:
        return stats.mean


class UCBPolicy(_ScoreGreedyPolicy):
    """Upper confidence bound: moving average + ``c`` × moving std (+ a count bonus).

    ``score_i = mean_i + c * sqrt(var_i) + count_bonus * sqrt(ln(t) / n_i)`` where ``n_i`` is the
    sample's number of updates and ``t`` the largest ``n_i`` (the number of epochs seen so far,
    when every sample is visited once per epoch). With ``spread="variance"`` the second term is
    ``c * var_i``, the form of the public reimplementation of Raju et al. (a timm fork; the
    paper publishes no formula): the variance is in squared loss units, so it counts for little
    where losses are below 1 and dominates where they are large.

    Args:
        c: weight of the loss's moving spread, ``>= 0``.
        spread: ``"std"`` (default) or ``"variance"``: which moving spread ``c`` weighs.
        count_bonus: weight of the visit-count bonus, ``>= 0`` (off by default).
        explore: share of the budget drawn uniformly from the samples not taken by score, in
            ``[0, 1]``. Keep it above zero: ranking by score alone collapses accuracy.

    Example:
        >>> UCBPolicy(c=2.0).c
        2.0
    """

    trusted_selection = True

    def __init__(
        self,
        c: float = 1.0,
        *,
        spread: str = "std",
        count_bonus: float = 0.0,
        explore: float = 0.3,
    ) -> None:
        self.c = _check_nonnegative("c", c)
        self.spread = check_choice("spread", spread, ("std", "variance"))
        self.count_bonus = _check_nonnegative("count_bonus", count_bonus)
        self.explore = _check_fraction("explore", explore)

    def check_attributes(self) -> None:
        name = type(self).__name__
        _check_nonnegative(f"{name}.c", self.c)
        check_choice(f"{name}.spread", self.spread, ("std", "variance"))
        _check_nonnegative(f"{name}.count_bonus", self.count_bonus)
        _check_fraction(f"{name}.explore", self.explore)

    def score(self, stats: LossStatistics) -> Tensor:
        if self.c == 0:
            score = stats.mean.clone()
        else:
            score = stats.var.clamp_min(0.0)
            if self.spread == "std":
                score.sqrt_()
            score.mul_(self.c).add_(stats.mean)
        if self.count_bonus > 0:
            n = stats.count.to(torch.float32).clamp_min_(1.0)
            log_t = torch.log(n.amax().clamp_min(1.0))
            score.add_(torch.div(log_t, n, out=n).sqrt_().mul_(self.count_bonus))
        return score


class SoftPolicy(PruningPolicy):
    """Unbiased soft pruning with loss re-weighting, at an exact budget.

    Samples whose moving-average loss is at least the mean over seen samples (and all unseen
    samples) are always kept, up to ``1 - random_share`` of the budget, highest first. The rest
    of the budget is a uniform draw from all other samples. Each kept sample ``i`` gets the
    loss weight ``(k / N) / p_i``, with ``p_i`` its probability of being kept (1 for the fixed
    part): the weights average exactly 1 over the epoch, and the batch mean of weighted losses
    is, in expectation over the draw, the full data set's mean loss. Each step's expected
    gradient is then the full-data gradient, as in InfoBatch (Qin et al., ICLR 2024), but
    without InfoBatch's implicit learning-rate increase of ``N / k``, which destabilises
    training at small keep ratios.

    Args:
        random_share: least share of the budget drawn at random, in ``(0, 1]``. Larger means
            smaller weights (lower variance) but less focus on hard samples. ``1`` is uniform
            sampling with weight 1.

    Example:
        >>> SoftPolicy(random_share=0.5).random_share
        0.5
    """

    trusted_selection = True

    def __init__(self, random_share: float = 0.5) -> None:
        self.random_share = _check_random_share("random_share", random_share)

    def check_attributes(self) -> None:
        _check_random_share(f"{type(self).__name__}.random_share", self.random_share)

    def select(self, stats: LossStatistics, num_keep: int, generator: torch.Generator) -> Selection:
        n = stats.num_samples
        if num_keep == n:
            idx = random_prefix(n, n, generator, stats.device)
            return Selection(idx, torch.ones(n, device=stats.device), shuffled=True)
        unseen = stats.seen == 0
        num_unseen = int(unseen.count_nonzero())
        threshold = sum64(stats.mean, None if num_unseen == 0 else ~unseen)
        threshold /= max(n - num_unseen, 1)
        num_greedy = num_keep - max(1, round(self.random_share * num_keep))
        # Top picks below the threshold are not fixed: the random part grows by as many.
        fixed = _greedy(stats.mean, num_greedy, generator, unseen, num_unseen)
        fixed &= (stats.mean >= threshold) | unseen
        num_fixed = int(fixed.count_nonzero())
        keep = random_subset(~fixed, n - num_fixed, num_keep - num_fixed, generator)
        keep |= fixed
        idx = shuffled_indices(keep, generator)
        # Weight (k / N) / P(kept): 1 / P(kept) makes the epoch's weighted sum unbiased for the
        # full sum; the factor k / N makes it so per step, with a mean weight of exactly 1.
        scale = num_keep / n
        weight = scale * (n - num_fixed) / (num_keep - num_fixed)
        weights = torch.full(idx.shape, weight, dtype=torch.float32, device=idx.device)
        return Selection(
            idx, weights.masked_fill_(fixed.index_select(0, idx), scale), shuffled=True
        )
