"""Per-sample loss statistics that live on the training device.

Four tensors of ``N`` elements each, 16 bytes per sample in all, and a fifth on request:

============  =========  ==========================================================
``mean``      float32    exponential moving average of the sample's loss
``var``       float32    exponentially weighted moving variance of the loss
``count``     int32      number of updates the sample has received
``seen``      int32      ``1 + epoch`` the sample was last trained on, ``0`` = never
``correct``   int32      only after :meth:`~LossStatistics.track_correctness`: forgetting
                         events and last correctness since the last reset, counted by a
                         :class:`~dynaprune.core.forgetting.ForgettingTracker`
============  =========  ==========================================================

With ``a = 1 - momentum`` and ``d = loss - mean``, one update is (West, 1979)::

    mean <- mean + a * d      (computed as (1 - a) * mean + a * loss)
    var  <- (1 - a) * (var + a * d**2)

and the first update of a sample sets ``mean = loss`` and ``var = 0``. Huge but finite losses
(up to float32's largest, 3.4e38) never overflow the statistics: the mean is a convex
combination of finite values, and the variance saturates at float32's largest value.

:meth:`LossStatistics.update` is a handful of index operations under ``torch.no_grad()``.
It never reads a value back to the host, so it does not synchronise a CUDA stream.
Non-finite losses are masked on the device and only counted; their samples still count as seen
(trained on), so that a sample whose loss is always NaN is not ranked as never seen forever, but
record no correctness either.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from dynaprune._checks import check_index_range
from dynaprune.core._stats_report import summarize
from dynaprune.core._stats_state import check_statistics_state
from dynaprune.core.forgetting import ForgettingTracker

__all__ = ["LossStatistics"]

_FIELDS = ("mean", "var", "count", "seen")
_FLOAT32_MAX = torch.finfo(torch.float32).max


class LossStatistics:
    """Running loss statistics of ``num_samples`` samples on one device.

    Args:
        num_samples: number of samples in the data set.
        momentum: weight of the old value in the moving average and variance, in ``[0, 1)``.
            ``0`` keeps only the last loss.
        device: where the tensors live. :meth:`to` moves them.

    Example:
        >>> stats = LossStatistics(4, momentum=0.5)
        >>> stats.update(torch.tensor([0, 2]), torch.tensor([1.0, 3.0]), epoch=0)
        >>> stats.update(torch.tensor([0]), torch.tensor([3.0]), epoch=1)
        >>> stats.mean.tolist(), stats.count.tolist()
        ([2.0, 0.0, 3.0, 0.0], [2, 0, 1, 0])
    """

    def __init__(
        self, num_samples: int, momentum: float = 0.5, device: torch.device | str | None = None
    ) -> None:
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
        if (
            isinstance(momentum, bool)
            or not isinstance(momentum, (int, float))
            or not 0.0 <= momentum < 1.0
        ):
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.num_samples = num_samples
        self.momentum = float(momentum)
        device = torch.device("cpu" if device is None else device)
        self.mean = torch.zeros(num_samples, dtype=torch.float32, device=device)
        self.var = torch.zeros(num_samples, dtype=torch.float32, device=device)
        self.count = torch.zeros(num_samples, dtype=torch.int32, device=device)
        self.seen = torch.zeros(num_samples, dtype=torch.int32, device=device)
        # Non-finite losses skipped since the last call of ``pop_nonfinite``; a device scalar.
        self.nonfinite = torch.zeros((), dtype=torch.int64, device=device)
        # Forgetting events, counted once a policy reads them (track_correctness()).
        self.forgetting: ForgettingTracker | None = None

    @property
    def device(self) -> torch.device:
        return self.mean.device

    @property
    def correct(self) -> Tensor | None:
        """The packed forgetting counters (:class:`ForgettingTracker`), or ``None`` when
        correctness is not tracked."""
        return None if self.forgetting is None else self.forgetting.packed

    @property
    def bytes_per_sample(self) -> int:
        size: int = sum(getattr(self, f).element_size() for f in _FIELDS)
        return size if self.correct is None else size + self.correct.element_size()

    def to(self, device: torch.device | str) -> LossStatistics:
        """Move every tensor to ``device`` in place and return ``self``."""
        for name in (*_FIELDS, "nonfinite"):
            setattr(self, name, getattr(self, name).to(device))
        if self.forgetting is not None:
            self.forgetting.to(device)
        return self

    # ----------------------------------------------------------------- correctness
    @property
    def tracks_correctness(self) -> bool:
        """Whether :meth:`update` records per-sample correctness."""
        return self.forgetting is not None

    def track_correctness(self) -> None:
        """Record per-sample correctness from now on (4 more bytes per sample); idempotent.

        Example:
            >>> stats = LossStatistics(2)
            >>> stats.track_correctness()
            >>> stats.bytes_per_sample
            20
        """
        if self.forgetting is None:
            self.forgetting = ForgettingTracker(self.num_samples, self.device)

    def forgetting_counts(self) -> Tensor:
        """Forgetting events (correct, then incorrect at the next recorded presentation) per
        sample since the last :meth:`reset_correctness`, as float32; ``inf`` for a sample not
        classified correctly once since then.

        Raises:
            RuntimeError: if correctness is not tracked.

        Example:
            >>> stats = LossStatistics(2)
            >>> stats.track_correctness()
            >>> for c in ([True, False], [False, False]):
            ...     stats.update(torch.tensor([0, 1]), torch.ones(2), 0, correct=torch.tensor(c))
            >>> stats.forgetting_counts().tolist()
            [1.0, inf]
        """
        if self.forgetting is None:
            raise RuntimeError(
                "forgetting_counts() needs per-sample correctness: call track_correctness() "
                "before the updates (a policy with needs_correctness=True makes the sampler do it)"
            )
        return self.forgetting.scores()

    def reset_correctness(self) -> None:
        """Forget the correctness history: counts restart from the next presentation (a no-op
        when correctness is not tracked)."""
        if self.forgetting is not None:
            self.forgetting.reset()

    @torch.no_grad()
    def update(
        self,
        indices: Tensor,
        losses: Tensor,
        epoch: int,
        valid: Tensor | None = None,
        *,
        unique: bool = False,
        correct: Tensor | None = None,
        validated: bool = False,
    ) -> None:
        """Record one batch of per-sample losses (and correctness).

        Arguments are assumed to be of the right kinds and shapes and on :attr:`device` (the
        sampler checks them); only the range of ``indices`` is checked here (an ``IndexError``
        on the CPU; an asynchronous device assertion elsewhere, no host sync), so that a negative
        index is refused rather than wrapped around to the last samples.
        An index repeated within one call is recorded once, with the mean of its finite losses
        and as correct only if all of its recorded entries are, so that duplicate writes agree
        and the result is deterministic on every device.

        Args:
            indices: int64 sample indices, shape ``(B,)``.
            losses: per-sample losses, shape ``(B,)``, any floating dtype. Finite values beyond
                float32's range are recorded as float32's largest (or smallest).
            epoch: the epoch the losses belong to.
            valid: optional bool mask of entries to record (padding is excluded this way).
            unique: promise that ``indices`` holds no repeats (the sampler's own order), which
                skips the grouping of repeats: half the operations.
            correct: optional bool mask, shape ``(B,)``: whether each sample was classified
                correctly. Recorded only where the loss is finite and ``valid``, and only when
                correctness is tracked (:meth:`track_correctness`); ignored otherwise.
            validated: promise that ``indices`` are in range (the sampler's own, or already
                checked), which skips the range check.

        Raises:
            IndexError: for an index outside ``[0, num_samples)``, on the CPU.

        Example:
            >>> LossStatistics(4).update(torch.tensor([-1]), torch.ones(1), epoch=0)
            Traceback (most recent call last):
            ...
            IndexError: indices must be in [0, 4), got -1
        """
        if not validated:
            check_index_range(indices, self.num_samples)
        losses = losses.detach()
        finite = torch.isfinite(losses)
        losses = losses.to(torch.float32)
        losses = losses.clamp(-_FLOAT32_MAX, _FLOAT32_MAX)
        self.nonfinite += (~finite if valid is None else valid & ~finite).sum()
        ok = finite if valid is None else finite & valid
        tracker = self.forgetting
        if unique:
            self._write(indices, losses, ok, valid, epoch)
            if tracker is not None and correct is not None:
                tracker.record(indices, correct, ok)
            return
        # Group equal indices: sort, then give each run of equal indices one group id, and
        # give every member of a group the group's mean finite loss.
        sidx, perm = torch.sort(indices)
        ok = ok[perm]
        trained = None if valid is None else valid[perm]
        first_of_group = torch.ones_like(ok)
        first_of_group[1:] = sidx[1:] != sidx[:-1]
        group = torch.cumsum(first_of_group, 0) - 1
        zeros = torch.zeros_like(losses)
        n = zeros.index_add(0, group, ok.to(torch.float32))[group]
        # Each member adds loss / n, so that the sum of huge losses never overflows.
        share = torch.where(ok, losses[perm] / n.clamp_min(1.0), zeros)
        gmean = zeros.index_add(0, group, share)[group]
        if trained is not None:  # padding shares a group with the same sample's real entry
            trained = zeros.index_add(0, group, trained.to(torch.float32))[group] > 0
        self._write(sidx, gmean, n > 0, trained, epoch)
        if tracker is not None and correct is not None:  # correct if all recorded entries are
            hits = zeros.index_add(0, group, (ok & correct[perm]).to(torch.float32))[group]
            tracker.record(sidx, hits == n, n > 0)

    def _write(
        self, idx: Tensor, loss: Tensor, has: Tensor, trained: Tensor | None, epoch: int
    ) -> None:
        """Apply one observation ``loss`` to each sample ``idx`` where ``has`` is set, and mark
        the samples where ``trained`` is set (all if ``None``; non-finite losses included) as
        seen.

        Repeated indices must carry equal values, so that their writes agree.
        """
        mean, var, count, seen = (t[idx] for t in (self.mean, self.var, self.count, self.seen))
        a = 1.0 - self.momentum
        first = count == 0
        d = loss - mean  # may overflow to +-inf, never NaN: both are finite
        new_mean = torch.where(first, loss, (1.0 - a) * mean + a * loss)
        spread = (var + a * d * d).clamp_max(_FLOAT32_MAX)
        new_var = torch.where(first, 0.0, (1.0 - a) * spread)
        self.mean[idx] = torch.where(has, new_mean, mean)
        self.var[idx] = torch.where(has, new_var, var)
        self.count[idx] = count + has.to(torch.int32)
        if trained is None:
            self.seen[idx] = torch.full_like(seen, epoch + 1)
        else:
            self.seen[idx] = torch.where(trained, epoch + 1, seen)

    def pop_nonfinite(self, *, reset: bool = True) -> int:
        """Return the number of non-finite losses skipped since the last reset, and reset it
        (unless ``reset=False``); :func:`~dynaprune.core.nonfinite.report_nonfinite` acts on it.

        This reads a device value: call it once per epoch, not per step.
        """
        n = int(self.nonfinite.item())
        if reset:
            self.nonfinite.zero_()
        return n

    def summary(self) -> dict[str, float]:
        """Figures for logging. Reads device values: call it once per epoch.

        ``seen_samples``, distinct samples trained on so far; ``processed_samples``, updates
        recorded so far; ``score_mean`` and ``score_q10``/``q50``/``q90`` of the moving-average
        losses of samples with a recorded loss; ``nonfinite_skipped``, non-finite losses not
        recorded since the last reset (for a sampler: since the last epoch boundary, cumulative
        with ``nonfinite="ignore"``, which never resets it).
        """
        return summarize(self.mean, self.count, self.seen, self.nonfinite)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to restore the statistics, as CPU tensors (``correct`` only when
        correctness is tracked)."""
        state: dict[str, Any] = {f: getattr(self, f).detach().cpu().clone() for f in _FIELDS}
        state["nonfinite"] = self.nonfinite.detach().cpu().clone()
        if self.correct is not None:
            state["correct"] = self.correct.detach().cpu().clone()
        return state

    def tensors(self) -> dict[str, Tensor]:
        """The per-sample tensors by name, as :meth:`state_dict` names them: ``mean``, ``var``,
        ``count``, ``seen``, and ``correct`` where correctness is tracked (the live tensors:
        read them, and write through :meth:`take`)."""
        tensors = {f: getattr(self, f) for f in _FIELDS}
        if self.correct is not None:
            tensors["correct"] = self.correct
        return tensors

    def take(self, where: Tensor, values: Mapping[str, Tensor], nonfinite: Tensor) -> None:
        """Take ``values`` (one tensor per name of :meth:`tensors`, same dtypes) for the
        samples of the bool mask ``where``, and ``nonfinite`` as the count of skipped losses:
        how another copy's updates come in (:mod:`~dynaprune.core.distributed` merges ranks
        this way)."""
        for name in _FIELDS:
            setattr(self, name, torch.where(where, values[name], getattr(self, name)))
        if self.forgetting is not None:
            self.forgetting.take(where, values["correct"])
        self.nonfinite = nonfinite

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output onto the current device; nothing changes if it is
        refused.

        A state with correctness turns tracking on, whether or not the policy needs it, so that
        nothing saved is lost. A state without it, loaded while correctness is tracked, resets
        the correctness counters: that state has no history.

        Raises:
            TypeError: if ``state`` or one of its fields is not what :meth:`state_dict` writes.
            ValueError: if a field has another length than this data set, or impossible values
                (negative counts, a negative or non-finite variance, a non-finite mean).
        """
        current = {f: getattr(self, f) for f in _FIELDS}
        tensors, nonfinite = check_statistics_state(state, current, self.num_samples)
        correct = tensors.pop("correct", None)
        for name, value in tensors.items():
            like = current[name]
            setattr(self, name, value.to(device=like.device, dtype=like.dtype).clone())
        if correct is not None:  # validated: loading it cannot fail
            tracker = ForgettingTracker(self.num_samples, self.device)
            tracker.load_state_dict({"packed": correct})
            self.forgetting = tracker
        else:
            self.reset_correctness()
        self.nonfinite = torch.tensor(nonfinite, dtype=torch.int64, device=self.device)
