"""What the training loop feeds back to a :class:`~dynaprune.DynamicPruningSampler`.

:class:`SamplerFeedback` is the part of the sampler that a training step talks to: it records
each batch's per-sample losses in the statistics, matched against the current epoch's plan
(:meth:`~SamplerFeedback.update`), hands out the batch's weights and indices without recording
anything, and keeps the statistics and the plan on the device the losses come from. The
sampler inherits it, as a ``LightningModule`` inherits its hooks, and builds the state it reads:
``stats``, ``policy``, ``timings`` and the current plan.
"""

from __future__ import annotations

import time
from typing import TypeVar

import torch
from torch import Tensor

from dynaprune._checks import check_count, check_losses, resolve_device
from dynaprune.core._inputs import check_correct, check_indices, must_follow
from dynaprune.core.plan import EpochPlan
from dynaprune.core.statistics import LossStatistics
from dynaprune.policies.base import PruningPolicy

__all__ = ["SamplerFeedback"]

_Self = TypeVar("_Self", bound="SamplerFeedback")


class SamplerFeedback:
    """Losses in, loss to backpropagate out: the per-step methods of the sampler.

    The sampler sets these attributes in its ``__init__`` and replaces ``_plan`` at each epoch.
    """

    stats: LossStatistics
    policy: PruningPolicy
    timings: dict[str, float]
    _plan: EpochPlan | None
    _device_fixed: bool

    def to(self: _Self, device: torch.device | str) -> _Self:
        """Move the statistics and the epoch's plan to ``device`` and keep them there: later
        losses must come from that device."""
        resolved = resolve_device(device)
        self.stats.to(resolved)
        if self._plan is not None:
            self._plan.to(resolved)
        self._device_fixed = True
        return self

    def _batch(
        self, size: int, indices: Tensor | None, device: torch.device | None
    ) -> tuple[EpochPlan, Tensor | None]:
        """The current plan and the batch's checked indices; the statistics follow ``device``."""
        if device is not None and must_follow(device, self.stats.device, fixed=self._device_fixed):
            self.to(device)
        if self._plan is None:
            raise RuntimeError(
                "update() was called before the sampler was iterated; iterate the DataLoader "
                "that holds this sampler first"
            )
        if indices is None:
            return self._plan, None
        return self._plan, check_indices(indices, size, self.stats.num_samples, self.stats.device)

    def batch_weights(self, batch: Tensor | int, indices: Tensor | None = None) -> Tensor:
        """Loss weights of the next batch, without recording anything.

        Args:
            batch: the batch's per-sample losses (the weights then come on their device and
                dtype) or the batch size.
            indices: the batch's sample indices, if losses are not matched by position.

        Returns:
            A 1-D tensor of weights: ones unless the policy re-weights (``soft``,
            ``infobatch``, ``importance``).
        """
        if not isinstance(batch, Tensor):
            size = check_count("batch", batch, 1)
            plan, idx = self._batch(size, indices, None)
            return plan.next_weights(size, idx)
        plan, idx = self._batch(batch.shape[0], indices, batch.device)
        return plan.next_weights(batch.shape[0], idx).to(batch.dtype)

    def batch_indices(self, batch_size: int) -> Tensor:
        """Sample indices of the next ``batch_size`` losses (matched by position, as
        :meth:`update` matches them), without recording anything: e.g. to look up per-sample
        irreducible losses for :func:`dynaprune.inbatch.rho` in a loader that yields no indices.
        """
        plan, _ = self._batch(check_count("batch_size", batch_size, 1), None, None)
        return plan.next_indices(batch_size)

    def update(
        self, losses: Tensor, indices: Tensor | None = None, *, correct: Tensor | None = None
    ) -> Tensor:
        """Record a batch's per-sample losses and return the loss to backpropagate.

        Args:
            losses: per-sample losses, shape ``(B,)`` (``reduction="none"``), with or without
                grad. Non-finite entries are not recorded, only counted.
            indices: the samples' indices. Without them, losses are matched to this epoch's
                order, batch after batch, as the DataLoader delivers it. With several ranks,
                losses of samples outside this rank's shard are left to the rank that owns them.
                In a pruned epoch, every index must be a sample of the epoch's subset: a
                ``ValueError`` on the CPU at once (nothing of the batch is recorded); on an
                accelerator, where checking at once would need a host sync per step, such
                entries are not recorded and planning the next epoch raises the
                ``ValueError``.
            correct: whether each sample was classified correctly, one bool per loss (e.g.
                ``logits.argmax(1) == y``). Policies that read it (``needs_correctness``, as
                ``onion``) require it; the others ignore it. Not recorded for non-finite losses.

        Returns:
            The mean of ``losses`` (weighted by :meth:`batch_weights` for re-weighting
            policies), keeping the autograd graph; non-finite entries are not masked in it.

        Raises:
            ValueError: for losses (or ``correct``, ``indices``) on the ``meta`` device, which
                holds no values, for indices of samples outside a pruned epoch's subset (see
                ``indices``), and for malformed arguments.
        """
        start = time.perf_counter()
        losses = check_losses(losses)
        correct = check_correct(correct, losses, self.policy)
        plan, idx = self._batch(losses.shape[0], indices, losses.device)
        loss = plan.record(self.stats, losses, idx, correct)
        self.timings["update_seconds"] += time.perf_counter() - start
        return loss
