"""Merge results folders of the image benchmark (one job each: a method, a seed) into one.

A grid too long for one process runs as jobs, each writing its own folder; this merges them into
one results folder and rebuilds its report (summary, tables, figures), as if one command had run
them all. Rows already in ``out`` are kept unless a part has a run of the same method, keep
ratio and seed, which replaces them (so a later session adds to committed results). The columns
are the union of every part's, so a newer part may carry more. ``config.yaml``'s policies,
baselines, keep ratios and seeds are those of the merged runs; ``environment.json`` and
``versions.txt`` come from ``out`` where it has them, else from the first part. ``--methods``
takes only those methods' runs from the parts (a study that pairs with another study's
reference runs without copying its other methods).

    python -m benchmarks.grid.merge [--methods uniform,...] OUT PART [PART ...]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from collections.abc import Collection, Sequence
from pathlib import Path

import yaml

from benchmarks.grid.methods import BASELINES

__all__ = ["FILES", "merge_folders"]

FILES = ("runs.csv", "curves.csv", "flags.csv")

Table = tuple[list[str], list[dict[str, str]]]


def _key(row: dict[str, str]) -> tuple[str, float, int]:
    return row["method"], float(row["keep_ratio"]), int(row["seed"])


def _read(folder: Path) -> dict[str, Table]:
    out: dict[str, Table] = {}
    for name in FILES:
        if (folder / name).exists():
            with (folder / name).open() as f:
                reader = csv.DictReader(f)
                out[name] = (list(reader.fieldnames or []), list(reader))
    return out


def _union(fields: list[str], more: list[str]) -> list[str]:
    return fields + [c for c in more if c not in fields]


def merge_folders(
    parts: Sequence[Path],
    out: Path,
    *,
    report: bool = True,
    methods: Collection[str] | None = None,
) -> int:
    """Merges the results folders ``parts`` into ``out`` (module docstring), only the runs of
    ``methods`` where given; returns the number of runs in ``out``'s ``runs.csv``.

    ``config.yaml``'s policies, baselines, keep ratios and seeds are those of the merged runs.

    Raises:
        ValueError: when no part has a ``runs.csv``, parts disagree on anything in
            ``config.yaml``'s data, model or train sections, or ``methods`` is a string, empty
            or names a method no part ran.
    """
    if isinstance(methods, str) or (methods is not None and not methods):
        raise ValueError(f"methods: a collection of method names or None, got {methods!r}")
    parts = [p for p in parts if (p / "runs.csv").exists()]
    if not parts:
        raise ValueError("parts: no folder with a runs.csv to merge")
    tables = _read(out) if out.exists() else {}
    base = out if (out / "config.yaml").exists() else parts[0]
    cfg = yaml.safe_load((base / "config.yaml").read_text())
    ran: set[str] = set()
    for part in parts:
        part_cfg = yaml.safe_load((part / "config.yaml").read_text())
        for key in ("data", "model", "train"):
            if part_cfg[key] != cfg[key]:
                raise ValueError(f"parts: {part} has another {key} section than {base}")
        for name, (fields, rows) in _read(part).items():
            ran.update(r["method"] for r in rows)
            rows = [r for r in rows if methods is None or r["method"] in methods]
            if not rows:
                continue
            have_fields, have = tables.get(name, ([], []))
            replaced = {_key(r) for r in rows}
            have = [r for r in have if _key(r) not in replaced]
            tables[name] = (_union(have_fields, fields), have + rows)
    missing = sorted(set(methods or ()) - ran)
    if missing:
        raise ValueError(f"methods: {missing} in no part; the parts ran {sorted(ran)}")
    runs = tables["runs.csv"][1]
    order = {m: i for i, m in enumerate(cfg["pruning"]["policies"])}
    named = sorted({r["method"] for r in runs}, key=lambda m: (order.get(m, len(order)), m))
    cfg["pruning"]["policies"] = [m for m in named if m not in BASELINES]
    cfg["pruning"]["keep_ratios"] = sorted(
        {float(r["keep_ratio"]) for r in runs if r["method"] not in BASELINES}
    )
    cfg["benchmark"]["baselines"] = [b for b in BASELINES if b in named]
    cfg["benchmark"]["seeds"] = sorted({int(r["seed"]) for r in runs})
    out.mkdir(parents=True, exist_ok=True)
    for name in ("environment.json", "versions.txt"):
        if not (out / name).exists():
            (out / name).write_bytes((parts[0] / name).read_bytes())
    (out / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    for name, (fields, rows) in tables.items():
        with (out / name).open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, restval="")
            writer.writeheader()
            writer.writerows(rows)
    if report:
        subprocess.run(
            [sys.executable, "benchmarks/run.py", "--report-only", "--out", str(out)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return len(runs)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default=None, help="comma-separated; default every method")
    parser.add_argument("out", type=Path)
    parser.add_argument("parts", type=Path, nargs="+")
    args = parser.parse_args(argv)
    methods = None if args.methods is None else [m for m in args.methods.split(",") if m]
    print(args.out, merge_folders(args.parts, args.out, methods=methods), "runs")


if __name__ == "__main__":
    main()
