"""Paired tables of the clean-selection grid: every method against uniform, full-same-budget and
ucb, paired by seed, with the number of standard errors of each mean difference against uniform;
and the flags (:mod:`benchmarks.grid.paired`).

    cd docs/results/cifar10-50k-clean-select && python tables.py clean sym20 asym40
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from benchmarks.grid.paired import main

if __name__ == "__main__":
    main(["--vs", "uniform,full-same-budget,ucb", *sys.argv[1:]])
