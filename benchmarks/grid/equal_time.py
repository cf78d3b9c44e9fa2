"""Equal wall-clock comparison: each method against all-data training at the method's own time.

Writes ``equal_time.csv``, ``equal_time.md`` and ``equal_time.png`` from a grid's results
folder: per method and keep ratio, the final accuracy minus the full-data curve's at the same
training plus scoring seconds, paired by seed, with the seeds beyond the curve's ends (where it
is extended along its first or last segment) counted. The curve and the deltas are defined in
:mod:`benchmarks.grid.full_curve`.

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
import statistics
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    _ROOT = str(Path(__file__).resolve().parents[2])
    if _ROOT not in sys.path:
        sys.path.append(_ROOT)

from benchmarks.grid.figures import plot_equal_time
from benchmarks.grid.full_curve import (
    CURVE,
    Timing,
    curve_points,
    equal_time_deltas,
    interpolate,
    load_timing,
)
from benchmarks.grid.report import load_results
from benchmarks.grid.train import RunResult

# the full-data curve's names are re-exported: this module defined them first
__all__ = ["Timing", "curve_points", "equal_time_deltas", "interpolate", "load_timing", "main"]


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
