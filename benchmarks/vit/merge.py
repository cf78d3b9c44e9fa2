"""Merge results folders of the ViT benchmark (one job each: a method, a seed) into one.

A grid too long for one process runs as jobs, each writing its own folder
(``docs/results/vit-cifar10-accuracy/grid.sh``); this merges their ``runs.csv`` into one folder
and rebuilds its report, as if one command had run them all. A part's run replaces one of the
same method, keep rate, seed and epochs already in ``out`` (so a later session adds to committed
results). Parts must agree on everything that defines a run (:data:`RECIPE`: model, data,
epochs, batch size, device, precision, optimizer); ``config.json`` is written with the merged
runs' methods, keep rates and seeds; ``environment.json`` and ``versions.txt`` come from ``out``
where it has them, else from the first part. The image benchmark's folders have another format
and their own merge, :mod:`benchmarks.grid.merge`.

    python -m benchmarks.vit.merge OUT PART [PART ...]
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.vit.methods import TOKEN_METHODS
from benchmarks.vit.report import RUN_COLUMNS, run_key, write_report

__all__ = ["RECIPE", "merge_runs"]

# config.json keys that define a run; the others (out, methods, keeps, seeds, curve, paths) vary
RECIPE = ("model", "model_config", "train_subset", "test_subset", "epochs", "batch_size", "device",
          "amp", "max_steps", "at_target", "lr", "weight_decay")  # fmt: skip


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def merge_runs(parts: Sequence[Path], out: Path) -> int:
    """Merges the ``runs.csv`` of ``parts`` into ``out`` and rebuilds its report (module
    docstring); returns the number of runs in ``out``.

    Raises:
        ValueError: when no part has a ``runs.csv``, or a part's :data:`RECIPE` differs.
    """
    parts = [p for p in parts if (p / "runs.csv").exists()]
    if not parts:
        raise ValueError("parts: no folder with a runs.csv to merge")
    rows: dict[tuple[str, float, int, int], dict[str, str]] = {}
    if (out / "runs.csv").exists():
        rows.update((run_key(r), r) for r in _rows(out / "runs.csv"))
    base = out if (out / "config.json").exists() else parts[0]
    config: dict[str, Any] = json.loads((base / "config.json").read_text())
    for part in parts:
        other = json.loads((part / "config.json").read_text())
        for key in RECIPE:
            if other.get(key) != config.get(key):
                raise ValueError(
                    f"parts: {part} has {key}={other.get(key)!r}, {base} {config.get(key)!r}"
                )
        rows.update((run_key(r), r) for r in _rows(part / "runs.csv"))
    keys = sorted(rows)
    config.update(
        out=str(out),
        methods=list(dict.fromkeys(k[0] for k in keys)),
        keeps=sorted({k[1] for k in keys if k[0] in TOKEN_METHODS}, reverse=True),
        curve=sorted({k[1] for k in keys if k[0] == "full-short"}),
        seeds=sorted({k[2] for k in keys}),
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    for name in ("environment.json", "versions.txt"):
        if not (out / name).exists() and (parts[0] / name).exists():
            (out / name).write_bytes((parts[0] / name).read_bytes())
    with (out / "runs.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=RUN_COLUMNS)
        writer.writeheader()
        writer.writerows(rows[k] for k in keys)
    write_report(out)
    return len(rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("parts", type=Path, nargs="+")
    args = parser.parse_args(argv)
    print(args.out, merge_runs(args.parts, args.out), "runs")


if __name__ == "__main__":
    main()
