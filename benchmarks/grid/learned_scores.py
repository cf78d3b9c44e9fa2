"""The learned selector's scoring recipes, ``static-learned`` and ``static-learned-linear``.

Both run :func:`dynaprune.learned.learned_scores` (InstructionGPT-4's selector over the library's
training-dynamics indicators; ``docs/learned-selector.md``) with the attention selector or the
linear baseline, on the clock like every static method:

* the indicators' training run is the static scores' proxy run: the run's model, optimizer and
  ``full``'s schedule, ``static.epochs`` epochs on the augmented data in random order; the
  indicators are read on the unaugmented data in eval mode;
* the held-out split that labels the groups is a random tenth of the training set (drawn with
  the scoring seed) less the samples whose labels ``data.label_noise`` flipped: the trusted,
  clean validation split that a user labelling against held-out accuracy must hold (the test
  set is never read);
* 30 groups, 10 selection clusters per class, 6 PCA dimensions, the function's defaults.

``static-alone-<indicator>`` (``loss_mean``, ``loss_spread``, ``forgetting``, ``el2n``,
``margin``) is the linear baseline restricted to that one indicator: same run, groups, labels and
selection, so that it answers whether learning a combination beats one indicator.

The scores are cluster-proportional at every keep ratio, so the grid's class-balanced
:class:`dynaprune.StaticPolicy` keeps each class's share and, within it, each cluster's.
Each method computes its own indicators and labels (they are not shared between the two), so
each is charged its whole cost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from torch import Tensor, nn

from benchmarks.grid.data import DataBundle

__all__ = [
    "HOLDOUT_FRACTION",
    "Scorer",
    "alone",
    "clean_holdout",
    "learned_attention",
    "learned_linear",
    "learned_recipe",
]

HOLDOUT_FRACTION = 0.1  # share of the training set drawn for the held-out split
# Added to the scoring seed for the split: the label noise flips the first samples of
# randperm(N) seeded with data.label_noise_seed (0 by default), as the split would draw them with
# scoring seed 0, so without it every held-out sample would be a flipped one.
_SPLIT_SALT = 7919


class Scorer(Protocol):
    """The parts of the grid's scorer that a recipe reads.

    :class:`~benchmarks.grid.static_scores.StaticScorer` imports this module for its recipes, so
    the recipes name these parts instead of importing the class back.
    """

    cfg: dict[str, Any]
    data: DataBundle

    def _model(self) -> nn.Module: ...

    def _eval_loader(self) -> list[tuple[Tensor, Tensor]]: ...


def clean_holdout(num_train: int, flipped: Tensor | None, seed: int) -> Tensor:
    """A random ``HOLDOUT_FRACTION`` of the training set, less the samples whose labels the
    config's noise flipped (``flipped``, a bool mask, or ``None`` without noise)."""
    from dynaprune.scores.learned import split_holdout

    held = split_holdout(num_train, HOLDOUT_FRACTION, seed=seed + _SPLIT_SALT)
    return held if flipped is None else held[~flipped[held]]


def learned_recipe(
    scorer: Scorer,
    train: Any,
    common: dict[str, Any],
    selector: str,
    columns: tuple[str, ...] | None = None,
) -> Tensor:
    """The scores of ``static-learned`` (``selector="attention"``), its linear baseline, or the
    linear selector over the indicator ``columns`` alone."""
    from dynaprune.learned import learned_scores

    data, seed, epochs = scorer.data, common["seed"], scorer.cfg["static"]["epochs"]
    if epochs < 1:
        raise ValueError(
            f"static-learned needs an indicators' training run: static.epochs must be >= 1, "
            f"got {epochs}"
        )
    held = clean_holdout(data.num_train, getattr(data, "flipped", None), seed)
    result = learned_scores(
        scorer._model,
        scorer._eval_loader(),
        selector=selector,
        holdout=held,  # the training labels are the clean ones there
        epochs=epochs,
        num_classes=data.num_classes,
        train_loader=train,
        columns=columns,
        **common,
    )
    scores: Tensor = result.scores
    return scores


def learned_attention(scorer: Scorer, train: Any, common: dict[str, Any]) -> Tensor:
    """``static-learned``: the paper's attention selector."""
    return learned_recipe(scorer, train, common, "attention")


def learned_linear(scorer: Scorer, train: Any, common: dict[str, Any]) -> Tensor:
    """``static-learned-linear``: the linear baseline over the same indicators."""
    return learned_recipe(scorer, train, common, "linear")


def alone(name: str) -> Callable[[Scorer, Any, dict[str, Any]], Tensor]:
    """``static-alone-<name>``: the linear selector over the indicator ``name`` alone (its
    direction learned from the groups' labels), with the same groups, labels and
    cluster-proportional selection: the only difference from ``static-learned-linear`` is the
    combination of indicators."""

    def recipe(scorer: Scorer, train: Any, common: dict[str, Any]) -> Tensor:
        return learned_recipe(scorer, train, common, "linear", columns=(name,))

    return recipe
