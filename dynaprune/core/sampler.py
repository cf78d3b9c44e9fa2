"""The drop-in sampler: each epoch, train on the samples that still matter.

:class:`DynamicPruningSampler` conducts; its parts do the work: the size of each epoch
(:mod:`~dynaprune.core.schedule`), the epoch's subset, order, shard and loss matching
(:mod:`~dynaprune.core.plan`), each batch's losses fed back (:mod:`~dynaprune.core._feedback`,
whose methods the sampler inherits), the per-sample statistics on the device
(:mod:`~dynaprune.core.statistics`), what to do about non-finite losses
(:mod:`~dynaprune.core.nonfinite`), merging ranks (:mod:`~dynaprune.core.distributed`) and
checkpoints (:mod:`~dynaprune.core._state`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sized
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from dynaprune._checks import check_bool, check_choice, check_count, resolve_device
from dynaprune.core._feedback import SamplerFeedback
from dynaprune.core._inputs import check_process_group, resolve_length
from dynaprune.core._state import check_sampler_state, sampler_state
from dynaprune.core.distributed import RankMerger, Sharding, resolve_replicas
from dynaprune.core.nonfinite import NONFINITE_MODES, report_nonfinite
from dynaprune.core.plan import EpochPlan
from dynaprune.core.schedule import EpochSchedule, check_step_arguments, epoch_generator
from dynaprune.core.statistics import LossStatistics
from dynaprune.policies.base import PruningPolicy
from dynaprune.policies.registry import resolve_policy

__all__ = ["DynamicPruningSampler"]


class DynamicPruningSampler(SamplerFeedback, Sampler[int]):
    """Yields, each epoch, a loss-driven subset of a data set's indices.

    Args:
        data_source: the map-style data set (only its length is used) or its length.
        keep_ratio: share of the data set kept in a pruned epoch, in ``(0, 1]``; ``1`` trains on
            all of it. A pruned epoch keeps exactly ``round(keep_ratio * N)`` samples.
        policy: a name in :data:`dynaprune.policies.POLICIES` or a
            :class:`~dynaprune.policies.PruningPolicy`; ``"uniform"`` by default: every
            loss-driven rule lost to it somewhere, though it does not beat fewer epochs on all
            the data (paired by seed it was behind them in 12 of 13 committed comparisons, by
            up to 0.68 pt beyond its spread; README, "Which policy when").
        seed: seeds every random choice together with the epoch.
        warmup_epochs: first epochs that use the full data set.
        anneal_epochs: last epochs that use the full data set; needs ``total_epochs``.
        total_epochs: length of the run in epochs, for annealing and :meth:`total_steps`.
        num_replicas: number of ranks; defaults to the process group's world size, else 1.
        rank: this process's rank; defaults to the process group's rank, else 0.
        drop_last: drop the tail of an epoch that does not divide across ranks, instead of
            padding with repeated samples.
        device: where the statistics live. By default they start on the CPU and move, once, to
            the device of the first losses passed to :meth:`update`.
        momentum: weight of the old value in each sample's moving loss average, in ``[0, 1)``.
        nonfinite: what to do at the next epoch boundary about NaN or infinite losses skipped in
            an epoch: ``"warn"``, ``"raise"`` (``FloatingPointError``, all ranks) or ``"ignore"``.
        process_group: the data-parallel group whose ranks share each epoch, for runs that
            also shard the model (default: the whole world).

    Iterating the sampler plans the epoch set by :meth:`set_epoch`. Iterating again in the middle
    of that epoch (a second DataLoader, a ``next(iter(loader))`` peek) continues it after the
    last recorded batch; iterating again once the epoch's losses were recorded, without
    :meth:`set_epoch`, plans the same epoch again and warns.

    Attributes:
        stats: the :class:`~dynaprune.core.statistics.LossStatistics`.
        schedule: the :class:`~dynaprune.core.schedule.EpochSchedule` (phases and epoch sizes).
        timings: cumulative host seconds in selection (``select_seconds``) and :meth:`update`
            (``update_seconds``; on CUDA, launch time: the per-step work runs asynchronously).

    Example:
        >>> sampler = DynamicPruningSampler(10, keep_ratio=0.5, policy="ucb", seed=0)
        >>> sampler.set_epoch(0)
        >>> order = list(sampler)
        >>> len(order), len(sampler), len(set(order))
        (5, 5, 5)
        >>> loss = sampler.update(torch.rand(5))   # matched to ``order``, in order
    """

    def __init__(
        self,
        data_source: Sized | int,
        keep_ratio: float,
        policy: str | PruningPolicy = "uniform",
        *,
        seed: int = 0,
        warmup_epochs: int = 0,
        anneal_epochs: int = 0,
        total_epochs: int | None = None,
        num_replicas: int | None = None,
        rank: int | None = None,
        drop_last: bool = False,
        device: torch.device | str | None = None,
        momentum: float = 0.5,
        nonfinite: str = "warn",
        process_group: dist.ProcessGroup | None = None,
    ) -> None:
        n = resolve_length(data_source)
        self.schedule = EpochSchedule(n, keep_ratio, warmup_epochs, anneal_epochs, total_epochs)
        self.seed = check_count("seed", seed)
        self.nonfinite = check_choice("nonfinite", nonfinite, NONFINITE_MODES)
        self.drop_last = check_bool("drop_last", drop_last)
        self.policy = resolve_policy(policy)
        self.process_group = check_process_group(process_group)
        # Validates what was given; the rest comes from the process group at each epoch.
        resolve_replicas(num_replicas, rank, process_group, require_rank=False)
        self._replicas_arg = (num_replicas, rank, process_group)
        self._device_fixed = device is not None
        self.stats = LossStatistics(n, momentum, resolve_device(device))
        if self.policy.needs_correctness:
            self.stats.track_correctness()
        self.epoch = 0
        self._merger = RankMerger(self.process_group)
        self.timings = {"select_seconds": 0.0, "update_seconds": 0.0}
        self._plan: EpochPlan | None = None

    # ----------------------------------------------------------------- epochs and lengths
    num_samples = property(lambda self: self.schedule.num_samples, doc="Samples in the data set.")
    keep_ratio = property(lambda self: self.schedule.keep_ratio, doc="Share kept when pruned.")
    num_keep = property(lambda self: self.schedule.num_keep, doc="Samples in a pruned epoch.")
    warmup_epochs = property(lambda self: self.schedule.warmup_epochs)
    anneal_epochs = property(lambda self: self.schedule.anneal_epochs)
    total_epochs = property(lambda self: self.schedule.total_epochs)

    @property
    def num_replicas(self) -> int:
        """Number of ranks: as given, else the process group's world size (read each time)."""
        return resolve_replicas(*self._replicas_arg)[0]

    @property
    def rank(self) -> int:
        """This process's rank: as given, else the process group's rank (read each time)."""
        return resolve_replicas(*self._replicas_arg)[1]

    def is_pruned(self, epoch: int) -> bool:
        """Whether ``epoch`` trains on a subset (not warm-up, not annealing, keep_ratio < 1)."""
        return self.schedule.is_pruned(epoch)

    def epoch_size(self, epoch: int) -> int:
        """Samples that ``epoch`` trains on, over all ranks (padding not counted)."""
        return self.schedule.epoch_size(epoch)

    def epoch_length(self, epoch: int) -> int:
        """Samples this rank yields in ``epoch`` (padding counted)."""
        return self.schedule.epoch_length(epoch, self.num_replicas, self.drop_last)

    def __len__(self) -> int:
        # The whole epoch's length, also when resuming mid-epoch: loops such as Lightning's
        # count the batches already done against it.
        return self.epoch_length(self.epoch)

    def total_steps(
        self,
        batch_size: int,
        *,
        epochs: int | None = None,
        drop_last: bool = False,
        accumulate_grad_batches: int = 1,
    ) -> int:
        """Exact number of optimizer steps of a run, for LR schedules such as OneCycle.

        Args:
            batch_size: the DataLoader's batch size.
            epochs: epochs in the run; defaults to ``total_epochs``, and may not exceed it.
            drop_last: the DataLoader's ``drop_last``.
            accumulate_grad_batches: batches per optimizer step; an epoch's last, partial group
                still steps, as in Lightning.

        Example:
            >>> s = DynamicPruningSampler(1000, 0.5, warmup_epochs=1, total_epochs=3)
            >>> s.total_steps(batch_size=100)   # 10 + 5 + 5
            20
        """
        return self.schedule.total_steps(
            batch_size,
            epochs=epochs,
            drop_last=drop_last,
            accumulate_grad_batches=accumulate_grad_batches,
            num_replicas=self.num_replicas,
            shard_drop_last=self.drop_last,
        )

    def epoch_steps(
        self,
        epoch: int,
        batch_size: int,
        *,
        drop_last: bool = False,
        accumulate_grad_batches: int = 1,
    ) -> int:
        """Optimizer steps this rank takes in ``epoch`` (its batches, with
        ``accumulate_grad_batches=1``); the arguments are those of :meth:`total_steps`, which
        sums this over the run's epochs.

        Example:
            >>> s = DynamicPruningSampler(1000, 0.5, warmup_epochs=1)
            >>> s.epoch_steps(0, batch_size=100), s.epoch_steps(1, batch_size=100)
            (10, 5)
        """
        check_step_arguments(batch_size, accumulate_grad_batches, drop_last)
        return self.schedule.epoch_steps(
            check_count("epoch", epoch),
            batch_size,
            drop_last=drop_last,
            accumulate_grad_batches=accumulate_grad_batches,
            num_replicas=self.num_replicas,
            shard_drop_last=self.drop_last,
        )

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that the next iteration plans (call it before every epoch)."""
        self.epoch = check_count("epoch", epoch)

    # ----------------------------------------------------------------- planning
    @property
    def planned_epoch(self) -> int | None:
        """The epoch of the current plan, or ``None`` before the first iteration."""
        return None if self._plan is None else self._plan.epoch

    @property
    def resuming(self) -> bool:
        """Whether a restored plan waits to be continued by the next iteration."""
        return self._plan is not None and self._plan.restored

    def __iter__(self) -> Iterator[int]:
        plan = self._plan
        if plan is None or not plan.continues(self.epoch):
            plan = self._plan = self._new_plan(self.epoch)
        return plan.hand_off()

    def _new_plan(self, epoch: int) -> EpochPlan:
        sharding = Sharding(self.num_replicas, self.rank, self.drop_last)
        self.schedule.check_shardable(epoch, sharding.num_replicas, self.drop_last)
        start = time.perf_counter()
        self.synchronize()
        if self._plan is not None:  # the finished epoch's non-finite losses, over all ranks
            report_nonfinite(self.stats, self.nonfinite, self._plan.epoch, stacklevel=3)
            self._merger.rebase(self.stats)  # reset or kept alike on every rank
            self._plan.check_strangers()
        plan = EpochPlan.create(
            epoch,
            stats=self.stats,
            policy=self.policy,
            num_keep=self.num_keep if self.is_pruned(epoch) else None,
            generator=epoch_generator(self.seed, epoch, self.stats.device),
            sharding=sharding,
        )
        self.timings["select_seconds"] += time.perf_counter() - start
        return plan

    def synchronize(self) -> None:
        """Merge the ranks' statistics of the current epoch so far (a collective).

        Planning the next epoch and :meth:`state_dict` call it; call it to read merged statistics
        mid-epoch. With one replica, or nothing new to merge, it does nothing. Every rank must
        have called :meth:`update` equally often (as in data-parallel training): that count
        decides whether the collective runs.
        """
        plan = self._plan
        if plan is not None and plan.share is not None:
            self._merger.merge(self.stats, plan.share, plan.epoch, self.num_replicas)

    # ----------------------------------------------------------------- feedback
    # to, batch_weights, batch_indices and update: SamplerFeedback.
    def summary(self) -> dict[str, float]:
        """Figures of the current epoch for logging (reads device values: once per epoch):
        ``kept_fraction`` of the data set trained on this epoch, and the figures of
        :meth:`LossStatistics.summary <dynaprune.core.statistics.LossStatistics.summary>` (over all
        ranks after :meth:`synchronize`)."""
        kept = self.epoch_size(self.epoch) / self.num_samples
        return {"kept_fraction": kept, **self.stats.summary()}

    # ----------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue: statistics, epoch and the current epoch's plan.

        With several ranks this first merges their statistics (:meth:`synchronize`): call it on
        every rank, as Lightning does, and save the result on rank 0.
        """
        self.synchronize()
        return sampler_state(
            num_samples=self.num_samples,
            keep_ratio=self.keep_ratio,
            seed=self.seed,
            policy=self.policy,
            num_replicas=self.num_replicas,
            epoch=self.epoch,
            stats=self.stats,
            plan=self._plan,
        )

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output, validated; nothing changes if it is refused.

        A state saved at an epoch boundary continues exactly as the uninterrupted run. One saved
        during an epoch (up to and including its last batch) resumes that epoch's plan: the next
        iteration of the same epoch yields only the samples not yet recorded (none, if all were).
        The statistics go to the device they were saved from unless this sampler's device is
        fixed, since the next epochs' random draws depend on the device's generator. The
        configuration (keep ratio, policy, seed, ...) is this sampler's own: an epoch-boundary
        state may be continued with another one.

        Raises:
            TypeError: if ``state`` is not a mapping, or a field is of the wrong kind.
            ValueError: if the state is from a newer version, belongs to a data set of another
                size, holds impossible values, or stopped mid-epoch and that epoch's size, the
                number of ranks, ``drop_last`` or the policy class differs here.
        """
        restored = check_sampler_state(
            state,
            num_samples=self.num_samples,
            sharding=Sharding(self.num_replicas, self.rank, self.drop_last),
            device=self.stats.device,
            device_fixed=self._device_fixed,
            epoch_size=self.epoch_size,
            policy=type(self.policy).__name__,
        )
        self.stats.load_state_dict(state["stats"])  # validated there; refused: nothing changed
        self._merger.rebase(self.stats)  # every rank loads the same, merged count
        if restored.device != self.stats.device:
            self.to(restored.device)
        self.epoch, self._plan = restored.epoch, restored.plan
