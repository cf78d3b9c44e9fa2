"""The validation of a :class:`~dynaprune.core.statistics.LossStatistics` state, run before
anything is loaded, so that a refused state leaves the statistics as they were."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from dynaprune.core.forgetting import ForgettingTracker

__all__ = ["check_statistics_state"]


def check_statistics_state(
    state: Any, current: Mapping[str, Tensor], num_samples: int
) -> tuple[dict[str, Tensor], int]:
    """Validate a statistics state for statistics whose always-present tensors are ``current``
    (``mean``, ``var``, ``count``, ``seen``).

    Returns:
        The saved tensors, as saved (``correct`` among them if it was saved), and the
        non-finite count.

    Raises:
        TypeError: if ``state`` or one of its fields is not what ``state_dict`` writes.
        ValueError: if a field is missing, holds another number of samples, or impossible
            values.
    """
    if not isinstance(state, Mapping):
        raise TypeError(f"statistics state_dict must be a mapping, got {type(state).__name__}")
    missing = [f for f in current if f not in state]
    if missing:
        raise ValueError(f"statistics state_dict lacks {missing}")
    tensors: dict[str, Tensor] = {}
    for name, like in current.items():
        value = state[name]
        if not isinstance(value, Tensor) or value.ndim != 1:
            raise TypeError(
                f"statistics state_dict[{name!r}] must be a 1-D tensor, got {_describe(value)}"
            )
        if value.is_floating_point() != like.is_floating_point() or value.is_complex():
            raise TypeError(
                f"statistics state_dict[{name!r}] must have dtype {like.dtype}, got {value.dtype}"
            )
        if value.numel() != num_samples:
            raise ValueError(
                f"statistics state_dict[{name!r}] holds {value.numel()} samples, but this "
                f"data set has {num_samples}"
            )
        tensors[name] = value
    var = tensors["var"]
    for name, bad, what in (
        ("mean", ~torch.isfinite(tensors["mean"]), "non-finite"),
        ("var", ~(var >= 0) | torch.isinf(var), "negative or non-finite"),
        ("count", tensors["count"] < 0, "negative"),
        ("seen", tensors["seen"] < 0, "negative"),
    ):
        if bad.any():
            raise ValueError(
                f"statistics state_dict[{name!r}] holds {int(bad.sum())} {what} values: "
                "the state is corrupted"
            )
    nonfinite = state.get("nonfinite", 0)
    if (
        isinstance(nonfinite, Tensor)
        and nonfinite.numel() == 1
        and not (nonfinite.is_floating_point() or nonfinite.dtype == torch.bool)
    ):
        nonfinite = int(nonfinite)
    if isinstance(nonfinite, bool) or not isinstance(nonfinite, int) or nonfinite < 0:
        raise ValueError(
            f"statistics state_dict['nonfinite'] must be an integer >= 0, got {nonfinite!r}"
        )
    if state.get("correct") is not None:  # saved only while correctness was tracked
        name = "statistics state_dict['correct']"
        tensors["correct"] = ForgettingTracker.check_packed(name, state["correct"], num_samples)
    return tensors, nonfinite


def _describe(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"
