"""A :class:`~dynaprune.DynamicPruningSampler` checkpoint, written and read back validated.

The sampler's state (:meth:`~dynaprune.DynamicPruningSampler.state_dict`, written by
:func:`sampler_state`) has a small header (version, data set size, epoch, ranks, device)
around the statistics' state and the current epoch's plan. :func:`check_sampler_state` checks
the header and restores the plan
(:meth:`EpochPlan.from_state_dict`) without changing anything; the statistics then validate
and load their own part (:meth:`LossStatistics.load_state_dict`), all or nothing, before the
sampler takes the rest.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from dynaprune._checks import check_count, resolve_device
from dynaprune.core.distributed import Sharding
from dynaprune.core.plan import EpochPlan
from dynaprune.core.statistics import LossStatistics
from dynaprune.policies.base import PruningPolicy

__all__ = ["STATE_VERSION", "RestoredState", "check_sampler_state", "sampler_state"]

STATE_VERSION = 1


def sampler_state(
    *,
    num_samples: int,
    keep_ratio: float,
    seed: int,
    policy: PruningPolicy,
    num_replicas: int,
    epoch: int,
    stats: LossStatistics,
    plan: EpochPlan | None,
) -> dict[str, Any]:
    """The state that :func:`check_sampler_state` reads back: the header (with the sampler's
    configuration, for the record) around the statistics' and the plan's own states."""
    return {
        "version": STATE_VERSION,
        "num_samples": num_samples,
        "keep_ratio": keep_ratio,
        "seed": seed,
        "policy": repr(policy),
        "num_replicas": num_replicas,
        "device_type": stats.device.type,
        "epoch": epoch,
        "stats": stats.state_dict(),
        "plan": None if plan is None else plan.state_dict(),
    }


@dataclass
class RestoredState:
    """A validated sampler state but for its statistics, ready to be applied."""

    epoch: int
    plan: EpochPlan | None
    device: torch.device


def check_sampler_state(
    state: Any,
    *,
    num_samples: int,
    sharding: Sharding,
    device: torch.device,
    device_fixed: bool,
    epoch_size: Callable[[int], int],
    policy: str,
) -> RestoredState:
    """Validate ``state`` for a sampler of ``num_samples`` samples whose statistics live on
    ``device``, and build its plan on the device it will live on (the statistics' state,
    ``state["stats"]``, is left to :meth:`LossStatistics.load_state_dict`).

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
    if n != num_samples or isinstance(n, bool):
        raise ValueError(
            f"state_dict is for a data set of {n!r} samples, but this sampler has {num_samples}"
        )
    epoch = check_count("state_dict['epoch']", state.get("epoch", 0))
    replicas = state.get("num_replicas", sharding.num_replicas)
    check_count("state_dict['num_replicas']", replicas, 1)
    target = _target_device(state.get("device_type", "cpu"), device, device_fixed)
    plan = None
    plan_state = state.get("plan")
    if plan_state is not None:
        if isinstance(plan_state, Mapping) and "num_replicas" not in plan_state:
            plan_state = {**plan_state, "num_replicas": replicas}  # states from before 0.1.1
        plan = EpochPlan.from_state_dict(
            plan_state,
            num_samples=num_samples,
            sharding=sharding,
            device=target,
            epoch_size=epoch_size,
            policy=policy,
        )
    return RestoredState(epoch, plan, target)


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
