"""Equal wall-clock comparison: each method against all-data training at the method's own time.

Methods with extra forward passes (in-batch selection) or a scoring run (static scores,
irreducible losses) do not cost what their sample count says. The *full-data curve* is all-data
training stopped at shares of the run's steps (``full-same-budget`` at every keep ratio and
``benchmark.curve`` share, and ``full``), each with its own LR schedule: accuracy as a function
of wall-clock. A method is compared with that curve, seed by seed, at its training plus scoring
seconds; between two points the curve is linear, beyond its ends it is extended along its first
or last segment (reported as such in ``equal_time.md``).

The summary's ``delta_vs_curve`` uses each run's own seconds. Where the grid ran beside other
processes, those seconds are skewed; then pass a timing folder, a short grid of the same config
run alone (e.g. ``--epochs 1 --seeds 1``): every run's time becomes the timing run's seconds per
optimizer step of its method and keep ratio times the run's steps, plus the timing run's scoring
seconds::

    python benchmarks/grid/equal_time.py --results results/50k --timing results/50k-timing
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    _ROOT = str(Path(__file__).resolve().parents[2])
    if _ROOT not in sys.path:
        sys.path.append(_ROOT)

from benchmarks.grid.train import RunResult

__all__ = ["Timing", "curve_points", "equal_time_deltas", "interpolate", "load_timing", "main"]

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


def summary_rows(results: list[RunResult], timing: Timing | None = None) -> list[dict[str, Any]]:
    """One row per method and keep ratio: mean seconds, accuracy and Δ vs the curve (paired)."""
    keys = sorted({(r.spec.method, r.spec.keep_ratio) for r in results}, key=lambda k: (k[1], k[0]))
    rows = []
    for method, keep in keys:
        if method in CURVE:
            continue
        deltas = equal_time_deltas(results, method, keep, timing)
        if not deltas:
            continue
        accs = [
            r.curve[-1].test_acc
            for r in results
            if (r.spec.method, r.spec.keep_ratio) == (method, keep)
        ]
        values = [d for _, _, d, _ in deltas]
        rows.append(
            {
                "method": method,
                "keep_ratio": keep,
                "seeds": len(deltas),
                "seconds": statistics.fmean(t for _, t, _, _ in deltas),
                "test_acc_mean": statistics.fmean(accs),
                "test_acc_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                "delta_vs_curve": statistics.fmean(values),
                "delta_vs_curve_std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "extrapolated": sum(o for _, _, _, o in deltas),
            }
        )
    return rows


def write(out: Path, rows: list[dict[str, Any]], source: str) -> str:
    """Writes ``equal_time.csv`` and ``equal_time.md``; returns the markdown."""
    with (out / "equal_time.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["method"])
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        f"## Equal wall-clock: accuracy minus the full-data curve's at the same seconds ({source})",
        "",
        "| method | keep | seconds | test acc (%) | Δ vs full-data curve (pt, paired) | note |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        note = (
            f"{r['extrapolated']}/{r['seeds']} seeds beyond the curve" if r["extrapolated"] else ""
        )
        lines.append(
            f"| {r['method']} | {r['keep_ratio']:g} | {r['seconds']:.1f} "
            f"| {r['test_acc_mean']:.2f} ± {r['test_acc_std']:.2f} "
            f"| {r['delta_vs_curve']:+.2f} ± {r['delta_vs_curve_std']:.2f} | {note} |"
        )
    markdown = "\n".join(lines) + "\n"
    (out / "equal_time.md").write_text(markdown)
    return markdown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", required=True, help="results folder of the grid")
    parser.add_argument("--timing", help="results folder of the same grid run alone")
    parser.add_argument("--out", help="where to write (default: --results)")
    args = parser.parse_args(argv)
    from benchmarks.grid.figures import plot_equal_time
    from benchmarks.grid.report import load_results

    results = load_results(Path(args.results))
    timing = None if args.timing is None else load_timing(load_results(Path(args.timing)))
    out = Path(args.out or args.results)
    out.mkdir(parents=True, exist_ok=True)
    rows = summary_rows(results, timing)
    source = "seconds from the timing run alone" if timing else "each run's own seconds"
    print(write(out, rows, source))
    plot_equal_time(out / "equal_time.png", results, timing)
    return 0


if __name__ == "__main__":
    sys.exit(main())
