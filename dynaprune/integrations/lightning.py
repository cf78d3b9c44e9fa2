"""PyTorch Lightning integration: :class:`DynamicPruningCallback`.

Three lines for a user who has a LightningModule and a DataLoader::

    loader = DataLoader(train_set, batch_size=256, sampler=DynamicPruningSampler(train_set, 0.5))
    trainer = Trainer(callbacks=[DynamicPruningCallback()])
    # in training_step:  return {"loss": losses.mean(), "sample_losses": losses}
    # policies that read correctness (onion) also need "sample_correct": logits.argmax(1) == y

With several processes (``ddp``, ``ddp_spawn``) also pass
``Trainer(use_distributed_sampler=False)``: the sampler shards itself, and Lightning's
replacement would shard it a second time.

Requires the ``lightning`` extra (``pytorch-lightning``). The callback also works with the unified
``lightning.pytorch`` namespace when that package is installed.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from dynaprune.core.sampler import DynamicPruningSampler

_BASES: list[type] = []
_pl: Any
_lpt: Any
try:
    import pytorch_lightning as _pl

    _BASES.append(_pl.Callback)
except ImportError:  # pragma: no cover - depends on the environment
    _pl = None
try:
    import lightning.pytorch as _lpt

    _BASES.append(_lpt.Callback)
except ImportError:
    _lpt = None
if not _BASES:  # pragma: no cover - depends on the environment
    raise ImportError(
        "dynaprune.lightning needs PyTorch Lightning: pip install 'dynaprune[lightning]'"
    )
# Helpers come from whichever namespace is installed; they work with either Trainer.
_ns = _pl if _pl is not None else _lpt
_parse_num_batches = _ns.trainer.connectors.data_connector._parse_num_batches
_RunningStage = _ns.trainer.states.RunningStage
_extract_batch_size = _ns.utilities.data.extract_batch_size

__all__ = ["DynamicPruningCallback", "ResumableDataLoader", "batch_indices", "batch_weights"]

LOSSES_KEY = "sample_losses"
CORRECT_KEY = "sample_correct"
_SAMPLERS: weakref.WeakKeyDictionary[Any, DynamicPruningSampler] = weakref.WeakKeyDictionary()


def batch_weights(pl_module: Any, losses: Tensor) -> Tensor:
    """Loss weights of the current batch, for use inside ``training_step``.

    Backpropagate ``(losses * batch_weights(self, losses)).mean()``: the policies that re-weight
    (``soft``, ``infobatch``, ``importance``) need it to stay unbiased, and for the others the
    weights are ones, so the same ``training_step`` serves every policy.

    Args:
        pl_module: the LightningModule being trained with a :class:`DynamicPruningCallback`.
        losses: the batch's per-sample losses; the weights come on their device and dtype.
    """
    return _sampler_of(pl_module).batch_weights(losses)


def _sampler_of(pl_module: Any) -> DynamicPruningSampler:
    sampler = _SAMPLERS.get(pl_module)
    if sampler is None:
        raise RuntimeError(
            "found no DynamicPruningSampler for this module: add DynamicPruningCallback() to "
            "the Trainer's callbacks"
        )
    return sampler


def batch_indices(pl_module: Any, batch_size: int) -> Tensor:
    """Sample indices of the current batch, for use inside ``training_step`` (e.g. to look up
    irreducible losses for in-batch selection, :mod:`dynaprune.inbatch`)."""
    return _sampler_of(pl_module).batch_indices(batch_size)


def _find_samplers(loaders: Any) -> tuple[list[DynamicPruningSampler], bool]:
    """Our samplers inside a loader collection, and whether Lightning wrapped one of them."""
    found: list[DynamicPruningSampler] = []
    wrapped = False
    stack = [loaders]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif hasattr(item, "sampler"):  # a DataLoader or any loader like it
            batch_sampler = getattr(item, "batch_sampler", None)
            samplers = [item.sampler, getattr(batch_sampler, "sampler", None)]
            for sampler in samplers:
                inner = getattr(getattr(sampler, "dataset", None), "_sampler", None)
                if isinstance(sampler, DynamicPruningSampler):
                    found.append(sampler)
                    break
                if isinstance(inner, DynamicPruningSampler):
                    wrapped = True
    return found, wrapped


class DynamicPruningCallback(*_BASES):  # type: ignore[misc]
    """Feeds per-sample losses from ``training_step`` into the train loader's sampler.

    The contract: the train DataLoader holds a :class:`~dynaprune.DynamicPruningSampler`, and
    ``training_step`` returns ``{"loss": ..., "sample_losses": losses}`` with one loss per sample
    of the batch, in batch order. In ``on_train_batch_end`` the callback passes those losses to
    :meth:`DynamicPruningSampler.update` on the module's device, without a host sync. Policies
    that read per-sample correctness (``onion``) also need ``"sample_correct"``: one bool per
    sample, in batch order, e.g. ``logits.argmax(1) == y``, passed on as ``correct=``; the other
    policies ignore it.

    Once per epoch it logs, through the Trainer's loggers: ``kept_fraction``, ``seen_samples``
    (distinct samples trained on so far), ``processed_samples``, ``score_mean``,
    ``score_q10``/``q50``/``q90`` (moving-average losses of seen samples) and
    ``nonfinite_skipped``, each prefixed with ``dynaprune/``.

    The sampler's whole state (statistics, epoch, current plan) is saved in checkpoints under
    :attr:`state_key` and restored on ``trainer.fit(ckpt_path=...)``. A checkpoint saved at an
    epoch boundary resumes exactly; one saved mid-epoch resumes that epoch with the samples not
    yet recorded, so no sample's statistics are lost or counted twice.

    Args:
        name: distinguishes the state of several instances in one checkpoint.
        log: whether to log the per-epoch metrics.

    Raises:
        RuntimeError: at the start of training, if the train loader has no
            DynamicPruningSampler or Lightning replaced it; at the first batch, if
            ``training_step`` does not return per-sample losses of the batch's length, or no
            ``"sample_correct"`` tensor where the policy needs it.

    Example::

        trainer = pytorch_lightning.Trainer(max_epochs=10, callbacks=[DynamicPruningCallback()])
    """

    def __init__(self, name: str | None = None, *, log: bool = True) -> None:
        self.name = name
        self.log = log
        self.sampler: DynamicPruningSampler | None = None
        self._pending_state: dict[str, Any] | None = None

    @property
    def state_key(self) -> str:
        return str(self._generate_state_key(name=self.name))

    def _sampler(self) -> DynamicPruningSampler:
        if self.sampler is None:
            raise RuntimeError(
                "DynamicPruningCallback has no sampler yet: it finds it when training starts"
            )
        return self.sampler

    # ----------------------------------------------------------------- finding the sampler
    def _attach(self, trainer: Any, pl_module: Any) -> DynamicPruningSampler:
        found, wrapped = _find_samplers(trainer.train_dataloader)
        if wrapped and not found:
            raise RuntimeError(
                "Lightning wrapped the DynamicPruningSampler in its own distributed sampler, "
                "which would shard the data twice: pass Trainer(use_distributed_sampler=False); "
                "the sampler shards itself across ranks"
            )
        if not found:
            raise RuntimeError(
                "DynamicPruningCallback found no DynamicPruningSampler in the train DataLoader: "
                "build it as DataLoader(train_set, batch_size=..., "
                "sampler=DynamicPruningSampler(train_set, keep_ratio=...))"
            )
        if len(found) > 1:
            raise RuntimeError(
                f"DynamicPruningCallback found {len(found)} DynamicPruningSamplers in the train "
                "loaders; it feeds exactly one"
            )
        sampler = found[0]
        previous, self.sampler = self.sampler, sampler
        if previous is not None and previous is not sampler:
            sampler.load_state_dict(previous.state_dict())  # a reloaded loader keeps the state
        if self._pending_state is not None:
            sampler.load_state_dict(self._pending_state)
            self._pending_state = None
        sampler.to(pl_module.device)
        _SAMPLERS[pl_module] = sampler
        return sampler

    def _fit_epoch_length(self, trainer: Any, sampler: DynamicPruningSampler) -> None:
        """Set the sampler's epoch to the loop's, and the loop's epoch length to the sampler's.

        Lightning sizes the epoch once, but warm-up, pruned and annealing epochs differ.
        """
        fit_loop = trainer.fit_loop
        sampler.set_epoch(fit_loop.epoch_progress.current.processed)
        combined = getattr(fit_loop, "_combined_loader", None)
        if combined is not None and len(combined.flattened) == 1:
            limit = _parse_num_batches(
                _RunningStage.TRAINING, len(combined.flattened[0]), trainer.limit_train_batches
            )
            combined.limits = [limit]
            fit_loop.max_batches = limit

    # ----------------------------------------------------------------- hooks
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        sampler = self._attach(trainer, pl_module)
        epoch = trainer.fit_loop.epoch_progress.current.processed
        stale = sampler.planned_epoch != epoch or sampler.epoch != epoch or sampler.resuming
        self._fit_epoch_length(trainer, sampler)
        # Lightning creates a run's first iterator before any callback hook runs, so after a
        # restore that epoch was planned from the wrong state: start the iterator again.
        fetcher = getattr(trainer.fit_loop, "_data_fetcher", None)
        if stale and fetcher is not None:
            iter(fetcher)

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        found, _ = _find_samplers(trainer.train_dataloader)
        if found and found[0] is not self.sampler:  # reload_dataloaders_every_n_epochs
            self._attach(trainer, pl_module)
        self._fit_epoch_length(trainer, self._sampler())

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        losses = outputs.get(LOSSES_KEY) if isinstance(outputs, dict) else None
        if not isinstance(losses, Tensor):
            raise RuntimeError(
                "training_step must return its per-sample losses for DynamicPruningCallback: "
                f'return {{"loss": losses.mean(), "{LOSSES_KEY}": losses}} with '
                f"losses = loss_fn(..., reduction='none'); got {_describe(outputs)}"
            )
        size = _extract_batch_size(batch)
        if losses.ndim != 1 or losses.shape[0] != size:
            raise RuntimeError(
                f'training_step returned "{LOSSES_KEY}" of shape {tuple(losses.shape)} for a batch '
                f"of {size} samples; return one loss per sample (reduction='none')"
            )
        sampler = self._sampler()
        correct = outputs.get(CORRECT_KEY)
        if correct is None and sampler.policy.needs_correctness:
            raise RuntimeError(
                f"{sampler.policy!r} needs per-sample correctness: training_step must also "
                f'return "{CORRECT_KEY}": one bool per sample, e.g. logits.argmax(1) == y; got '
                f"{_describe(outputs)}"
            )
        if correct is not None and not isinstance(correct, Tensor):
            raise RuntimeError(
                f'training_step returned "{CORRECT_KEY}" as {_describe(correct)}; return a bool '
                "tensor with one entry per sample, e.g. logits.argmax(1) == y"
            )
        sampler.update(losses.detach(), correct=correct)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        sampler = self._sampler()
        sampler.synchronize()
        if not self.log:
            return
        pl_module.log_dict(
            {f"dynaprune/{k}": float(v) for k, v in sampler.summary().items()},
            on_step=False,
            on_epoch=True,
            rank_zero_only=True,
        )

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        _SAMPLERS.pop(pl_module, None)

    # ----------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        if self.sampler is None:
            return {} if self._pending_state is None else {"sampler": self._pending_state}
        return {"sampler": self.sampler.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = state_dict.get("sampler")
        if state is None:
            return
        if self.sampler is not None:
            self.sampler.load_state_dict(state)
        else:  # applied when the train loader exists, before its first batch
            self._pending_state = state


class ResumableDataLoader(DataLoader):
    """A :class:`~torch.utils.data.DataLoader` that tells Lightning it resumes mid-epoch.

    Resuming from a mid-epoch checkpoint, Lightning's training epoch loop warns that "your
    dataloader is not resumable" unless the loader implements ``state_dict`` and
    ``load_state_dict`` (it checks ``isinstance(loader, lightning_fabric.utilities.types.
    _Stateful)``, and saves and restores such a loader's state itself). With a
    :class:`~dynaprune.DynamicPruningSampler` the position in the epoch lives in the sampler,
    which :class:`DynamicPruningCallback` saves and restores exactly; this loader declares that,
    with an empty state of its own, so that the warning is not raised for nothing. A plain
    ``DataLoader`` resumes just as exactly and only warns.

    Example::

        loader = ResumableDataLoader(train_set, batch_size=256, sampler=DynamicPruningSampler(...))
    """

    def state_dict(self) -> dict[str, Any]:
        """Empty: the position in the epoch is the sampler's, saved by the callback."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Nothing to restore here (the callback restores the sampler)."""


def _describe(outputs: Any) -> str:
    if isinstance(outputs, dict):
        return f"a dict with keys {sorted(outputs)}"
    if isinstance(outputs, torch.Tensor):
        return "a tensor"
    return type(outputs).__name__
