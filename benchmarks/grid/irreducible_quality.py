"""How good are the irreducible losses the rho methods use? A diagnostic of the IL model.

For one config (e.g. ``cifar10-50k`` with ``--label-noise 0.2``), computes the two-fold
irreducible losses as the benchmark does (``StaticScorer.irreducible``) for several IL training
lengths and reports, per length: the seconds, the IL models' accuracy on the half they did not
see (against the training labels, noisy or not), and, under label noise, how well the
irreducible loss separates the flipped labels from the kept ones (mean IL of each group and the
AUC: the probability that a flipped sample has a higher IL than a kept one)::

    python benchmarks/grid/irreducible_quality.py --config configs/cifar10-50k.yaml \\
        --data-root ../shared/data/cifar10-jpeg --label-noise 0.2 --epochs 1,3
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    _ROOT = str(Path(__file__).resolve().parents[2])
    if _ROOT not in sys.path:
        sys.path.append(_ROOT)

import torch

from benchmarks.grid.config import apply_overrides, load_config, validate_config
from benchmarks.grid.data import load_data

__all__ = ["auc", "main"]


def auc(positive: torch.Tensor, negative: torch.Tensor) -> float:
    """P(a random positive scores above a random negative), ties counting half (rank-sum)."""
    scores = torch.cat([positive, negative]).double()
    ranks = torch.empty_like(scores)
    ranks[scores.argsort()] = torch.arange(1, scores.numel() + 1, dtype=torch.float64)
    n1, n0 = positive.numel(), negative.numel()
    return float((ranks[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--label-noise", type=float, default=0.0)
    parser.add_argument("--epochs", default="1", help="IL training epochs to try, e.g. 1,3")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from benchmarks.grid.bench import resolve_device
    from benchmarks.grid.static_scores import StaticScorer

    cfg = validate_config(
        apply_overrides(
            load_config(args.config),
            {"data.root": args.data_root, "data.label_noise": args.label_noise},
        )
    )
    torch.set_num_threads(cfg["train"]["threads"] or torch.get_num_threads())
    device = resolve_device(cfg["train"]["device"])
    data = load_data(cfg["data"])
    clean = load_data({**cfg["data"], "label_noise": 0.0}).train_y
    flipped = data.train_y != clean
    print(f"{data.num_train} samples, {int(flipped.sum())} labels flipped")
    print("| IL epochs | seconds | IL mean (kept) | IL mean (flipped) | AUC flipped vs kept |")
    print("|---:|---:|---:|---:|---:|")
    scorer = StaticScorer(cfg, data, device)  # caches each epoch count's losses apart
    any_flipped = bool(flipped.any())
    for epochs in [int(e) for e in args.epochs.split(",")]:
        il, seconds = scorer.irreducible("twofold", args.seed, epochs)
        kept, noisy = il[~flipped], il[flipped]
        area = auc(noisy, kept) if any_flipped else float("nan")
        noisy_mean = noisy.mean().item() if any_flipped else float("nan")
        print(f"| {epochs} | {seconds:.1f} | {kept.mean():.3f} | {noisy_mean:.3f} | {area:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
