"""Trainer's epochs and optimizer steps, counted over the sampler's epochs of differing lengths.

``transformers.Trainer`` sizes every epoch like the first, but a
:class:`~dynaprune.DynamicPruningSampler`'s warm-up, pruned and annealing epochs differ. These
functions count with the sampler's own lengths, passed as ``epoch_steps(epoch, accumulate)``:
the optimizer steps of ``epoch`` with ``accumulate`` batches a step
(:meth:`~dynaprune.DynamicPruningSampler.epoch_steps` at Trainer's batch size and
``dataloader_drop_last``). Plain functions, so this module imports no ``transformers``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import TrainingArguments

__all__ = ["EpochSteps", "epochs_asked", "resume_position"]

#: ``epoch_steps(epoch, accumulate)``: optimizer steps of ``epoch``, ``accumulate`` batches each.
EpochSteps = Callable[[int, int], int]


def epochs_asked(args: TrainingArguments, total_epochs: int | None, epoch_steps: EpochSteps) -> int:
    """The epochs asked for: ``num_train_epochs``, or as many as ``max_steps`` needs; refused
    where they do not fit the sampler's ``total_epochs``."""
    ga = args.gradient_accumulation_steps
    if args.max_steps > 0:
        epochs, steps = 0, 0
        while steps < args.max_steps:
            if total_epochs is not None and epochs == total_epochs:
                raise ValueError(
                    f"max_steps={args.max_steps} exceeds the {steps} steps of the sampler's "
                    f"total_epochs={total_epochs}"
                )
            steps += epoch_steps(epochs, ga)
            epochs += 1
        return epochs
    asked = args.num_train_epochs
    if asked != int(asked) or asked < 1:
        raise ValueError(f"num_train_epochs must be a whole number of epochs >= 1, got {asked!r}")
    if total_epochs is not None and total_epochs != int(asked):
        raise ValueError(
            f"the sampler was built for total_epochs={total_epochs} but num_train_epochs={asked}"
        )
    return int(asked)


def resume_position(
    step: int, epochs: int, args: TrainingArguments, epoch_steps: EpochSteps
) -> tuple[int, int]:
    """Where optimizer step ``step`` falls in a run of ``epochs``: the epoch, and the batches of
    it already trained, as ``Trainer._init_training_state`` returns them."""
    ga = args.gradient_accumulation_steps
    epoch, done = 0, 0
    while epoch < epochs and done + epoch_steps(epoch, ga) <= step:
        done += epoch_steps(epoch, ga)
        epoch += 1
    if args.ignore_data_skip and step > done:
        # Trainer would replay the epoch from its start, but the restored sampler continues
        # where the checkpoint stopped: the epoch would run short of its planned steps.
        raise ValueError(
            "ignore_data_skip=True cannot resume in the middle of an epoch: the sampler "
            "resumes exactly where the checkpoint stopped; set ignore_data_skip=False"
        )
    return epoch, 0 if args.ignore_data_skip else (step - done) * ga
