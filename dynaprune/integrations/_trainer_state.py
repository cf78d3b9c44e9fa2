"""The sampler's state in ``transformers.Trainer``'s checkpoint folders.

:class:`~dynaprune.integrations.transformers.PruningTrainer` writes it into each checkpoint
folder Trainer saves (``checkpoint-<global step>``, as :data:`SAMPLER_STATE_NAME`), and reads
it back when ``train(resume_from_checkpoint=...)`` resumes from one.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint

from dynaprune.core.sampler import DynamicPruningSampler

__all__ = ["SAMPLER_STATE_NAME", "load_sampler_state", "save_sampler_state"]

#: The sampler's state file inside each of Trainer's checkpoint folders.
SAMPLER_STATE_NAME = "dynaprune_sampler.pt"


def save_sampler_state(state: dict[str, Any], output_dir: str, global_step: int) -> None:
    """Write the sampler's ``state`` into the checkpoint folder that Trainer has just saved for
    ``global_step`` under ``output_dir``."""
    folder = f"{PREFIX_CHECKPOINT_DIR}-{global_step}"
    torch.save(state, os.path.join(output_dir, folder, SAMPLER_STATE_NAME))


def load_sampler_state(
    sampler: DynamicPruningSampler,
    resume_from_checkpoint: str | bool | None,
    output_dir: str | None,
) -> str | bool | None:
    """Restore ``sampler`` from the checkpoint that ``train(resume_from_checkpoint=...)``
    resumes from (``True``: the last one in ``output_dir``), and return that checkpoint as
    ``Trainer.train`` takes it (``None`` or ``False``, not resuming, as given).

    Raises:
        ValueError: if ``output_dir`` holds no checkpoint, or the checkpoint no sampler state.
    """
    if resume_from_checkpoint is True:
        resume_from_checkpoint = get_last_checkpoint(output_dir)
        if resume_from_checkpoint is None:
            raise ValueError(f"no checkpoint found in {output_dir}")
    if isinstance(resume_from_checkpoint, str):
        path = os.path.join(resume_from_checkpoint, SAMPLER_STATE_NAME)
        if not os.path.isfile(path):
            raise ValueError(
                f"{resume_from_checkpoint} holds no {SAMPLER_STATE_NAME}: it was not saved by "
                "a PruningTrainer, so the sampler's statistics cannot be restored"
            )
        sampler.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return resume_from_checkpoint
