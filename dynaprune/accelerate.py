"""The Hugging Face Accelerate helpers: ``from dynaprune.accelerate import prepare_loader``.

This public path re-exports :mod:`dynaprune.integrations.accelerate`, where they live.
"""

from dynaprune.integrations.accelerate import find_sampler, prepare_loader, unshard

__all__ = ["find_sampler", "prepare_loader", "unshard"]
