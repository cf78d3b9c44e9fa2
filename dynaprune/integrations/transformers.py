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

Requires the ``transformers`` extra (``transformers`` and ``accelerate``).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sized
from typing import Any, cast

import torch
from torch import Tensor, nn
from transformers import Trainer
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint

from dynaprune._checks import check_bool
from dynaprune.core.sampler import DynamicPruningSampler
from dynaprune.integrations.accelerate import unshard
from dynaprune.integrations.sample_losses import SAMPLE_LOSS_KINDS, sample_losses

__all__ = ["SAMPLER_STATE_NAME", "PruningTrainer"]

#: The sampler's state file inside each of Trainer's checkpoint folders.
SAMPLER_STATE_NAME = "dynaprune_sampler.pt"

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
        if not isinstance(sampler, DynamicPruningSampler):
            raise TypeError(f"sampler must be a DynamicPruningSampler, got {type(sampler)!r}")
        if not (callable(sample_loss) or sample_loss in ("auto", *SAMPLE_LOSS_KINDS)):
            raise ValueError(
                f"sample_loss must be 'auto', one of {SAMPLE_LOSS_KINDS} or a function "
                f"(outputs, labels) -> per-sample losses, got {sample_loss!r}"
            )
        if index_column is not None and not isinstance(index_column, str):
            raise TypeError(f"index_column must be a str or None, got {index_column!r}")
        check_bool("log_statistics", log_statistics)
        if kwargs.get("compute_loss_func") is not None:
            raise ValueError(
                "PruningTrainer computes per-sample losses itself: pass "
                "sample_loss=fn(outputs, labels) -> per-sample losses instead of compute_loss_func"
            )
        super().__init__(*args, **kwargs)
        self.sampler = sampler
        self.index_column = index_column
        self.log_statistics = log_statistics
        self._sample_loss = sample_loss
        self._in_training_step = False
        args_ = self.args
        if args_.auto_find_batch_size:
            raise ValueError("auto_find_batch_size restarts epochs mid-way; set it to False")
        if args_.train_sampling_strategy != "random":
            raise ValueError(
                "the DynamicPruningSampler decides the order of each epoch; got "
                f"train_sampling_strategy={args_.train_sampling_strategy!r}, use 'random'"
            )
        if args_.n_gpu > 1:
            raise ValueError(
                f"{args_.n_gpu} GPUs in one process (DataParallel) are not supported: start one "
                "process per GPU with torchrun or accelerate launch"
            )
        if sampler.policy.needs_correctness and self._kind() != "sequence":
            raise ValueError(
                f"{sampler.policy!r} needs per-sample correctness, which PruningTrainer gives for "
                'single-label classification (sample_loss="sequence") only'
            )
        data = self.train_dataset
        if data is not None and hasattr(data, "__len__") and len(data) != sampler.num_samples:
            raise ValueError(
                f"the sampler covers {sampler.num_samples} samples but train_dataset has "
                f"{len(data)}"
            )

    def _kind(self) -> str | SampleLossFn:
        if self._sample_loss != "auto":
            return self._sample_loss
        model = self.accelerator.unwrap_model(self.model)
        causal = type(model).__name__ in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values()
        return "causal_lm" if causal else "sequence"

    # ----------------------------------------------------------------- data
    def _get_train_sampler(self, train_dataset: Any = None) -> DynamicPruningSampler:
        data = self.train_dataset if train_dataset is None else train_dataset
        if data is not None and len(cast(Sized, data)) != self.sampler.num_samples:
            raise ValueError(
                f"the sampler covers {self.sampler.num_samples} samples but the train data set "
                f"has {len(cast(Sized, data))}"
            )
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
        args, total = self.args, self.sampler.total_epochs
        ga = args.gradient_accumulation_steps
        if args.max_steps > 0:
            epochs, steps = 0, 0
            while steps < args.max_steps:
                if total is not None and epochs == total:
                    raise ValueError(
                        f"max_steps={args.max_steps} exceeds the {steps} steps of the sampler's "
                        f"total_epochs={total}"
                    )
                steps += self._epoch_steps(epochs, ga)
                epochs += 1
            return epochs
        asked = args.num_train_epochs
        if asked != int(asked) or asked < 1:
            raise ValueError(
                f"num_train_epochs must be a whole number of epochs >= 1, got {asked!r}"
            )
        if total is not None and total != int(asked):
            raise ValueError(
                f"the sampler was built for total_epochs={total} but num_train_epochs={asked}"
            )
        return int(asked)

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
        ga, epochs = self.args.gradient_accumulation_steps, self._num_epochs()
        epoch, done = 0, 0
        while epoch < epochs and done + self._epoch_steps(epoch, ga) <= step:
            done += self._epoch_steps(epoch, ga)
            epoch += 1
        if self.args.ignore_data_skip and step > done:
            # Trainer would replay the epoch from its start, but the restored sampler continues
            # where the checkpoint stopped: the epoch would run short of its planned steps.
            raise ValueError(
                "ignore_data_skip=True cannot resume in the middle of an epoch: the sampler "
                "resumes exactly where the checkpoint stopped; set ignore_data_skip=False"
            )
        return epoch, 0 if self.args.ignore_data_skip else (step - done) * ga

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
                if labels.is_floating_point() or labels.shape != logits.shape[:-1]:
                    raise ValueError(
                        f"{self.sampler.policy!r} needs per-sample correctness, which "
                        "PruningTrainer gives for single-label classification only; got labels "
                        f"of shape {tuple(labels.shape)} ({labels.dtype}) for logits of shape "
                        f"{tuple(logits.shape)}"
                    )
                correct = logits.argmax(-1) == labels
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
            folder = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            path = os.path.join(self._get_output_dir(trial=trial), folder, SAMPLER_STATE_NAME)
            torch.save(state, path)

    def train(
        self,
        resume_from_checkpoint: str | bool | None = None,
        trial: Any = None,
        ignore_keys_for_eval: list[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        """``Trainer.train``; resuming from a checkpoint also restores the sampler's state."""
        if resume_from_checkpoint is True:
            resume_from_checkpoint = get_last_checkpoint(self.args.output_dir)
            if resume_from_checkpoint is None:
                raise ValueError(f"no checkpoint found in {self.args.output_dir}")
        if isinstance(resume_from_checkpoint, str):
            path = os.path.join(resume_from_checkpoint, SAMPLER_STATE_NAME)
            if not os.path.isfile(path):
                raise ValueError(
                    f"{resume_from_checkpoint} holds no {SAMPLER_STATE_NAME}: it was not saved by "
                    "a PruningTrainer, so the sampler's statistics cannot be restored"
                )
            self.sampler.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return super().train(resume_from_checkpoint, trial, ignore_keys_for_eval, **kwargs)
