"""dynaprune: dynamic data pruning for PyTorch.

Each epoch, train only on the samples that still matter, chosen from per-sample loss
statistics kept on the training device.

The package, by concept: :mod:`dynaprune.core` (the sampler, its epoch plan and schedule, the
statistics, distributed training and checkpoints), :mod:`dynaprune.policies` (which samples an
epoch keeps), :mod:`dynaprune.scores` (static scores and coresets, computed once),
:mod:`dynaprune.inbatch` (selection within a batch), :mod:`dynaprune.integrations` (Lightning,
Hugging Face Trainer and Accelerate), :mod:`dynaprune.condense` (dataset condensation) and
:mod:`dynaprune.tokens` (token and attention pruning inside Vision Transformers).
"""

from dynaprune.core.sampler import DynamicPruningSampler
from dynaprune.core.statistics import LossStatistics
from dynaprune.inbatch import InBatchSelector
from dynaprune.policies import (
    POLICIES,
    EpsilonGreedyPolicy,
    GuardedUCBPolicy,
    GuardReport,
    ImportancePolicy,
    InfoBatchPolicy,
    ModeratePolicy,
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
from dynaprune.tokens import KeepRateSchedule, SmallViT, TokenPruner

__version__ = "0.1.0"

__all__ = [
    "POLICIES",
    "DynamicPruningSampler",
    "EpsilonGreedyPolicy",
    "ForgettingTracker",
    "GuardReport",
    "GuardedUCBPolicy",
    "ImportancePolicy",
    "InBatchSelector",
    "InfoBatchPolicy",
    "KeepRateSchedule",
    "LossStatistics",
    "ModeratePolicy",
    "OnionPolicy",
    "PoolTopPolicy",
    "PruningPolicy",
    "ReducibleLossPolicy",
    "ScoreResult",
    "Selection",
    "SmallViT",
    "SoftPolicy",
    "StaticPolicy",
    "TokenPruner",
    "UCBPolicy",
    "UniformPolicy",
    "make_policy",
]
