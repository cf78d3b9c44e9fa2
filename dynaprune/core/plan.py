"""One epoch's life: chosen, handed to the loader, matched against losses, saved and restored.

The sampler creates an :class:`EpochPlan` when an epoch starts, from a policy's selection (or
a full permutation in warm-up and annealing epochs). The plan validates that selection, orders
it, takes this rank's shard, hands the shard to the DataLoader, and matches each batch's losses
to it by position through :meth:`EpochPlan.match`, which only slices device tensors and
advances a host-side cursor: no sync. It knows whether an iteration over it is still open, so
a second iteration in the middle of the epoch continues it instead of planning it again. It
writes itself to a checkpoint and reads it back, validated (:meth:`EpochPlan.from_state_dict`).
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import torch
from torch import Tensor

from dynaprune._select import index_dtype, random_prefix
from dynaprune.core._members import EpochMembers
from dynaprune.core._plan_state import check_plan_state
from dynaprune.core.distributed import EpochShare, Sharding, shard_order
from dynaprune.core.statistics import LossStatistics
from dynaprune.policies.base import PruningPolicy, check_selection

__all__ = ["EpochPlan", "Match", "Sharding"]


class Match(NamedTuple):
    """A batch's samples, as :meth:`EpochPlan.match` found them."""

    indices: Tensor  #: int64 sample indices on the plan's device
    weights: Tensor | None  #: loss weights, or ``None`` for weight 1
    valid: Tensor | None  #: bool mask of the entries this rank records, or ``None`` for all
    unique: bool  #: whether ``indices`` is known to hold no repeats


