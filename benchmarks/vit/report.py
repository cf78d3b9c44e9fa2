"""The ViT benchmark's summary: mean ± std per method and keep rate, against ``full`` and its curve.

``summary.csv`` has the image benchmark's columns (``method``, ``keep_ratio``, ``seeds``,
``epochs``, ``test_acc_mean``, ``test_acc_std``, ``train_seconds_mean``, ``train_seconds_std``)
plus ``images_per_second_mean``, ``seconds_per_epoch_mean``, ``tokens_per_block``,
``speedup`` (``full``'s seconds over the method's), ``acc_delta`` (the method's accuracy minus
``full``'s, paired by seed) and ``delta_vs_curve`` (minus the accuracy of the unpruned ViT
trained for as many seconds, read off the same seed's ``full`` and ``full-short`` runs by linear
interpolation; empty outside them); the last two with their standard deviations over the seeds
(``acc_delta_std``, ``delta_vs_curve_std``; empty below two seeds).
"""

from __future__ import annotations

import csv
import itertools
import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

__all__ = ["RUN_COLUMNS", "SUMMARY_COLUMNS", "curve_accuracy", "run_key", "write_report"]

RUN_COLUMNS = (
    "method",
    "keep_ratio",
    "seed",
    "epochs",
    "steps",
    "train_images",
    "final_acc",
    "train_seconds",
    "images_per_second",
    "seconds_per_epoch",
    "tokens_per_block",
)
SUMMARY_COLUMNS = (
    "method",
    "keep_ratio",
    "seeds",
    "epochs",
    "test_acc_mean",
    "test_acc_std",
    "train_seconds_mean",
    "train_seconds_std",
    "images_per_second_mean",
    "seconds_per_epoch_mean",
    "tokens_per_block",
    "speedup",
    "acc_delta",
    "acc_delta_std",
    "delta_vs_curve",
    "delta_vs_curve_std",
)


def curve_accuracy(points: list[tuple[float, float]], seconds: float) -> float:
    """Accuracy at ``seconds`` on the line through ``(seconds, accuracy)`` points; NaN outside.

    Example:
        >>> curve_accuracy([(10.0, 50.0), (20.0, 70.0)], 15.0)
        60.0
    """
    points = sorted(points)
    for (s0, a0), (s1, a1) in itertools.pairwise(points):
        if s0 <= seconds <= s1:
            return a0 if s1 == s0 else a0 + (a1 - a0) * (seconds - s0) / (s1 - s0)
    if points and math.isclose(seconds, points[-1][0]):
        return points[-1][1]
    return math.nan


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def run_key(row: dict[str, Any]) -> tuple[str, float, int, int]:
    """What identifies a run in ``runs.csv``: method, keep rate, seed and epochs (parsed, so that
    ``0.7`` and ``0.70`` are one run)."""
    return row["method"], float(row["keep_ratio"]), int(row["seed"]), int(row["epochs"])


def _std(values: list[float]) -> float | str:
    return statistics.stdev(values) if len(values) > 1 else ""


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, float, int], list[dict[str, Any]]] = defaultdict(list)
    curves: dict[int, list[tuple[float, float]]] = defaultdict(list)
    full: dict[int, dict[str, Any]] = {}
    for r in rows:
        groups[(r["method"], r["keep_ratio"], r["epochs"])].append(r)
        if r["method"] in ("full", "full-short"):
            curves[r["seed"]].append((r["train_seconds"], r["final_acc"]))
        if r["method"] == "full":
            full[r["seed"]] = r
    full_seconds = statistics.fmean(r["train_seconds"] for r in full.values()) if full else None
    out = []
    for (method, keep, epochs), runs in groups.items():
        acc, acc_std = _mean_std([r["final_acc"] for r in runs])
        seconds, seconds_std = _mean_std([r["train_seconds"] for r in runs])
        paired = [r["final_acc"] - full[r["seed"]]["final_acc"] for r in runs if r["seed"] in full]
        vs_curve = [
            r["final_acc"] - curve_accuracy(curves[r["seed"]], r["train_seconds"]) for r in runs
        ]
        vs_curve = [d for d in vs_curve if not math.isnan(d)]
        out.append(
            {
                "method": method,
                "keep_ratio": keep,
                "seeds": len(runs),
                "epochs": epochs,
                "test_acc_mean": acc,
                "test_acc_std": acc_std,
                "train_seconds_mean": seconds,
                "train_seconds_std": seconds_std,
                "images_per_second_mean": statistics.fmean(r["images_per_second"] for r in runs),
                "seconds_per_epoch_mean": statistics.fmean(r["seconds_per_epoch"] for r in runs),
                "tokens_per_block": statistics.fmean(r["tokens_per_block"] for r in runs),
                "speedup": full_seconds / seconds if full_seconds else "",
                "acc_delta": statistics.fmean(paired) if paired else "",
                "acc_delta_std": _std(paired),
                "delta_vs_curve": statistics.fmean(vs_curve) if vs_curve else "",
                "delta_vs_curve_std": _std(vs_curve),
            }
        )
    return out


def _read(path: Path) -> list[dict[str, Any]]:
    with path.open() as f:
        rows: list[dict[str, Any]] = []
        for r in csv.DictReader(f):
            row: dict[str, Any] = {k: float(v) for k, v in r.items() if k != "method"}
            row.update(method=r["method"], seed=int(r["seed"]), epochs=int(r["epochs"]))
            rows.append(row)
        return rows


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def write_report(out: Path) -> str:
    """Write ``summary.csv``, ``summary.md`` and the figure from ``runs.csv``; return the table."""
    summary = summarize(_read(out / "runs.csv"))
    with (out / "summary.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SUMMARY_COLUMNS)
        writer.writeheader()
        writer.writerows(summary)
    shown = ("method", "keep_ratio", "seeds", "epochs", "test_acc_mean", "test_acc_std",
             "train_seconds_mean", "images_per_second_mean", "speedup", "acc_delta",
             "acc_delta_std", "delta_vs_curve", "delta_vs_curve_std")  # fmt: skip
    lines = ["| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
    lines += ["| " + " | ".join(_fmt(row[c]) for c in shown) + " |" for row in summary]
    table = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(table)
    _figure(summary, out)
    return table


def _figure(summary: list[dict[str, Any]], out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the figure is optional
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    curve = sorted(
        (r["train_seconds_mean"], r["test_acc_mean"])
        for r in summary
        if r["method"] in ("full", "full-short")
    )
    if curve:
        ax.plot(*zip(*curve, strict=True), "k-o", label="unpruned, fewer epochs")
    for r in summary:
        if r["method"] not in ("full", "full-short"):
            ax.errorbar(r["train_seconds_mean"], r["test_acc_mean"], yerr=r["test_acc_std"],
                        fmt="o", label=f"{r['method']} {r['keep_ratio']:g}")  # fmt: skip
    ax.set_xlabel("training seconds")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_time.png", dpi=120)
    plt.close(fig)
