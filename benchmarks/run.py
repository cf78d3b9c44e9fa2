"""The benchmark grid's command line: ``python benchmarks/run.py --config ... --out ...``.

The program lives in :mod:`benchmarks.grid` (``benchmarks/grid/cli.py``); see
``benchmarks/README.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    _ROOT = str(Path(__file__).resolve().parents[1])
    if _ROOT not in sys.path:
        sys.path.append(_ROOT)

from benchmarks.grid.cli import main, parse_args

__all__ = ["main", "parse_args"]

if __name__ == "__main__":
    sys.exit(main())
