"""The Lightning path: the integration users run, ``DynamicPruningCallback`` feeding the sampler."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import pytorch_lightning as pl
import torch

from benchmarks.grid.train import Run, RunClock, inbatch_step
from dynaprune.lightning import batch_weights

__all__ = ["BenchModule", "train_lightning"]


class BenchModule(pl.LightningModule):
    """Wraps the model; returns per-sample losses for ``DynamicPruningCallback``.

    The loss is always weighted with :func:`dynaprune.lightning.batch_weights`, as the plain
    loop's ``sampler.update`` weights it: ones for most policies, the policy's loss weights for
    those that re-weight (``soft``, ``infobatch``, ``importance``). Every method pays the same
    multiply, so the timings stay comparable.
    """

    def __init__(self, run: Run) -> None:
        super().__init__()
        self.model = run.model
        self.run = run
        self.needs_correct = run.sampler.policy.needs_correctness

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> dict[str, torch.Tensor]:
        x, y = batch
        if self.run.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.run.selector is not None:  # the callback records every forwarded loss
            loss, losses, correct = inbatch_step(self.run, x, y, record=False)
            out = {"loss": loss, "sample_losses": losses}
            if self.needs_correct:
                out["sample_correct"] = correct
            return out
        logits = self.model(x)
        losses = self.run.loss_fn(logits, y)
        loss = (losses * batch_weights(self, losses)).mean()
        out = {"loss": loss, "sample_losses": losses.detach()}
        if self.needs_correct:  # onion counts forgetting events from the batch's predictions
            out["sample_correct"] = logits.detach().argmax(1) == y
        return out

    def configure_optimizers(self) -> Any:
        return {
            "optimizer": self.run.optimizer,
            "lr_scheduler": {"scheduler": self.run.scheduler, "interval": "step", "frequency": 1},
        }


class _ClockCallback(pl.Callback):
    def __init__(self, clock: RunClock) -> None:
        self.clock = clock

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.clock.start()

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self.clock.batch(outputs["sample_losses"])

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.clock.end_epoch(trainer.current_epoch)


def train_lightning(run: Run, clock: RunClock) -> None:
    """Trains with ``pytorch_lightning.Trainer`` and ``DynamicPruningCallback``."""
    from dynaprune.lightning import DynamicPruningCallback

    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)  # no per-run "GPU available" banners
    devices: list[int] | int
    if run.device.type == "cuda":
        accelerator, devices = "gpu", [run.device.index or 0]
    else:
        accelerator, devices = "cpu", 1
    trainer = pl.Trainer(
        accelerator=accelerator,
        devices=devices,
        precision="bf16-mixed" if run.amp else "32-true",
        max_epochs=run.spec.epochs,
        max_steps=run.spec.max_steps or -1,
        callbacks=[DynamicPruningCallback(), _ClockCallback(clock)],
        use_distributed_sampler=False,  # else Lightning swaps in a DistributedSampler
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        default_root_dir=None,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*is smaller than the logging interval.*")
        warnings.filterwarnings(
            "ignore", message=".*LeafSpec.*"
        )  # torch deprecation inside Lightning
        trainer.fit(BenchModule(run), train_dataloaders=run.loader)
