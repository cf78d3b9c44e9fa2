"""How much wall-clock does dynamic pruning save, and what does it cost in accuracy?

Trains ``full``, ``full-same-budget`` and every policy at every keep ratio over several seeds,
in one invocation on one machine, and writes a results folder::

    python benchmarks/run.py --config configs/quick.yaml --out results/quick
    python benchmarks/run.py --config configs/cifar10-cpu.yaml --out results/cifar10-cpu \\
        --data-root ../shared/data/cifar10-jpeg
    python benchmarks/run.py --config configs/quick.yaml --out /tmp/ci --seeds 1 \\
        --keep-ratios 0.5 --policies uniform,soft --epochs 2
    python benchmarks/run.py --model-factory examples/own_model.py:make_model \\
        --data-factory examples/own_model.py:make_data --out results/mine --epochs 10
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    _ROOT = str(Path(__file__).resolve().parents[2])
    if _ROOT not in sys.path:
        sys.path.append(_ROOT)

from benchmarks.grid.config import (
    DEFAULTS,
    LOADERS,
    LOOPS,
    apply_overrides,
    load_config,
    validate_config,
)
from benchmarks.grid.factory_names import factory_name

if TYPE_CHECKING:
    from torch import nn

    from benchmarks.grid.factories import LossFn

__all__ = ["main", "parse_args", "run_own"]


def _csv(kind: type, flag: str) -> Any:
    def parse(text: str) -> list[Any]:
        try:
            return [kind(item) for item in text.split(",") if item.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{flag} must be a comma-separated list of {kind.__name__}, got {text!r}"
            ) from None

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    intro, examples = __doc__.split("\n\n", 1)
    parser = argparse.ArgumentParser(
        description=intro,
        epilog=examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", help="YAML preset, e.g. configs/quick.yaml")
    parser.add_argument("--out", required=True, help="results folder of this invocation")
    parser.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    parser.add_argument(
        "--loop", choices=LOOPS, help="Lightning callback (default) or the plain PyTorch loop"
    )
    parser.add_argument(
        "--loader", choices=LOADERS, help="DataLoader with workers, or device-resident tensors"
    )
    parser.add_argument("--data-root", help="ImageFolder tree (train/, test/) or torchvision root")
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    parser.add_argument(
        "--seeds",
        type=_seeds,
        help="number of seeds (0..N-1), or the seeds themselves: 1,2 (or 2, for seed 2 alone)",
    )
    parser.add_argument("--keep-ratios", type=_csv(float, "--keep-ratios"), help="e.g. 0.3,0.5")
    parser.add_argument("--policies", type=_csv(str, "--policies"), help="e.g. uniform,soft")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--num-workers", type=int)
    parser.add_argument("--threads", type=int, help="torch.set_num_threads")
    parser.add_argument(
        "--train-subset", type=int, help="class-stratified subset of the train split"
    )
    parser.add_argument(
        "--no-budget-baseline", action="store_true", help="skip full-same-budget runs"
    )
    parser.add_argument(
        "--baselines",
        type=_csv(str, "--baselines"),
        help="baselines to train: full,full-same-budget (default), or 'none' to train only the "
        "policies, e.g. to split a grid over two processes and merge the folders",
    )
    parser.add_argument(
        "--label-noise", type=float, help="share of training labels flipped to another class"
    )
    parser.add_argument(
        "--label-noise-kind",
        choices=("symmetric", "asymmetric"),
        help="symmetric: any other class; asymmetric: CIFAR-10's class pairs (truck->automobile, "
        "bird->airplane, deer->horse, cat<->dog)",
    )
    parser.add_argument("--lr", type=float, help="peak learning rate (train.lr)")
    parser.add_argument("--model", help="a built-in model (model.name), e.g. resnet8")
    parser.add_argument("--eval-every", type=int, help="evaluate after every n-th epoch")
    parser.add_argument(
        "--curve",
        type=_csv(float, "--curve"),
        help="extra full-data curve points (shares of the steps), e.g. 0.7",
    )
    parser.add_argument(
        "--model-factory", help="your own model: MODULE:FUNCTION returning a fresh nn.Module"
    )
    parser.add_argument(
        "--data-factory", help="your own data: MODULE:FUNCTION returning (train_set, test_set)"
    )
    parser.add_argument(
        "--loss", help="MODULE:FUNCTION (logits, targets) -> per-sample losses; default CE"
    )
    parser.add_argument("--no-progress", action="store_true", help="no live display, no log lines")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: rebuild summary and figures from the runs already in --out",
    )
    args = parser.parse_args(argv)
    if args.config is None and not args.report_only and args.data_factory is None:
        parser.error("--config is required (except with --report-only or --data-factory)")
    return args


def _seeds(text: str) -> int | list[int]:
    """``--seeds``: a count, or a comma-separated list of seeds."""
    try:
        return [int(s) for s in text.split(",") if s] if "," in text else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a count or comma-separated integers, got {text!r}"
        ) from None


_FLAGS = {
    "loop": "train.loop",
    "loader": "data.loader",
    "data_root": "data.root",
    "device": "train.device",
    "seeds": "benchmark.seeds",
    "keep_ratios": "pruning.keep_ratios",
    "policies": "pruning.policies",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "num_workers": "data.num_workers",
    "threads": "train.threads",
    "train_subset": "data.train_subset",
    "label_noise": "data.label_noise",
    "label_noise_kind": "data.label_noise_kind",
    "lr": "train.lr",
    "model": "model.name",
    "eval_every": "train.eval_every",
    "curve": "benchmark.curve",
    "model_factory": "model.factory",
    "data_factory": "data.factory",
    "loss": "train.loss",
}


def build_config(args: argparse.Namespace) -> dict[str, Any]:
    """The validated config of ``args``: the preset with the command-line overrides applied."""
    overrides = {
        key: getattr(args, flag) for flag, key in _FLAGS.items() if getattr(args, flag) is not None
    }
    if args.baselines is not None:
        overrides["benchmark.baselines"] = [b for b in args.baselines if b != "none"]
    if args.no_budget_baseline:
        overrides["benchmark.baselines"] = ["full"]
    if args.config is not None:
        base = load_config(args.config)
    else:  # your own model and data: the defaults for everything else
        base = {"name": "own", **copy.deepcopy(DEFAULTS)}
    return validate_config(apply_overrides(base, overrides))


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (2 for a bad config, before any training)."""
    args = parse_args(argv)
    if args.report_only:
        from benchmarks.grid.bench import report_only

        report_only(Path(args.out))
        return 0
    try:
        cfg = build_config(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from benchmarks.grid.bench import run_benchmark

    try:
        run_benchmark(cfg, Path(args.out), progress=not args.no_progress, overwrite=args.overwrite)
    except FileExistsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def run_own(
    model_factory: str | Callable[[], nn.Module],
    data_factory: str | Callable[[], tuple[Any, Any]],
    out: str | Path,
    *,
    loss: str | LossFn | None = None,
    config: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> list[dict[str, Any]]:
    """Run the grid on your own model and data from Python; returns the summary rows.

    Args:
        model_factory: a function returning a fresh ``nn.Module``, or its ``MODULE:FUNCTION``.
        data_factory: a function returning ``(train_set, test_set)``, or its name.
        out: the results folder.
        loss: per-sample ``loss(logits, targets)``, or its name; default cross-entropy.
        config: a preset for everything else (default: the built-in defaults).
        overrides: dotted config keys, e.g. ``{"train.epochs": 10, "pruning.policies":
            ["uniform", "ucb"]}``.
        progress: show the live display and log lines.
        overwrite: replace results already in ``out``.

    Example:
        >>> rows = run_own(make_model, make_data, "results/mine",
        ...                overrides={"train.epochs": 10})  # doctest: +SKIP
    """
    from benchmarks.grid.bench import run_benchmark

    base = load_config(config) if config is not None else {"name": "own", **DEFAULTS}
    given = {
        "model.factory": factory_name(model_factory),
        "data.factory": factory_name(data_factory),
        "train.loss": None if loss is None else factory_name(loss),
        **(overrides or {}),
    }
    cfg = validate_config(apply_overrides(base, given))
    return run_benchmark(cfg, Path(out), progress=progress, overwrite=overwrite)


if __name__ == "__main__":
    sys.exit(main())
