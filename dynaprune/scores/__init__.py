"""Static per-sample scores and coresets, computed once before training.

Each scoring function trains fresh models by one recipe (``train_then_score`` in
:mod:`dynaprune.scores._training`) and returns a :class:`ScoreResult` (one float32 score per
sample, higher = keep first, and the seconds it took); rank with :class:`dynaprune.StaticPolicy`.

* :mod:`~dynaprune.scores.signals` — EL2N, GraNd and low loss curvature (the functions below).
* :mod:`~dynaprune.scores.forgetting` — forgetting events (``dynaprune.forgetting``).
* :mod:`~dynaprune.scores.coreset` — herding and k-center greedy orders (``dynaprune.coreset``).
* :mod:`~dynaprune.scores.irreducible` — irreducible losses for reducible-loss selection.
* :mod:`~dynaprune.scores.learned` — a selector learned over several of these indicators
  (InstructionGPT-4's; ``dynaprune.learned``).
"""

from dynaprune.scores._training import ScoreResult, default_optimizer
from dynaprune.scores.signals import el2n_scores, grand_scores, low_curvature_scores

__all__ = [
    "ScoreResult",
    "default_optimizer",
    "el2n_scores",
    "grand_scores",
    "low_curvature_scores",
]
