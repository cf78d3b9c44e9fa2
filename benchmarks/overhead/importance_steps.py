"""Where importance sampling's selection time goes: each step of ``ImportancePolicy.select``,
timed in process on realistic statistics, beside ``torch.randperm(N)``::

    OMP_NUM_THREADS=1 python benchmarks/overhead/importance_steps.py --n 1e7 --laps 10

Every lap runs ``randperm(N)`` and then the steps in order, each on the previous step's
output, through the same library functions the policy calls; the table shows the median of
each over the laps after the first (a warm-up), in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

if __package__ in (None, ""):  # run as a script: make the repository root importable
    _ROOT = str(Path(__file__).resolve().parents[2])
    if _ROOT not in sys.path:
        sys.path.append(_ROOT)

from benchmarks.overhead.selection import realistic_stats
from dynaprune import LossStatistics
from dynaprune._select import shuffled_indices, sum64
from dynaprune._splitting import proportional_subset
from dynaprune.policies.sampled import _scores, inclusion_scale, kept_weights, sampling_weight

__all__ = ["main", "run_steps", "step_times"]


def step_times(n: int, laps: int, keep: float = 0.5, mix: float = 0.5) -> dict[str, float]:
    """Median milliseconds of ``randperm(n)`` and of each step of an importance selection."""
    stats = realistic_stats(n, torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    k = round(keep * n)
    times: dict[str, list[float]] = {}

    def timed(name: str, fn: Callable[..., Any], *args: Any) -> Any:
        start = time.perf_counter()
        out = fn(*args)
        times.setdefault(name, []).append(time.perf_counter() - start)
        return out

    for _ in range(laps + 1):
        timed("randperm(N)", torch.randperm, n)
        run_steps(stats, k, mix, generator, timed)
    medians = {name: 1000.0 * statistics.median(v[1:]) for name, v in times.items()}
    medians["all steps"] = sum(v for name, v in medians.items() if name != "randperm(N)")
    return medians


Step = Callable[..., Any]


def run_steps(
    stats: LossStatistics, k: int, mix: float, generator: torch.Generator, timed: Step
) -> tuple[torch.Tensor, torch.Tensor]:
    """The steps of ``ImportancePolicy(mix).select(stats, k, generator)`` (with every sample
    seen), each called through ``timed(name, fn, *args)``; returns its indices and weights."""
    weight = timed("sampling weights", _weights, stats, mix)
    total = timed("their float64 sum", sum64, weight)
    c = timed("capped probabilities", inclusion_scale, weight, k, total)
    keep_mask = timed("draw", proportional_subset, weight, c, generator)
    idx = timed("shuffle of the kept", shuffled_indices, keep_mask, generator)
    weights = timed(
        "weights in the shuffled order", kept_weights, weight, idx, c, k / stats.num_samples
    )
    return idx, weights


def _weights(stats: LossStatistics, mix: float) -> torch.Tensor:
    _, unknown, num_unknown = _scores(stats)
    return sampling_weight(stats, mix, unknown if num_unknown else None)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=float, default=1e7, help="samples")
    parser.add_argument("--laps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    medians = step_times(int(args.n), args.laps)
    print(f"importance selection at N = {args.n:.0e}, keep 0.5, {args.threads} thread(s), ms:")
    for name, ms in medians.items():
        print(f"| {name} | {ms:.1f} |")
    return medians


if __name__ == "__main__":
    main()
