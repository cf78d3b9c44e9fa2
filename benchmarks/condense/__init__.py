"""Coresets against synthetic sets: ``python benchmarks/condense/run.py`` (see its docstring);
dynamic pruning of the real pool at a synthetic set's budget: ``benchmarks/condense/dynamic.py``."""

__all__: list[str] = []
