"""Statistics over the seeds of a grid: means, standard deviations and paired differences.

The summary table (:mod:`benchmarks.grid.report`) and the figures (:mod:`benchmarks.grid.figures`)
report the same numbers, so they compute them here, once.
"""

from __future__ import annotations

import statistics

from benchmarks.grid.train import RunResult

__all__ = ["mean_or_nan", "paired_deltas", "std_or_zero"]


def mean_or_nan(values: list[float]) -> float:
    """The mean of ``values``; NaN when there are none."""
    return statistics.fmean(values) if values else float("nan")


def std_or_zero(values: list[float]) -> float:
    """The sample standard deviation of ``values``; 0 for fewer than two."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


def paired_deltas(
    results: list[RunResult], method: str, keep: float, reference: str
) -> list[float]:
    """Final-accuracy differences ``method - reference`` at the same keep ratio, seed by seed
    (only seeds that both ran)."""

    def finals(name: str) -> dict[int, float]:
        return {
            r.spec.seed: r.curve[-1].test_acc
            for r in results
            if r.spec.method == name and r.spec.keep_ratio == keep
        }

    mine, theirs = finals(method), finals(reference)
    return [mine[s] - theirs[s] for s in sorted(mine.keys() & theirs.keys())]
