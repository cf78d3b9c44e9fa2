"""dynaprune: dynamic data pruning for PyTorch.

Each epoch, train only on the samples that still matter, chosen from per-sample loss
statistics kept on the training device.
"""

from dynaprune.forgetting import ForgettingTracker
from dynaprune.inbatch import InBatchSelector
from dynaprune.onion import OnionPolicy
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
from dynaprune.reducible import ReducibleLossPolicy
from dynaprune.sampler import DynamicPruningSampler
from dynaprune.scores import ScoreResult
from dynaprune.static import StaticPolicy
from dynaprune.statistics import LossStatistics

__version__ = "0.1.0"

__all__ = [
    "POLICIES",
    "DynamicPruningSampler",
    "EpsilonGreedyPolicy",
    "ForgettingTracker",
    "ImportancePolicy",
    "InBatchSelector",
    "InfoBatchPolicy",
    "LossStatistics",
    "OnionPolicy",
    "PoolTopPolicy",
    "PruningPolicy",
    "ReducibleLossPolicy",
    "ScoreResult",
    "Selection",
    "SoftPolicy",
    "StaticPolicy",
    "UCBPolicy",
    "UniformPolicy",
    "make_policy",
]
