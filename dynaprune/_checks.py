"""Argument checks shared by several modules (a check with one caller lives with it).

One rule per kind of argument, so that a check says the same thing wherever it runs: a value of
the wrong kind of number, or out of range, is a ``ValueError``; an object of the wrong kind
altogether (a data set, a policy, a process group, a device) is a ``TypeError``. Every message
names the argument and the value.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "check_bool",
    "check_choice",
    "check_count",
    "check_fraction",
    "check_index_range",
    "check_index_tensor",
    "check_losses",
    "check_not_meta",
    "check_positive_float",
    "check_vector",
    "check_weight_tensor",
    "describe",
    "resolve_device",
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


def check_losses(losses: Any) -> torch.Tensor:
    if not isinstance(losses, torch.Tensor):
        raise TypeError(f"losses must be a torch.Tensor, got {type(losses).__name__}")
    if losses.ndim != 1 or not losses.is_floating_point() or losses.numel() == 0:
        raise ValueError(
            "losses must be a non-empty 1-D floating tensor of per-sample losses "
            f"(reduction='none'), got shape {tuple(losses.shape)} and dtype {losses.dtype}"
        )
    check_not_meta("losses", losses)
    return losses


def check_not_meta(name: str, value: torch.Tensor) -> None:
    """A tensor on the meta device has a shape but no values: nothing to record."""
    if value.device.type == "meta":
        raise ValueError(
            f"{name} are on the meta device, which holds no values; pass {name} computed on a "
            "real device (the statistics stay where they are)"
        )


def check_index_tensor(name: str, value: Any, n: int) -> torch.Tensor:
    """``value`` as distinct int64 sample indices in ``[0, n)``; one pass and a host sync."""
    if not isinstance(value, torch.Tensor) or value.ndim != 1 or value.is_floating_point():
        raise TypeError(f"{name} must be a 1-D integer tensor, got {describe(value)}")
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
        raise TypeError(f"{name} must be a floating tensor, got {describe(value)}")
    if value.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},), got {tuple(value.shape)}")
    if not bool((torch.isfinite(value) & (value >= 0)).all()):
        raise ValueError(f"{name} must be finite and >= 0")
    return value.to(torch.float32)


def describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


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


def check_index_range(indices: Tensor, num_samples: int) -> None:
    """Refuse sample indices outside ``[0, num_samples)``: a negative index would otherwise wrap
    around to the end, as in Python. On the CPU an ``IndexError`` is raised at once; on an
    accelerator the check is an asynchronous device assertion, since reading it back would
    need a host sync."""
    if indices.device.type == "cpu":
        bad = (indices < 0) | (indices >= num_samples)
        if bad.any():
            raise IndexError(f"indices must be in [0, {num_samples}), got {indices[bad][0].item()}")
    else:
        ok = ((indices >= 0) & (indices < num_samples)).all()
        torch._assert_async(ok, f"indices must be in [0, {num_samples})")
