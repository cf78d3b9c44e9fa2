"""The user's functions named in a config: ``MODULE:FUNCTION`` or ``path/to/file.py:FUNCTION``.

The config validates these names before anything is loaded, and :mod:`benchmarks.grid.factories`
calls them; both stand on this module, which imports nothing of the grid.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["factory_name", "resolve"]

_GIVEN: dict[str, Callable[..., Any]] = {}  # functions passed from Python, by their name


def factory_name(factory: str | Callable[..., Any]) -> str:
    """The name a config records for ``factory``; a function passed from Python is remembered
    under ``module:qualname`` so that :func:`resolve` finds it even where it cannot be imported
    (a lambda, a function of ``__main__``)."""
    if isinstance(factory, str):
        return factory
    if not callable(factory):
        raise TypeError(f"a factory must be a function or 'MODULE:FUNCTION', got {factory!r}")
    name = f"{factory.__module__}:{getattr(factory, '__qualname__', repr(factory))}"
    _GIVEN[name] = factory
    return name


def resolve(name: Any, key: str) -> Callable[..., Any]:
    """The function named ``MODULE:FUNCTION`` or ``path/to/file.py:FUNCTION`` by config ``key``.

    Raises:
        ValueError: naming ``key`` and the value, if it is malformed or cannot be imported.
    """
    if isinstance(name, str) and name in _GIVEN:
        return _GIVEN[name]
    module, _, attr = name.rpartition(":") if isinstance(name, str) else ("", "", "")
    if not module or not attr:
        raise ValueError(f"{key} must be 'MODULE:FUNCTION' or 'FILE.py:FUNCTION', got {name!r}")
    try:
        obj: Any = _import(module)
    except (ImportError, OSError) as error:
        raise ValueError(f"{key} {name!r}: cannot import {module!r} ({error})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{key} {name!r}: {module!r} has no {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{key} {name!r} is not callable")
    return obj


@functools.cache
def _import(module: str) -> Any:
    if module.endswith(".py"):
        path = Path(module).expanduser().resolve()
        spec = importlib.util.spec_from_file_location(f"_factory_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"no Python file at {str(path)!r}")
        loaded = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loaded)
        return loaded
    if os.getcwd() not in sys.path:  # a module of the current directory, as `python -m` finds
        sys.path.append(os.getcwd())
    return importlib.import_module(module)
