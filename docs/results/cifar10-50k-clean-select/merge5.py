"""Merge grid5.sh's per-job folders (results/g5/PRESET-kKEEP-METHOD-sSEED) into one folder per
preset and keep ratio under rerun/, and rebuild each one's report.

    python docs/results/cifar10-50k-clean-select/merge5.py   # from the repository root
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import yaml

SRC = Path("results/g5")
DEST = Path(__file__).resolve().parent / "rerun"


def main() -> None:
    parts: dict[str, list[Path]] = defaultdict(list)
    for job in sorted(SRC.iterdir()):
        if (job / "runs.csv").exists():
            preset_keep = "-".join(job.name.split("-")[:2])  # e.g. clean-k0.5
            parts[preset_keep].append(job)
    for name, jobs in sorted(parts.items()):
        out = DEST / name
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        cfg = yaml.safe_load((jobs[0] / "config.yaml").read_text())
        seeds, methods = set(), []
        for job in jobs:
            job_cfg = yaml.safe_load((job / "config.yaml").read_text())
            seeds.update(job_cfg["benchmark"]["seeds"])
            methods += [m for m in job_cfg["pruning"]["policies"] if m not in methods]
        cfg["benchmark"]["seeds"] = sorted(seeds)
        cfg["pruning"]["policies"] = methods
        (out / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        for f in ("environment.json", "versions.txt"):
            shutil.copy(jobs[0] / f, out / f)
        for f in ("runs.csv", "curves.csv", "flags.csv"):
            rows, fields = [], None
            for job in jobs:
                if (job / f).exists():
                    reader = csv.DictReader((job / f).open())
                    fields = fields or reader.fieldnames
                    rows += list(reader)
            if fields:
                with (out / f).open("w", newline="") as h:
                    w = csv.DictWriter(h, fieldnames=fields)
                    w.writeheader()
                    w.writerows(rows)
        subprocess.run(
            [sys.executable, "benchmarks/run.py", "--report-only", "--out", str(out)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(out, len(jobs), "runs")


if __name__ == "__main__":
    main()
