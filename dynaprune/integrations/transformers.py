"""Hugging Face ``transformers.Trainer`` integration: :class:`PruningTrainer`.

One argument more than a ``Trainer``::

    sampler = DynamicPruningSampler(train_set, keep_ratio=0.5, policy="ucb")
    trainer = PruningTrainer(model=model, args=args, train_dataset=train_set, sampler=sampler)
    trainer.train()                      # or trainer.train(resume_from_checkpoint=True)

``Trainer`` has no hook that sees per-sample losses (callbacks may only change ``control``), and
its maintainers advise subclassing it for custom samplers, so :class:`PruningTrainer` is a
subclass. It overrides these ``Trainer`` methods, each calling the original (``transformers``
5.25; ``tests/test_transformers.py`` checks their signatures, so a change fails loudly):

* ``_get_train_sampler`` — the sampler is the train sampler;
* ``get_train_dataloader`` — Accelerate's ``BatchSamplerShard`` passes the sampler's own shard
  through (:func:`dynaprune.integrations.accelerate.unshard`);
* ``training_step`` / ``compute_loss`` — in the training forward only, per-sample losses from
  the logits (:mod:`~dynaprune.integrations.sample_losses`) go to ``sampler.update`` and the
  policy's weights into the loss; evaluation's ``compute_loss`` calls are left to ``Trainer``;
* ``set_initial_training_values`` — ``max_steps`` and the learning-rate schedule from
  ``sampler.total_steps``, over the epochs asked for;
* ``_run_epoch`` / ``_init_training_state`` — each epoch's own number of batches (warm-up,
  pruned and annealing epochs differ), also when resuming;
* ``get_resumed_dataloader`` — no batches skipped on a mid-epoch resume: the restored sampler
  yields only the samples not yet trained on;
* ``_save_checkpoint`` / ``train`` — the sampler's state in Trainer's checkpoint folders
  (``dynaprune_sampler.pt``), restored by ``train(resume_from_checkpoint=...)``;
* ``_set_signature_columns_if_needed`` / ``prediction_step`` — an ``index`` column survives
  ``remove_unused_columns`` and never reaches the model.

The argument checks, the step counts over epochs of differing lengths and the sampler's
checkpoint file live in ``_trainer_checks``, ``_trainer_steps`` and ``_trainer_state`` beside it.

Requires the ``transformers`` extra (``transformers`` and ``accelerate``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sized
from typing import Any, cast

import torch
from torch import Tensor, nn
from transformers import Trainer
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

from dynaprune.core.sampler import DynamicPruningSampler
from dynaprune.integrations._trainer_checks import (
    check_data_length,
    check_sample_loss_gives_correctness,
    check_trainer_arguments,
    check_training_arguments,
    single_label_correct,
)
from dynaprune.integrations._trainer_state import (
    SAMPLER_STATE_NAME,
    load_sampler_state,
    save_sampler_state,
)
from dynaprune.integrations._trainer_steps import epochs_asked, resume_position
from dynaprune.integrations.accelerate import unshard
from dynaprune.integrations.sample_losses import sample_losses

__all__ = ["SAMPLER_STATE_NAME", "PruningTrainer"]

SampleLossFn = Callable[[Any, Tensor], Tensor]


class PruningTrainer(Trainer):
    """A ``transformers.Trainer`` that trains each epoch on a DynamicPruningSampler's subset.

    Args:
        *args: ``Trainer``'s positional arguments.
        sampler: the :class:`~dynaprune.DynamicPruningSampler` over ``train_dataset``. With
            several processes it shards itself (its ``num_replicas`` and ``rank`` come from the
            process group Accelerate starts); its ``total_epochs``, if set, must equal
            ``num_train_epochs``.
        sample_loss: how a batch's per-sample losses come from the model's outputs and labels:
            ``"auto"`` (``"causal_lm"`` for causal language models, else ``"sequence"``), one
            of :data:`~dynaprune.integrations.sample_losses.SAMPLE_LOSS_KINDS`, or a function
            ``(outputs, labels) -> losses`` with one loss per sample. Token losses are summed
            per sample and divided by the sample's number of target tokens (labels ``-100``
            excluded); the loss backpropagated is the model's own (the sum over all target
            tokens of the accumulated batch divided by ``num_items_in_batch``, or a per-batch
            mean), each sample's terms weighted by the policy's weight.
        index_column: the batch key holding each sample's index in ``train_dataset``, if the
            data set has one; it survives ``remove_unused_columns`` and is not passed to the
            model. Without it, losses are matched to the sampler's order by position, which
            holds because Trainer trains every batch of the loader once, in order.
        log_statistics: log, after every epoch, the sampler's ``kept_fraction`` and loss
            statistics (:meth:`~dynaprune.DynamicPruningSampler.summary`) through Trainer's
            loggers, prefixed with ``dynaprune/``.
        **kwargs: ``Trainer``'s keyword arguments (not ``compute_loss_func``: the per-sample
            loss is ``sample_loss``).

    Raises:
        TypeError: if ``sampler`` is not a DynamicPruningSampler, or ``index_column`` not a
            string or ``None``.
        ValueError: for a ``sample_loss`` that is not a kind or a function, a non-bool
            ``log_statistics``, a
            ``train_dataset`` of another length than the sampler's, ``compute_loss_func``,
            ``auto_find_batch_size``, a ``train_sampling_strategy`` other than ``"random"``,
            DataParallel (several GPUs in one process: use ``torchrun`` or
            ``accelerate launch``), and a policy that reads correctness (``onion``) with any
            ``sample_loss`` but ``"sequence"`` single-label classification.

    Example::

        trainer = PruningTrainer(model=model, args=TrainingArguments("out", num_train_epochs=3),
                                 train_dataset=train_set, sampler=sampler)
    """

    def __init__(
        self,
        *args: Any,
        sampler: DynamicPruningSampler,
        sample_loss: str | SampleLossFn = "auto",
        index_column: str | None = "index",
        log_statistics: bool = True,
        **kwargs: Any,
    ) -> None:
        check_trainer_arguments(
            sampler, sample_loss, index_column, log_statistics, kwargs.get("compute_loss_func")
        )
        super().__init__(*args, **kwargs)
        self.sampler = sampler
        self.index_column = index_column
        self.log_statistics = log_statistics
        self._sample_loss = sample_loss
        self._in_training_step = False
        check_training_arguments(self.args)
        check_sample_loss_gives_correctness(sampler.policy, self._kind)
        data = self.train_dataset
        if data is not None and hasattr(data, "__len__"):
            check_data_length(sampler, data, "train_dataset")

    def _kind(self) -> str | SampleLossFn:
        if self._sample_loss != "auto":
            return self._sample_loss
        model = self.accelerator.unwrap_model(self.model)
        causal = type(model).__name__ in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values()
        return "causal_lm" if causal else "sequence"

    # ----------------------------------------------------------------- data
    def _get_train_sampler(self, train_dataset: Any = None) -> DynamicPruningSampler:
        data = self.train_dataset if train_dataset is None else train_dataset
        if data is not None:
            check_data_length(self.sampler, cast(Sized, data), "the train data set")
        return self.sampler

    def get_train_dataloader(self) -> Any:
        return unshard(super().get_train_dataloader())

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        columns = self._signature_columns
        name = self.index_column
        if name is not None and columns is not None and name not in columns:
            columns.append(name)

    def get_resumed_dataloader(self, dataloader: Any, num_batches: int) -> Any:
        # The restored sampler yields only the samples not yet trained on: skip nothing more.
        return dataloader

    # ----------------------------------------------------------------- steps and epochs
    def _epoch_steps(self, epoch: int, accumulate: int = 1) -> int:
        return self.sampler.epoch_steps(
            epoch,
            self._train_batch_size,
            drop_last=self.args.dataloader_drop_last,
            accumulate_grad_batches=accumulate,
        )

    def _num_epochs(self) -> int:
        """The epochs asked for: ``num_train_epochs``, or as many as ``max_steps`` needs."""
        return epochs_asked(self.args, self.sampler.total_epochs, self._epoch_steps)

    def set_initial_training_values(self, args: Any, dataloader: Any) -> Any:
        # Trainer sizes every epoch like the first; the sampler knows each epoch's length.
        _, _, examples, _, total_batch, _, _ = super().set_initial_training_values(args, dataloader)
        epochs = self._num_epochs()
        ga = args.gradient_accumulation_steps
        if args.max_steps > 0:
            max_steps = args.max_steps
        else:
            max_steps = self.sampler.total_steps(
                self._train_batch_size,
                epochs=epochs,
                drop_last=args.dataloader_drop_last,
                accumulate_grad_batches=ga,
            )
        batches = max(self._epoch_steps(e) for e in range(epochs))
        updates = max(self._epoch_steps(e, ga) for e in range(epochs))
        samples = sum(self.sampler.epoch_size(e) for e in range(epochs))
        return epochs, updates, examples, samples, total_batch, batches, max_steps

    def _init_training_state(self, *args: Any, **kwargs: Any) -> tuple[int, int]:
        epochs_trained, batches_trained = super()._init_training_state(*args, **kwargs)
        step = self.state.global_step
        if step == 0:
            return epochs_trained, batches_trained
        # Where global_step falls among epochs of differing lengths.
        return resume_position(step, self._num_epochs(), self.args, self._epoch_steps)

    def _run_epoch(self, *args: Any, **kwargs: Any) -> Any:
        bound = inspect.signature(super()._run_epoch).bind(*args, **kwargs)
        epoch = bound.arguments["epoch"]
        bound.arguments["steps_in_epoch"] = self._epoch_steps(epoch)
        bound.arguments["num_update_steps_per_epoch"] = self._epoch_steps(
            epoch, self.args.gradient_accumulation_steps
        )
        result = super()._run_epoch(*bound.args, **bound.kwargs)
        self.sampler.synchronize()  # every rank, once per epoch: the merge is a collective
        if self.log_statistics:
            self.log({f"dynaprune/{k}": float(v) for k, v in self.sampler.summary().items()})
        return result

    # ----------------------------------------------------------------- losses
    def training_step(
        self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch: Any = None
    ) -> Tensor:
        self._in_training_step = True
        try:
            return super().training_step(model, inputs, num_items_in_batch)
        finally:
            self._in_training_step = False

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        inputs = dict(inputs)
        indices = inputs.pop(self.index_column, None) if self.index_column else None
        if not self._in_training_step:  # evaluation and prediction: Trainer's own loss
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs.pop("labels", None)
        if labels is None:
            raise ValueError(
                "PruningTrainer needs the batch's labels to compute per-sample losses; got "
                f"keys {sorted(inputs)}"
            )
        outputs = model(**inputs)
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        kind = self._kind()
        correct = None
        if callable(kind):
            sums = kind(outputs, labels)
            counts = torch.ones_like(sums)
        else:
            config = getattr(self.accelerator.unwrap_model(model), "config", None)
            sums, counts = sample_losses(
                logits,
                labels,
                kind,
                problem_type=getattr(config, "problem_type", None),
                label_smoothing=self.args.label_smoothing_factor,
            )
            if self.sampler.policy.needs_correctness:
                correct = single_label_correct(self.sampler.policy, logits, labels)
        if indices is not None:
            indices = torch.as_tensor(indices).reshape(-1)
        losses = (sums / counts.clamp(min=1)).detach()
        weights = self.sampler.batch_weights(losses, indices)
        self.sampler.update(losses, indices, correct=correct)
        loss = self._batch_loss(weights * sums, counts, kind, num_items_in_batch)
        return (loss, outputs) if return_outputs else loss

    def _batch_loss(self, sums: Tensor, counts: Tensor, kind: Any, num_items: Any) -> Tensor:
        """The model's own reduction of the (weighted) per-sample sums."""
        if kind in ("causal_lm", "token") and num_items is not None:
            # Normalised over the whole accumulated batch (and all processes, when Trainer
            # counted tokens across them), as the model's loss with num_items_in_batch.
            self.loss_is_scaled_for_ga = True
            loss: Tensor = sums.sum() / num_items
            if self.args.average_tokens_across_devices and self.args.world_size > 1:
                loss = loss * (self.accelerator.num_processes // self.get_tp_size())
            return loss
        self.loss_is_scaled_for_ga = False  # a per-batch mean: Trainer divides by the GA steps
        if kind in ("causal_lm", "token"):
            return sums.sum() / counts.sum().clamp(min=1)
        return sums.mean()

    def prediction_step(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        prediction_loss_only: bool,
        ignore_keys: list[str] | None = None,
    ) -> Any:
        if self.index_column is not None and self.index_column in inputs:
            inputs = {k: v for k, v in inputs.items() if k != self.index_column}
        return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)

    # ----------------------------------------------------------------- checkpoints
    def _save_checkpoint(self, model: nn.Module, trial: Any) -> None:
        state = self.sampler.state_dict()  # on every rank: it merges the ranks' statistics
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            save_sampler_state(state, self._get_output_dir(trial=trial), self.state.global_step)

    def train(
        self,
        resume_from_checkpoint: str | bool | None = None,
        trial: Any = None,
        ignore_keys_for_eval: list[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        """``Trainer.train``; resuming from a checkpoint also restores the sampler's state."""
        resume_from_checkpoint = load_sampler_state(
            self.sampler, resume_from_checkpoint, self.args.output_dir
        )
        return super().train(resume_from_checkpoint, trial, ignore_keys_for_eval, **kwargs)
