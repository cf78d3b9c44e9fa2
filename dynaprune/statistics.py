"""Per-sample loss statistics that live on the training device.

Four tensors of ``N`` elements each, 16 bytes per sample in all:

============  =========  ==========================================================
``mean``      float32    exponential moving average of the sample's loss
``var``       float32    exponentially weighted moving variance of the loss
``count``     int32      number of updates the sample has received
``seen``      int32      ``1 + epoch`` of the sample's last update, ``0`` = never
============  =========  ==========================================================

With ``a = 1 - momentum`` and ``d = loss - mean``, one update is (West, 1979)::

    mean <- mean + a * d
    var  <- (1 - a) * (var + a * d**2)

and the first update of a sample sets ``mean = loss`` and ``var = 0``.

:meth:`LossStatistics.update` is a handful of index operations under ``torch.no_grad()``.
It never reads a value back to the host, so it does not synchronise a CUDA stream.
Non-finite losses are masked on the device and only counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

__all__ = ["LossStatistics"]

_FIELDS = ("mean", "var", "count", "seen")


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
        # With several ranks, ``nonfinite_merged`` is the part already summed over all ranks.
        self.nonfinite = torch.zeros((), dtype=torch.int64, device=device)
        self.nonfinite_merged = torch.zeros((), dtype=torch.int64, device=device)

    @property
    def device(self) -> torch.device:
        return self.mean.device

    @property
    def bytes_per_sample(self) -> int:
        return sum(getattr(self, f).element_size() for f in _FIELDS)

    def to(self, device: torch.device | str) -> LossStatistics:
        """Move every tensor to ``device`` in place and return ``self``."""
        for name in (*_FIELDS, "nonfinite", "nonfinite_merged"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    @torch.no_grad()
    @torch.no_grad()
    def update(
        self,
        indices: Tensor,
        losses: Tensor,
        epoch: int,
        valid: Tensor | None = None,
        *,
        unique: bool = False,
    ) -> None:
        """Record one batch of per-sample losses.

        Arguments are assumed validated (the sampler does it) and on :attr:`device`.
        An index repeated within one call is recorded once, with the mean of its finite losses,
        so that duplicate writes agree and the result is deterministic on every device.

        Args:
            indices: int64 sample indices, shape ``(B,)``.
            losses: per-sample losses, shape ``(B,)``, any floating dtype.
            epoch: the epoch the losses belong to.
            valid: optional bool mask of entries to record (padding is excluded this way).
            unique: promise that ``indices`` holds no repeats (the sampler's own order), which
                skips the grouping of repeats: half the operations.
        """
        losses = losses.detach().to(torch.float32)
        finite = torch.isfinite(losses)
        self.nonfinite += (~finite if valid is None else valid & ~finite).sum()
        ok = finite if valid is None else finite & valid
        if unique:
            self._write(indices, losses, ok, epoch)
            return
        # Group equal indices: sort, then give each run of equal indices one group id, and
        # give every member of a group the group's mean finite loss.
        sidx, perm = torch.sort(indices)
        ok = ok[perm]
        first_of_group = torch.ones_like(ok)
        first_of_group[1:] = sidx[1:] != sidx[:-1]
        group = torch.cumsum(first_of_group, 0) - 1
        zeros = torch.zeros_like(losses)
        gsum = zeros.index_add(0, group, torch.where(ok, losses[perm], zeros))
        gcnt = zeros.index_add(0, group, ok.to(torch.float32))
        n = gcnt[group]
        self._write(sidx, gsum[group] / n.clamp_min(1.0), n > 0, epoch)

    def _write(self, idx: Tensor, loss: Tensor, has: Tensor, epoch: int) -> None:
        """Apply one observation ``loss`` to each sample ``idx`` where ``has`` is set.

        Repeated indices must carry equal values, so that their writes agree.
        """
        mean, var, count, seen = (t[idx] for t in (self.mean, self.var, self.count, self.seen))
        a = 1.0 - self.momentum
        first = count == 0
        d = loss - mean
        new_mean = torch.where(first, loss, mean + a * d)
        new_var = torch.where(first, 0.0, (1.0 - a) * (var + a * d * d))
        self.mean[idx] = torch.where(has, new_mean, mean)
        self.var[idx] = torch.where(has, new_var, var)
        self.count[idx] = count + has.to(torch.int32)
        self.seen[idx] = torch.where(has, epoch + 1, seen)

    def pop_nonfinite(self) -> int:
        """Return the number of non-finite losses skipped since the last call, and reset it.

        This reads a device value: call it once per epoch, not per step.
        """
        n = int(self.nonfinite.item())
        self.nonfinite.zero_()
        self.nonfinite_merged.zero_()
        return n

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to restore the statistics, as CPU tensors."""
        state: dict[str, Any] = {f: getattr(self, f).detach().cpu().clone() for f in _FIELDS}
        state["nonfinite"] = self.nonfinite.detach().cpu().clone()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output onto the current device."""
        missing = [f for f in _FIELDS if f not in state]
        if missing:
            raise KeyError(f"statistics state_dict lacks {missing}")
        n = state["mean"].numel()
        if n != self.num_samples:
            raise ValueError(
                f"statistics state_dict holds {n} samples, but this data set has {self.num_samples}"
            )
        for name in _FIELDS:
            current = getattr(self, name)
            setattr(self, name, state[name].to(device=current.device, dtype=current.dtype).clone())
        nonfinite = torch.as_tensor(state.get("nonfinite", 0), dtype=torch.int64).to(self.device)
        # A saved count is either a single process's or already merged over all ranks.
        self.nonfinite, self.nonfinite_merged = nonfinite, nonfinite.clone()
