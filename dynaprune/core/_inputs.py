"""The checks of :class:`~dynaprune.DynamicPruningSampler`'s arguments and of each batch it is
given: the data set, the process group, and the losses' indices, correctness and device."""

from __future__ import annotations

import operator
from collections.abc import Sized
from typing import Any

import torch
import torch.distributed as dist

from dynaprune._checks import check_index_range, check_not_meta
from dynaprune.policies.base import PruningPolicy

__all__ = ["check_correct", "check_indices", "check_process_group", "must_follow", "resolve_length"]


def resolve_length(data_source: Any) -> int:
    """The number of samples of a sized data set, or an integer length given directly."""
    if not isinstance(data_source, bool):
        if isinstance(data_source, torch.Tensor) and data_source.ndim == 0:
            if not data_source.is_floating_point() and data_source.dtype != torch.bool:
                return _positive_length(int(data_source))
        else:
            try:
                return _positive_length(operator.index(data_source))  # int, numpy integers
            except TypeError:
                pass
            if isinstance(data_source, Sized):
                return _positive_length(len(data_source))
    raise TypeError(
        "data_source must be a sized data set or its length, "
        f"got {type(data_source).__name__} {_short_repr(data_source)}"
    )


def _positive_length(n: int) -> int:
    if n < 1:
        raise ValueError(f"data_source must hold at least one sample, got length {n}")
    return n


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_process_group(group: Any) -> dist.ProcessGroup | None:
    if group is not None and not (dist.is_available() and isinstance(group, dist.ProcessGroup)):
        raise TypeError(
            "process_group must be a torch.distributed.ProcessGroup or None, "
            f"got {type(group).__name__} {_short_repr(group)}"
        )
    return group


def must_follow(device: torch.device, current: torch.device, *, fixed: bool) -> bool:
    """Whether statistics on ``current`` must move to the ``device`` of new losses; an error if
    their device is ``fixed``. An unindexed device matches any index of its type."""
    index, here = device.index, current.index
    if device.type == current.type and (index is None or here is None or index == here):
        return False
    if fixed:
        raise ValueError(
            f"losses are on {device}, but the statistics live on {current}; "
            "pass losses from one device (or move the sampler with .to(device))"
        )
    return True


def check_correct(correct: Any, losses: torch.Tensor, policy: PruningPolicy) -> torch.Tensor | None:
    """``correct`` as one bool per loss on the losses' device; ``None`` where it is not given and
    ``policy`` does not need it."""
    if correct is None:
        if policy.needs_correctness:
            raise ValueError(
                f"correct is required by {policy!r}: pass update(losses, correct=...) with one "
                "bool per sample, e.g. logits.argmax(1) == targets"
            )
        return None
    if not isinstance(correct, torch.Tensor):
        raise TypeError(f"correct must be a bool torch.Tensor, got {type(correct).__name__}")
    if correct.dtype != torch.bool:
        raise TypeError(
            f"correct must have dtype torch.bool (e.g. logits.argmax(1) == targets), "
            f"got {correct.dtype}"
        )
    if correct.shape != losses.shape:
        raise ValueError(
            f"correct must have shape {tuple(losses.shape)} like losses, got {tuple(correct.shape)}"
        )
    check_not_meta("correct", correct)
    return correct.to(losses.device, non_blocking=correct.device.type == "cpu")


def check_indices(indices: Any, size: int, num_samples: int, device: torch.device) -> torch.Tensor:
    """``indices`` as ``size`` int64 sample indices on ``device``.

    On the CPU the range is checked at once; on an accelerator it is asserted asynchronously,
    since checking there would need a host sync.
    """
    idx = torch.as_tensor(indices)
    if idx.is_floating_point() or idx.is_complex() or idx.dtype == torch.bool:
        raise TypeError(f"indices must be an integer tensor, got dtype {idx.dtype}")
    if idx.shape != (size,):
        raise ValueError(f"indices must have shape ({size},) like losses, got {tuple(idx.shape)}")
    check_not_meta("indices", idx)
    check_index_range(idx, num_samples)
    # Asynchronous only from the host: a device-to-host copy must finish before use.
    host = idx.device.type == "cpu"
    return idx.to(device, torch.int64, non_blocking=host)
