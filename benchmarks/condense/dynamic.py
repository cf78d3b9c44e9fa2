"""Dynamic pruning of the real pool at a synthetic set's training budget.

    PYTHONPATH=. python benchmarks/condense/dynamic.py --config configs/condense/cifar10-cpu.yaml \\
        --out results/condense --data-root ../shared/data/cifar10-jpeg --policies uniform,ucb

The third answer to "a coreset, dynamic pruning, or a synthetic set?": for every images-per-class
budget ``ipc`` of the condensation benchmark (``benchmarks/condense/run.py``) and every seed, a
fresh ConvNet is trained with the same evaluation protocol (SGD 0.01, momentum 0.9, weight decay
5e-4, batch 256, lr x0.1 after half the epochs, DSA on every batch, ``eval.epochs[ipc]``
epochs), but each epoch trains on ``ipc x classes`` real images that a
:class:`~dynaprune.DynamicPruningSampler` re-selects from the whole real pool
(``keep_ratio = ipc x classes / pool``), with the per-sample losses fed back. Every epoch thus
costs what an epoch on a synthetic or coreset set of that size costs, and nothing is spent
before training (``scoring_seconds`` 0). Rows ``dynamic-<policy>`` are appended to
``OUT/runs.csv`` in the condensation benchmark's format; ``benchmarks/condense/run.py
--report-only --out OUT`` then tables them with the rest.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import Any

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.condense.run import (
    RUN_COLUMNS,
    _append,
    load_config,
    load_pool,
    measure,
    seed_list,
    write_summary,
)
from dynaprune import DynamicPruningSampler
from dynaprune import condense as cd
from dynaprune.policies import POLICIES

__all__ = ["main", "run", "train_pruned"]


def train_pruned(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    per_epoch: int,
    policy: str,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
) -> torch.nn.Module:
    """A fresh ConvNet trained as :func:`dynaprune.condense.train_convnet` trains one, on
    ``per_epoch`` samples of ``(x, y)`` per epoch chosen by ``policy``."""
    sampler = DynamicPruningSampler(len(x), per_epoch / len(x), policy, seed=seed)
    if sampler.num_keep != per_epoch:
        raise RuntimeError(f"the sampler plans {sampler.num_keep} samples, not {per_epoch}")
    return cd.train_convnet(
        x, y, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, sampler=sampler
    )


def run(cfg: dict[str, Any], out: Path, policies: list[str]) -> None:
    torch.set_num_threads(cfg["threads"])
    out.mkdir(parents=True, exist_ok=True)
    data, x, test = load_pool(cfg)
    ev = cfg["eval"]
    for ipc in cfg["ipc"]:
        per_epoch = ipc * data.num_classes
        for seed in seed_list(cfg):
            for policy in policies:
                for net_id in range(ev["nets"]):
                    net, seconds, pressure = measure(
                        functools.partial(
                            train_pruned,
                            x,
                            data.train_y,
                            per_epoch=per_epoch,
                            policy=policy,
                            epochs=ev["epochs"][ipc],
                            lr=ev["lr"],
                            batch_size=ev["batch_size"],
                            seed=1000 * seed + net_id,
                        )
                    )
                    acc = 100 * cd.accuracy(net, *test)
                    _append(
                        out / "runs.csv",
                        RUN_COLUMNS,
                        {
                            "method": f"dynamic-{policy}",
                            "ipc": ipc,
                            "seed": seed,
                            "net": net_id,
                            "images": per_epoch,
                            "test_acc": round(acc, 2),
                            "train_seconds": round(seconds, 2),
                            "scoring_seconds": 0,
                            "cpu_pressure": round(pressure, 3),
                            "spec": f"{per_epoch} of {len(x)} real images per epoch",
                        },
                    )
                    print(
                        f"dynamic-{policy:<8} ipc {ipc:>2} seed {seed} net {net_id}: "
                        f"{acc:5.2f}%  train {seconds:5.1f}s",
                        flush=True,
                    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--policies", default="uniform,ucb", help="e.g. uniform,ucb")
    args = parser.parse_args(argv)
    policies = [p for p in args.policies.split(",") if p]
    unknown = [p for p in policies if p not in POLICIES]
    if not policies or unknown:
        raise ValueError(
            f"--policies must name policies among {sorted(POLICIES)}, got {args.policies!r}"
        )
    run(load_config(args.config, args.data_root), args.out, policies)
    write_summary(args.out)


if __name__ == "__main__":
    main()
