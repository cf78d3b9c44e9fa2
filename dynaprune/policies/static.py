"""A static pruning policy: the same subset every epoch, from a precomputed score or index set.

Static data pruning (Toneva et al., ICLR 2019; Paul et al., NeurIPS 2021; Sener & Savarese,
ICLR 2018; Garg & Roy, CVPR 2023) scores every sample once, before training, and trains on the
top of the ranking. :class:`StaticPolicy` plugs such a ranking into
:class:`~dynaprune.DynamicPruningSampler`, so static baselines run through the same sampler,
budget, warm-up and annealing schedule as the dynamic policies. Scores come from
:mod:`dynaprune.scores` or :mod:`dynaprune.coreset`, or from anywhere else.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dynaprune._checks import check_count, check_vector
from dynaprune._select import shuffled_indices
from dynaprune.core.statistics import LossStatistics
from dynaprune.policies.base import PruningPolicy, Selection

__all__ = ["StaticPolicy", "class_quotas"]


def class_quotas(class_sizes: Tensor, num_keep: int) -> Tensor:
    """Split ``num_keep`` over classes in proportion to their sizes, summing exactly to it.

    Each class gets the floor of its share ``num_keep * n_c / N``; the samples left over go one
    each to the classes with the largest remainders (Hamilton's method), ties to the lower class.

    Args:
        class_sizes: int64 number of samples of each class, shape ``(C,)``.
        num_keep: the total budget, ``0 <= num_keep <= class_sizes.sum()``.

    Example:
        >>> class_quotas(torch.tensor([5, 3, 2]), 5).tolist()
        [3, 1, 1]
    """
    sizes = check_vector("class_sizes", class_sizes, floating=False).to(torch.int64)
    if int(sizes.min()) < 0:
        raise ValueError(f"class_sizes must be >= 0, got {int(sizes.min())}")
    n = int(sizes.sum())
    check_count("num_keep", num_keep, 0)
    if num_keep > n:
        raise ValueError(f"num_keep must be <= the number of samples {n}, got {num_keep}")
    share = sizes * num_keep
    quota, remainder = share // n, share % n
    left = num_keep - int(quota.sum())
    # Stable sort: among equal remainders, lower classes come first.
    first = torch.sort(remainder, descending=True, stable=True).indices[:left]
    quota[first] += 1
    return quota


class StaticPolicy(PruningPolicy):
    """Keep the same subset every epoch: the top ``num_keep`` scores, or a given index set.

    Every epoch returns the same set in a new random order (shuffled by the epoch's generator).

    Args:
        scores: one score per sample, higher kept first (float; ``inf`` allowed, NaN not).
        indices: the kept set itself, exactly ``num_keep`` distinct indices. Give either
            ``scores`` or ``indices``. To keep a prefix of an ordered list (a coreset order),
            turn it into scores with :func:`dynaprune.coreset.scores_from_order`.
        labels: one integer class label per sample; with ``class_balanced`` every class keeps
            its proportional share of the budget (:func:`class_quotas`), its highest scores.
        class_balanced: split the budget over the classes of ``labels``.
        seed: seeds the generator that breaks ties between equal scores at the budget
            boundary; ties are broken the same way every epoch, so the set never changes.

    Raises:
        ValueError / TypeError: at construction for inconsistent arguments, and in
            :meth:`select` when the lengths or the index set do not fit the data set or budget.

    Example:
        >>> policy = StaticPolicy(torch.tensor([0.1, 0.9, 0.5, 0.7]))
        >>> stats = LossStatistics(4)
        >>> sel = policy.select(stats, 2, torch.Generator().manual_seed(0))
        >>> sorted(sel.indices.tolist())
        [1, 3]
    """

    trusted_selection = True

    name = "static"

    def __init__(
        self,
        scores: Tensor | None = None,
        *,
        indices: Tensor | None = None,
        labels: Tensor | None = None,
        class_balanced: bool = False,
        seed: int = 0,
    ) -> None:
        if (scores is None) == (indices is None):
            raise ValueError("give exactly one of scores or indices")
        if scores is not None:
            scores = check_vector("scores", scores, floating=True).detach()
            if bool(scores.isnan().any()):
                raise ValueError("scores must not contain NaN")
        if indices is not None:
            indices = check_vector("indices", indices, floating=False).detach().to(torch.int64)
            if int(indices.min()) < 0:
                raise ValueError(f"indices must be >= 0, got {int(indices.min())}")
            if indices.unique().numel() != indices.numel():
                raise ValueError("indices must be distinct")
        if not isinstance(class_balanced, bool):
            raise TypeError(f"class_balanced must be a bool, got {class_balanced!r}")
        if class_balanced and labels is None:
            raise ValueError("class_balanced=True needs labels")
        if class_balanced and indices is not None:
            raise ValueError("class_balanced=True needs scores, not an index set")
        if labels is not None:
            labels = check_vector("labels", labels, floating=False).detach()
            if scores is not None and labels.numel() != scores.numel():
                raise ValueError(
                    f"labels has {labels.numel()} entries but scores has {scores.numel()}"
                )
        self.scores = scores
        self.indices = indices
        self.labels = labels
        self.class_balanced = class_balanced
        self.seed = check_count("seed", seed, 0)
        self._cache: tuple[int, torch.device, Tensor] | None = None

    def check_attributes(self) -> None:
        check_count(f"{type(self).__name__}.seed", self.seed, 0)

    def __repr__(self) -> str:
        what = "indices" if self.scores is None else "scores"
        return (
            f"StaticPolicy({what}=<{self._source.numel()}>, "
            f"class_balanced={self.class_balanced}, seed={self.seed})"
        )

    @property
    def _source(self) -> Tensor:
        return self.scores if self.scores is not None else self.indices  # type: ignore[return-value]

    def select(self, stats: LossStatistics, num_keep: int, generator: torch.Generator) -> Selection:
        cache = self._cache
        if cache is None or cache[0] != num_keep or cache[1] != stats.device:
            self._cache = cache = (num_keep, stats.device, self._kept(stats, num_keep))
        return Selection(shuffled_indices(cache[2], generator), None, shuffled=True)

    def _kept(self, stats: LossStatistics, num_keep: int) -> Tensor:
        """The kept set as a bool mask on the statistics' device (the same every epoch)."""
        n, device = stats.num_samples, stats.device
        if self.indices is not None:
            self.indices = self.indices.to(device)
            if self.indices.numel() != num_keep:
                raise ValueError(
                    f"indices holds {self.indices.numel()} samples but the budget num_keep is "
                    f"{num_keep}; give exactly num_keep indices, or scores"
                )
            if int(self.indices.max()) >= n:
                raise ValueError(
                    f"indices must be < the data set size {n}, got {int(self.indices.max())}"
                )
            mask = torch.zeros(n, dtype=torch.bool, device=device)
            return mask.index_fill_(0, self.indices, True)
        assert self.scores is not None
        if self.scores.numel() != n:
            raise ValueError(f"scores has {self.scores.numel()} entries, but the data set has {n}")
        self.scores = self.scores.to(device)
        if self.labels is not None:
            self.labels = self.labels.to(device)
        # Rank once: random order (the tie-break), then stable by score, then stable by class.
        tie_break = torch.Generator(device=device).manual_seed(self.seed)
        order = torch.randperm(n, generator=tie_break, device=device)
        order = order[torch.sort(self.scores[order], descending=True, stable=True).indices]
        if not self.class_balanced:
            mask = torch.zeros(n, dtype=torch.bool, device=device)
            return mask.index_fill_(0, order[:num_keep], True)
        assert self.labels is not None
        classes = torch.unique(self.labels, return_inverse=True)[1]
        order = order[torch.sort(classes[order], stable=True).indices]
        sizes = torch.bincount(classes)
        quota = class_quotas(sizes, num_keep)
        start = torch.cumsum(sizes, 0) - sizes
        # Position of each ranked sample within its class, kept while below its class's quota.
        cls = classes[order]
        position = torch.arange(n, device=device) - start[cls]
        mask = torch.zeros(n, dtype=torch.bool, device=device)
        return mask.index_fill_(0, order[position < quota[cls]], True)
