"""Integrations with training frameworks; each imports its framework only where it is used.

* :mod:`~dynaprune.integrations.lightning` — the PyTorch Lightning callback
  (``dynaprune.lightning``).
* :mod:`~dynaprune.integrations.transformers` — ``PruningTrainer``, a Hugging Face ``Trainer``
  (``dynaprune.transformers``).
* :mod:`~dynaprune.integrations.accelerate` — a train loader prepared by Hugging Face
  Accelerate and sharded once (``dynaprune.accelerate``).
* :mod:`~dynaprune.integrations.sample_losses` — per-sample losses from logits and labels
  (torch only).
"""
