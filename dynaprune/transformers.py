"""The Hugging Face Trainer integration: ``from dynaprune.transformers import PruningTrainer``.

This public path re-exports :mod:`dynaprune.integrations.transformers`, where the class lives.
"""

from dynaprune.integrations.transformers import PruningTrainer

__all__ = ["PruningTrainer"]
