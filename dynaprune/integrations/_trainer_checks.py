"""The checks of :class:`~dynaprune.integrations.transformers.PruningTrainer`'s arguments.

What ``Trainer`` must not do for the sampler to decide each epoch (restart epochs mid-way,
order them itself, split batches over several GPUs in one process), a train data set of the
sampler's length, and correctness only where the losses come from single-label
classification. Plain functions of the values, so this module imports no ``transformers``.
"""

from __future__ import annotations

from collections.abc import Callable, Sized
from typing import TYPE_CHECKING, Any

from torch import Tensor

from dynaprune._checks import check_bool
from dynaprune.core.sampler import DynamicPruningSampler
from dynaprune.integrations.sample_losses import SAMPLE_LOSS_KINDS
from dynaprune.policies.base import PruningPolicy

if TYPE_CHECKING:
    from transformers import TrainingArguments

__all__ = [
    "check_data_length",
    "check_sample_loss_gives_correctness",
    "check_trainer_arguments",
    "check_training_arguments",
    "single_label_correct",
]


def check_trainer_arguments(
    sampler: Any,
    sample_loss: Any,
    index_column: Any,
    log_statistics: Any,
    compute_loss_func: Any,
) -> None:
    """Refuse PruningTrainer's own arguments, and a ``compute_loss_func`` for ``Trainer``."""
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
    if compute_loss_func is not None:
        raise ValueError(
            "PruningTrainer computes per-sample losses itself: pass "
            "sample_loss=fn(outputs, labels) -> per-sample losses instead of compute_loss_func"
        )


def check_training_arguments(args: TrainingArguments) -> None:
    """Refuse ``TrainingArguments`` under which Trainer would restart, order or split the
    sampler's epochs itself."""
    if args.auto_find_batch_size:
        raise ValueError("auto_find_batch_size restarts epochs mid-way; set it to False")
    if args.train_sampling_strategy != "random":
        raise ValueError(
            "the DynamicPruningSampler decides the order of each epoch; got "
            f"train_sampling_strategy={args.train_sampling_strategy!r}, use 'random'"
        )
    if args.n_gpu > 1:
        raise ValueError(
            f"{args.n_gpu} GPUs in one process (DataParallel) are not supported: start one "
            "process per GPU with torchrun or accelerate launch"
        )


def check_data_length(sampler: DynamicPruningSampler, data: Sized, name: str) -> None:
    """Refuse a train data set, called ``name`` in the message, of another length than the
    sampler's."""
    if len(data) != sampler.num_samples:
        raise ValueError(
            f"the sampler covers {sampler.num_samples} samples but {name} has {len(data)}"
        )


def check_sample_loss_gives_correctness(policy: PruningPolicy, kind: Callable[[], Any]) -> None:
    """Refuse a policy that reads correctness unless ``kind()``, the kind of per-sample loss
    (asked only then), is single-label classification."""
    if policy.needs_correctness and kind() != "sequence":
        raise ValueError(
            f"{policy!r} needs per-sample correctness, which PruningTrainer gives for "
            'single-label classification (sample_loss="sequence") only'
        )


def single_label_correct(policy: PruningPolicy, logits: Tensor, labels: Tensor) -> Tensor:
    """Whether each sample's arg-max class is its label; refused (naming ``policy``, which
    reads it) for labels that are not one class index per sample."""
    if labels.is_floating_point() or labels.shape != logits.shape[:-1]:
        raise ValueError(
            f"{policy!r} needs per-sample correctness, which "
            "PruningTrainer gives for single-label classification only; got labels "
            f"of shape {tuple(labels.shape)} ({labels.dtype}) for logits of shape "
            f"{tuple(logits.shape)}"
        )
    return logits.argmax(-1) == labels
