"""Figures of one invocation: accuracy against training time, against keep ratio, against the
whole cost (training plus a static method's scoring), and the paired difference of each method
to ``full-same-budget`` (the same budget on all the data)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from benchmarks.grid.full_curve import CURVE, run_seconds
from benchmarks.grid.methods import method as parse
from benchmarks.grid.methods import rank, style
from benchmarks.grid.stats import mean_or_nan, paired_deltas, std_or_zero
from benchmarks.grid.train import RunResult

__all__ = ["plot", "plot_equal_time"]

_MARKERS = ("o", "s", "^", "D", "v")  # one per keep ratio in accuracy_vs_cost.png


def plot(out: Path, results: list[RunResult], rows: list[dict[str, Any]]) -> list[Path]:
    """Writes ``accuracy_vs_time.png`` (one panel per keep ratio), ``accuracy_vs_keep.png``,
    ``delta_vs_budget.png`` and ``accuracy_vs_cost.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = _mean_curves(results)
    ratios = sorted({k for (m, k) in curves if m != "full"}) or [1.0]
    fig, axes = plt.subplots(
        1, len(ratios), figsize=(5 * len(ratios), 4), sharey=True, squeeze=False
    )
    for ax, keep in zip(axes[0], ratios, strict=True):
        for (method, k), (xs, ys) in sorted(curves.items(), key=lambda kv: rank(kv[0][0])):
            if method == "full" or k == keep:
                colour, line = style(method)
                ax.plot(xs, ys, marker=".", label=method, color=colour, linestyle=line)
        ax.set(title=f"keep ratio {keep:g}", xlabel="training time (s), evaluation excluded")
        ax.grid(alpha=0.3)
    # the interesting part is near the end; the first epochs would squash it
    finals = [r["test_acc_mean"] for r in rows]
    axes[0][0].set_ylim(max(0.0, min(finals) - 10.0), min(100.5, max(finals) + 2.0))
    axes[0][0].set_ylabel("test accuracy (%)")
    axes[0][-1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    paths = [
        out / "accuracy_vs_time.png",
        out / "accuracy_vs_keep.png",
        out / "delta_vs_budget.png",
        out / "accuracy_vs_cost.png",
    ]
    fig.savefig(paths[0], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.5, 4))
    full = next((r for r in rows if r["method"] == "full"), None)
    if full is not None:
        mean, std = full["test_acc_mean"], full["test_acc_std"]
        ax.axhline(mean, color="black", linestyle=":", label="full (± std)")
        ax.axhspan(mean - std, mean + std, color="black", alpha=0.08)
    methods = sorted({r["method"] for r in rows} - {"full"}, key=rank)
    for i, method in enumerate(methods):
        mine = sorted((r for r in rows if r["method"] == method), key=lambda r: r["keep_ratio"])
        shift = 0.008 * (i - (len(methods) - 1) / 2)  # side by side, so error bars stay apart
        colour, line = style(method)
        ax.errorbar(
            [r["keep_ratio"] + shift for r in mine],
            [r["test_acc_mean"] for r in mine],
            yerr=[r["test_acc_std"] for r in mine],
            marker="o",
            capsize=3,
            label=method,
            color=colour,
            linestyle=line,
        )
    ax.set(
        xlabel="keep ratio", ylabel="final test accuracy (%)", title="accuracy against keep ratio"
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(paths[1], dpi=120)
    plt.close(fig)
    _plot_deltas(plt, results, paths[2])
    _plot_cost(plt, rows, paths[3])
    return paths


def _plot_cost(plt: Any, rows: list[dict[str, Any]], path: Path) -> None:
    """Final accuracy (mean ± std) against what a user pays: training plus scoring seconds.

    One colour per method, one marker per keep ratio; a static method's scoring run moves it to
    the right of the dynamic policies at the same budget.
    """
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ratios = sorted({r["keep_ratio"] for r in rows if r["method"] != "full"})
    for r in sorted(rows, key=lambda r: (rank(_base(r["method"])), r["keep_ratio"])):
        colour, _ = style(_base(r["method"]))
        keep = r["keep_ratio"]
        marker = "*" if r["method"] == "full" else _MARKERS[ratios.index(keep) % len(_MARKERS)]
        first = r is next(q for q in rows if q["method"] == r["method"])
        ax.errorbar(
            r["train_seconds_mean"] + r["scoring_seconds_mean"],
            r["test_acc_mean"],
            yerr=r["test_acc_std"],
            marker=marker,
            markersize=9 if r["method"] == "full" else 6,
            capsize=3,
            color=colour,
            linestyle="none",
            label=r["method"] if first else None,
        )
    for keep in ratios:  # a legend entry per marker shape
        marker = _MARKERS[ratios.index(keep) % len(_MARKERS)]
        ax.plot([], [], marker=marker, color="grey", linestyle="none", label=f"keep {keep:g}")
    ax.set(
        xlabel="training + scoring time (s)",
        ylabel="final test accuracy (%)",
        title="accuracy against the whole cost",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right", ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_deltas(plt: Any, results: list[RunResult], path: Path) -> None:
    """Per keep ratio, each method's final accuracy minus ``full-same-budget``'s, seed by seed
    (dots) and their mean ± std (bar): the question "better than fewer epochs on all data?"."""
    pairs = sorted(
        {(r.spec.method, r.spec.keep_ratio) for r in results if r.spec.pruned},
        key=lambda mk: (mk[1], rank(_base(mk[0])), mk[0]),
    )
    ratios = sorted({k for _, k in pairs})
    fig, axes = plt.subplots(
        1,
        max(1, len(ratios)),
        figsize=(4.5 * max(1, len(ratios)), 3.8),
        sharey=True,
        squeeze=False,
    )
    for ax, keep in zip(axes[0], ratios, strict=False):
        methods = [m for m, k in pairs if k == keep]
        for x, method in enumerate(methods):
            deltas = paired_deltas(results, method, keep, "full-same-budget")
            if not deltas:
                continue
            parsed = parse(method)
            colour, _ = style(parsed.base)
            hatch = "//" if parsed.anneal_suffix else None
            ax.bar(
                x,
                mean_or_nan(deltas),
                yerr=std_or_zero(deltas),
                color=colour,
                alpha=0.6,
                capsize=3,
                hatch=hatch,
            )
            ax.plot([x] * len(deltas), deltas, "k.", markersize=4)
        ax.axhline(0.0, color="grey", linestyle="--", linewidth=1)
        ax.set_xticks(range(len(methods)), methods, rotation=30, ha="right", fontsize=8)
        ax.set(title=f"keep ratio {keep:g}")
        ax.grid(alpha=0.3, axis="y")
    axes[0][0].set_ylabel("Δ final accuracy vs full-same-budget (pt)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _mean_curves(
    results: list[RunResult],
) -> dict[tuple[str, float], tuple[list[float], list[float]]]:
    """Seed-averaged (time, accuracy) per epoch; runs of one method share their epoch count."""
    grouped: dict[tuple[str, float], list[RunResult]] = {}
    for r in results:
        grouped.setdefault((r.spec.method, r.spec.keep_ratio), []).append(r)
    curves = {}
    for key, runs in grouped.items():
        n = min(len(r.curve) for r in runs)
        xs = [mean_or_nan([r.curve[i].train_seconds for r in runs]) for i in range(n)]
        ys = [mean_or_nan([r.curve[i].test_acc for r in runs]) for i in range(n)]
        evaluated = [i for i in range(n) if not math.isnan(ys[i])]
        curves[key] = ([xs[i] for i in evaluated], [ys[i] for i in evaluated])
    return curves


def plot_equal_time(path: Path, results: list[RunResult], timing: Any = None) -> None:
    """Final accuracy against training plus scoring seconds: the full-data curve (mean over
    seeds) drawn through, each method as mean ± std over seeds, one marker per keep ratio."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[tuple[str, float], list[tuple[float, float]]] = {}
    for r in results:
        method = "full-data curve" if r.spec.method in CURVE else r.spec.method
        groups.setdefault((method, r.spec.keep_ratio), []).append(
            (run_seconds(r, timing), r.curve[-1].test_acc)
        )
    fig, ax = plt.subplots(figsize=(8, 5))
    curve = sorted(
        (mean_or_nan([t for t, _ in v]), mean_or_nan([a for _, a in v]))
        for (m, _), v in groups.items()
        if m == "full-data curve"
    )
    ax.plot(*zip(*curve, strict=True), "k--", marker="o", label="full-data curve")
    ratios = sorted({k for (m, k) in groups if m != "full-data curve"})
    for (method, keep), points in sorted(groups.items(), key=lambda kv: kv[0]):
        if method == "full-data curve":
            continue
        colour, _ = style(_base(method))
        ts, accs = [t for t, _ in points], [a for _, a in points]
        ax.errorbar(
            mean_or_nan(ts),
            mean_or_nan(accs),
            xerr=std_or_zero(ts),
            yerr=std_or_zero(accs),
            marker=_MARKERS[ratios.index(keep) % len(_MARKERS)],
            color=colour,
            linestyle="none",
            capsize=3,
            label=f"{method} @ {keep:g}",
        )
    source = "timing run alone" if timing else "each run's own seconds"
    ax.set(
        xlabel=f"training + scoring seconds ({source})",
        ylabel="final test accuracy (%)",
        title="Accuracy at equal wall-clock: methods against the full-data curve",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _base(name: str) -> str:
    """A method's name without ``+anneal``, or a baseline's name."""
    return name if name in ("full", "full-same-budget") else parse(name).base
