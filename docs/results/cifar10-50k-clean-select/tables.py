"""Paired tables of the clean-selection grid: every method against uniform, full-same-budget and
ucb, paired by seed, with the number of standard errors of each mean difference; and the flags.

    cd docs/results/cifar10-50k-clean-select && python tables.py clean sym20 asym40
"""

from __future__ import annotations

import csv
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def _runs(folder: Path) -> dict[tuple[str, float], dict[int, float]]:
    acc: dict[tuple[str, float], dict[int, float]] = defaultdict(dict)
    for row in csv.DictReader((folder / "runs.csv").open()):
        acc[(row["method"], float(row["keep_ratio"]))][int(row["seed"])] = float(row["final_acc"])
    return acc


def _fmt(values: list[float]) -> str:
    if not values:
        return ""
    sd = statistics.stdev(values) if len(values) > 1 else math.nan
    return f"{statistics.mean(values):+.2f} ± {sd:.2f}"


def _paired(a: dict[int, float], b: dict[int, float] | None) -> tuple[str, str]:
    if not b:
        return "", ""
    d = [a[s] - b[s] for s in sorted(a) if s in b]
    if len(d) < 2:
        return _fmt(d), ""
    sd = statistics.stdev(d)
    se = sd / math.sqrt(len(d))
    return _fmt(d), (f"{statistics.mean(d) / se:+.1f}" if se > 0 else "")


def table(folder: Path) -> str:
    acc = _runs(folder)
    lines = [
        f"### `{folder.name}`",
        "",
        "| method | keep | seeds | test acc (%) | Δ vs `uniform` (pt) | SEs | "
        "Δ vs `full-same-budget` (pt) | Δ vs `ucb` (pt) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (method, keep), by_seed in sorted(acc.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        vals = list(by_seed.values())
        sd = statistics.stdev(vals) if len(vals) > 1 else math.nan
        du, se = _paired(by_seed, acc.get(("uniform", keep))) if method != "uniform" else ("", "")
        dfsb = _paired(by_seed, acc.get(("full-same-budget", keep)))[0]
        ducb = _paired(by_seed, acc.get(("ucb", keep)))[0] if method != "ucb" else ""
        if method.startswith("full"):
            du, se, dfsb, ducb = "", "", "", ""
        lines.append(
            f"| {method} | {keep:g} | {len(vals)} | {statistics.mean(vals):.2f} ± {sd:.2f} | "
            f"{du} | {se} | {dfsb} | {ducb} |"
        )
    flags = folder / "flags.csv"
    if flags.exists():
        rows: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
        for row in csv.DictReader(flags.open()):
            rows[(row["method"], row["keep_ratio"])].append(row)
        lines += [
            "",
            "| method | keep | AUC of the moving-average loss | flagged share | precision | "
            "recall | AUC of the flag |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for (method, keep), group in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0])):

            def mean(key: str, group: list[dict[str, str]] = group) -> str:
                vals = [float(r[key]) for r in group if r.get(key) not in ("", None)]
                vals = [v for v in vals if not math.isnan(v)]
                return f"{statistics.mean(vals):.3f}" if vals else ""

            lines.append(
                f"| {method} | {float(keep):g} | {mean('auc_loss')} | {mean('flagged_share')} | "
                f"{mean('precision')} | {mean('recall')} | {mean('auc_flag')} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    print("\n\n".join(table(Path(arg)) for arg in sys.argv[1:]))
