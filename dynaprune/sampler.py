"""The drop-in sampler: each epoch, train on the samples that still matter.

:class:`DynamicPruningSampler` is a :class:`torch.utils.data.Sampler` over a map-style data
set. Before every epoch it asks its policy for exactly ``round(keep_ratio * N)`` samples
(warm-up and final annealing epochs use them all), shuffles them with a generator seeded from
``(seed, epoch)``, and yields this rank's shard. :meth:`DynamicPruningSampler.update` records
each batch's per-sample losses in device-resident statistics without a host sync, and returns
the loss to backpropagate.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterator, Mapping, Sized
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import Sampler

from dynaprune.distributed import all_reduce_statistics, resolve_replicas, shard_length
from dynaprune.plan import EpochPlan
from dynaprune.policies import PruningPolicy, make_policy
from dynaprune.statistics import LossStatistics

__all__ = ["DynamicPruningSampler"]

_NONFINITE_MODES = ("warn", "raise", "ignore")
_STATE_VERSION = 1


def _check_count(name: str, value: Any, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _epoch_seed(seed: int, epoch: int) -> int:
    # Mixed with odd constants, so that nearby (seed, epoch) pairs do not share a stream the
    # way seed + epoch does (seed 0, epoch 1 and seed 1, epoch 0).
    return (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + 1) % (1 << 63)


def _same_device(a: torch.device, b: torch.device) -> bool:
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)


class DynamicPruningSampler(Sampler[int]):
    """Yields, each epoch, a loss-driven subset of a data set's indices.

    Args:
        data_source: the map-style data set (only its length is used) or its length.
        keep_ratio: share of the data set kept in a pruned epoch, in ``(0, 1]``; ``1`` trains on
            all of it. A pruned epoch keeps exactly ``round(keep_ratio * N)`` samples.
        policy: a name in :data:`dynaprune.policies.POLICIES` or a
            :class:`~dynaprune.policies.PruningPolicy`.
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
        nonfinite: what to do, at the next epoch boundary, about NaN or infinite losses skipped
            during an epoch: ``"warn"``, ``"raise"`` (a ``FloatingPointError``, on every rank)
            or ``"ignore"``.
        process_group: the data-parallel group whose ranks share each epoch, for runs that
            also shard the model (default: the whole world).

    Attributes:
        stats: the :class:`~dynaprune.statistics.LossStatistics`.
        timings: cumulative host seconds spent in selection (``select_seconds``) and in
            :meth:`update` (``update_seconds``); on CUDA the latter is launch time, since the
            per-step work runs asynchronously.

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
        if isinstance(data_source, int) and not isinstance(data_source, bool):
            n = data_source
        elif isinstance(data_source, Sized):
            n = len(data_source)
        else:
            raise TypeError(
                "data_source must be a sized data set or its length, "
                f"got {type(data_source).__name__}"
            )
        if n < 1:
            raise ValueError(f"data_source must hold at least one sample, got length {n}")
        if (
            isinstance(keep_ratio, bool)
            or not isinstance(keep_ratio, (int, float))
            or not 0.0 < keep_ratio <= 1.0
        ):
            raise ValueError(f"keep_ratio must be in (0, 1], got {keep_ratio!r}")
        num_keep = round(keep_ratio * n)
        if num_keep < 1:
            raise ValueError(
                f"keep_ratio={keep_ratio!r} of {n} samples keeps round({keep_ratio * n}) = 0; "
                "raise keep_ratio"
            )
        self.seed = _check_count("seed", seed)
        self.warmup_epochs = _check_count("warmup_epochs", warmup_epochs)
        self.anneal_epochs = _check_count("anneal_epochs", anneal_epochs)
        if total_epochs is not None:
            _check_count("total_epochs", total_epochs, minimum=1)
        if self.anneal_epochs and total_epochs is None:
            raise ValueError(
                f"anneal_epochs={anneal_epochs!r} needs total_epochs, the length of the run"
            )
        if total_epochs is not None and self.anneal_epochs > total_epochs:
            raise ValueError(
                f"anneal_epochs={anneal_epochs!r} exceeds total_epochs={total_epochs!r}"
            )
        if nonfinite not in _NONFINITE_MODES:
            raise ValueError(
                f"nonfinite must be one of {list(_NONFINITE_MODES)}, got {nonfinite!r}"
            )
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last must be a bool, got {drop_last!r}")
        self.num_samples = n
        self.keep_ratio = float(keep_ratio)
        self.num_keep = num_keep
        self.policy = make_policy(policy)
        self.total_epochs = total_epochs
        resolve_replicas(num_replicas, rank, process_group)  # validates what was given
        self._replicas_arg = (num_replicas, rank, process_group)
        self.process_group = process_group
        self.drop_last = drop_last
        self.nonfinite = nonfinite
        self._device_fixed = device is not None
        self.stats = LossStatistics(n, momentum, _resolve_device(device))
        self.epoch = 0
        self._warned_no_group = False
        self.timings = {"select_seconds": 0.0, "update_seconds": 0.0}
        self._plan: EpochPlan | None = None
        self._resuming = False

    # ----------------------------------------------------------------- epochs and lengths
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
        if self.num_keep == self.num_samples or epoch < self.warmup_epochs:
            return False
        return not (self.anneal_epochs and epoch >= self.total_epochs - self.anneal_epochs)

    def epoch_size(self, epoch: int) -> int:
        """Samples that ``epoch`` trains on, over all ranks (padding not counted)."""
        return self.num_keep if self.is_pruned(epoch) else self.num_samples

    def epoch_length(self, epoch: int) -> int:
        """Samples this rank yields in ``epoch`` (padding counted)."""
        return shard_length(self.epoch_size(epoch), self.num_replicas, self.drop_last)

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
            epochs: epochs in the run; defaults to ``total_epochs``.
            drop_last: the DataLoader's ``drop_last``.
            accumulate_grad_batches: batches per optimizer step; a partial group at the end of
                an epoch still steps, as in Lightning.

        Example:
            >>> s = DynamicPruningSampler(1000, 0.5, warmup_epochs=1, total_epochs=3)
            >>> s.total_steps(batch_size=100)   # 10 + 5 + 5
            20
        """
        _check_count("batch_size", batch_size, minimum=1)
        _check_count("accumulate_grad_batches", accumulate_grad_batches, minimum=1)
        epochs = self.total_epochs if epochs is None else _check_count("epochs", epochs)
        if epochs is None:
            raise ValueError("epochs must be given when the sampler has no total_epochs")
        steps = 0
        for epoch in range(epochs):
            length = self.epoch_length(epoch)
            batches = length // batch_size if drop_last else math.ceil(length / batch_size)
            steps += math.ceil(batches / accumulate_grad_batches)
        return steps

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that the next iteration plans (call it before every epoch)."""
        self.epoch = _check_count("epoch", epoch)

    # ----------------------------------------------------------------- selection
    @property
    def planned_epoch(self) -> int | None:
        """The epoch of the current plan, or ``None`` before the first iteration."""
        return None if self._plan is None else self._plan.epoch

    @property
    def resuming(self) -> bool:
        """Whether a restored mid-epoch plan waits to be continued by the next iteration."""
        return self._resuming

    def synchronize(self) -> None:
        """Merge the ranks' statistics of the current epoch so far (a collective).

        The next epoch's planning calls it, and so does :meth:`state_dict`; call it yourself to
        read merged statistics mid-epoch. With one replica, or nothing new to merge, it does
        nothing. Every rank must have called :meth:`update` equally often (as data-parallel
        training does), since that count decides whether the collective runs.
        """
        plan = self._plan
        if plan is None or plan.owned is None or plan.updates == plan.merged_updates:
            return
        plan.merged_updates = plan.updates
        if not (dist.is_available() and dist.is_initialized()):
            if not self._warned_no_group:
                self._warned_no_group = True
                warnings.warn(
                    f"num_replicas={self.num_replicas} but torch.distributed is not initialised: "
                    "each rank keeps its own statistics, and ranks may choose different subsets",
                    RuntimeWarning,
                    stacklevel=3,
                )
            return
        world = dist.get_world_size(self.process_group)
        if world != self.num_replicas:
            raise ValueError(
                f"num_replicas={self.num_replicas} but the process group has {world} ranks: "
                "pass process_group= the data-parallel group whose ranks share each epoch"
            )
        all_reduce_statistics(self.stats, plan.owned, plan.epoch, self.process_group)

    def _make_plan(self, epoch: int) -> None:
        if self.epoch_length(epoch) == 0:
            raise ValueError(
                f"epoch {epoch} keeps {self.epoch_size(epoch)} samples, fewer than the "
                f"{self.num_replicas} ranks, so drop_last=True leaves every rank none; "
                "raise keep_ratio or set drop_last=False"
            )
        start = time.perf_counter()
        self.synchronize()
        self._report_nonfinite()
        device = self.stats.device
        generator = torch.Generator(device=device).manual_seed(_epoch_seed(self.seed, epoch))
        weights = None
        if self.is_pruned(epoch):
            selection = self.policy.select(self.stats, self.num_keep, generator)
            order, weights = selection.indices, selection.weights
            if order.numel() != self.num_keep:
                raise RuntimeError(
                    f"{self.policy!r} returned {order.numel()} indices, expected {self.num_keep}"
                )
            if not selection.shuffled:
                perm = torch.randperm(order.numel(), generator=generator, device=device)
                order = order.index_select(0, perm)
                weights = None if weights is None else weights.index_select(0, perm)
        else:
            order = torch.randperm(self.num_samples, generator=generator, device=device)
        self._set_plan(epoch, order, weights)
        self.timings["select_seconds"] += time.perf_counter() - start

    def _set_plan(self, epoch: int, order: Tensor, weights: Tensor | None, cursor: int = 0) -> None:
        self._plan = EpochPlan.build(
            epoch,
            order,
            weights,
            num_samples=self.num_samples,
            num_replicas=self.num_replicas,
            rank=self.rank,
            drop_last=self.drop_last,
            cursor=cursor,
        )
        self._resuming = False

    def _report_nonfinite(self) -> None:
        if self.nonfinite == "ignore" or self._plan is None:
            return
        skipped = self.stats.pop_nonfinite()
        if skipped:
            msg = (
                f"{skipped} non-finite per-sample losses in epoch {self._plan.epoch} were not "
                "recorded in the statistics"
            )
            if self.nonfinite == "raise":
                raise FloatingPointError(msg)
            warnings.warn(msg, RuntimeWarning, stacklevel=3)

    def __iter__(self) -> Iterator[int]:
        if self._resuming and self._plan.epoch == self.epoch:
            self._resuming = False  # continue the checkpointed epoch where it stopped
        else:
            self._make_plan(self.epoch)
        plan = self._plan
        return _hand_off(plan.shard[plan.cursor :])

    # ----------------------------------------------------------------- feedback
    def to(self, device: torch.device | str) -> DynamicPruningSampler:
        """Move the statistics and the epoch's plan to ``device`` and keep them there.

        Later losses must come from that device.
        """
        device = _resolve_device(device)
        self.stats.to(device)
        if self._plan is not None:
            self._plan.to(device)
        self._device_fixed = True
        return self

    def _ensure_device(self, device: torch.device) -> None:
        if _same_device(device, self.stats.device):
            return
        if self._device_fixed:
            raise ValueError(
                f"losses are on {device}, but the statistics live on {self.stats.device}; "
                "pass losses from one device (or move the sampler with .to(device))"
            )
        self.to(device)

    def _check_losses(self, losses: Any) -> Tensor:
        if not isinstance(losses, Tensor):
            raise TypeError(f"losses must be a torch.Tensor, got {type(losses).__name__}")
        if losses.ndim != 1 or not losses.is_floating_point() or losses.numel() == 0:
            raise ValueError(
                "losses must be a non-empty 1-D floating tensor of per-sample losses "
                f"(reduction='none'), got shape {tuple(losses.shape)} and dtype {losses.dtype}"
            )
        return losses

    def _check_indices(self, indices: Any, size: int) -> Tensor:
        indices = torch.as_tensor(indices)
        if indices.is_floating_point() or indices.is_complex() or indices.dtype == torch.bool:
            raise TypeError(f"indices must be an integer tensor, got dtype {indices.dtype}")
        if indices.shape != (size,):
            raise ValueError(
                f"indices must have shape ({size},) like losses, got {tuple(indices.shape)}"
            )
        if indices.device.type == "cpu":
            bad = (indices < 0) | (indices >= self.num_samples)
            if bad.any():
                raise IndexError(
                    f"indices must be in [0, {self.num_samples}), got {indices[bad][0].item()}"
                )
        else:  # checking on the device would need a host sync; this fails asynchronously
            ok = ((indices >= 0) & (indices < self.num_samples)).all()
            torch._assert_async(ok, f"indices must be in [0, {self.num_samples})")
        # Asynchronous only from the host: a device-to-host copy must finish before use.
        host = indices.device.type == "cpu"
        return indices.to(self.stats.device, torch.int64, non_blocking=host)

    def _current_plan(self) -> EpochPlan:
        if self._plan is None:
            raise RuntimeError(
                "update() was called before the sampler was iterated; iterate the DataLoader "
                "that holds this sampler first"
            )
        return self._plan

    def batch_weights(self, batch: Tensor | int, indices: Tensor | None = None) -> Tensor:
        """Loss weights of the next batch, without recording anything.

        Args:
            batch: the batch's per-sample losses (the weights then come on their device and
                dtype) or the batch size.
            indices: the batch's sample indices, if losses are not matched by position.

        Returns:
            A 1-D tensor of weights: ones unless the policy re-weights (``soft``).
        """
        size = batch.shape[0] if isinstance(batch, Tensor) else _check_count("batch", batch, 1)
        if isinstance(batch, Tensor):
            self._ensure_device(batch.device)
        plan = self._current_plan()
        if indices is None:
            pos = plan.positions(size)
            weights = None if plan.shard_weights is None else plan.shard_weights[pos]
        else:
            weights = plan.weights_of(self._check_indices(indices, size), self.num_samples)
        if weights is None:
            weights = torch.ones(size, device=self.stats.device)
        return weights.to(batch.dtype) if isinstance(batch, Tensor) else weights

    def update(self, losses: Tensor, indices: Tensor | None = None) -> Tensor:
        """Record a batch's per-sample losses and return the loss to backpropagate.

        Args:
            losses: per-sample losses, shape ``(B,)`` (``reduction="none"``), with or without
                grad. Non-finite entries are not recorded, only counted.
            indices: the samples' indices. Without them, losses are matched to this epoch's
                order, batch after batch, as the DataLoader delivers it. With several ranks,
                losses of samples outside this rank's shard are not recorded (they belong to
                the rank that owns them).

        Returns:
            The mean of ``losses`` (weighted by :meth:`batch_weights` for re-weighting
            policies), keeping the autograd graph; non-finite entries are not masked in it.
        """
        start = time.perf_counter()
        losses = self._check_losses(losses)
        self._ensure_device(losses.device)
        plan = self._current_plan()
        if indices is None:
            idx, weights, valid = plan.take(losses.shape[0])
        else:
            idx = self._check_indices(indices, losses.shape[0])
            weights = plan.weights_of(idx, self.num_samples)
            valid = None if plan.owned is None else plan.owned[idx]
            # The loader follows this sampler's order, so a mid-epoch checkpoint resumes after
            # as many samples as were recorded.
            plan.cursor = min(plan.cursor + losses.shape[0], plan.shard.numel())
        # The plan's order repeats no sample, except in padding, which ``valid`` masks.
        unique = indices is None and valid is None
        self.stats.update(idx, losses, plan.epoch, valid, unique=unique)
        plan.updates += 1
        loss = losses.mean() if weights is None else (losses * weights.to(losses.dtype)).mean()
        self.timings["update_seconds"] += time.perf_counter() - start
        return loss

    def summary(self) -> dict[str, float]:
        """Figures of the current epoch, for logging (reads device values: once per epoch).

        ``kept_fraction`` of the data set trained on this epoch; ``seen_samples``, distinct
        samples trained on so far; ``processed_samples``, updates recorded so far;
        ``score_mean`` and ``score_q10``/``q50``/``q90`` of the moving-average losses of seen
        samples; ``nonfinite_skipped``, non-finite losses not recorded since the last epoch
        boundary (over all ranks after :meth:`synchronize`; cumulative with
        ``nonfinite="ignore"``, which never resets it).
        """
        stats = self.stats
        seen = stats.count > 0
        scores = stats.mean[seen]
        if scores.numel() > 1 << 20:  # quantile's input limit; a strided sample is plenty
            scores = scores[:: scores.numel() // (1 << 20) + 1]
        q = torch.tensor([0.1, 0.5, 0.9], device=scores.device)
        quantiles = torch.quantile(scores, q).tolist() if scores.numel() else [float("nan")] * 3
        return {
            "kept_fraction": self.epoch_size(self.epoch) / self.num_samples,
            "seen_samples": float(seen.sum().item()),
            "processed_samples": float(stats.count.sum(dtype=torch.int64).item()),
            "score_mean": float(scores.mean().item()) if scores.numel() else float("nan"),
            "score_q10": quantiles[0],
            "score_q50": quantiles[1],
            "score_q90": quantiles[2],
            "nonfinite_skipped": float(stats.nonfinite.item()),
        }

    # ----------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue: statistics, epoch and the current epoch's plan.

        With several ranks this first merges their statistics (:meth:`synchronize`), so every
        rank must call it, as Lightning does when it saves a checkpoint: call it on every rank
        and save the result on rank 0.
        """
        self.synchronize()
        return {
            "version": _STATE_VERSION,
            "num_samples": self.num_samples,
            "keep_ratio": self.keep_ratio,
            "seed": self.seed,
            "policy": repr(self.policy),
            "num_replicas": self.num_replicas,
            "device_type": self.stats.device.type,
            "epoch": self.epoch,
            "stats": self.stats.state_dict(),
            "plan": None if self._plan is None else self._plan.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output.

        A state saved at an epoch boundary continues exactly as the uninterrupted run. A state
        saved mid-epoch resumes that epoch's plan after the last recorded batch: the next
        iteration of the same epoch yields only the samples not yet recorded.

        The statistics go to the device they were saved from when this sampler's device is not
        fixed yet, since the random draws of the next epochs depend on the device's generator.
        The configuration (keep ratio, policy, seed, ...) is this sampler's own: an epoch-boundary
        state may be continued with another one.

        Raises:
            ValueError: if the state belongs to a data set of another size, or is mid-epoch and
                that epoch's size or the number of ranks differs under this configuration.
        """
        n = state.get("num_samples")
        if n != self.num_samples:
            raise ValueError(
                f"state_dict is for a data set of {n} samples, but this sampler has "
                f"{self.num_samples}"
            )
        plan = state.get("plan")
        if plan is not None and int(plan.get("cursor", 0)) < _shard_size(state, plan):
            size, expected = plan["order"].numel(), self.epoch_size(int(plan["epoch"]))
            if size != expected:
                raise ValueError(
                    f"state_dict stopped mid-way through epoch {plan['epoch']} of {size} "
                    f"samples, but this sampler's epoch {plan['epoch']} has {expected}: resume "
                    "with the same keep_ratio, warmup_epochs and anneal_epochs"
                )
            saved = state.get("num_replicas", self.num_replicas)
            if saved != self.num_replicas:
                raise ValueError(
                    f"state_dict stopped mid-epoch with num_replicas={saved}, but this sampler "
                    f"has {self.num_replicas}; resume mid-epoch on as many ranks"
                )
        device_type = state.get("device_type", "cpu")
        if not self._device_fixed and device_type != self.stats.device.type:
            if device_type == "cuda" and torch.cuda.is_available():
                self.to("cuda")
            else:
                warnings.warn(
                    f"state_dict was saved with statistics on {device_type}, which is not "
                    f"available; continuing on {self.stats.device} draws other subsets",
                    RuntimeWarning,
                    stacklevel=2,
                )
        self.stats.load_state_dict(state["stats"])
        self.epoch = int(state.get("epoch", 0))
        self._plan, self._resuming = None, False
        if plan is not None:
            device = self.stats.device
            weights = plan.get("weights")
            self._set_plan(
                int(plan["epoch"]),
                plan["order"].to(device),
                None if weights is None else weights.to(device),
                int(plan.get("cursor", 0)),
            )
            self._resuming = self._plan.remaining > 0


def _shard_size(state: Mapping[str, Any], plan: Mapping[str, Any]) -> int:
    """Entries of the saved plan's shard on the rank that saved it."""
    size, replicas = plan["order"].numel(), int(state.get("num_replicas", 1))
    return math.ceil(size / replicas)


def _hand_off(order: Tensor) -> Iterator[int]:
    """Yield ``order`` as Python ints, as the DataLoader needs them.

    The one device-to-host copy per epoch; converted in chunks, so that a huge epoch never
    becomes one Python list.
    """
    for chunk in order.cpu().split(1 << 16):
        yield from chunk.tolist()


def _resolve_device(device: torch.device | str | None) -> torch.device:
    if device is None:
        return torch.device("cpu")
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device
