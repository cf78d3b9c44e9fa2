"""Token and attention pruning in a ViT on CIFAR-10: throughput, time and accuracy, paired by seed.

    PYTHONPATH=. python benchmarks/vit/run.py --out results/vit \\
        --data-root ../shared/data/cifar10-jpeg --epochs 30 --seeds 0 1 2 --keeps 0.7 0.5

Every method of ``benchmarks/vit/methods.py`` at every keep rate and seed trains the same ViT
(``--model``, ViT-Lite-6/4 by default) from the same initial weights, on the same image order and
augmentation (random crop and flip on the device, as ``benchmarks/grid``), with AdamW (lr 1e-3,
weight decay 0.05, 5 % linear warm-up then cosine, label smoothing 0.1). Only the training steps
are timed (``train_seconds``; the device is synchronised at each epoch's end); the test accuracy is
measured once at the end, with every token. ``full-short`` trains the unpruned ViT for the
``--curve`` shares of the epochs: with ``full`` they trace accuracy against seconds, and
``delta_vs_curve`` in ``summary.csv`` is a method's accuracy minus that curve's at its seconds.
Rows are appended to ``runs.csv`` as runs finish; a rerun with the same ``--out`` skips them.
Results: ``runs.csv``, ``summary.csv``, ``summary.md``, ``accuracy_vs_time.png`` (with
matplotlib), ``config.json``, ``environment.json`` and ``versions.txt``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.environment import collect_environment, write_environment
from benchmarks.grid.config import DEFAULTS
from benchmarks.grid.data import DataBundle, load_data
from benchmarks.grid.loaders import DeviceLoader, normalize
from benchmarks.vit.methods import METHODS, MODELS, Method, build_method, build_model
from benchmarks.vit.report import RUN_COLUMNS, run_key, write_report
from dynaprune.tokens import TokenPruner

LR, WEIGHT_DECAY, WARMUP_SHARE, SMOOTHING = 1e-3, 0.05, 0.05, 0.1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--data-root", default="../shared/data/cifar10-jpeg")
    p.add_argument("--cache-dir", default=DEFAULTS["data"]["cache_dir"])
    p.add_argument("--train-subset", type=int, default=None)
    p.add_argument("--test-subset", type=int, default=None)
    p.add_argument("--model", choices=sorted(MODELS), default="vit-lite")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--keeps", nargs="+", type=float, default=[0.7, 0.5])
    p.add_argument("--curve", nargs="+", type=float, default=[0.5, 0.7])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--amp", choices=("none", "bf16"), default="none")
    p.add_argument("--max-steps", type=int, default=None, help="stop each epoch early (smoke)")
    p.add_argument(
        "--at-target",
        action="store_true",
        help="throughput only: every step at the target keep rate, the schedule skipped "
        "(accuracies are not those of the method)",
    )
    args = p.parse_args(argv)
    for keep in [*args.keeps, *args.curve]:
        if not 0 < keep <= 1:
            raise SystemExit(f"--keeps and --curve must be in (0, 1], got {keep}")
    return args


def plan(args: argparse.Namespace) -> list[tuple[str, float, int, int]]:
    """(method, keep, seed, epochs) of every run, the reference first."""
    runs = []
    for seed in args.seeds:
        for method in args.methods:
            if method == "full":
                runs.append((method, 1.0, seed, args.epochs))
            elif method == "full-short":
                runs += [
                    (method, share, seed, max(1, round(share * args.epochs)))
                    for share in args.curve
                ]
            else:
                runs += [(method, keep, seed, args.epochs) for keep in args.keeps]
    return runs


def learning_rate(progress: float) -> float:
    """Linear warm-up over the first 5 % of training, then a cosine to 0 (progress in [0, 1])."""
    if progress < WARMUP_SHARE:
        return LR * progress / WARMUP_SHARE
    return LR * 0.5 * (1 + math.cos(math.pi * (progress - WARMUP_SHARE) / (1 - WARMUP_SHARE)))


def train(
    method: Method, data: DataBundle, args: argparse.Namespace, epochs: int, seed: int
) -> dict[str, Any]:
    device = torch.device(args.device)
    method.model.to(device)
    loader = DeviceLoader(data, method.sampler, args.batch_size, device, augment=True, seed=seed)
    optimizer = torch.optim.AdamW(method.net.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    autocast = torch.autocast(device.type, torch.bfloat16, enabled=args.amp == "bf16")
    seconds, images, steps = 0.0, 0, 0
    for epoch in range(epochs):
        method.set_epoch(epoch)
        method.model.train()
        batches = len(loader) if args.max_steps is None else min(len(loader), args.max_steps)
        _sync(device)
        start = time.perf_counter()
        for step, (x, y) in enumerate(loader):
            if step == batches:
                break
            for group in optimizer.param_groups:
                group["lr"] = learning_rate((epoch + step / batches) / epochs)
            if isinstance(method.model, TokenPruner):  # the keep rates step per iteration, as
                at = float(epochs) if args.at_target else epoch + step / batches  # in EViT and
                method.model.set_epoch(at)  # Tri-Level-ViT; the schedule ends by epoch E
            with autocast:
                logits = method.model(x)
            losses = F.cross_entropy(logits.float(), y, reduction="none", label_smoothing=SMOOTHING)
            if method.uses_losses:
                loss = method.sampler.update(losses, correct=logits.argmax(1) == y)  # type: ignore[attr-defined]
            else:
                loss = losses.mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            images, steps = images + len(y), steps + 1
        _sync(device)
        seconds += time.perf_counter() - start
    last = getattr(method.model, "last_tokens", None) or [method.net.num_patches]
    return {
        "epochs": epochs,
        "steps": steps,
        "train_images": images,
        "train_seconds": seconds,
        "images_per_second": images / seconds,
        "seconds_per_epoch": seconds / epochs,
        "tokens_per_block": sum(last) / len(last),  # patch tokens entering a block, at the end
        "final_acc": evaluate(method, data, device, args),
    }


def warm_up(args: argparse.Namespace, data: DataBundle, image_size: int) -> None:
    """A few untimed steps of every method's kernels before the first timed run."""
    device = torch.device(args.device)
    x = normalize(data.test_x[: args.batch_size].to(device), data.mean, data.std)
    for name in ("full", "drop", "fuse", "tome", "attention"):
        net = build_model(args.model, image_size, data.num_classes, seed=0)
        model = build_method(name, 0.5, net, data.num_train, 1, 0).model.to(device).train()
        if isinstance(model, TokenPruner):
            model.set_epoch(1)  # past the (one-epoch) schedule: the target rate
        for _ in range(3):
            model(x).sum().backward()
    _sync(device)


