"""In-batch selection: forward the whole batch without gradients, back-propagate a chosen part.

The epoch-level policies choose which samples an epoch loads. In-batch selection chooses, inside
each loaded batch, which rows the backward pass sees, from the per-sample losses of a forward
pass without gradients. That forward pass gives *every* sample of the batch a fresh loss: feed
all of them to :meth:`DynamicPruningSampler.update <dynaprune.DynamicPruningSampler.update>`
and the epoch-level statistics are never stale for the samples that were loaded.

Rules, each a pure function of one batch's losses returning exactly ``round(keep * B)`` row
indices (int64, ascending, on the losses' device, no host sync):

* :func:`selective_backprop` — Selective Backprop (Jiang et al., "Accelerating Deep Learning by
  Focusing on the Biggest Losers", arXiv 1910.00762, 2019), in the form of Composer's
  ``algorithms/selective_backprop/selective_backprop.py: select_using_loss``: rows ranked by
  loss, each drawn without replacement with probability proportional to its loss percentile
  ``((rank + 0.5) / B) ** (1 / keep - 1)``. Composer draws with ``np.random.choice``; here the
  same distribution (successive sampling without replacement) is drawn on the device with the
  Gumbel-top-k trick from a local generator.
* :func:`rho` — RHO-LOSS's in-batch rule (Mindermann et al., "Prioritized Training on Points
  that are Learnable, Worth Learning, and Not Yet Learnt", ICML 2022; OATML/RHO-Loss
  ``src/curricula/selection_methods.py: reducible_loss_selection``): the rows of highest
  reducible loss, training loss minus irreducible loss (:mod:`dynaprune.reducible`).
* :func:`uniform` — a uniform random subset of the rows: the control.

Non-finite losses rank below every finite one (such a row is chosen only when the budget needs
it): back-propagating an infinite or NaN loss would corrupt the step.

:class:`InBatchSelector` wraps a rule with a seeded generator, a schedule (Composer's ``start``,
``end`` and ``interrupt``) and a checkpointable state, as Composer pairs ``select_using_loss``
with its ``SelectiveBackprop`` algorithm. Under DDP each rank selects within its own batch.

Example (a plain loop; ``criterion`` returns per-sample losses)::

    selector = InBatchSelector("selective_backprop", keep=0.5)
    for x, y in loader:
        with torch.no_grad():
            losses = criterion(model(x), y)
        sampler.update(losses)                 # every sample's loss, fresh
        rows = selector.select(losses)         # exactly round(0.5 * len(y)) rows
        criterion(model(x[rows]), y[rows]).mean().backward()
        opt.step(); opt.zero_grad()
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from dynaprune._checks import check_choice, check_count, check_fraction, check_losses

__all__ = ["RULES", "InBatchSelector", "num_rows", "rho", "selective_backprop", "uniform"]

#: The rules :class:`InBatchSelector` knows, by name.
RULES = ("selective_backprop", "rho", "uniform")


def num_rows(batch_size: int, keep: float) -> int:
    """``round(keep * batch_size)``, the rows a rule keeps; at least one.

    Raises:
        ValueError: if ``keep`` is not in ``(0, 1]`` or the batch is too small to keep a row.
    """
    keep = check_fraction("keep", keep, open_low=True, open_high=False)
    k = round(keep * batch_size)
    if k < 1:
        raise ValueError(
            f"keep={keep!r} of a batch of {batch_size} keeps no row; use a larger batch or keep"
        )
    return k


def _ranked(losses: Tensor) -> Tensor:
    """The losses as float32 with non-finite entries below every finite one."""
    x = check_losses(losses).detach().to(torch.float32)
    return torch.where(torch.isfinite(x), x, torch.full_like(x, -math.inf))


def _rows(top: Tensor) -> Tensor:
    return top.sort().values


def uniform(losses: Tensor, keep: float, generator: torch.Generator | None = None) -> Tensor:
    """A uniform random ``round(keep * B)`` of the rows (the control).

    Example:
        >>> uniform(torch.rand(8), 0.5, torch.Generator().manual_seed(0)).numel()
        4
    """
    x = check_losses(losses)
    k = num_rows(x.numel(), keep)
    perm = torch.randperm(x.numel(), generator=generator, device=x.device)
    return _rows(perm[:k])


def selective_backprop(
    losses: Tensor, keep: float, generator: torch.Generator | None = None
) -> Tensor:
    """Selective Backprop's draw: rows by loss percentile, ``P ∝ percentile ** (1/keep - 1)``.

    Args:
        losses: the batch's per-sample losses, shape ``(B,)``.
        keep: share of the rows to keep, in ``(0, 1]``; ``1`` keeps all.
        generator: the source of randomness (on the losses' device); ``None``: the global one.

    Example:
        >>> rows = selective_backprop(torch.arange(10.0), 0.3, torch.Generator().manual_seed(0))
        >>> rows.numel()
        3
    """
    x = _ranked(losses)
    n = x.numel()
    k = num_rows(n, keep)
    if k == n:
        return torch.arange(n, device=x.device)
    order = x.argsort(stable=True)  # ascending: the rank-j loss has percentile (j + 0.5) / n
    percentile = (torch.arange(n, device=x.device, dtype=torch.float32) + 0.5) / n
    # log(p ** (1/keep - 1)) plus Gumbel noise; the k largest are a draw without replacement.
    u = torch.rand(n, generator=generator, device=x.device).clamp_(min=1e-20)
    keys = percentile.log_().mul_(1.0 / keep - 1.0).sub_(u.log_().neg_().log_())
    return _rows(order[keys.topk(k).indices])


def rho(losses: Tensor, irreducible: Tensor, keep: float) -> Tensor:
    """RHO-LOSS: the ``round(keep * B)`` rows of highest reducible loss ``loss - irreducible``.

    Args:
        losses: the batch's per-sample training losses, shape ``(B,)``.
        irreducible: the same samples' irreducible losses (e.g. ``il[indices]`` from
            :func:`dynaprune.reducible.irreducible_losses`), shape ``(B,)``.
        keep: share of the rows to keep, in ``(0, 1]``.

    Example:
        >>> rho(torch.tensor([3.0, 2.0, 1.0]), torch.tensor([2.9, 0.0, 0.0]), 0.34).tolist()
        [1]
    """
    x = _ranked(losses)
    if not isinstance(irreducible, Tensor) or irreducible.shape != x.shape:
        what = (
            f"shape {tuple(irreducible.shape)}"
            if isinstance(irreducible, Tensor)
            else type(irreducible).__name__
        )
        raise ValueError(f"irreducible must be a tensor of shape {tuple(x.shape)}, got {what}")
    k = num_rows(x.numel(), keep)
    il = irreducible.detach().to(x.device, torch.float32)
    reducible = torch.where(torch.isfinite(il), x - il, torch.full_like(x, -math.inf))
    return _rows(reducible.nan_to_num(nan=-math.inf).topk(k).indices)


class InBatchSelector:
    """A rule with a seeded generator, a schedule and a state to checkpoint.

    Args:
        rule: one of :data:`RULES`.
        keep: share of each selected batch's rows to back-propagate, in ``(0, 1]``.
        start, end: select only while the training progress (``0`` to ``1``) is in
            ``[start, end)``; outside, :meth:`select` returns ``None`` (train on the whole
            batch). Default: every step, so that every step costs the same exact budget.
            Composer's selective backprop uses ``start=0.5, end=0.9, interrupt=2``.
        interrupt: every ``interrupt``-th step inside the interval is an ordinary step
            (``0``: none).
        seed: seeds step ``s``'s generator with ``(seed, s)``: the same rows for the same
            losses whatever the history, and an exact resume from :meth:`state_dict`.

    Example:
        >>> selector = InBatchSelector("uniform", keep=0.25, seed=1)
        >>> selector.select(torch.rand(8)).numel()
        2
    """

    def __init__(
        self,
        rule: str = "selective_backprop",
        keep: float = 0.5,
        *,
        start: float = 0.0,
        end: float = 1.0,
        interrupt: int = 0,
        seed: int = 0,
    ) -> None:
        self.rule = check_choice("rule", rule, RULES)
        self.keep = check_fraction("keep", keep, open_low=True, open_high=False)
        self.start = check_fraction("start", start, open_low=False, open_high=False)
        self.end = check_fraction("end", end, open_low=False, open_high=False)
        if self.end <= self.start:
            raise ValueError(f"end must be > start={start!r}, got {end!r}")
        self.interrupt = check_count("interrupt", interrupt, 0)
        self.seed = check_count("seed", seed, 0)
        self.step = 0
        self._generator: torch.Generator | None = None

    def active(self, progress: float | None = None) -> bool:
        """Whether the next call of :meth:`select` selects (Composer's
        ``should_selective_backprop``, counting steps from this selector's first)."""
        if progress is not None:
            progress = check_fraction("progress", progress, open_low=False, open_high=False)
            if not self.start <= progress < self.end and not (progress == self.end == 1.0):
                return False
        return self.interrupt == 0 or (self.step + 1) % self.interrupt != 0

    def select(
        self,
        losses: Tensor,
        irreducible: Tensor | None = None,
        *,
        progress: float | None = None,
    ) -> Tensor | None:
        """The rows to back-propagate, or ``None`` for an ordinary step on the whole batch.

        Args:
            losses: the batch's per-sample losses, shape ``(B,)``.
            irreducible: the batch's irreducible losses; required by ``rule="rho"``.
            progress: the share of training done, in ``[0, 1]``, for ``start``/``end``;
                ``None`` counts as inside the interval.
        """
        active = self.active(progress)
        step, self.step = self.step, self.step + 1
        if not active:
            return None
        if self.rule == "rho":
            if irreducible is None:
                raise ValueError("rule 'rho' needs irreducible=, one irreducible loss per row")
            return rho(losses, irreducible, self.keep)
        if irreducible is not None:
            raise ValueError(f"rule {self.rule!r} takes no irreducible losses")
        generator = self._generator_on(check_losses(losses).device, step)
        if self.rule == "uniform":
            return uniform(losses, self.keep, generator)
        return selective_backprop(losses, self.keep, generator)

    def _generator_on(self, device: torch.device, step: int) -> torch.Generator:
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device)
        # One stream per (seed, step), as the sampler seeds one per (seed, epoch).
        return self._generator.manual_seed(self.seed * 1_000_003 + step)

    def state_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "keep": self.keep, "step": self.step}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the step count; the rule and keep must match this selector's."""
        for key in ("rule", "keep"):
            if state.get(key) != getattr(self, key):
                raise ValueError(
                    f"state_dict has {key}={state.get(key)!r}, this selector {getattr(self, key)!r}"
                )
        self.step = check_count("state_dict['step']", state.get("step"), 0)

    def __repr__(self) -> str:
        return (
            f"InBatchSelector(rule={self.rule!r}, keep={self.keep}, start={self.start}, "
            f"end={self.end}, interrupt={self.interrupt}, seed={self.seed})"
        )
