"""The learned data selector (InstructionGPT-4's, over training-dynamics indicators).

This public path re-exports :mod:`dynaprune.scores.learned`, where it is built.
"""

from dynaprune.scores.learned import (
    SELECTORS,
    AttentionSelector,
    Indicators,
    LearnedScores,
    LinearSelector,
    cluster_top_k,
    fit_selector,
    learned_scores,
    proportional_scores,
    selector_scores,
    training_indicators,
)

__all__ = [
    "SELECTORS",
    "AttentionSelector",
    "Indicators",
    "LearnedScores",
    "LinearSelector",
    "cluster_top_k",
    "fit_selector",
    "learned_scores",
    "proportional_scores",
    "selector_scores",
    "training_indicators",
]