@torch.no_grad()
def evaluate(method: Method, data: DataBundle, device: torch.device, args: Any) -> float:
    method.model.eval()  # every token: TokenPruner calls the model itself in eval mode
    images = normalize(data.test_x.to(device), data.mean, data.std)
    labels = data.test_y.to(device)
    correct = 0
    for start in range(0, len(labels), 500):
        logits = method.model(images[start : start + 500])
        correct += int((logits.argmax(1) == labels[start : start + 500]).sum())
    return 100.0 * correct / len(labels)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _done(path: Path) -> set[tuple[str, float, int, int]]:
    if not path.exists():
        return set()
    with path.open() as f:
        return {run_key(r) for r in csv.DictReader(f)}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    data_cfg = {
        **DEFAULTS["data"],
        "dataset": "imagefolder",
        "root": args.data_root,
        "cache_dir": args.cache_dir,
        "train_subset": args.train_subset,
        "test_subset": args.test_subset,
    }
    data = load_data(data_cfg)
    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    config.update(model_config=MODELS[args.model], lr=LR, weight_decay=WEIGHT_DECAY)
    (args.out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    write_environment(args.out, collect_environment(torch.device(args.device)))
    runs_path = args.out / "runs.csv"
    done = _done(runs_path)
    image_size = data.image_shape[-1]
    warm_up(args, data, image_size)
    for name, keep, seed, epochs in plan(args):
        if (name, keep, seed, epochs) in done:
            continue
        net = build_model(args.model, image_size, data.num_classes, seed)
        method = build_method(name, keep, net, data.num_train, epochs, seed)
        result = train(method, data, args, epochs, seed)
        row = {"method": name, "keep_ratio": keep, "seed": seed, **result}
        new = not runs_path.exists()
        with runs_path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=RUN_COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow(row)
        speed = f"{result['train_seconds']:.1f} s ({result['images_per_second']:.0f} img/s)"
        print(f"{name:>10} keep {keep:.2f} seed {seed}: {result['final_acc']:.2f} % in {speed}")
    print(write_report(args.out))


if __name__ == "__main__":
    main()
