"""Pruning policies: which samples an epoch keeps.

* :mod:`~dynaprune.policies.base` — :class:`PruningPolicy` and its :class:`Selection`.
* :mod:`~dynaprune.policies.loss` — the loss-driven rules: ``uniform``, ``epsilon_greedy``,
  ``ucb``, ``soft``.
* :mod:`~dynaprune.policies.guarded` — rules that keep away from flipped labels:
  ``guarded_ucb``, ``moderate``.
* :mod:`~dynaprune.policies.sampled` — loss-biased random draws at an exact budget:
  ``infobatch``, ``pool_top``, ``importance``.
* :mod:`~dynaprune.policies.onion` — Peeling the Onion's example selector, ``onion``.
* :mod:`~dynaprune.policies.static` — a fixed subset from static scores.
* :mod:`~dynaprune.policies.reducible` — reducible loss (RHO-LOSS) at the epoch level.
* :mod:`~dynaprune.policies.registry` — the names: :data:`POLICIES`, :func:`make_policy`.
"""

from dynaprune.policies.base import PruningPolicy, Selection
from dynaprune.policies.guarded import GuardedUCBPolicy, GuardReport, ModeratePolicy
from dynaprune.policies.loss import EpsilonGreedyPolicy, SoftPolicy, UCBPolicy, UniformPolicy
from dynaprune.policies.onion import OnionPolicy
from dynaprune.policies.reducible import ReducibleLossPolicy
from dynaprune.policies.registry import POLICIES, make_policy
from dynaprune.policies.sampled import ImportancePolicy, InfoBatchPolicy, PoolTopPolicy
from dynaprune.policies.static import StaticPolicy

__all__ = [
    "POLICIES",
    "EpsilonGreedyPolicy",
    "GuardReport",
    "GuardedUCBPolicy",
    "ImportancePolicy",
    "InfoBatchPolicy",
    "ModeratePolicy",
    "OnionPolicy",
    "PoolTopPolicy",
    "PruningPolicy",
    "ReducibleLossPolicy",
    "Selection",
    "SoftPolicy",
    "StaticPolicy",
    "UCBPolicy",
    "UniformPolicy",
    "make_policy",
]
