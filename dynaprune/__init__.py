"""dynaprune: dynamic data pruning for PyTorch.

Each epoch, train only on the samples that still matter, chosen from per-sample loss
statistics kept on the training device.

The package, by concept: :mod:`dynaprune.core` (the sampler, its epoch plan and schedule, the
statistics, distributed training and checkpoints), :mod:`dynaprune.policies` (which samples an
epoch keeps), :mod:`dynaprune.scores` (static scores and coresets, computed once),
:mod:`dynaprune.inbatch` (selection within a batch), :mod:`dynaprune.integrations` (Lightning,
Hugging Face Trainer and Accelerate) and :mod:`dynaprune.condense` (dataset condensation).
"""

from dynaprune.core.sampler import DynamicPruningSampler
from dynaprune.core.statistics import LossStatistics
from dynaprune.inbatch import InBatchSelector
from dynaprune.policies import (
    POLICIES,
    EpsilonGreedyPolicy,
    ImportancePolicy,
    InfoBatchPolicy,
    OnionPolicy,
    PoolTopPolicy,
    PruningPolicy,
    ReducibleLossPolicy,
    Selection,
    SoftPolicy,
    StaticPolicy,
    UCBPolicy,
    UniformPolicy,
    make_policy,
)
from dynaprune.scores import ScoreResult
from dynaprune.scores.forgetting import ForgettingTracker

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
