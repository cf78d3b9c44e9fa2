"""Benchmark harness for dynaprune: full-data baselines against dynamic pruning policies.

Run it with ``python benchmarks/run.py --config configs/quick.yaml --out results/quick``.
"""

__all__: list[str] = []
