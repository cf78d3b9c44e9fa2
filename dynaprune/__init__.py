"""dynaprune: dynamic data pruning for PyTorch.

Each epoch, train only on the samples that still matter, chosen from per-sample loss
statistics kept on the training device.
"""

from dynaprune.policies import (
    POLICIES,
    EpsilonGreedyPolicy,
    PruningPolicy,
    Selection,
    SoftPolicy,
    UCBPolicy,
    UniformPolicy,
    make_policy,
)
from dynaprune.published import ImportancePolicy, InfoBatchPolicy, PoolTopPolicy
from dynaprune.sampler import DynamicPruningSampler
from dynaprune.statistics import LossStatistics

__version__ = "0.1.0"

__all__ = [
    "POLICIES",
    "DynamicPruningSampler",
    "EpsilonGreedyPolicy",
    "ImportancePolicy",
    "InfoBatchPolicy",
    "LossStatistics",
    "PoolTopPolicy",
    "PruningPolicy",
    "Selection",
    "SoftPolicy",
    "UCBPolicy",
    "UniformPolicy",
    "make_policy",
]
