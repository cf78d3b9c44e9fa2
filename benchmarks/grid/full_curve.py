"""The full-data curve: each method against all-data training at the method's own seconds.

Methods with extra forward passes (in-batch selection) or a scoring run (static scores,
irreducible losses) do not cost what their sample count says. The *full-data curve* is all-data
training stopped at shares of the run's steps (``full-same-budget`` at every keep ratio and
``benchmark.curve`` share, and ``full``), each with its own LR schedule: accuracy as a function
of wall-clock. A method is compared with that curve, seed by seed, at its training plus scoring
seconds; between two points the curve is linear, beyond its ends it is extended along its first
or last segment.

The summary's ``delta_vs_curve`` (:mod:`benchmarks.grid.report`) uses each run's own seconds;
the equal-time command (:mod:`benchmarks.grid.equal_time`) can take them from a timing run
(:func:`load_timing`) instead.
"""

from __future__ import annotations

import math
import statistics

from benchmarks.grid.train import RunResult

__all__ = [
    "CURVE",
    "Timing",
    "curve_points",
    "equal_time_deltas",
    "interpolate",
    "load_timing",
    "run_seconds",
]

CURVE = ("full", "full-same-budget")

# (method, keep ratio) -> (seconds per optimizer step, scoring seconds)
Timing = dict[tuple[str, float], tuple[float, float]]


def load_timing(results: list[RunResult]) -> Timing:
    """Seconds per step and scoring seconds of every method and keep ratio of a timing grid."""
    groups: dict[tuple[str, float], list[RunResult]] = {}
    for r in results:
        groups.setdefault((r.spec.method, r.spec.keep_ratio), []).append(r)
    return {
        key: (
            statistics.fmean(r.train_seconds / r.curve[-1].steps for r in runs),
            statistics.fmean(r.scoring_seconds for r in runs),
        )
        for key, runs in groups.items()
    }


def run_seconds(result: RunResult, timing: Timing | None = None) -> float:
    """Training plus scoring seconds of a run, measured or from ``timing``."""
    if timing is None:
        return result.train_seconds + result.scoring_seconds
    method = "full" if result.spec.method in CURVE else result.spec.method
    keep = 1.0 if method == "full" else result.spec.keep_ratio
    if (method, keep) not in timing:
        raise ValueError(f"the timing folder has no run of {method} at keep {keep:g}")
    per_step, scoring = timing[(method, keep)]
    return per_step * result.curve[-1].steps + scoring


def curve_points(
    results: list[RunResult], seed: int, timing: Timing | None = None
) -> list[tuple[float, float]]:
    """``(seconds, final accuracy)`` of the all-data runs of ``seed``, by time."""
    return sorted(
        (run_seconds(r, timing), r.curve[-1].test_acc)
        for r in results
        if r.spec.method in CURVE and r.spec.seed == seed
    )


def interpolate(points: list[tuple[float, float]], t: float) -> float:
    """The piecewise-linear curve through ``points`` at ``t``, extended along its end segments."""
    if len(points) < 2:
        return math.nan
    i = 1
    while i < len(points) - 1 and points[i][0] < t:
        i += 1
    (t0, a0), (t1, a1) = points[i - 1], points[i]
    return a0 if t1 == t0 else a0 + (a1 - a0) * (t - t0) / (t1 - t0)


def equal_time_deltas(
    results: list[RunResult], method: str, keep: float, timing: Timing | None = None
) -> list[tuple[int, float, float, bool]]:
    """Per seed: ``(seed, seconds, accuracy minus the curve's at those seconds, extrapolated)``."""
    out = []
    for r in results:
        if r.spec.method != method or r.spec.keep_ratio != keep:
            continue
        points = curve_points(results, r.spec.seed, timing)
        if len(points) < 2:
            continue
        t = run_seconds(r, timing)
        outside = not points[0][0] <= t <= points[-1][0]
        out.append((r.spec.seed, t, r.curve[-1].test_acc - interpolate(points, t), outside))
    return sorted(out)
