"""Sharding an epoch across ranks and keeping the statistics identical on every rank.

Every rank computes the same global subset (same seed, epoch and statistics) and takes the
shard ``order[rank::num_replicas]`` of it, padded by repeating the first samples or truncated
with ``drop_last``, exactly as :class:`torch.utils.data.DistributedSampler` does.

During an epoch each rank records only the losses of the samples it owns: those in its shard
that are not padding. At the epoch boundary :func:`all_reduce_statistics` merges the ranks'
statistics with one ``all_reduce`` of an int32 buffer of ``4 N + 1`` elements (``5 N + 1`` when
correctness is tracked): every rank writes the bit patterns of the statistics it updated this
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
    "Sharding",
    "all_reduce_statistics",
    "merge_epoch",
    "resolve_replicas",
    "shard_length",
    "shard_order",
    "warn_unmerged",
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


@torch.no_grad()
def all_reduce_statistics(
    stats: LossStatistics, owned: Tensor, epoch: int, group: dist.ProcessGroup | None = None
) -> None:
    """Merge the ranks' updates of ``epoch`` into identical statistics on every rank.

    A collective: every rank of ``group`` must call it with the same ``epoch``. The ranks of
    ``group`` must be exactly the ranks that share the epoch (``num_replicas`` of them).

    Args:
        stats: this rank's statistics.
        owned: bool mask of the samples this rank owned in ``epoch`` (disjoint across ranks).
        epoch: the epoch whose updates are merged.
        group: the process group (default: the world).
    """
    n = stats.num_samples
    touched = owned & (stats.seen == epoch + 1)
    sources = [stats.mean.view(torch.int32), stats.var.view(torch.int32), stats.count, stats.seen]
    if stats.correct is not None:  # recorded only with a loss, so only for touched samples
        sources.append(stats.correct)
    rows = len(sources)
    buf = torch.zeros(rows * n + 1, dtype=torch.int32, device=stats.device)
    parts = buf[: rows * n].view(rows, n)
    untouched = ~touched
    for row, src in zip(parts, sources, strict=True):
        row.copy_(src).masked_fill_(untouched, 0)
    # Non-finite counts: each rank adds what it skipped since the last merge.
    buf[rows * n] = (stats.nonfinite - stats.nonfinite_merged).to(torch.int32)
    dist.all_reduce(buf, op=dist.ReduceOp.SUM, group=group)
    merged = parts[3] == epoch + 1
    values = [parts[0].view(torch.float32), parts[1].view(torch.float32), *parts[2:]]
    total = stats.nonfinite_merged + buf[rows * n].to(torch.int64)
    stats.take_merged(merged, values, total)


def merge_epoch(
    stats: LossStatistics,
    owned: Tensor,
    epoch: int,
    num_replicas: int,
    group: dist.ProcessGroup | None = None,
) -> bool:
    """:func:`all_reduce_statistics` after checking that ``group`` has ``num_replicas`` ranks.

    Returns:
        Whether it merged: without an initialised process group it does nothing.

    Raises:
        ValueError: if the group's size differs: the sums would mix the wrong ranks.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return False
    world = dist.get_world_size(group)
    if world != num_replicas:
        raise ValueError(
            f"num_replicas={num_replicas} but the process group has {world} ranks: "
            "pass process_group= the data-parallel group whose ranks share each epoch"
        )
    all_reduce_statistics(stats, owned, epoch, group)
    return True


def warn_unmerged(num_replicas: int, stacklevel: int) -> None:
    """Warn that ranks without a process group keep apart statistics (and may diverge)."""
    warnings.warn(
        f"num_replicas={num_replicas} but torch.distributed is not initialised: "
        "each rank keeps its own statistics, and ranks may choose different subsets",
        RuntimeWarning,
        stacklevel=stacklevel + 1,
    )