class EpochPlan:
    """The samples of one epoch, over all ranks and for this rank.

    Args:
        epoch: the epoch planned.
        order: the epoch's order over all ranks (integers on the statistics' device), kept as
            4-byte integers below 2**31 samples (8 above).
        weights: loss weight of each entry of ``order``, or ``None`` for weight 1.
        num_samples: samples in the data set.
        sharding: this rank's part of the epoch.
        policy: class name of the policy that chose the samples, ``None`` for a full epoch.
        cursor: shard entries already matched to losses.

    Attributes:
        shard: this rank's entries of ``order``, padding included.
        shard_weights: ``weights`` of the shard, or ``None``.
        num_valid: leading shard entries that are not padding.
        share: with several ranks, the samples this rank records and whether it recorded any
            since the ranks last merged (:class:`~dynaprune.core.distributed.EpochShare`);
            else ``None``.
        updates: batches matched.
        restored: whether the plan comes from a checkpoint and was not handed off since.
    """

    def __init__(
        self,
        epoch: int,
        order: Tensor,
        weights: Tensor | None,
        *,
        num_samples: int,
        sharding: Sharding,
        policy: str | None = None,
        cursor: int = 0,
    ) -> None:
        order = order.to(index_dtype(num_samples))  # half the memory of int64 per entry
        self.epoch, self.order, self.weights = epoch, order, weights
        self.num_samples, self.sharding, self.policy = num_samples, sharding, policy
        replicas, rank, drop_last = sharding.num_replicas, sharding.rank, sharding.drop_last
        self.shard, self.num_valid = shard_order(order, replicas, rank, drop_last)
        self.shard_weights: Tensor | None = None
        if weights is not None:
            self.shard_weights, _ = shard_order(weights, replicas, rank, drop_last)
        self.share: EpochShare | None = None
        if replicas > 1:
            self.share = EpochShare(self.shard[: self.num_valid], num_samples)
        self.cursor = cursor
        self.updates = 0
        self.restored = False
        self._weight_table: Tensor | None = None
        self._members: EpochMembers | None = None  # built on the first indexed update
        self._iterators: weakref.WeakSet[Iterator[int]] = weakref.WeakSet()

    # ----------------------------------------------------------------- creation
    @classmethod
    def create(
        cls,
        epoch: int,
        *,
        stats: LossStatistics,
        policy: PruningPolicy,
        num_keep: int | None,
        generator: torch.Generator,
        sharding: Sharding,
    ) -> EpochPlan:
        """Plan ``epoch``: ``num_keep`` samples chosen by ``policy``, or all of them in random
        order when ``num_keep`` is ``None``.

        A policy class that declares ``trusted_selection = True`` (the built-in ones) is trusted
        to return distinct in-range indices; any other policy's selection is checked.

        Raises:
            TypeError: if a policy's ``select`` returns no :class:`~dynaprune.Selection` of
                integer indices (and floating weights).
            ValueError: if a policy's setting is out of range
                (:meth:`~dynaprune.policies.PruningPolicy.check_attributes`), or its ``select``
                returns the wrong number of indices, repeated or out-of-range
                indices, or negative or non-finite weights.
        """
        n, device = stats.num_samples, stats.device
        if num_keep is None:
            order = random_prefix(n, n, generator, device)  # randperm(n), as 4-byte integers
            return cls(epoch, order, None, num_samples=n, sharding=sharding)
        policy.check_attributes()  # a setting changed since construction: named, not deep inside
        selection = policy.select(stats, num_keep, generator)
        trusted = policy.trusted_selection
        order, weights = check_selection(selection, policy, num_keep, n, device, full=not trusted)
        if not selection.shuffled:
            perm = torch.randperm(order.numel(), generator=generator, device=device)
            order = order.index_select(0, perm)
            weights = None if weights is None else weights.index_select(0, perm)
        name = type(policy).__name__
        return cls(epoch, order, weights, num_samples=n, sharding=sharding, policy=name)

    # ----------------------------------------------------------------- hand-off
    @property
    def remaining(self) -> int:
        """Shard entries not yet matched to losses."""
        return self.shard.numel() - self.cursor

    @property
    def iterating(self) -> bool:
        """Whether an iteration over this plan is open (created, not exhausted nor closed)."""
        return any(getattr(it, "gi_frame", None) is not None for it in self._iterators)

    def continues(self, epoch: int) -> bool:
        """Whether a new iteration of ``epoch`` continues this plan rather than plan it again.

        It does for a plan of that epoch that was :attr:`restored` from a checkpoint, that has no
        losses recorded yet (a peek), or whose iteration is open mid-epoch. Planning an epoch
        again after its losses were recorded warns: ``set_epoch`` was not called.
        """
        if epoch != self.epoch:
            return False
        if self.restored or self.updates == 0 or (self.iterating and self.remaining > 0):
            return True
        warnings.warn(
            f"epoch {self.epoch} is planned a second time after its losses were recorded: "
            "call sampler.set_epoch(epoch) before each epoch, or every epoch draws from the "
            "same random stream (with policy='uniform', the same subset)",
            UserWarning,
            stacklevel=3,
        )
        return False

    def hand_off(self) -> Iterator[int]:
        """The shard from the cursor on, as Python ints for the DataLoader.

        The one device-to-host copy per epoch, converted in chunks so that a huge epoch never
        becomes one Python list.
        """
        iterator = _ints(self.shard[self.cursor :])
        self._iterators.add(iterator)
        self.restored = False
        return iterator

    # ----------------------------------------------------------------- matching losses
    def positions(self, size: int) -> slice:
        """The shard positions of the next ``size`` losses."""
        if size > self.remaining:
            raise ValueError(
                f"losses has {size} entries but only {self.remaining} samples of epoch "
                f"{self.epoch} are left to match; pass indices= if the loader does not yield "
                "this sampler's order batch after batch"
            )
        return slice(self.cursor, self.cursor + size)

    def match(self, size: int, indices: Tensor | None = None) -> Match:
        """The next batch's samples, and advance past them.

        Without ``indices`` the batch is the next ``size`` shard entries; with them (validated
        int64 indices on the plan's device), the cursor advances by as many, so that a
        mid-epoch checkpoint resumes after as many samples as were recorded.
        """
        if indices is None:
            pos = self.positions(size)
            idx = self.shard[pos].to(torch.int64)
            weights = None if self.shard_weights is None else self.shard_weights[pos]
            valid = None
            if pos.stop > self.num_valid:  # padding repeats samples recorded elsewhere
                valid = torch.arange(pos.start, pos.stop, device=idx.device) < self.num_valid
            self.cursor = pos.stop
            # The plan's order repeats no sample, except in padding, which ``valid`` masks.
            match = Match(idx, weights, valid, unique=valid is None)
        else:
            valid = None if self.share is None else self.share.owns(indices)
            if self.policy is not None:  # a pruned epoch: a sample outside it is a caller's bug
                members = self._members_of(indices)
                valid = members if valid is None else valid & members
            match = Match(indices, self.weights_of(indices), valid, unique=False)
            self.cursor = min(self.cursor + size, self.shard.numel())
        self.updates += 1
        if self.share is not None:
            self.share.recorded()
        return match

    def record(
        self,
        stats: LossStatistics,
        losses: Tensor,
        indices: Tensor | None,
        correct: Tensor | None = None,
    ) -> Tensor:
        """Match a batch's ``losses`` (:meth:`match`), record them and ``correct`` in ``stats``,
        and return their mean, weighted by the plan's weights, keeping the autograd graph."""
        match = self.match(losses.shape[0], indices)
        unique = match.unique
        stats.update(
            match.indices,
            losses,
            self.epoch,
            match.valid,
            unique=unique,
            correct=correct,
            validated=True,  # the plan's own order, or checked by the sampler
        )
        w = match.weights
        return losses.mean() if w is None else (losses * w.to(losses.dtype)).mean()

    def next_indices(self, size: int) -> Tensor:
        """Sample indices of the next ``size`` losses, matched by position, without advancing."""
        return self.shard[self.positions(size)].to(torch.int64)

    def _members_of(self, indices: Tensor) -> Tensor:
        """Whether each of ``indices`` is in this (pruned) epoch (:class:`EpochMembers`)."""
        if self._members is None:
            self._members = EpochMembers(self.epoch, self.order, self.num_samples)
        return self._members.inside(indices)

    def check_strangers(self) -> None:
        """At an epoch boundary, raise if an indexed update of this epoch named samples outside
        it (:meth:`EpochMembers.check`)."""
        if self._members is not None:
            self._members.check()

    def next_weights(self, size: int, indices: Tensor | None = None) -> Tensor:
        """Weights of the next ``size`` losses (of ``indices``, if given), without advancing:
        ones unless the policy re-weights."""
        if indices is not None:
            weights = self.weights_of(indices)
        else:
            pos = self.positions(size)
            weights = None if self.shard_weights is None else self.shard_weights[pos]
        return torch.ones(size, device=self.shard.device) if weights is None else weights

    def weights_of(self, indices: Tensor) -> Tensor | None:
        """Weights of arbitrary samples (1 for those not in the plan), or ``None``."""
        if self.shard_weights is None:
            return None
        if self._weight_table is None:  # built once, on the first indexed lookup
            table = torch.ones(self.num_samples, device=self.shard.device)
            table[self.shard] = self.shard_weights
            self._weight_table = table
        return self._weight_table[indices]

    # ----------------------------------------------------------------- devices
    def to(self, device: torch.device) -> None:
        for name in ("order", "weights", "shard", "shard_weights", "_weight_table"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.to(device))
        for part in (self.share, self._members):
            if part is not None:
                part.to(device)

    def __getstate__(self) -> dict[str, Any]:  # open iterators stay with this process
        return {k: v for k, v in self.__dict__.items() if k != "_iterators"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._iterators = weakref.WeakSet()

    # ----------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "order": self.order.cpu(),
            "weights": None if self.weights is None else self.weights.cpu(),
            "cursor": self.cursor,
            "num_replicas": self.sharding.num_replicas,
            "drop_last": self.sharding.drop_last,
            "policy": self.policy,
        }

    @classmethod
    def from_state_dict(
        cls,
        state: Any,
        *,
        num_samples: int,
        sharding: Sharding,
        device: torch.device,
        epoch_size: Callable[[int], int] | None = None,
        policy: str | None = None,
    ) -> EpochPlan:
        """Restore :meth:`state_dict` output, validated, on ``device``.

        A plan that stopped mid-epoch continues after its last matched batch, and must fit
        this configuration: as many samples (``epoch_size(epoch)``), ranks, the same
        ``drop_last`` and, for a pruned epoch, the same policy class (``policy``). A finished
        plan only needs to be well-formed.

        Raises:
            TypeError: if ``state`` or one of its fields is not what :meth:`state_dict` writes.
            ValueError: for impossible values, or a mid-epoch plan that does not fit.
        """
        saved = check_plan_state(
            state, num_samples=num_samples, sharding=sharding, epoch_size=epoch_size, policy=policy
        )
        plan = cls(
            saved.epoch,
            saved.order.to(device),
            None if saved.weights is None else saved.weights.to(device),
            num_samples=num_samples,
            sharding=sharding,
            policy=saved.policy,
        )
        plan.cursor = saved.cursor if saved.mid_epoch else plan.shard.numel()
        plan.restored = True
        return plan


def _ints(order: Tensor) -> Iterator[int]:
    for chunk in order.cpu().split(1 << 16):
        yield from chunk.tolist()
