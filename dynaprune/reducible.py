"""Reducible loss (RHO-LOSS): the epoch-level policy and the irreducible losses it needs.

This public path re-exports :mod:`dynaprune.policies.reducible` (the policy) and
:mod:`dynaprune.scores.irreducible` (the scoring run).
"""

from dynaprune.policies.reducible import ReducibleLossPolicy
from dynaprune.scores.irreducible import FORMS, irreducible_losses

__all__ = ["FORMS", "ReducibleLossPolicy", "irreducible_losses"]
