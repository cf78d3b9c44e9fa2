"""The condensation benchmark's command, at the path the results folders quote:
``python benchmarks/condense_run.py --config ... --out ...``. The program is
:mod:`benchmarks.condense.run` (``benchmarks/condense/run.py``).
"""

import runpy
from pathlib import Path

__all__: list[str] = []

if __name__ == "__main__":
    runpy.run_path(str(Path(__file__).parent / "condense" / "run.py"), run_name="__main__")
