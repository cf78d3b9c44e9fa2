"""What a pruning policy is: :class:`PruningPolicy`, its :class:`Selection`, and the check the
sampler runs on every selection.

A policy is a small object with one pure method, :meth:`PruningPolicy.select`, that takes the
statistics, the exact number of samples to keep and a seeded generator, and returns the kept
indices (and, for re-weighting policies, one loss weight per kept index). It holds no state.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor

from dynaprune._checks import check_index_tensor, check_weight_tensor, describe
from dynaprune.core.statistics import LossStatistics

__all__ = ["PruningPolicy", "Selection", "check_selection"]


class Selection(NamedTuple):
    """The result of :meth:`PruningPolicy.select`.

    Attributes:
        indices: integer (int32 or int64) indices of the kept samples, on the statistics' device.
        weights: float32 loss weight of each kept sample, or ``None`` for weight 1.
        shuffled: ``True`` where ``indices`` is already in uniformly random order, as the
            built-in policies return it; otherwise the sampler shuffles it.
    """

    indices: Tensor
    weights: Tensor | None = None
    shuffled: bool = False


class PruningPolicy(ABC):
    """Chooses ``num_keep`` of the data set's samples from their statistics.

    Attributes:
        needs_correctness: whether :meth:`select` reads per-sample correctness: the sampler
            then tracks it (:meth:`LossStatistics.track_correctness`) and requires
            ``update(losses, correct=...)``.
        trusted_selection: whether :meth:`select` is known to return distinct in-range
            indices and valid weights, so that the sampler skips checking their values (a pass
            over the selection). Declared by the built-in policies; not inherited, since a
            subclass may override :meth:`select`: a subclass is checked unless its own class
            body declares it.
    """

    needs_correctness: bool = False
    trusted_selection: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "trusted_selection" not in cls.__dict__:
            cls.trusted_selection = False

    def check_attributes(self) -> None:
        """Check the policy's settings again, as its constructor did; the sampler calls it
        before every selection, so that a setting changed after construction (``policy.epsilon
        = 5``) is refused with its name and value rather than failing inside the selection.

        Raises:
            ValueError: naming the attribute and its value, where one is out of range.
        """
        return None  # a policy without settings has nothing to check

    @abstractmethod
    def select(self, stats: LossStatistics, num_keep: int, generator: torch.Generator) -> Selection:
        """Return exactly ``num_keep`` distinct sample indices (``0 < num_keep <= N``).

        Args:
            stats: the statistics, on their device.
            num_keep: how many samples to keep.
            generator: the only source of randomness, on ``stats.device``.
        """

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


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
        raise TypeError(f"{where} must return 1-D integer indices, got {describe(order)}")
    if order.numel() != num_keep:
        raise ValueError(f"{where} returned {order.numel()} indices, expected {num_keep}")
    if order.device != device:
        raise ValueError(f"{where} returned indices on {order.device}, expected {device}")
    if weights is not None:
        if not isinstance(weights, torch.Tensor) or not weights.is_floating_point():
            raise TypeError(f"{where} must return floating weights, got {describe(weights)}")
        if weights.shape != order.shape or weights.device != device:
            raise ValueError(
                f"{where} returned weights of shape {tuple(weights.shape)} on {weights.device}, "
                f"expected ({num_keep},) on {device}"
            )
    if full:
        order = check_index_tensor(f"{where} indices", order, n)
        if weights is not None:
            weights = check_weight_tensor(f"{where} weights", weights, num_keep)
    return order, weights
