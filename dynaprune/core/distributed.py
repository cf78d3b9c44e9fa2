"""Sharding an epoch across ranks and keeping the statistics identical on every rank.

Every rank computes the same global subset (same seed, epoch and statistics) and takes the
shard ``order[rank::num_replicas]`` of it, padded by repeating the first samples or truncated
with ``drop_last``, exactly as :class:`torch.utils.data.DistributedSampler` does.

During an epoch each rank records only the losses of the samples it owns (:class:`EpochShare`):
those in its shard that are not padding. At the epoch boundary the sampler's
:class:`RankMerger` merges the ranks' statistics (:func:`all_reduce_statistics`) with one
``all_reduce`` of an int32 buffer of ``4 N + 1`` elements (``5 N + 1`` when correctness is
tracked): every rank writes the bit patterns of the statistics it updated this
epoch and zeros elsewhere. Ownership is disjoint, so each sum holds exactly one rank's bits and
the merge is exact (bit-equal), whatever the backend's summation order. Integers stay integers;
floats travel as their bits.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

from dynaprune.core.statistics import LossStatistics

__all__ = [
    "EpochShare",
    "RankMerger",
    "Sharding",
    "all_reduce_statistics",
    "resolve_replicas",
    "shard_length",
    "shard_order",
]


@dataclass(frozen=True)
class Sharding:
    """How an epoch is split across ranks, as :class:`~torch.utils.data.DistributedSampler`."""

    num_replicas: int = 1
    rank: int = 0
    drop_last: bool = False


def resolve_replicas(
    num_replicas: int | None,
    rank: int | None,
    group: dist.ProcessGroup | None = None,
    *,
    require_rank: bool = True,
) -> tuple[int, int]:
    """Return ``(num_replicas, rank)``, filling gaps from an initialised process group.

    ``group`` is the data-parallel group (default: the world). Without a process group the
    defaults are one replica, rank 0; several replicas then need an explicit ``rank`` (unless
    ``require_rank=False``, for checks made before the process group exists).

    Raises:
        ValueError: if ``num_replicas < 1``, ``rank`` is outside ``[0, num_replicas)``, or
            ``num_replicas > 1`` comes without a rank outside a process group.
    """
    for name, value in (("num_replicas", num_replicas), ("rank", rank)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    initialised = dist.is_available() and dist.is_initialized()
    if num_replicas is None:
        num_replicas = dist.get_world_size(group) if initialised else 1
    if num_replicas < 1:
        raise ValueError(f"num_replicas must be >= 1, got {num_replicas!r}")
    if rank is None:
        if not initialised and num_replicas > 1 and require_rank:
            raise ValueError(
                f"rank must be given with num_replicas={num_replicas} when torch.distributed "
                "is not initialised, got rank=None"
            )
        rank = dist.get_rank(group) if initialised else 0
    if not 0 <= rank < num_replicas:
        raise ValueError(f"rank must be in [0, {num_replicas - 1}], got {rank!r}")
    return num_replicas, rank


def shard_length(size: int, num_replicas: int, drop_last: bool) -> int:
    """Samples per rank for an epoch of ``size`` samples."""
    return size // num_replicas if drop_last else math.ceil(size / num_replicas)


def shard_order(order: Tensor, num_replicas: int, rank: int, drop_last: bool) -> tuple[Tensor, int]:
    """This rank's part of the global epoch ``order`` and how many of its entries are not padding.

    Padding entries, if any, are the shard's last ones.
    """
    size = order.numel()
    per_rank = shard_length(size, num_replicas, drop_last)
    total = per_rank * num_replicas
    if total > size:
        repeats = math.ceil((total - size) / size)
        order = torch.cat([order, order.repeat(repeats)[: total - size]])
    shard = order[rank:total:num_replicas].contiguous()
    num_valid = min(per_rank, max(0, math.ceil((size - rank) / num_replicas)))
    return shard, num_valid


class EpochShare:
    """The samples of an epoch that this rank records, and whether it recorded any since the
    ranks last merged.

    Args:
        samples: this rank's samples of the epoch, padding excluded (disjoint across ranks).
        num_samples: samples in the data set.
    """

    def __init__(self, samples: Tensor, num_samples: int) -> None:
        self.owned = torch.zeros(num_samples, dtype=torch.bool, device=samples.device)
        self.owned[samples] = True
        # Set by each matched batch and cleared by a merge: every rank matches as many batches
        # (data-parallel training), so every rank agrees on whether the collective runs.
        self.pending = False

    def owns(self, indices: Tensor) -> Tensor:
        """Whether this rank records each of ``indices``."""
        return self.owned[indices]

    def recorded(self) -> None:
        """Note that a batch of this epoch was matched on this rank."""
        self.pending = True

    def to(self, device: torch.device) -> None:
        self.owned = self.owned.to(device)


class RankMerger:
    """Merges the ranks' statistics exactly (:func:`all_reduce_statistics`), and keeps what
    that needs from one merge to the next: the non-finite count already summed over the ranks,
    so that each rank adds only what it skipped since.

    Args:
        group: the data-parallel process group (default: the world).
    """

    def __init__(self, group: dist.ProcessGroup | None = None) -> None:
        self.group = group
        self._summed: Tensor | None = None  # stats.nonfinite as known to every rank
        self._warned = False

    def rebase(self, stats: LossStatistics) -> None:
        """After the non-finite count was reset or restored alike on every rank (at an epoch
        boundary, or from a checkpoint): what it holds now is already known to every rank."""
        self._summed = stats.nonfinite.clone()

    def merge(
        self, stats: LossStatistics, share: EpochShare, epoch: int, num_replicas: int
    ) -> None:
        """Merge ``epoch``'s updates if this rank recorded any since the last merge (a
        collective then: every rank calls it alike). Without an initialised process group it
        warns, once, that ranks keep apart statistics.

        Raises:
            ValueError: if the group's size differs from ``num_replicas``: the sums would mix
                the wrong ranks.
        """
        if not share.pending:
            return
        share.pending = False
        if not (dist.is_available() and dist.is_initialized()):
            if not self._warned:
                self._warned = True
                warnings.warn(
                    f"num_replicas={num_replicas} but torch.distributed is not initialised: "
                    "each rank keeps its own statistics, and ranks may choose different subsets",
                    RuntimeWarning,
                    stacklevel=4,
                )
            return
        world = dist.get_world_size(self.group)
        if world != num_replicas:
            raise ValueError(
                f"num_replicas={num_replicas} but the process group has {world} ranks: "
                "pass process_group= the data-parallel group whose ranks share each epoch"
            )
        summed = self._summed
        summed = torch.zeros_like(stats.nonfinite) if summed is None else summed.to(stats.device)
        all_reduce_statistics(stats, share.owned, epoch, summed, self.group)
        self._summed = stats.nonfinite.clone()


@torch.no_grad()
def all_reduce_statistics(
    stats: LossStatistics,
    owned: Tensor,
    epoch: int,
    summed: Tensor,
    group: dist.ProcessGroup | None = None,
) -> None:
    """Merge the ranks' updates of ``epoch`` into identical statistics on every rank.

    A collective: every rank of ``group`` must call it with the same ``epoch``. The ranks of
    ``group`` must be exactly the ranks that share the epoch (``num_replicas`` of them).

    Args:
        stats: this rank's statistics.
        owned: bool mask of the samples this rank owned in ``epoch`` (disjoint across ranks).
        epoch: the epoch whose updates are merged.
        summed: the part of ``stats.nonfinite`` already summed over all ranks (equal on every
            rank); each rank adds what it counted beyond it.
        group: the process group (default: the world).
    """
    n = stats.num_samples
    touched = owned & (stats.seen == epoch + 1)
    tensors = stats.tensors()  # correct, where tracked, is recorded only with a loss: touched
    sources = [t.view(torch.int32) if t.is_floating_point() else t for t in tensors.values()]
    rows = len(sources)
    buf = torch.zeros(rows * n + 1, dtype=torch.int32, device=stats.device)
    parts = buf[: rows * n].view(rows, n)
    untouched = ~touched
    for row, src in zip(parts, sources, strict=True):
        row.copy_(src).masked_fill_(untouched, 0)
    # Non-finite counts: each rank adds what it skipped since the last merge.
    buf[rows * n] = (stats.nonfinite - summed).to(torch.int32)
    dist.all_reduce(buf, op=dist.ReduceOp.SUM, group=group)
    values = {
        name: part.view(like.dtype) if like.is_floating_point() else part
        for (name, like), part in zip(tensors.items(), parts, strict=True)
    }
    merged = values["seen"] == epoch + 1
    stats.take(merged, values, summed + buf[rows * n].to(torch.int64))
