"""A learned data selector over training-dynamics indicators (InstructionGPT-4's, for training
data; Wei et al., "InstructionGPT-4: A 200-Instruction Paradigm for Fine-Tuning MiniGPT-4",
2023; reference code waltonfuture/InstructionGPT-4, ``selector/`` and ``cluster/``).

* :mod:`~dynaprune.scores.learned.indicators` — per-sample indicators from one short run.
* :mod:`~dynaprune.scores.learned.groups` — k-means++ groups and their proxy-accuracy labels.
* :mod:`~dynaprune.scores.learned.selector` — the attention selector and the linear baseline.
* :mod:`~dynaprune.scores.learned.select` — cluster-proportional top-k.
* :mod:`~dynaprune.scores.learned.pipeline` — :func:`learned_scores`, all of it on your model.

``docs/learned-selector.md`` gives the design and its costs.
"""

from dynaprune.scores.learned.groups import class_clusters, kmeans_pp, mixed_groups, proxy_accuracy
from dynaprune.scores.learned.indicators import (
    SCALARS,
    Indicators,
    pca,
    standardise,
    training_indicators,
)
from dynaprune.scores.learned.pipeline import LearnedScores, learned_scores, split_holdout
from dynaprune.scores.learned.select import cluster_top_k, proportional_scores
from dynaprune.scores.learned.selector import (
    SELECTORS,
    AttentionSelector,
    LinearSelector,
    fit_selector,
    selector_scores,
)

__all__ = [
    "SCALARS",
    "SELECTORS",
    "AttentionSelector",
    "Indicators",
    "LearnedScores",
    "LinearSelector",
    "class_clusters",
    "cluster_top_k",
    "fit_selector",
    "kmeans_pp",
    "learned_scores",
    "mixed_groups",
    "pca",
    "proportional_scores",
    "proxy_accuracy",
    "selector_scores",
    "split_holdout",
    "standardise",
    "training_indicators",
]
