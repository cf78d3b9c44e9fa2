"""Coreset selection orders: herding and k-center greedy.

This public path re-exports :mod:`dynaprune.scores.coreset`, where they are computed.
"""

from dynaprune.scores.coreset import (
    embeddings,
    herding_order,
    herding_scores,
    k_center_order,
    k_center_scores,
    scores_from_order,
)

__all__ = [
    "embeddings",
    "herding_order",
    "herding_scores",
    "k_center_order",
    "k_center_scores",
    "scores_from_order",
]
