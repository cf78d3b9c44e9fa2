"""The benchmark grid: ``full``, ``full-same-budget`` and every method at every keep ratio over
several seeds, in one invocation (``python benchmarks/run.py``).

Its modules stand in layers, each importing only those below it (``tests/test_import_layers.py``):

1. :mod:`~benchmarks.grid.methods` — the method registry: what each method name trains;
   :mod:`~benchmarks.grid.factory_names` — the user's functions named in a config;
   :mod:`~benchmarks.grid.config` — presets, overrides and validation.
2. :mod:`~benchmarks.grid.data`, :mod:`~benchmarks.grid.loaders`, :mod:`~benchmarks.grid.models`,
   :mod:`~benchmarks.grid.factories` — built-in data and models, or the user's own;
   :mod:`~benchmarks.grid.runs` — the runs of one invocation and each run's sampler.
3. :mod:`~benchmarks.grid.train`, :mod:`~benchmarks.grid.lightning_loop` — the two loops;
   :mod:`~benchmarks.grid.static_scores`, :mod:`~benchmarks.grid.learned_scores` — the scoring
   runs of static and reducible-loss methods.
4. :mod:`~benchmarks.grid.stats`, :mod:`~benchmarks.grid.full_curve` — statistics over seeds and
   the full-data curve; :mod:`~benchmarks.grid.report`, :mod:`~benchmarks.grid.figures`,
   :mod:`~benchmarks.grid.flags` — summary, figures, noise flags;
   :mod:`~benchmarks.grid.equal_time` — the equal-time comparison's command.
5. :mod:`~benchmarks.grid.bench` — runs the grid and writes the results folder.
6. :mod:`~benchmarks.grid.cli` — the command line and :func:`~benchmarks.grid.cli.run_own`; the
   diagnostics built on it (:mod:`~benchmarks.grid.guard_trace`,
   :mod:`~benchmarks.grid.noise_signals`, :mod:`~benchmarks.grid.irreducible_quality`).
"""

__all__: list[str] = []
