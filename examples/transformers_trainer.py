"""Dynamic data pruning with the Hugging Face Trainer, offline on a CPU (a few minutes at most).

Trains a small BERT-style sentiment classifier from scratch on a slice of SST-2 and, each epoch,
only on the half of the phrases that ``ucb`` picks from their losses so far. Copy it and swap in
your model and data: the dynaprune part is the sampler and ``PruningTrainer`` (marked below).

    pip install -e ".[transformers]"
    python examples/transformers_trainer.py [--data-root ../shared/data/sst2] [--phrases 4000]

No pretrained weights or vocabularies are downloaded: the WordPiece vocabulary is trained on
the training phrases (``tokenizers``) and the model is built from a config.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import BertConfig, BertForSequenceClassification, TrainingArguments

from dynaprune import DynamicPruningSampler
from dynaprune.transformers import PruningTrainer


def read_tsv(path: Path, limit: int | None = None) -> list[tuple[str, int]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    return [(text, int(label)) for label, text in rows[:limit]]


def train_tokenizer(texts: list[str]) -> Tokenizer:
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    tokenizer.train_from_iterator(
        texts, trainers.WordPieceTrainer(vocab_size=4000, special_tokens=specials)
    )
    tokenizer.enable_truncation(48)
    tokenizer.enable_padding(length=48, pad_id=0)
    return tokenizer


def encode(tokenizer: Tokenizer, rows: list[tuple[str, int]]) -> list[dict[str, object]]:
    """The items Trainer collates; ``index`` lets the sampler match each loss to its sample."""
    encodings = tokenizer.encode_batch([text for text, _ in rows])
    return [
        {"input_ids": e.ids, "attention_mask": e.attention_mask, "labels": label, "index": i}
        for i, (e, (_, label)) in enumerate(zip(encodings, rows, strict=True))
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data/sst2"))
    parser.add_argument("--phrases", type=int, default=4000, help="training phrases used")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()

    train_rows = read_tsv(args.data_root / "train.tsv", args.phrases)
    dev_rows = read_tsv(args.data_root / "dev.tsv")
    tokenizer = train_tokenizer([text for text, _ in train_rows])
    train_set, dev_set = encode(tokenizer, train_rows), encode(tokenizer, dev_rows)

    torch.manual_seed(0)
    model = BertForSequenceClassification(
        BertConfig(
            vocab_size=tokenizer.get_vocab_size(),
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=128,
            max_position_embeddings=48,
        )
    )

    # --- dynaprune: the sampler, and PruningTrainer in place of Trainer -------------------
    sampler = DynamicPruningSampler(train_set, keep_ratio=0.5, policy="ucb", seed=0)
    trainer = PruningTrainer(
        model=model,
        args=TrainingArguments(
            "results/transformers_trainer",
            num_train_epochs=args.epochs,  # the schedule is sized from the pruned epochs
            per_device_train_batch_size=32,
            learning_rate=1e-3,
            warmup_steps=0.06,
            use_cpu=True,
            save_strategy="no",
            report_to=[],
            disable_tqdm=True,
            logging_strategy="epoch",
        ),
        train_dataset=train_set,
        eval_dataset=dev_set,
        sampler=sampler,
        compute_metrics=lambda p: {
            "accuracy": float(np.mean(p.predictions.argmax(-1) == p.label_ids))
        },
    )
    # ---------------------------------------------------------------------------------------
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    accuracy = trainer.evaluate()["eval_accuracy"]
    trained = int(sampler.stats.count.sum())
    distinct = int((sampler.stats.count > 0).sum())
    print(
        f"dev accuracy {100 * accuracy:.2f}% after {seconds:.0f} s of training on {trained:,} "
        f"samples ({distinct:,} distinct of {len(train_set):,}; all data every epoch would be "
        f"{args.epochs * len(train_set):,})"
    )


if __name__ == "__main__":
    main()
