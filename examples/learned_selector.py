"""The learned data selector on *your* model and data: the factories of ``own_model.py``.

From the repository root: ``python examples/learned_selector.py``. Replace ``make_model`` and
``make_data`` (the same contract as the benchmark's ``--model-factory`` / ``--data-factory``);
the selector trains one short run of your model for its indicators, labels 30 groups by the
held-out accuracy of a linear probe on their features, fits the selector, and prints the
subset it keeps. See docs/learned-selector.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

sys.path.append(str(Path(__file__).resolve().parent))
from own_model import make_data, make_model

from dynaprune import DynamicPruningSampler, StaticPolicy
from dynaprune.learned import cluster_top_k, learned_scores


class Indexed(Dataset):
    """Items as ``(index, input, target)``, so that a shuffled loader still says which is which."""

    def __init__(self, data: Dataset) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor, int]:
        x, y = self.data[index]
        return index, x, y


def main() -> None:
    train_set, _ = make_data()  # the test set is never read
    n = len(train_set)  # type: ignore[arg-type]
    generator = torch.Generator().manual_seed(0)
    result = learned_scores(
        make_model,
        DataLoader(train_set, batch_size=256),  # in order, no augmentation: the scoring passes
        train_loader=DataLoader(
            Indexed(train_set), batch_size=32, shuffle=True, generator=generator
        ),
        selector="attention",  # or "linear"
        holdout=0.1,  # a random tenth of the training set, whose labels you trust
        epochs=5,
        num_groups=8,  # 30 on a real data set; a few per class here (512 samples)
        clusters_per_class=4,
    )
    print(f"scored {n} samples in {result.seconds:.1f} s")
    print(
        "group labels (held-out probe accuracy):",
        [round(v, 3) for v in result.group_labels.tolist()],
    )
    kept = cluster_top_k(result.raw, result.clusters, n // 2)
    print(f"kept {kept.numel()} samples, e.g. {kept[:10].tolist()}")
    # or train on the top of the ranking through the sampler, at any keep ratio
    sampler = DynamicPruningSampler(n, keep_ratio=0.3, policy=StaticPolicy(result.scores))
    sampler.set_epoch(0)
    print(f"a pruned epoch of the sampler: {len(list(sampler))} samples")


if __name__ == "__main__":
    main()
