"""SST-2 for the text benchmark: the phrases, a WordPiece vocabulary trained on them, and a small
BERT-style classifier built from a config (no pretrained weights can be had offline).

Data: ``../shared/data/sst2`` (GLUE's 67,349 training phrases and the 872 labelled dev
sentences; see that folder's README). Each split is tokenised once into fixed-length tensors.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

__all__ = [
    "ModelConfig",
    "TextSet",
    "accuracy",
    "build_model",
    "collate",
    "load_split",
    "load_sst2",
    "train_tokenizer",
]

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def load_split(root: Path, split: str) -> tuple[list[str], list[int]]:
    """Texts and labels of ``train``, ``dev`` or ``test`` (tab-separated, label first)."""
    texts, labels = [], []
    with (root / f"{split}.tsv").open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)  # header
        for label, text in reader:
            labels.append(int(label))
            texts.append(text)
    return texts, labels


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Trainer's default collation, cut to the batch's longest phrase (dynamic padding, as
    ``DataCollatorWithPadding`` does): most SST-2 phrases are a few tokens long."""
    from transformers import default_data_collator

    batch = default_data_collator(items)
    length = int(batch["attention_mask"].sum(1).max())
    batch["input_ids"] = batch["input_ids"][:, :length]
    batch["attention_mask"] = batch["attention_mask"][:, :length]
    return batch


def train_tokenizer(texts: list[str], vocab_size: int) -> Any:
    """A lower-case WordPiece tokenizer (BERT's pre-tokenisation) trained on ``texts``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIALS)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


class TextSet(Dataset[dict[str, Any]]):
    """Token ids, attention masks and labels of one split, as the items Trainer collates:
    ``{"input_ids", "attention_mask", "labels", "index"}``."""

    def __init__(self, tokenizer: Any, texts: list[str], labels: list[int], max_length: int):
        cls, sep, pad = (tokenizer.token_to_id(t) for t in ("[CLS]", "[SEP]", "[PAD]"))
        ids = torch.full((len(texts), max_length), pad, dtype=torch.long)
        for row, encoding in enumerate(tokenizer.encode_batch(texts)):
            tokens = [cls, *encoding.ids[: max_length - 2], sep]
            ids[row, : len(tokens)] = torch.tensor(tokens)
        self.vocab_size: int = tokenizer.get_vocab_size()
        self.input_ids = ids
        self.attention_mask = (ids != pad).long()
        self.labels = torch.tensor(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {
            "input_ids": self.input_ids[i],
            "attention_mask": self.attention_mask[i],
            "labels": self.labels[i],
            "index": i,
        }


@dataclass(frozen=True)
class ModelConfig:
    """The classifier and its inputs; the defaults train in minutes per epoch on a few CPUs."""

    vocab_size: int = 8000
    max_length: int = 64
    hidden_size: int = 128
    layers: int = 2
    heads: int = 2
    intermediate_size: int = 256
    dropout: float = 0.1


def load_sst2(
    root: Path, cfg: ModelConfig, train_subset: int | None = None, dev_subset: int | None = None
) -> tuple[TextSet, TextSet]:
    """The training phrases and the dev sentences, tokenised with a vocabulary trained on the
    (possibly subset) training phrases; ``*_subset`` keeps the first samples of a split."""
    train_texts, train_labels = load_split(root, "train")
    dev_texts, dev_labels = load_split(root, "dev")
    if train_subset is not None:
        train_texts, train_labels = train_texts[:train_subset], train_labels[:train_subset]
    if dev_subset is not None:
        dev_texts, dev_labels = dev_texts[:dev_subset], dev_labels[:dev_subset]
    tokenizer = train_tokenizer(train_texts, cfg.vocab_size)
    return (
        TextSet(tokenizer, train_texts, train_labels, cfg.max_length),
        TextSet(tokenizer, dev_texts, dev_labels, cfg.max_length),
    )


def build_model(cfg: ModelConfig, vocab_size: int, seed: int) -> Any:
    """A BERT-style sequence classifier from a config, initialised from ``seed``."""
    import transformers

    torch.manual_seed(seed)
    config = transformers.BertConfig(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        intermediate_size=cfg.intermediate_size,
        max_position_embeddings=cfg.max_length,
        hidden_dropout_prob=cfg.dropout,
        attention_probs_dropout_prob=cfg.dropout,
    )
    return transformers.BertForSequenceClassification(config)


@torch.no_grad()
def accuracy(model: Any, data: TextSet, batch_size: int = 256) -> float:
    """Percent of ``data`` classified correctly (the model is left in eval mode)."""
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for start in range(0, len(data), batch_size):
        mask = data.attention_mask[start : start + batch_size]
        length = int(mask.sum(1).max())
        ids = data.input_ids[start : start + batch_size, :length].to(device)
        mask = mask[:, :length].to(device)
        logits = model(input_ids=ids, attention_mask=mask).logits
        correct += int((logits.argmax(-1).cpu() == data.labels[start : start + batch_size]).sum())
    return 100.0 * correct / len(data)
