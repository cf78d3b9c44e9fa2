"""Shared test helpers: deterministic fake losses and correctness, a plain epoch loop that feeds
them to a sampler, and the tiny LightningModule that the Lightning, DDP and GPU tests train.

Test modules import the plain helpers (``from conftest import run_epoch``); pytest puts this
folder on the path."""

from __future__ import annotations

import os
from typing import Any

import pytest
import torch
import torch.nn.functional as F


def fake_losses(idx: torch.Tensor, epoch: int) -> torch.Tensor:
    """A loss that depends only on the sample and the epoch, whichever rank computes it."""
    return (idx.float() * 0.37 + epoch) % 5.0


def fake_correct(idx: torch.Tensor, epoch: int) -> torch.Tensor:
    """Correctness that depends only on the sample and the epoch, and flips for some samples."""
    return (idx * 7 + epoch * (idx % 3)) % 4 != 0


def run_epoch(
    sampler: Any,
    epoch: int,
    loss_fn: Any = None,
    batch_size: int = 7,
    *,
    indexed: bool = False,
) -> list[int]:
    """Iterate one epoch of ``sampler``, feeding ``loss_fn`` (default :func:`fake_losses`) and
    :func:`fake_correct` (ignored by policies that do not read it), with the batch's indices
    when ``indexed``; return the order seen."""
    loss_fn = fake_losses if loss_fn is None else loss_fn
    sampler.set_epoch(epoch)
    order = list(sampler)
    for start in range(0, len(order), batch_size):
        idx = torch.tensor(order[start : start + batch_size])
        correct = fake_correct(idx, epoch)
        sampler.update(loss_fn(idx, epoch), idx if indexed else None, correct=correct)
    return order


pl: Any
try:
    import pytorch_lightning as pl
except ImportError:  # pragma: no cover - depends on the environment
    pl = None


if pl is not None:

    class TinyModule(pl.LightningModule):
        """A linear classifier whose ``training_step`` returns per-sample losses.

        Batches are ``(x, y)`` or ``(index, x, y)``; with indices, :attr:`seen` records, per
        epoch, the samples trained on in order.

        Args:
            features: input features.
            classes: output classes.
            soft: weight the loss with :func:`dynaprune.lightning.batch_weights`.
            bad: ``"no_losses"`` returns only the mean loss, ``"short"`` one loss too few.
            correct: also return ``"sample_correct"`` (whether each sample was classified
                correctly), as policies such as ``onion`` need.
            out: a folder where ``on_train_end`` saves the sampler's statistics, per rank.
        """

        def __init__(
            self,
            features: int = 4,
            classes: int = 2,
            *,
            soft: bool = False,
            bad: str | None = None,
            out: str | None = None,
            correct: bool = False,
        ) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.net = torch.nn.Linear(features, classes)
            self.soft, self.bad, self.out, self.correct = soft, bad, out, correct
            self.seen: list[tuple[int, list[int]]] = []

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            from dynaprune.lightning import batch_weights

            *idx, x, y = batch
            if idx:
                if not self.seen or self.seen[-1][0] != self.current_epoch:
                    self.seen.append((self.current_epoch, []))
                self.seen[-1][1].extend(idx[0].tolist())
            logits = self.net(x)
            losses = F.cross_entropy(logits, y, reduction="none")
            if self.bad == "no_losses":
                return losses.mean()
            if self.bad == "short":
                losses = losses[:-1]
            loss = (losses * batch_weights(self, losses)).mean() if self.soft else losses.mean()
            out = {"loss": loss, "sample_losses": losses}
            if self.correct:
                out["sample_correct"] = logits.argmax(1) == y
            return out

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

        def on_train_end(self) -> None:
            if self.out is not None:
                sampler = self.trainer.train_dataloader.sampler
                path = os.path.join(self.out, f"lit{self.global_rank}.pt")
                torch.save(sampler.stats.state_dict(), path)


@pytest.fixture
def tiny_module() -> type:
    """The :class:`TinyModule` class (tests subclass or instantiate it)."""
    if pl is None:
        pytest.skip("needs pytorch_lightning")
    return TinyModule


@pytest.fixture
def tiny_vit() -> Any:
    """Builds a :class:`dynaprune.tokens.SmallViT` of 8x8 images in 16 patches, 4 blocks of width
    16 (2 heads), seeded, without dropout: ``tiny_vit(depth=...)`` overrides."""
    from dynaprune.tokens import SmallViT

    def build(**overrides: Any) -> SmallViT:
        config: dict[str, Any] = {
            "image_size": 8,
            "patch_size": 2,
            "depth": 4,
            "width": 16,
            "heads": 2,
            "num_classes": 3,
        }
        with torch.random.fork_rng():  # the same weights every time, the global state untouched
            torch.manual_seed(0)
            return SmallViT(**{**config, **overrides})

    return build
