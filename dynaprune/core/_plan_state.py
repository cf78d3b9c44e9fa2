"""Reading an :class:`~dynaprune.core.plan.EpochPlan` back from a checkpoint, validated."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from torch import Tensor

from dynaprune._checks import check_bool, check_count, check_index_tensor, check_weight_tensor
from dynaprune.core.distributed import Sharding, shard_length

__all__ = ["SavedPlan", "check_plan_state"]


class SavedPlan(NamedTuple):
    """A checkpoint's plan, validated (on the CPU)."""

    epoch: int
    order: Tensor  #: int64 indices
    weights: Tensor | None
    cursor: int  #: shard entries matched to losses
    mid_epoch: bool  #: whether the cursor stopped before the end of the shard
    policy: str | None  #: class name of the policy that planned it


def check_plan_state(
    state: Any,
    *,
    num_samples: int,
    sharding: Sharding,
    epoch_size: Callable[[int], int] | None,
    policy: str | None,
) -> SavedPlan:
    """:meth:`EpochPlan.state_dict` output, validated for this sampler: see
    :meth:`EpochPlan.from_state_dict`."""
    where = "state_dict['plan']"
    if not isinstance(state, Mapping):
        raise TypeError(f"{where} must be a mapping or None, got {type(state).__name__}")
    for key in ("epoch", "order"):
        if key not in state:
            raise ValueError(f"{where} lacks {key!r}")
    epoch = check_count(f"{where}['epoch']", state["epoch"])
    order = check_index_tensor(f"{where}['order']", state["order"], num_samples)
    weights = state.get("weights")
    if weights is not None:
        weights = check_weight_tensor(f"{where}['weights']", weights, order.numel())
    cursor = check_count(f"{where}['cursor']", state.get("cursor", 0))
    replicas = check_count(
        f"{where}['num_replicas']", state.get("num_replicas", sharding.num_replicas), 1
    )
    drop_last = check_bool(f"{where}['drop_last']", state.get("drop_last", sharding.drop_last))
    saved_length = shard_length(order.numel(), replicas, drop_last)
    if cursor > saved_length:
        raise ValueError(
            f"{where}['cursor'] must be in [0, {saved_length}] for an epoch of "
            f"{order.numel()} samples on {replicas} ranks, got {cursor}"
        )
    saved_policy = state.get("policy")
    if cursor < saved_length:  # stopped mid-epoch: it must continue as it was planned
        expected = None if epoch_size is None else epoch_size(epoch)
        _check_fits(epoch, order.numel(), expected, (replicas, drop_last), sharding)
        if saved_policy is not None and saved_policy != policy:
            raise ValueError(
                f"{where} stopped mid-way through epoch {epoch}, planned by {saved_policy}, "
                f"but this sampler's policy is {policy}: resume mid-epoch with the same "
                "policy (or at an epoch boundary)"
            )
    return SavedPlan(
        epoch,
        order,
        weights,
        cursor,
        cursor < saved_length,
        saved_policy if isinstance(saved_policy, str) else None,
    )


def _check_fits(
    epoch: int, size: int, expected: int | None, saved: tuple[int, bool], sharding: Sharding
) -> None:
    """A mid-epoch checkpoint's plan of ``size`` samples, saved sharded over ``saved``
    (``num_replicas``, ``drop_last``), fits this sampler's ``expected`` size and ``sharding``."""
    replicas, drop_last = saved
    if expected is not None and size != expected:
        raise ValueError(
            f"state_dict stopped mid-way through epoch {epoch} of {size} samples, but this "
            f"sampler's epoch {epoch} has {expected}: resume with the same keep_ratio, "
            "warmup_epochs and anneal_epochs"
        )
    if replicas != sharding.num_replicas:
        raise ValueError(
            f"state_dict stopped mid-epoch with num_replicas={replicas}, but this sampler has "
            f"{sharding.num_replicas}; resume mid-epoch on as many ranks"
        )
    if drop_last != sharding.drop_last:
        raise ValueError(
            f"state_dict stopped mid-epoch with drop_last={drop_last}, but this sampler has "
            f"drop_last={sharding.drop_last}; resume mid-epoch with the same drop_last"
        )
