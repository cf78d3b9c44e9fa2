"""Results of one invocation: per-epoch curves, per-run rows, summary table and figures.

Definitions (per method and keep ratio, mean over seeds):

* speedup: ``full``'s mean training seconds over the method's; ideal speedup: ``1 / keep_ratio``.
* time to target: training seconds until the test accuracy first reaches ``full``'s mean final
  accuracy minus ``target_drop`` points, averaged over the seeds that reach it; "never" when none
  does.
* dynaprune share: seconds inside the sampler (selection + feedback) over training seconds.
* scoring seconds: a static method's scoring run, or a rho method's irreducible losses (0 for
  the other methods); speedup with scoring: ``full``'s mean training seconds over the method's
  training plus scoring seconds, the figure that decides whether scoring once pays for itself.
* Δ vs curve: final accuracy minus the full-data curve's at the run's training plus scoring
  seconds, paired by seed (:mod:`benchmarks.grid.full_curve`).
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from benchmarks.grid.full_curve import equal_time_deltas
from benchmarks.grid.methods import rank
from benchmarks.grid.runs import RunSpec
from benchmarks.grid.stats import mean_or_nan, paired_deltas, std_or_zero
from benchmarks.grid.train import EpochRecord, RunResult

__all__ = [
    "SUMMARY_COLUMNS",
    "append_run",
    "load_results",
    "paired_deltas",
    "summarize",
    "write_summary",
]

SUMMARY_COLUMNS = (
    "method",
    "keep_ratio",
    "seeds",
    "epochs",
    "test_acc_mean",
    "test_acc_std",
    "best_acc_mean",
    "best_acc_std",
    "acc_delta",
    "train_seconds_mean",
    "train_seconds_std",
    "total_seconds_mean",
    "samples_processed",
    "speedup",
    "ideal_speedup",
    "scoring_seconds_mean",
    "speedup_with_scoring",
    "time_to_target_mean",
    "target_reached",
    "dynaprune_share",
    "delta_vs_budget",
    "delta_vs_budget_std",
    "delta_vs_uniform",
    "delta_vs_uniform_std",
    "delta_vs_curve",
    "delta_vs_curve_std",
)
RUN_COLUMNS = (
    "method",
    "keep_ratio",
    "seed",
    "epochs",
    "max_steps",
    "steps",
    "planned_steps",
    "samples",
    "final_acc",
    "best_acc",
    "train_seconds",
    "total_seconds",
    "dynaprune_seconds",
    "cpu_pressure",
    "scoring_seconds",
    "warnings",
)


def append_run(out: Path, result: RunResult) -> None:
    """Appends a run to ``curves.csv`` and ``runs.csv``, so an interrupted grid keeps it."""
    _append(
        out / "curves.csv", [f.name for f in fields(EpochRecord)], [asdict(r) for r in result.curve]
    )
    last = result.curve[-1]
    row = {
        **result.spec.as_dict(),
        "steps": last.steps,
        "planned_steps": result.planned_steps,
        "samples": last.samples,
        "final_acc": last.test_acc,
        "best_acc": _best(result.curve),
        "train_seconds": result.train_seconds,
        "total_seconds": result.total_seconds,
        "dynaprune_seconds": last.dynaprune_seconds,
        "cpu_pressure": result.cpu_pressure,
        "scoring_seconds": result.scoring_seconds,
        "warnings": "; ".join(result.warnings),
    }
    _append(out / "runs.csv", list(RUN_COLUMNS), [row])


_INT_FIELDS = ("seed", "epoch", "steps", "samples")


def load_results(out: Path) -> list[RunResult]:
    """Reads back what :func:`append_run` wrote, e.g. to report on an interrupted grid."""
    with (out / "curves.csv").open() as handle:
        points = list(csv.DictReader(handle))
    with (out / "runs.csv").open() as handle:
        runs = list(csv.DictReader(handle))
    curves: dict[tuple[str, float, int], list[EpochRecord]] = {}
    for point in points:
        values = {
            k: v if k == "method" else int(v) if k in _INT_FIELDS else float(v)
            for k, v in point.items()
        }
        record = EpochRecord(**values)  # type: ignore[arg-type]
        curves.setdefault((record.method, record.keep_ratio, record.seed), []).append(record)
    results = []
    for run in runs:
        max_steps = int(run["max_steps"]) if run["max_steps"] else None
        spec = RunSpec(
            run["method"], float(run["keep_ratio"]), int(run["seed"]), int(run["epochs"]), max_steps
        )
        results.append(
            RunResult(
                spec,
                curves[(spec.method, spec.keep_ratio, spec.seed)],
                float(run["train_seconds"]),
                float(run["total_seconds"]),
                int(run["planned_steps"]),
                [w for w in run["warnings"].split("; ") if w],
                float(run.get("cpu_pressure") or "nan"),
                float(run.get("scoring_seconds") or 0.0),  # absent in older folders
            )
        )
    return results


def _append(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    new = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        if new:
            writer.writeheader()
        writer.writerows(rows)


def _time_to(curve: list[EpochRecord], target: float) -> float | None:
    return next((r.train_seconds for r in curve if r.test_acc >= target), None)


def _best(curve: list[EpochRecord]) -> float:
    """Best evaluated accuracy (epochs that were not evaluated hold NaN)."""
    return max((p.test_acc for p in curve if not math.isnan(p.test_acc)), default=math.nan)


def summarize(results: list[RunResult], target_drop: float) -> list[dict[str, Any]]:
    """One row per method and keep ratio (1.0 for ``full``), keyed by :data:`SUMMARY_COLUMNS`."""
    groups: dict[tuple[str, float], list[RunResult]] = {}
    for result in results:
        groups.setdefault((result.spec.method, result.spec.keep_ratio), []).append(result)
    full = groups.get(("full", 1.0), [])
    full_acc = mean_or_nan([r.curve[-1].test_acc for r in full])
    full_seconds = mean_or_nan([r.train_seconds for r in full])
    target = full_acc - target_drop
    rows = []
    for (method, keep), runs in sorted(groups.items(), key=lambda kv: (rank(kv[0][0]), kv[0][1])):
        final = [r.curve[-1].test_acc for r in runs]
        best = [_best(r.curve) for r in runs]
        vs_budget = paired_deltas(results, method, keep, "full-same-budget")
        vs_uniform = paired_deltas(results, method, keep, "uniform")
        vs_curve = [d for _, _, d, _ in equal_time_deltas(results, method, keep)]
        seconds = [r.train_seconds for r in runs]
        scoring = [r.scoring_seconds for r in runs]
        reach = [t for t in (_time_to(r.curve, target) for r in runs) if t is not None]
        share = [
            r.curve[-1].dynaprune_seconds / r.train_seconds for r in runs if r.train_seconds > 0
        ]
        rows.append(
            {
                "method": method,
                "keep_ratio": keep,
                "seeds": len(runs),
                "epochs": max(r.spec.epochs for r in runs),
                "test_acc_mean": mean_or_nan(final),
                "test_acc_std": std_or_zero(final),
                "best_acc_mean": mean_or_nan(best),
                "best_acc_std": std_or_zero(best),
                "acc_delta": mean_or_nan(final) - full_acc,
                "train_seconds_mean": mean_or_nan(seconds),
                "train_seconds_std": std_or_zero(seconds),
                "total_seconds_mean": mean_or_nan([r.total_seconds for r in runs]),
                "samples_processed": mean_or_nan([float(r.curve[-1].samples) for r in runs]),
                "speedup": full_seconds / mean_or_nan(seconds),
                "ideal_speedup": 1.0 / keep,
                "scoring_seconds_mean": mean_or_nan(scoring),
                "speedup_with_scoring": full_seconds
                / (mean_or_nan(seconds) + mean_or_nan(scoring)),
                "time_to_target_mean": mean_or_nan(reach),
                "target_reached": f"{len(reach)}/{len(runs)}",
                "dynaprune_share": mean_or_nan(share),
                "delta_vs_budget": mean_or_nan(vs_budget) if method != "full" else math.nan,
                "delta_vs_budget_std": std_or_zero(vs_budget) if method != "full" else math.nan,
                "delta_vs_uniform": mean_or_nan(vs_uniform) if method != "full" else math.nan,
                "delta_vs_uniform_std": std_or_zero(vs_uniform) if method != "full" else math.nan,
                "delta_vs_curve": mean_or_nan(vs_curve) if vs_curve else math.nan,
                "delta_vs_curve_std": std_or_zero(vs_curve) if vs_curve else math.nan,
            }
        )
    return rows


def _fmt(value: float, digits: int = 2, sign: str = "") -> str:
    return "n/a" if math.isnan(value) else f"{value:{sign}.{digits}f}"


def _delta(mean: float, std: float) -> str:
    return "" if math.isnan(mean) else f"{mean:+.2f} ± {std:.2f}"


def write_summary(
    out: Path, rows: list[dict[str, Any]], target: float, header: str, notes: tuple[str, ...] = ()
) -> str:
    """Writes ``summary.csv`` and ``summary.md``; returns the markdown."""
    with (out / "summary.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(SUMMARY_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        header,
        "",
        "| method | keep | test acc (%) | best acc (%) | Δ vs full (pt) | train time (s) "
        "| scoring (s) | total time (s) | samples | speedup (ideal) | speedup with scoring "
        "| time to target (s) | dynaprune share "
        "| Δ vs same budget (pt, paired) | Δ vs uniform (pt, paired) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        reached, total = r["target_reached"].split("/")
        to_target = "never" if reached == "0" else _fmt(r["time_to_target_mean"], 1)
        speedup = "n/a" if math.isnan(r["speedup"]) else f"{r['speedup']:.2f}x"
        with_scoring = r["speedup_with_scoring"]
        with_scoring = "n/a" if math.isnan(with_scoring) else f"{with_scoring:.2f}x"
        if reached not in ("0", total):
            to_target += f" ({r['target_reached']} seeds)"
        lines.append(
            f"| {r['method']} | {r['keep_ratio']:g} "
            f"| {r['test_acc_mean']:.2f} ± {r['test_acc_std']:.2f} "
            f"| {r['best_acc_mean']:.2f} ± {r['best_acc_std']:.2f} "
            f"| {_fmt(r['acc_delta'], sign='+')} "
            f"| {r['train_seconds_mean']:.1f} ± {r['train_seconds_std']:.1f} "
            f"| {r['scoring_seconds_mean']:.1f} "
            f"| {r['total_seconds_mean']:.1f} | {r['samples_processed']:,.0f} "
            f"| {speedup} ({r['ideal_speedup']:.2f}x) | {with_scoring} | {to_target} "
            f"| {_fmt(100 * r['dynaprune_share'], 1)}% "
            f"| {_delta(r['delta_vs_budget'], r['delta_vs_budget_std'])} "
            f"| {_delta(r['delta_vs_uniform'], r['delta_vs_uniform_std'])} |"
        )
    lines.append("")
    if math.isnan(target):
        lines.append("No `full` run in this folder: no Δ vs full, speedup or time to target.")
    else:
        lines.append(
            f"Time to target: training seconds until the test accuracy first reaches "
            f"{target:.2f}% (full's mean final accuracy minus the configured drop)."
        )
    lines += notes
    markdown = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(markdown)
    return markdown
