"""Benchmark harness for dynaprune: full-data baselines against dynamic pruning policies.

Run it with ``python benchmarks/run.py --config configs/quick.yaml --out results/quick``.

* :mod:`benchmarks.grid` — the grid: what pruning saves and costs, on built-in presets or your
  own model and data (``--model-factory``, ``--data-factory``).
* :mod:`benchmarks.overhead` — what the library itself costs per epoch and per step.
* :mod:`benchmarks.condense` — coresets against dataset condensation.
* :mod:`benchmarks.environment` — what produced a result (versions, device, revision).
"""

__all__: list[str] = []
