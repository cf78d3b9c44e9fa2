"""Argument checks shared by the static scores, the coreset orders and the static policy."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

__all__ = ["check_int", "check_positive_float", "check_vector"]


def check_int(name: str, value: Any, minimum: int) -> int:
    """Return ``value`` if it is an integer (not a bool) ``>= minimum``, else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


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
