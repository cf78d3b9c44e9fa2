"""One epoch's plan: the order of the kept samples, this rank's shard of it, and a cursor.

The sampler makes a plan when an epoch starts. Per-sample losses passed without indices are
matched to the shard by position, batch after batch, through :meth:`EpochPlan.take`, which only
slices device tensors and advances a host-side integer: no sync.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from dynaprune.distributed import shard_order

__all__ = ["EpochPlan"]


@dataclass
class EpochPlan:
    """The samples of one epoch, over all ranks and for this rank.

    Attributes:
        epoch: the epoch planned.
        order: the epoch's order over all ranks (int64, on the statistics' device).
        weights: loss weight of each entry of ``order``, or ``None`` for weight 1.
        shard: this rank's entries of ``order``, padding included.
        shard_weights: ``weights`` of the shard, or ``None``.
        num_valid: leading shard entries that are not padding.
        owned: with several ranks, bool mask of the samples this rank records; else ``None``.
        cursor: shard entries already matched to losses.
        updates: ``update()`` calls in this plan; equal on every rank in data-parallel training.
        merged_updates: value of ``updates`` at the last merge across ranks.
    """

    epoch: int
    order: Tensor
    weights: Tensor | None
    shard: Tensor
    shard_weights: Tensor | None
    num_valid: int
    owned: Tensor | None
    cursor: int = 0
    updates: int = 0
    merged_updates: int = 0
    _weight_table: Tensor | None = field(default=None, repr=False)

    @classmethod
    def build(
        cls,
        epoch: int,
        order: Tensor,
        weights: Tensor | None,
        *,
        num_samples: int,
        num_replicas: int,
        rank: int,
        drop_last: bool,
        cursor: int = 0,
    ) -> EpochPlan:
        shard, num_valid = shard_order(order, num_replicas, rank, drop_last)
        shard_weights = None
        if weights is not None:
            shard_weights, _ = shard_order(weights, num_replicas, rank, drop_last)
        owned = None
        if num_replicas > 1:
            owned = torch.zeros(num_samples, dtype=torch.bool, device=order.device)
            owned[shard[:num_valid]] = True
        return cls(epoch, order, weights, shard, shard_weights, num_valid, owned, cursor)

    @property
    def remaining(self) -> int:
        return self.shard.numel() - self.cursor

    def to(self, device: torch.device) -> None:
        for name in ("order", "weights", "shard", "shard_weights", "owned", "_weight_table"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.to(device))

    def positions(self, size: int) -> slice:
        """The shard positions of the next ``size`` losses."""
        if size > self.remaining:
            raise ValueError(
                f"losses has {size} entries but only {self.remaining} samples of epoch "
                f"{self.epoch} are left to match; pass indices= if the loader does not yield "
                "this sampler's order batch after batch"
            )
        return slice(self.cursor, self.cursor + size)

    def take(self, size: int) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Indices, weights and validity mask of the next ``size`` samples; advance past them."""
        pos = self.positions(size)
        idx = self.shard[pos]
        weights = None if self.shard_weights is None else self.shard_weights[pos]
        valid = None
        if pos.stop > self.num_valid:  # padding repeats samples recorded elsewhere
            valid = torch.arange(pos.start, pos.stop, device=idx.device) < self.num_valid
        self.cursor = pos.stop
        return idx, weights, valid

    def weights_of(self, indices: Tensor, num_samples: int) -> Tensor | None:
        """Weights of arbitrary samples (1 for those not in the plan), or ``None``."""
        if self.shard_weights is None:
            return None
        if self._weight_table is None:  # built once, on the first indexed lookup
            table = torch.ones(num_samples, device=self.shard.device)
            table[self.shard] = self.shard_weights
            self._weight_table = table
        return self._weight_table[indices]

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "order": self.order.cpu(),
            "weights": None if self.weights is None else self.weights.cpu(),
            "cursor": self.cursor,
        }
