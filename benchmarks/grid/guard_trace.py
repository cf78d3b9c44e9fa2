"""What ``guarded_ucb``'s noise guard decided at every epoch of one run.

Trains one run of a preset with the benchmark's model, data, recipe and sampler (seed 0, the
first keep ratio), the policy being ``GuardedUCBPolicy(num_classes=K)`` with any settings given
by ``--guard key=value``, and prints, for every selection, the share of samples with a loss, the
two-Gaussian fit of their moving-average losses, the threshold, the share flagged and, under the
benchmark's label noise, the flag's precision and recall against the flipped labels::

    python benchmarks/grid/guard_trace.py --config configs/cifar10-50k.yaml \\
        --data-root ../shared/data/cifar10-jpeg --keep-ratios 0.5 --lr 0.2 --label-noise 0.2
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    _ROOT = str(Path(__file__).resolve().parents[2])
    if _ROOT not in sys.path:
        sys.path.append(_ROOT)

import torch
from torch import Tensor

from dynaprune import GuardedUCBPolicy, LossStatistics, Selection

__all__ = ["TracedGuard", "trace"]


class TracedGuard(GuardedUCBPolicy):
    """``GuardedUCBPolicy`` that keeps its guard's report of every selection in ``reports``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reports: list[tuple[float, Any]] = []
        self.losses: list[Tensor] = []  # the moving-average losses at each selection (nan unseen)

    def select(self, stats: LossStatistics, num_keep: int, generator: torch.Generator) -> Selection:
        seen = stats.count > 0
        self.reports.append((float(seen.float().mean()), self.guard(stats)))
        self.losses.append(torch.where(seen, stats.mean, torch.nan).cpu())
        return super().select(stats, num_keep, generator)

    def __repr__(self) -> str:
        args = ", ".join(
            f"{k}={v!r}" for k, v in vars(self).items() if k not in ("reports", "losses")
        )
        return f"GuardedUCBPolicy({args})"


def _value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def trace(argv: list[str], settings: dict[str, Any], dump: str | None = None) -> str:
    """Train the run and return the table of the guard's decisions; with ``dump``, also save
    the moving-average losses at every selection and the flipped-label mask there (``torch.save``
    of a dict), for fitting the guard offline."""
    from benchmarks.grid.cli import build_config, parse_args
    from benchmarks.grid.data import load_data
    from benchmarks.grid.flags import cells
    from benchmarks.grid.loaders import normalize
    from benchmarks.grid.runs import RunSpec
    from benchmarks.grid.train import RunClock, prepare_run, train_plain

    cfg = build_config(parse_args([*argv, "--out", "unused"]))
    torch.set_num_threads(cfg["train"]["threads"] or 1)
    data = load_data(cfg["data"])
    policy = TracedGuard(num_classes=data.num_classes, **settings)
    spec = RunSpec("guarded_ucb", cfg["pruning"]["keep_ratios"][0], 0, cfg["train"]["epochs"])
    run = prepare_run(spec, cfg, data, torch.device("cpu"), policy_object=policy)
    test = (normalize(data.test_x, data.mean, data.std), data.test_y)
    clock = RunClock(run, test, cfg["train"]["eval_batch_size"], eval_every=spec.epochs)
    train_plain(run, clock)  # the benchmark's plain loop
    acc = clock.curve[-1].test_acc
    lines = [
        f"{policy!r}; chance-level loss {math.log(data.num_classes):.3f}; "
        f"test accuracy {acc:.2f} %",
        "",
        "| selection for epoch | seen | high share | low mean | high mean | D | threshold "
        "| flagged | precision | recall |",
        "|---:" * 10 + "|",
    ]
    flipped = data.flipped
    if dump is not None:
        torch.save({"losses": policy.losses, "flipped": flipped, "accuracy": acc}, dump)
    # the sampler selects in set_epoch for pruned epochs only; reports are in that order
    pruned = [e for e in range(spec.epochs) if run.sampler.is_pruned(e)]
    for epoch, (seen, report) in zip(pruned, policy.reports, strict=False):
        m = report.mixture
        fit = (
            "| — | — | — |"
            if m is None
            else f"| {m.weight:.2f} | {m.mean_lo:.2f} | {m.mean_hi:.2f} |"
        )
        prec, rec = cells(report.flagged, flipped)
        lines.append(
            f"| {epoch} | {seen:.2f} {fit} {report.separation:.2f} | {report.threshold:.2f} "
            f"| {report.share:.3f} | {prec} | {rec} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--guard", action="append", default=[], help="a setting, e.g. flagged=explore"
    )
    parser.add_argument("--dump", help="save the per-selection moving-average losses here")
    args, rest = parser.parse_known_args()
    settings = {k: _value(v) for k, v in (item.split("=", 1) for item in args.guard)}
    print(trace(rest, settings, args.dump))


if __name__ == "__main__":
    main()
