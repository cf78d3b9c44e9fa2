"""Selection that should not train on flipped labels: a noise-guarded UCB and ambiguity-first.

Loss-ranking rules (``ucb``, ``epsilon_greedy``) pay on abundant clean data and lose under label
noise, because the highest moving-average losses are then the flipped labels
(``docs/selection-study.md``). Both policies here keep UCB's exploration share and exact budget
and differ in how they keep away from those samples:

* ``guarded_ucb`` — UCB's priority (moving mean + ``c`` × moving std of the loss), but samples
  whose moving-average loss falls in the *high mode* of the loss distribution lose it. The mode
  is found as DivideMix does (Li, Socher and Hoi, ICLR 2020; ``eval_train`` in
  LiJunnan1992/DivideMix): a two-component Gaussian mixture on the per-sample losses, the
  posterior of the high component ``>= 1/2`` flagging a sample (:mod:`dynaprune._mixture`).
  Clean data split in two modes as well (hard or not yet learnt samples form the high one), so
  with ``num_classes`` the guard asks one more thing of the high mode: that its mean loss lie
  above the chance-level loss ``log(num_classes)``, the cross-entropy of a uniform prediction;
  and it flags only losses above chance. The hypothesis was that flipped labels sit above
  chance and hard samples below it. **Measured on CIFAR-10 it does not hold**: the hardest fifth
  of the clean data sits above chance after a few epochs and is dropped, and at a higher
  learning rate the fit follows a small tail of extreme losses instead of the flipped labels
  (``docs/clean-selection.md``). The policy is experimental; ``uniform`` stays the default.
  When the guard does not act, the rule is ``ucb``. Flagged samples are not drawn at all
  (``flagged="drop"``, unless the rest cannot fill the budget) or at most at the exploration
  rate (``"explore"``). The policy named ``"guarded_ucb"`` has no ``num_classes``: its guard is
  DivideMix's split alone.
* ``moderate`` — ambiguity first: priority to the samples whose moving-average loss is closest
  to the median moving-average loss. It is Active Bias's threshold closeness (Chang, Learned-
  Miller and McCallum, NeurIPS 2017: prefer samples predicted near the decision threshold) in
  the units the statistics keep, and the rule of Moderate-DS (Xia et al., ICLR 2023: samples of
  median score are robust to label noise) applied every epoch: flipped labels (highest losses)
  and learnt samples (lowest) both lose priority, with no noise estimate.

Why the loss moments suffice. Dataset Cartography (Swayamdipta et al., 2020) and Active Bias
rank by the mean and spread of p(assigned label). A moving mean of ``exp(-loss)`` is that
only without label smoothing. Recorded on the whole 50,000-image CIFAR-10 preset with 20 %
flipped labels (``benchmarks/grid/noise_signals.py``, ``docs/results/noise-signals``), the
moving-average loss, p(label) and margin (assigned-class logit minus the largest other) single
out the flipped labels equally well at every epoch boundary (AUC 0.844, 0.846, 0.837 after two
epochs; 0.924, 0.924, 0.923 after five); the spread of the loss carries nothing (0.50-0.55),
and the spread of p less than its mean (flipped labels vary less: AUC 0.73 reversed, after
five). The policies therefore read the 16 bytes per sample the statistics already keep.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from dynaprune._checks import check_choice
from dynaprune._mixture import Mixture, ashman_d, fit_two_gaussians, flag_threshold
from dynaprune._select import random_subset, shuffled_indices
from dynaprune.core.statistics import LossStatistics
from dynaprune.policies.base import Selection
from dynaprune.policies.loss import (
    UCBPolicy,
    _check_fraction,
    _check_nonnegative,
    _greedy,
    _ScoreGreedyPolicy,
)

__all__ = ["GuardReport", "GuardedUCBPolicy", "ModeratePolicy"]

_FLAGGED = ("explore", "drop")
_UNFLAGGED = ("ucb", "uniform")


def _check_classes(name: str, value: int | None) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 2):
        raise ValueError(f"{name} must be None or an integer >= 2, got {value!r}")
    return value


def _check_tail(name: str, value: float | None) -> float | None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0
    ):
        raise ValueError(f"{name} must be None or a quantile in (0, 1), got {value!r}")
    return value


def _check_min_seen(name: str, value: float) -> float:
    value = _check_fraction(name, value)
    if value == 0.0:
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")
    return value


class GuardReport(NamedTuple):
    """What the noise guard of :class:`GuardedUCBPolicy` sees in the statistics.

    Attributes:
        flagged: bool mask of the samples treated as likely mislabelled.
        mixture: the two-Gaussian fit of the seen samples' moving-average losses, or ``None``
            when there was nothing to fit (fewer than 16 seen samples, all losses equal).
        separation: Ashman's D of the fit (``nan`` without one).
        threshold: the loss from which a sample is flagged (``inf`` when the guard is off).
    """

    flagged: Tensor
    mixture: Mixture | None
    separation: float
    threshold: float

    @property
    def share(self) -> float:
        """Share of the data set flagged (reads a device value)."""
        return float(self.flagged.count_nonzero()) / max(1, self.flagged.numel())


class GuardedUCBPolicy(UCBPolicy):
    """UCB whose priority skips the high mode of the loss distribution (likely flipped labels).

    Args:
        c: weight of the loss's moving standard deviation in the priority, ``>= 0``.
        explore: share of the budget drawn uniformly from the samples not taken by priority,
            in ``[0, 1]``.
        num_classes: the number of classes, for the chance-level loss ``log(num_classes)`` (the
            cross-entropy of a uniform prediction, with or without label smoothing). With it the
            guard acts only when the high mode's mean loss is above chance, and flags only
            losses above chance; without it (``None``) every fit is split as DivideMix splits
            it, which on clean data flags the hardest samples too. Neither tells flipped labels
            from hard samples reliably on CIFAR-10 (``docs/clean-selection.md``).
        separation: least Ashman's D of the two-Gaussian fit for the guard to act, ``>= 0``.
        flagged: ``"drop"`` (default) — flagged samples are kept only if the others cannot
            fill the budget; ``"explore"`` — they stay in the exploration draw (each kept with
            the exploration rate, below the uniform rate).
        min_seen: share of the data set that must have a recorded loss before the guard acts,
            in ``(0, 1]``: the first losses of a run say little about noise.
        tail: ``None`` (default) or a quantile in ``(0, 1)``: the losses above it are
            winsorised before the fit, so that a thin tail of extreme losses cannot take the
            high component (at a high learning rate it takes it from the flipped labels,
            ``docs/clean-selection.md``). Flagging still compares the raw losses.
        unflagged: what the policy does once the guard flags samples: ``"ucb"`` (default) —
            UCB's priority over the unflagged ones; ``"uniform"`` — the budget drawn uniformly
            from the unflagged ones (the small-loss trick of Co-teaching and DivideMix, without
            their second network), flagged samples only where those cannot fill it. While the
            guard flags nothing, the rule is UCB either way.

    Example:
        >>> stats = LossStatistics(1000)
        >>> g = torch.Generator().manual_seed(0)
        >>> loss = torch.cat([torch.rand(800, generator=g), 4 + torch.rand(200, generator=g)])
        >>> stats.update(torch.arange(1000), loss, epoch=0)
        >>> policy = GuardedUCBPolicy()
        >>> report = policy.guard(stats)
        >>> report.share, bool(report.flagged[800:].all())
        (0.2, True)
        >>> int((policy.select(stats, 500, g).indices >= 800).sum())  # dropped
        0
        >>> explore = GuardedUCBPolicy(flagged="explore").select(stats, 500, g).indices
        >>> int((explore >= 800).sum())  # only in the exploration draw: about 150 * 200 / 650
        36
    """

    trusted_selection = True

    def __init__(
        self,
        c: float = 1.0,
        *,
        num_classes: int | None = None,
        explore: float = 0.3,
        separation: float = 0.0,
        flagged: str = "drop",
        min_seen: float = 0.75,
        tail: float | None = None,
        unflagged: str = "ucb",
    ) -> None:
        super().__init__(c, explore=explore)
        self.num_classes = _check_classes("num_classes", num_classes)
        self.separation = _check_nonnegative("separation", separation)
        self.flagged = check_choice("flagged", flagged, _FLAGGED)
        self.min_seen = _check_min_seen("min_seen", min_seen)
        self.tail = _check_tail("tail", tail)
        self.unflagged = check_choice("unflagged", unflagged, _UNFLAGGED)

    def check_attributes(self) -> None:
        super().check_attributes()
        name = type(self).__name__
        _check_classes(f"{name}.num_classes", self.num_classes)
        _check_nonnegative(f"{name}.separation", self.separation)
        check_choice(f"{name}.flagged", self.flagged, _FLAGGED)
        _check_min_seen(f"{name}.min_seen", self.min_seen)
        _check_tail(f"{name}.tail", self.tail)
        check_choice(f"{name}.unflagged", self.unflagged, _UNFLAGGED)

    def guard(self, stats: LossStatistics) -> GuardReport:
        """The guard's view of ``stats``: which samples it flags and why (reads device values;
        call it at most once per epoch, as the sampler calls :meth:`select`)."""
        seen = stats.count > 0
        none = torch.zeros_like(seen)
        if int(seen.count_nonzero()) < self.min_seen * stats.num_samples:
            return GuardReport(none, None, math.nan, math.inf)
        mixture = fit_two_gaussians(stats.mean, seen, tail=self.tail)
        if mixture is None:
            return GuardReport(none, None, math.nan, math.inf)
        d = ashman_d(mixture)
        chance = -math.inf if self.num_classes is None else math.log(self.num_classes)
        if d < self.separation or not mixture.mean_hi > chance:
            return GuardReport(none, mixture, d, math.inf)
        threshold = max(flag_threshold(mixture), chance)
        return GuardReport((stats.mean >= threshold) & seen, mixture, d, threshold)

    def select(self, stats: LossStatistics, num_keep: int, generator: torch.Generator) -> Selection:
        flagged = self.guard(stats).flagged
        num_flagged = int(flagged.count_nonzero())
        if num_flagged == 0:
            return super().select(stats, num_keep, generator)
        n = stats.num_samples
        if self.unflagged == "uniform":
            clean = ~flagged
            keep = random_subset(clean, n - num_flagged, num_keep, generator)
            if num_keep > n - num_flagged:  # too few unflagged samples: flagged ones at random
                keep |= random_subset(flagged, num_flagged, num_keep - (n - num_flagged), generator)
            return Selection(shuffled_indices(keep, generator), None, shuffled=True)
        num_greedy = num_keep - round(self.explore * num_keep)
        unseen = stats.seen == 0
        num_unseen = int(unseen.count_nonzero())
        num_clean = n - num_flagged  # flagged samples all have a loss: none is unseen
        if num_greedy >= num_clean:  # priority for every unflagged sample, the rest at random
            greedy = ~flagged
            greedy |= random_subset(flagged, num_flagged, num_greedy - num_clean, generator)
        else:
            score = self.score(stats)
            score.masked_fill_(score.isnan(), math.inf)  # an overflowed variance: rank it first
            score.masked_fill_(flagged, -math.inf)
            greedy = _greedy(score, num_greedy, generator, unseen, num_unseen)
            del score
        pool = ~greedy
        num_rest = num_keep - num_greedy
        if self.flagged == "drop":
            clean_pool = pool & ~flagged
            clean_size = int(clean_pool.count_nonzero())
            if clean_size >= num_rest:
                keep = random_subset(clean_pool, clean_size, num_rest, generator)
            else:  # too few unflagged samples: all of them, then flagged ones at random
                keep = clean_pool
                rest = pool & flagged  # the greedy part may hold flagged samples already
                rest_size = int(rest.count_nonzero())
                keep |= random_subset(rest, rest_size, num_rest - clean_size, generator)
        else:
            keep = random_subset(pool, n - num_greedy, num_rest, generator)
        keep |= greedy
        return Selection(shuffled_indices(keep, generator), None, shuffled=True)


class ModeratePolicy(_ScoreGreedyPolicy):
    """Ambiguity first: priority to moving-average losses closest to the median one.

    The median is that of the seen samples' moving-average losses, from a strided sample of at
    most 65,536 of them; unseen samples rank first, as in every score policy.

    Args:
        explore: share of the budget drawn uniformly from the samples not taken by priority,
            in ``[0, 1]``.

    Example:
        >>> stats = LossStatistics(5)
        >>> stats.update(torch.arange(5), torch.tensor([0.1, 1.0, 1.2, 1.4, 9.0]), epoch=0)
        >>> [round(v, 2) for v in ModeratePolicy().score(stats).tolist()]
        [-1.1, -0.2, -0.0, -0.2, -7.8]
    """

    trusted_selection = True

    def __init__(self, explore: float = 0.3) -> None:
        self.explore = _check_fraction("explore", explore)

    def check_attributes(self) -> None:
        _check_fraction(f"{type(self).__name__}.explore", self.explore)

    def score(self, stats: LossStatistics) -> Tensor:
        seen = stats.count > 0
        stride = max(1, stats.num_samples >> 16)
        sample = stats.mean[::stride][seen[::stride]]
        if sample.numel() == 0:
            return torch.zeros_like(stats.mean)
        median = sample.median()
        return (stats.mean - median).abs_().neg_()
