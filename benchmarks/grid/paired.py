"""Paired tables of a results folder: every method against chosen references, seed by seed.

The summary (:mod:`benchmarks.grid.report`) pairs every method with ``uniform`` and
``full-same-budget``; a study often needs other references (``ucb``, a random static subset, the
best single score). This prints, per keep ratio, each method's mean ± std and its paired
difference with each reference (mean ± std over the seeds both ran), with the number of
standard errors of the mean difference for the first reference; and, where the folder has a
``flags.csv`` (label noise the benchmark injected), the means of its columns::

    python -m benchmarks.grid.paired --vs uniform,full-same-budget,ucb FOLDER [FOLDER ...]
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

__all__ = ["FLAG_MEANS", "paired", "table"]

# flags.csv columns shown (header, column), where any row has them
FLAG_MEANS = (
    ("AUC of the moving-average loss", "auc_loss"),
    ("flagged share", "flagged_share"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("AUC of the flag", "auc_flag"),
    ("flipped share of the samples trained on", "seen_flipped_share"),
)


def _runs(folder: Path) -> dict[tuple[str, float], dict[int, float]]:
    acc: dict[tuple[str, float], dict[int, float]] = defaultdict(dict)
    with (folder / "runs.csv").open() as f:
        for row in csv.DictReader(f):
            key = (row["method"], float(row["keep_ratio"]))
            acc[key][int(row["seed"])] = float(row["final_acc"])
    return acc


def _fmt(values: list[float]) -> str:
    if not values:
        return ""
    sd = statistics.stdev(values) if len(values) > 1 else math.nan
    return f"{statistics.mean(values):+.2f} ± {sd:.2f}"


def paired(a: dict[int, float], b: dict[int, float] | None) -> tuple[str, str]:
    """``a - b`` over the seeds both have, as ``"mean ± std"``, and the mean in standard errors
    (empty below two seeds or with no spread)."""
    if not b:
        return "", ""
    d = [a[s] - b[s] for s in sorted(a) if s in b]
    if len(d) < 2:
        return _fmt(d), ""
    se = statistics.stdev(d) / math.sqrt(len(d))
    return _fmt(d), (f"{statistics.mean(d) / se:+.1f}" if se > 0 else "")


def table(folder: Path, references: Sequence[str], title: str | None = None) -> str:
    """The markdown tables of ``folder`` (module docstring); baselines (``full*``) get no
    differences."""
    if not references:
        raise ValueError("references: name at least one method to pair with")
    acc = _runs(folder)
    head = " | ".join(
        f"Δ vs `{r}` (pt)" + (" | SEs" if i == 0 else "") for i, r in enumerate(references)
    )
    lines = [
        f"### `{title or folder.name}`",
        "",
        f"| method | keep | seeds | test acc (%) | {head} |",
        "|---|" + "---:|" * (4 + len(references)),
    ]
    for (method, keep), by_seed in sorted(acc.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        vals = list(by_seed.values())
        sd = statistics.stdev(vals) if len(vals) > 1 else math.nan
        cells: list[str] = []
        for i, ref in enumerate(references):
            diff, se = ("", "")
            if method != ref and not method.startswith("full"):
                diff, se = paired(by_seed, acc.get((ref, keep)))
            cells += [diff, se] if i == 0 else [diff]
        lines.append(
            f"| {method} | {keep:g} | {len(vals)} | {statistics.mean(vals):.2f} ± {sd:.2f} | "
            + " | ".join(cells)
            + " |"
        )
    flags = folder / "flags.csv"
    if flags.exists():
        lines += ["", *_flag_table(flags)]
    return "\n".join(lines)


def _flag_table(path: Path) -> list[str]:
    rows: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    with path.open() as f:
        reader = csv.DictReader(f)
        shown = [(h, c) for h, c in FLAG_MEANS if c in (reader.fieldnames or [])]
        for row in reader:
            rows[(row["method"], row["keep_ratio"])].append(row)
    lines = [
        "| method | keep | " + " | ".join(h for h, _ in shown) + " |",
        "|---|" + "---:|" * (1 + len(shown)),
    ]
    for (method, keep), group in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        cells = []
        for _, column in shown:
            vals = [float(r[column]) for r in group if r.get(column) not in ("", None)]
            vals = [v for v in vals if not math.isnan(v)]
            cells.append(f"{statistics.mean(vals):.3f}" if vals else "")
        lines.append(f"| {method} | {float(keep):g} | " + " | ".join(cells) + " |")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vs", default="uniform", help="comma-separated reference methods")
    parser.add_argument("folders", type=Path, nargs="+")
    args = parser.parse_args(argv)
    refs = [r for r in args.vs.split(",") if r]
    print("\n\n".join(table(folder, refs) for folder in args.folders))


if __name__ == "__main__":
    main()
