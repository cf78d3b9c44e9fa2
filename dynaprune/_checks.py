"""Argument checks shared by the sampler, its schedule, its checkpoints and the static scores.

One rule per kind of argument, so that a check says the same thing wherever it runs: a value of
the wrong kind of number, or out of range, is a ``ValueError``; an object of the wrong kind
altogether (a data set, a policy, a process group, a device) is a ``TypeError``. Every message
names the argument and the value.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sized
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import Tensor

from dynaprune.policies import PruningPolicy, Selection, make_policy
from dynaprune.statistics import check_index_range

if TYPE_CHECKING:
    from dynaprune.distributed import Sharding

__all__ = [
    "check_bool",
    "check_choice",
    "check_correct",
    "check_count",
    "check_fraction",
    "check_index_tensor",
    "check_indices",
    "check_losses",
    "check_plan_fits",
    "check_positive_float",
    "check_process_group",
    "check_selection",
    "check_vector",
    "check_weight_tensor",
    "must_follow",
    "resolve_device",
    "resolve_length",
    "resolve_policy",
]


def check_count(name: str, value: Any, minimum: int = 0) -> int:
    """``value`` if it is an ``int`` (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be a bool, got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``; the message lists them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value  # type: ignore[no-any-return]


def check_fraction(name: str, value: Any, *, open_low: bool, open_high: bool) -> float:
    """``value`` as a float if it is a real number in the interval (bounds 0 and 1)."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    ok = ok and (value > 0.0 if open_low else value >= 0.0)
    ok = ok and (value < 1.0 if open_high else value <= 1.0)
    if not ok:
        interval = f"{'(' if open_low else '['}0, 1{')' if open_high else ']'}"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return float(value)


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


def resolve_policy(policy: Any) -> PruningPolicy:
    """A policy object from a name or an instance; a class is refused with a hint."""
    if isinstance(policy, type) and issubclass(policy, PruningPolicy):
        raise TypeError(
            f"policy must be a PruningPolicy instance or a name, got the class "
            f"{policy.__name__}; pass {policy.__name__}()"
        )
    return make_policy(policy)


def check_process_group(group: Any) -> dist.ProcessGroup | None:
    if group is not None and not (dist.is_available() and isinstance(group, dist.ProcessGroup)):
        raise TypeError(
            "process_group must be a torch.distributed.ProcessGroup or None, "
            f"got {type(group).__name__} {_short_repr(group)}"
        )
    return group


def resolve_device(device: Any) -> torch.device:
    """A concrete device (``cuda`` gets its current index); CPU for ``None``."""
    if device is None:
        return torch.device("cpu")
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a torch.device, a string or None, got {device!r}")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"device {device!r} is not a valid device: {error}") from None
    if resolved.type == "meta":
        raise ValueError(
            f"device={device!r}: the meta device holds no values, so the statistics cannot live "
            "there; pass a real device"
        )
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} but CUDA is not available on this machine")
        count = torch.cuda.device_count()
        if resolved.index is None:
            resolved = torch.device("cuda", torch.cuda.current_device())
        elif resolved.index >= count:
            raise ValueError(f"device={device!r} but this machine has {count} CUDA devices")
    return resolved


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


def check_losses(losses: Any) -> torch.Tensor:
    if not isinstance(losses, torch.Tensor):
        raise TypeError(f"losses must be a torch.Tensor, got {type(losses).__name__}")
    if losses.ndim != 1 or not losses.is_floating_point() or losses.numel() == 0:
        raise ValueError(
            "losses must be a non-empty 1-D floating tensor of per-sample losses "
            f"(reduction='none'), got shape {tuple(losses.shape)} and dtype {losses.dtype}"
        )
    _check_not_meta("losses", losses)
    return losses


def _check_not_meta(name: str, value: torch.Tensor) -> None:
    """A tensor on the meta device has a shape but no values: nothing to record."""
    if value.device.type == "meta":
        raise ValueError(
            f"{name} are on the meta device, which holds no values; pass {name} computed on a "
            "real device (the statistics stay where they are)"
        )


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
    _check_not_meta("correct", correct)
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
    _check_not_meta("indices", idx)
    check_index_range(idx, num_samples)
    # Asynchronous only from the host: a device-to-host copy must finish before use.
    host = idx.device.type == "cpu"
    return idx.to(device, torch.int64, non_blocking=host)


def check_selection(
    selection: Any, policy: PruningPolicy, num_keep: int, n: int, device: torch.device, full: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A policy's ``(indices, weights)``, checked (``full``: also values, which costs a pass)."""
    if not isinstance(selection, Selection):
        got = type(selection).__name__
        raise TypeError(f"{policy!r}.select must return a Selection, got {got}")
    order, weights = selection.indices, selection.weights
    where = f"{policy!r}.select"
    if not isinstance(order, torch.Tensor) or order.ndim != 1 or order.is_floating_point():
        raise TypeError(f"{where} must return 1-D integer indices, got {_describe(order)}")
    if order.numel() != num_keep:
        raise ValueError(f"{where} returned {order.numel()} indices, expected {num_keep}")
    if order.device != device:
        raise ValueError(f"{where} returned indices on {order.device}, expected {device}")
    if weights is not None:
        if not isinstance(weights, torch.Tensor) or not weights.is_floating_point():
            raise TypeError(f"{where} must return floating weights, got {_describe(weights)}")
        if weights.shape != order.shape or weights.device != device:
            raise ValueError(
                f"{where} returned weights of shape {tuple(weights.shape)} on {weights.device}, "
                f"expected ({num_keep},) on {device}"
            )
    if full:
        order = check_index_tensor(f"{where} indices", order, n)
        if weights is not None:
            weights = check_weight_tensor(f"{where} weights", weights, num_keep)
    return order.to(torch.int64), weights


def check_index_tensor(name: str, value: Any, n: int) -> torch.Tensor:
    """``value`` as distinct int64 sample indices in ``[0, n)``; one pass and a host sync."""
    if not isinstance(value, torch.Tensor) or value.ndim != 1 or value.is_floating_point():
        raise TypeError(f"{name} must be a 1-D integer tensor, got {_describe(value)}")
    if value.dtype == torch.bool or value.is_complex():
        raise TypeError(f"{name} must be a 1-D integer tensor, got dtype {value.dtype}")
    if not 1 <= value.numel() <= n:
        raise ValueError(f"{name} must hold between 1 and {n} indices, got {value.numel()}")
    indices: torch.Tensor = value.to(torch.int64)
    low, high = int(indices.min()), int(indices.max())
    if low < 0 or high >= n:
        raise ValueError(f"{name} must be in [0, {n}), got {low if low < 0 else high}")
    mask = torch.zeros(n, dtype=torch.bool, device=indices.device)
    mask[indices] = True
    distinct = int(mask.count_nonzero())
    if distinct != indices.numel():
        raise ValueError(
            f"{name} must be distinct, got {indices.numel() - distinct} repeats among "
            f"{indices.numel()}"
        )
    return indices


def check_weight_tensor(name: str, value: Any, size: int) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got {_describe(value)}")
    if value.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},), got {tuple(value.shape)}")
    if not bool((torch.isfinite(value) & (value >= 0)).all()):
        raise ValueError(f"{name} must be finite and >= 0")
    return value.to(torch.float32)


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def check_plan_fits(
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


def check_positive_float(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is a finite number ``> 0``, else raise ValueError."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_vector(name: str, value: Any, *, floating: bool) -> Tensor:
    """Return ``value`` as a 1-D tensor of floating (or integer) dtype, else raise TypeError or
    ValueError naming the argument."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dim() != 1 or value.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 1-D tensor, got shape {tuple(value.shape)}")
    kind_ok = value.is_floating_point() if floating else not value.is_floating_point()
    if not kind_ok or value.dtype == torch.bool or value.is_complex():
        kind = "a floating-point" if floating else "an integer"
        raise TypeError(f"{name} must have {kind} dtype, got {value.dtype}")
    return value
