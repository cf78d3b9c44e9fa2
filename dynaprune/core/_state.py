"""Writing a :class:`~dynaprune.DynamicPruningSampler` checkpoint and reading it back, validated.

The sampler's state (:func:`sampler_state`) has a small header (version, data set size, epoch,
ranks, device) around the statistics' state and the current epoch's plan; each part validates
itself (:meth:`LossStatistics.check_state_dict`, :func:`restore_plan`). Everything is
checked before anything is changed, so a refused state leaves the sampler as it was.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from dynaprune._checks import (
    check_bool,
    check_count,
    check_index_tensor,
    check_plan_fits,
    check_weight_tensor,
    resolve_device,
)
from dynaprune.distributed import Sharding, shard_length
from dynaprune.plan import EpochPlan

if TYPE_CHECKING:
    from dynaprune.sampler import DynamicPruningSampler

__all__ = [
    "STATE_VERSION",
    "RestoredState",
    "load_sampler_state",
    "restore_plan",
    "sampler_state",
]

STATE_VERSION = 1


def sampler_state(sampler: DynamicPruningSampler, plan: EpochPlan | None) -> dict[str, Any]:
    """The checkpoint of ``sampler``, whose current epoch's plan is ``plan``.

    It saves the statistics as they are: the sampler merges the ranks' statistics first.
    """
    return {
        "version": STATE_VERSION,
        "num_samples": sampler.num_samples,
        "keep_ratio": sampler.keep_ratio,
        "seed": sampler.seed,
        "policy": repr(sampler.policy),
        "num_replicas": sampler.num_replicas,
        "device_type": sampler.stats.device.type,
        "epoch": sampler.epoch,
        "stats": sampler.stats.state_dict(),
        "plan": None if plan is None else plan.state_dict(),
    }


@dataclass
class RestoredState:
    """A validated sampler state, ready to be applied."""

    epoch: int
    stats: Mapping[str, Any]
    plan: EpochPlan | None
    device: torch.device


def load_sampler_state(
    sampler: DynamicPruningSampler, state: Any, *, device_fixed: bool
) -> RestoredState:
    """Validate ``state`` for ``sampler`` and build its plan on the device it will live on.

    Raises:
        TypeError: if ``state`` is not a mapping, or a field is of the wrong kind.
        ValueError: for a newer version, another data set size, impossible values, or a
            mid-epoch plan that does not fit this sampler.
    """
    if not isinstance(state, Mapping):
        raise TypeError(f"state_dict must be a mapping, got {type(state).__name__}")
    for key in ("version", "num_samples", "stats"):
        if key not in state:
            raise ValueError(
                f"state_dict lacks {key!r}: it is not a DynamicPruningSampler.state_dict()"
            )
    version = check_count("state_dict['version']", state["version"], 1)
    if version > STATE_VERSION:
        raise ValueError(
            f"state_dict['version'] is {version}, newer than this dynaprune's {STATE_VERSION}: "
            "load it with the dynaprune version that saved it"
        )
    n = state["num_samples"]
    if n != sampler.num_samples or isinstance(n, bool):
        raise ValueError(
            f"state_dict is for a data set of {n!r} samples, but this sampler has "
            f"{sampler.num_samples}"
        )
    epoch = check_count("state_dict['epoch']", state.get("epoch", 0))
    replicas = state.get("num_replicas", sampler.num_replicas)
    check_count("state_dict['num_replicas']", replicas, 1)
    device = _target_device(state.get("device_type", "cpu"), sampler.stats.device, device_fixed)
    sampler.stats.check_state_dict(state["stats"])
    plan = None
    plan_state = state.get("plan")
    if plan_state is not None:
        if isinstance(plan_state, Mapping) and "num_replicas" not in plan_state:
            plan_state = {**plan_state, "num_replicas": replicas}  # states from before 0.1.1
        plan = restore_plan(
            plan_state,
            num_samples=sampler.num_samples,
            sharding=Sharding(sampler.num_replicas, sampler.rank, sampler.drop_last),
            device=device,
            epoch_size=sampler.epoch_size,
            policy=type(sampler.policy).__name__,
        )
    return RestoredState(epoch, state["stats"], plan, device)


def _target_device(saved: Any, current: torch.device, fixed: bool) -> torch.device:
    """Where the statistics go: back to a saved CUDA device when this sampler's is not fixed,
    since the random draws of the next epochs depend on the device's generator."""
    if not isinstance(saved, str):
        raise TypeError(f"state_dict['device_type'] must be a string, got {saved!r}")
    if fixed or saved == current.type:
        return current
    if saved == "cuda" and torch.cuda.is_available():
        return resolve_device("cuda")
    warnings.warn(
        f"state_dict was saved with statistics on {saved}, which is not available; continuing "
        f"on {current} draws other subsets",
        RuntimeWarning,
        stacklevel=4,
    )
    return current


def restore_plan(
    state: Any,
    *,
    num_samples: int,
    sharding: Sharding,
    device: torch.device,
    epoch_size: Callable[[int], int] | None = None,
    policy: str | None = None,
) -> EpochPlan:
    """Restore :meth:`EpochPlan.state_dict` output, validated.

    A plan that stopped mid-epoch continues after its last matched batch, and must fit
    this configuration: as many samples (``epoch_size(epoch)``), ranks, the same ``drop_last``
    and, for a pruned epoch, the same policy class (``policy``). A finished plan only
    needs to be well-formed.

    Raises:
        TypeError: if ``state`` or one of its fields is not what :meth:`state_dict` writes.
        ValueError: for impossible values, or a mid-epoch plan that does not fit.
    """
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
        check_plan_fits(epoch, order.numel(), expected, (replicas, drop_last), sharding)
        if saved_policy is not None and saved_policy != policy:
            raise ValueError(
                f"{where} stopped mid-way through epoch {epoch}, planned by {saved_policy}, "
                f"but this sampler's policy is {policy}: resume mid-epoch with the same "
                "policy (or at an epoch boundary)"
            )
    plan = EpochPlan(
        epoch,
        order.to(device),
        None if weights is None else weights.to(device),
        num_samples=num_samples,
        sharding=sharding,
        policy=saved_policy if isinstance(saved_policy, str) else None,
    )
    plan.cursor = cursor if cursor < saved_length else plan.shard.numel()
    plan.restored = True
    return plan
