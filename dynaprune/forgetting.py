"""Forgetting events as a static score.

This public path re-exports :mod:`dynaprune.scores.forgetting`, where they are counted.
"""

from dynaprune.scores.forgetting import ForgettingTracker, forgetting_counts, forgetting_scores

__all__ = ["ForgettingTracker", "forgetting_counts", "forgetting_scores"]
