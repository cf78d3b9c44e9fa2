"""The benchmark grid: ``full``, ``full-same-budget`` and every method at every keep ratio over
several seeds, in one invocation (``python benchmarks/run.py``).

* :mod:`~benchmarks.grid.cli` — the command line; :mod:`~benchmarks.grid.config` — presets.
* :mod:`~benchmarks.grid.methods` — the method registry: what each method name trains.
* :mod:`~benchmarks.grid.runs` — the runs of one invocation and each run's sampler.
* :mod:`~benchmarks.grid.bench` — runs the grid and writes the results folder.
* :mod:`~benchmarks.grid.data`, :mod:`~benchmarks.grid.loaders`, :mod:`~benchmarks.grid.models`,
  :mod:`~benchmarks.grid.factories` — built-in data and models, or the user's own.
* :mod:`~benchmarks.grid.train`, :mod:`~benchmarks.grid.lightning_loop` — the two loops.
* :mod:`~benchmarks.grid.static_scores` — the scoring runs of static and reducible-loss methods.
* :mod:`~benchmarks.grid.report`, :mod:`~benchmarks.grid.figures`,
  :mod:`~benchmarks.grid.equal_time` — summary, figures, equal-time comparison.
"""

__all__: list[str] = []
