"""Coresets against synthetic sets: ``python benchmarks/condense/run.py`` (see its docstring)."""

__all__: list[str] = []
