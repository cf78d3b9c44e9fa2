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


class TokenData(torch.utils.data.Dataset):
    """Random token sequences for the Hugging Face tests: ``{"input_ids", "labels", "index"}``
    per sample, and an unused ``"junk"`` entry that ``remove_unused_columns`` drops.

    Args:
        n: samples.
        length: tokens per sample.
        lm: labels are the tokens themselves (causal LM), the last ``pad`` of them ``-100``
            for odd samples; otherwise one class label per sample (the first token > 25).
        pad: label positions hidden from the loss in odd samples (``lm`` only).
        index: include each sample's index under ``"index"``.
    """

    def __init__(
        self, n: int, length: int = 8, *, lm: bool = False, pad: int = 3, index: bool = True
    ) -> None:
        g = torch.Generator().manual_seed(n)
        self.x = torch.randint(5, 50, (n, length), generator=g)
        if lm:
            self.y = self.x.clone()
            self.y[1::2, -pad:] = -100
        else:
            self.y = (self.x[:, 0] > 25).long()
        self.index = index

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = {"input_ids": self.x[i], "labels": self.y[i], "junk": 0.5}
        if self.index:
            item["index"] = i
        return item


def tiny_hf_model(kind: str = "classifier", seed: int = 0) -> Any:
    """A tiny BERT classifier (``"classifier"``) or GPT-2 language model (``"lm"``), built from a
    config without dropout, so that a sample's loss does not depend on its batch."""
    import transformers

    torch.manual_seed(seed)
    if kind == "lm":
        gpt = transformers.GPT2Config(
            vocab_size=50, n_positions=16, n_embd=16, n_layer=1, n_head=2,
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        )  # fmt: skip
        return transformers.GPT2LMHeadModel(gpt)
    bert = transformers.BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=16,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )  # fmt: skip
    return transformers.BertForSequenceClassification(bert)


def hf_args(out: Any, **kwargs: Any) -> Any:
    """Quiet CPU ``TrainingArguments`` for the tests; ``kwargs`` override."""
    import transformers

    defaults: dict[str, Any] = {
        "num_train_epochs": 3,
        "per_device_train_batch_size": 4,
        "use_cpu": True,
        "report_to": [],
        "save_strategy": "no",
        "logging_strategy": "no",
        "disable_tqdm": True,
        "seed": 0,
    }
    return transformers.TrainingArguments(str(out), **{**defaults, **kwargs})


@torch.no_grad()
def hf_sample_losses(model: Any, data: Any) -> torch.Tensor:
    """Each sample's loss under ``model`` (the mean over its target tokens for a language
    model), computed one sample at a time."""
    from dynaprune.integrations.sample_losses import sample_losses

    model.eval()
    kind = "causal_lm" if data.y.ndim == 2 else "sequence"
    out = []
    for i in range(len(data)):
        logits = model(input_ids=data.x[i : i + 1]).logits
        sums, counts = sample_losses(logits, data.y[i : i + 1], kind)
        out.append(sums / counts)
    return torch.cat(out)
