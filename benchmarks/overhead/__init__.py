"""What dynaprune itself costs: ``python benchmarks/overhead/run.py`` (see its docstring)."""

__all__: list[str] = []
