"""Which epochs are pruned, how long each is, and how many optimizer steps a run takes.

A run has three phases: ``warmup_epochs`` on the full data set, pruned epochs of exactly
``round(keep_ratio * N)`` samples, and ``anneal_epochs`` on the full data set at the end
(which needs ``total_epochs``). Lengths are known before any epoch runs, so learning-rate
schedules can be built once (:meth:`EpochSchedule.total_steps`). Each epoch draws from its own
random stream, seeded from ``(seed, epoch)`` (:func:`epoch_generator`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from dynaprune._checks import check_bool, check_count, check_fraction
from dynaprune.core.distributed import shard_length

__all__ = ["EpochSchedule", "check_step_arguments", "epoch_generator"]


def epoch_generator(seed: int, epoch: int, device: torch.device) -> torch.Generator:
    """A generator on ``device`` for every random choice of ``epoch``."""
    # Mixed with odd constants, so that nearby (seed, epoch) pairs do not share a stream the
    # way seed + epoch does (seed 0, epoch 1 and seed 1, epoch 0).
    mixed = (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + 1) % (1 << 63)
    return torch.Generator(device=device).manual_seed(mixed)


def check_step_arguments(batch_size: int, accumulate_grad_batches: int, drop_last: bool) -> None:
    """Refuse the DataLoader's settings that optimizer steps are counted from: ``batch_size`` and
    ``accumulate_grad_batches`` integers >= 1, ``drop_last`` a bool."""
    check_count("batch_size", batch_size, minimum=1)
    check_count("accumulate_grad_batches", accumulate_grad_batches, minimum=1)
    check_bool("drop_last", drop_last)


@dataclass(frozen=True)
class EpochSchedule:
    """The phases of a run and the size of each epoch.

    Args:
        num_samples: samples in the data set.
        keep_ratio: share kept in a pruned epoch, in ``(0, 1]``.
        warmup_epochs: first epochs on the full data set.
        anneal_epochs: last epochs on the full data set; needs ``total_epochs``.
        total_epochs: length of the run in epochs, or ``None`` when open-ended.

    Example:
        >>> s = EpochSchedule(100, 0.3, warmup_epochs=1, anneal_epochs=1, total_epochs=4)
        >>> [s.epoch_size(e) for e in range(4)]
        [100, 30, 30, 100]
    """

    num_samples: int
    keep_ratio: float
    warmup_epochs: int = 0
    anneal_epochs: int = 0
    total_epochs: int | None = None

    def __post_init__(self) -> None:
        n = check_count("num_samples", self.num_samples, minimum=1)
        keep = check_fraction("keep_ratio", self.keep_ratio, open_low=True, open_high=False)
        object.__setattr__(self, "keep_ratio", keep)
        if round(keep * n) < 1:
            raise ValueError(
                f"keep_ratio={keep!r} of {n} samples keeps round({keep * n}) = 0; raise keep_ratio"
            )
        warmup = check_count("warmup_epochs", self.warmup_epochs)
        anneal = check_count("anneal_epochs", self.anneal_epochs)
        total = self.total_epochs
        if total is not None:
            check_count("total_epochs", total, minimum=1)
        if anneal and total is None:
            raise ValueError(f"anneal_epochs={anneal!r} needs total_epochs, the length of the run")
        if total is not None:
            if anneal > total:
                raise ValueError(f"anneal_epochs={anneal!r} exceeds total_epochs={total!r}")
            if warmup > total:
                raise ValueError(f"warmup_epochs={warmup!r} exceeds total_epochs={total!r}")
            if warmup + anneal > total:
                raise ValueError(
                    f"warmup_epochs={warmup!r} and anneal_epochs={anneal!r} overlap: together "
                    f"they exceed total_epochs={total!r}"
                )

    @property
    def num_keep(self) -> int:
        """Samples in a pruned epoch."""
        return round(self.keep_ratio * self.num_samples)

    def is_pruned(self, epoch: int) -> bool:
        """Whether ``epoch`` trains on a subset (not warm-up, not annealing, keep_ratio < 1).

        Epochs from ``total_epochs - anneal_epochs`` on, including any past the end of the run,
        are annealing epochs.
        """
        if self.num_keep == self.num_samples or epoch < self.warmup_epochs:
            return False
        if self.anneal_epochs and self.total_epochs is not None:
            return epoch < self.total_epochs - self.anneal_epochs
        return True

    def epoch_size(self, epoch: int) -> int:
        """Samples that ``epoch`` trains on, over all ranks (padding not counted)."""
        return self.num_keep if self.is_pruned(epoch) else self.num_samples

    def epoch_length(self, epoch: int, num_replicas: int = 1, drop_last: bool = False) -> int:
        """Samples one of ``num_replicas`` ranks yields in ``epoch`` (padding counted)."""
        return shard_length(self.epoch_size(epoch), num_replicas, drop_last)

    def check_shardable(self, epoch: int, num_replicas: int, drop_last: bool) -> None:
        """Raise ``ValueError`` if ``drop_last`` leaves every rank without a sample in ``epoch``."""
        if self.epoch_length(epoch, num_replicas, drop_last) == 0:
            raise ValueError(
                f"epoch {epoch} keeps {self.epoch_size(epoch)} samples, fewer than the "
                f"{num_replicas} ranks, so drop_last=True leaves every rank none; "
                "raise keep_ratio or set drop_last=False"
            )

    def total_steps(
        self,
        batch_size: int,
        *,
        epochs: int | None = None,
        drop_last: bool = False,
        accumulate_grad_batches: int = 1,
        num_replicas: int = 1,
        shard_drop_last: bool = False,
    ) -> int:
        """Optimizer steps of a run of ``epochs`` (default ``total_epochs``) on one rank.

        Args:
            batch_size: the DataLoader's batch size.
            epochs: epochs in the run, at most ``total_epochs`` when that is set.
            drop_last: the DataLoader's ``drop_last``.
            accumulate_grad_batches: batches per optimizer step; a partial group at the end of
                an epoch still steps, as in Lightning.
            num_replicas: ranks sharing each epoch.
            shard_drop_last: the sampler's ``drop_last`` (how epochs are sharded).
        """
        check_step_arguments(batch_size, accumulate_grad_batches, drop_last)
        if epochs is None:
            if self.total_epochs is None:
                raise ValueError("epochs must be given when the sampler has no total_epochs")
            epochs = self.total_epochs
        check_count("epochs", epochs)
        if self.total_epochs is not None and epochs > self.total_epochs:
            raise ValueError(
                f"epochs={epochs!r} exceeds total_epochs={self.total_epochs!r}, the length of "
                "the run this sampler was built for"
            )
        return sum(
            self.epoch_steps(
                epoch,
                batch_size,
                drop_last=drop_last,
                accumulate_grad_batches=accumulate_grad_batches,
                num_replicas=num_replicas,
                shard_drop_last=shard_drop_last,
            )
            for epoch in range(epochs)
        )

    def epoch_steps(
        self,
        epoch: int,
        batch_size: int,
        *,
        drop_last: bool = False,
        accumulate_grad_batches: int = 1,
        num_replicas: int = 1,
        shard_drop_last: bool = False,
    ) -> int:
        """Optimizer steps of ``epoch`` on one rank (batches, with ``accumulate_grad_batches=1``);
        the arguments are those of :meth:`total_steps`."""
        length = self.epoch_length(epoch, num_replicas, shard_drop_last)
        batches = length // batch_size if drop_last else math.ceil(length / batch_size)
        return math.ceil(batches / accumulate_grad_batches)
