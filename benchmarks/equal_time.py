"""The equal wall-clock comparison's command, at the path the docs and results folders quote:
``python benchmarks/equal_time.py --results ... [--timing ...]``. The program is
:mod:`benchmarks.grid.equal_time` (``benchmarks/grid/equal_time.py``).
"""

import runpy
from pathlib import Path

__all__: list[str] = []

if __name__ == "__main__":
    runpy.run_path(str(Path(__file__).parent / "grid" / "equal_time.py"), run_name="__main__")
