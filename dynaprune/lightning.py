"""The PyTorch Lightning callback: ``from dynaprune.lightning import DynamicPruningCallback``.

This public path re-exports :mod:`dynaprune.integrations.lightning`, where the callback lives.
"""

from dynaprune.integrations.lightning import (
    DynamicPruningCallback,
    ResumableDataLoader,
    batch_indices,
    batch_weights,
)

__all__ = ["DynamicPruningCallback", "ResumableDataLoader", "batch_indices", "batch_weights"]
