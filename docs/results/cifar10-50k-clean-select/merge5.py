"""Merge grid5.sh's per-job folders (results/g5/PRESET-kKEEP-METHOD-sSEED) into one folder per
preset and keep ratio under rerun/, and rebuild each one's report
(:func:`benchmarks.grid.merge.merge_folders`: the committed rows are kept, a job's runs replace
those of the same method, keep ratio and seed).

    python docs/results/cifar10-50k-clean-select/merge5.py   # from the repository root
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, ".")
from benchmarks.grid.merge import merge_folders

SRC = Path("results/g5")
DEST = Path(__file__).resolve().parent / "rerun"


def main() -> None:
    parts: dict[str, list[Path]] = defaultdict(list)
    for job in sorted(SRC.iterdir()):
        if (job / "runs.csv").exists():
            preset_keep = "-".join(job.name.split("-")[:2])  # e.g. clean-k0.5
            parts[preset_keep].append(job)
    for name, jobs in sorted(parts.items()):
        print(DEST / name, merge_folders(jobs, DEST / name), "runs")


if __name__ == "__main__":
    main()
