"""Integrations with training frameworks; each imports its framework only where it is used.

* :mod:`~dynaprune.integrations.lightning` — the PyTorch Lightning callback
  (``dynaprune.lightning``).
"""
