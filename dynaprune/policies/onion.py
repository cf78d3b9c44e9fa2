"""The example-level selector of "Peeling the Onion" as a dynamic policy.

Kong et al., "Peeling the Onion: Hierarchical Reduction of Data Redundancy for Efficient Vision
Transformer Training", AAAI 2023; reference code ZLKong/Tri-Level-ViT, ``main.py``. Training
starts from a random subset (80 % of ImageNet there). Every ``P`` epochs (``P = 30``, at most five
times: epochs 30, 60, ..., 150) the forgetting events of each sample of the subset since the last
swap are counted, a sample never classified correctly in that window counting as most forgotten;
the ``remove_n`` least-forgotten samples leave the subset and as many samples drawn uniformly from
those left out (not the ones just removed) come in. The counts then start afresh.

A forgetting event (Toneva et al., ICLR 2019) is a sample classified correctly at one recorded
presentation and incorrectly at its next; :class:`~dynaprune.core.statistics.LossStatistics` counts
them on the device when correctness is tracked, with a
:class:`~dynaprune.core.forgetting.ForgettingTracker`.
"""

from __future__ import annotations

import torch

from dynaprune._checks import check_count, check_fraction
from dynaprune._select import random_subset, shuffled_indices, top_k_mask
from dynaprune.core.statistics import LossStatistics
from dynaprune.policies.base import PruningPolicy, Selection

__all__ = ["OnionPolicy"]


class OnionPolicy(PruningPolicy):
    """A fixed subset that sheds its least-forgotten samples every ``period`` epochs.

    Each epoch keeps the subset trained in the previous one. At epochs ``period``,
    ``2 * period``, ..., ``max_swaps * period`` it swaps ``r = round(swap_fraction * num_keep)``
    samples (at least 1, at most the ``N - num_keep`` samples left out): the ``r`` members with the
    fewest forgetting events since the last swap leave (ties drawn at random; a member never
    classified correctly since then counts as most forgotten), and ``r`` samples drawn uniformly
    from those left out before the swap come in. The correctness counters are then reset.

    The policy holds no state. The subset is read back from the statistics: the samples trained
    in the last epoch (``seen`` at its maximum), and the coming epoch is that maximum, so it
    resumes exactly from a checkpoint. When that subset is larger than the budget (the first
    pruned epoch after full-data warm-up epochs) a uniform random part of it is kept, and a swap
    due then is skipped; when it is smaller (the first epoch, or an epoch whose samples were not
    all recorded, as with ``drop_last`` across ranks) it is filled up uniformly from the other
    samples before any swap.

    It needs per-sample correctness: the sampler then keeps 4 more bytes per sample (20 in all)
    and requires ``update(losses, correct=...)``, e.g. ``correct = logits.argmax(1) == y``.

    Args:
        period: epochs between swaps, ``>= 1``; 30 in the paper.
        swap_fraction: share of the subset replaced at each swap, in ``(0, 1]``. The reference
            code's ``remove_n`` is a count that the repository does not give; 0.2 is our default.
        max_swaps: swaps at most, ``>= 0``, or ``None`` for no limit; 5 in the paper.

    Raises:
        ValueError: for a ``period``, ``swap_fraction`` or ``max_swaps`` out of range.

    Example:
        >>> policy = OnionPolicy(period=2, swap_fraction=0.5)
        >>> stats = LossStatistics(10)
        >>> stats.track_correctness()
        >>> first = policy.select(stats, 4, torch.Generator().manual_seed(0)).indices
        >>> stats.update(first, torch.ones(4), epoch=0, correct=torch.ones(4, dtype=torch.bool))
        >>> second = policy.select(stats, 4, torch.Generator().manual_seed(1)).indices
        >>> sorted(second.tolist()) == sorted(first.tolist())   # epoch 1: the same subset
        True
    """

    trusted_selection = True

    needs_correctness = True

    def __init__(
        self, period: int = 30, swap_fraction: float = 0.2, max_swaps: int | None = 5
    ) -> None:
        self.period = check_count("period", period, 1)
        self.swap_fraction = check_fraction(
            "swap_fraction", swap_fraction, open_low=True, open_high=False
        )
        self.max_swaps = None if max_swaps is None else check_count("max_swaps", max_swaps)

    def check_attributes(self) -> None:
        name = type(self).__name__
        check_count(f"{name}.period", self.period, 1)
        check_fraction(f"{name}.swap_fraction", self.swap_fraction, open_low=True, open_high=False)
        if self.max_swaps is not None:
            check_count(f"{name}.max_swaps", self.max_swaps)

    def swaps_at(self, epoch: int) -> bool:
        """Whether the subset is swapped when ``epoch`` is planned."""
        if epoch <= 0 or epoch % self.period:
            return False
        return self.max_swaps is None or epoch // self.period <= self.max_swaps

    def select(self, stats: LossStatistics, num_keep: int, generator: torch.Generator) -> Selection:
        n = stats.num_samples
        epoch = int(stats.seen.max())  # 1 + the last epoch trained: the one being planned
        last = stats.seen == epoch
        if epoch == 0:  # nothing trained yet
            last.zero_()
        size = int(last.count_nonzero())
        if size > num_keep:
            keep = random_subset(last, size, num_keep, generator)
        else:
            keep = last | random_subset(~last, n - size, num_keep - size, generator)
        swap = min(max(1, round(self.swap_fraction * num_keep)), n - num_keep)
        if size <= num_keep and swap > 0 and self.swaps_at(epoch):
            # The members with the fewest forgetting events leave; "never learned" (inf) ranks
            # as the most forgotten. Ties at the cut are drawn with the generator.
            score = stats.forgetting_counts().neg_()
            leave = top_k_mask(score, swap, generator, None, keep)
            come = random_subset(~keep, n - num_keep, swap, generator)
            keep = (keep & ~leave) | come
            # The policy's one mutation. The sampler selects once per pruned epoch (a peek, a
            # second iteration or a resume continues the epoch's plan), and with several ranks
            # every rank selects from the same merged statistics (it merges first), so every
            # rank resets alike and the statistics stay identical.
            stats.reset_correctness()
        return Selection(shuffled_indices(keep, generator), None, shuffled=True)
