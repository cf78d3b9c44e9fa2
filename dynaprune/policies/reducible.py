"""Reducible loss (RHO-LOSS): select what is learnable, worth learning and not yet learnt.

Mindermann et al., "Prioritized Training on Points that are Learnable, Worth Learning, and Not
Yet Learnt" (ICML 2022; code OATML/RHO-Loss). A sample's *reducible* loss is its training loss
minus its *irreducible* loss, the loss under a model trained on other data. A mislabelled or
ambiguous sample has a high loss under both models and scores low; a typical sample the model
has not learnt yet scores high; a learnt one scores low again.

* :func:`~dynaprune.scores.irreducible.irreducible_losses` computes the irreducible losses
  from a model factory and the data, timed like the static scores
  (:class:`~dynaprune.scores.ScoreResult`), in two forms:

  - ``form="holdout"`` (published): one model trained on the *holdout* half, the samples of
    even index; it scores every sample, and the target then trains on the odd half only (pass
    ``candidates=odd`` to :class:`ReducibleLossPolicy`). The published CIFAR-10 recipe holds
    out half the training set, trains a ResNet-18 on it with AdamW (lr 1e-3) for 100 epochs,
    and keeps the checkpoint of lowest loss *on the test set* (``configs/callbacks/
    val_loss.yaml``, ``src/train_irreducible.py``), which leaks test data into selection. Here
    no checkpoint is chosen: the model of the last epoch scores.
  - ``form="twofold"`` (ours): two models, each trained on one half and scoring the other, so
    that every sample's irreducible loss comes from a model that never saw it and the target
    keeps all its data, at twice the training cost.

* :class:`ReducibleLossPolicy` keeps, each epoch, the samples of highest moving-average loss
  minus irreducible loss, with the exploration share and tie rules of the other score policies.
  The published method selects *within* each batch, where every loss is fresh:
  :func:`dynaprune.inbatch.rho` does that, and feeding the forward pass's losses to the sampler
  keeps this policy's moving averages fresh too.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dynaprune._checks import check_fraction, check_vector
from dynaprune._select import random_subset, shuffled_indices
from dynaprune.core.statistics import LossStatistics
from dynaprune.policies.base import Selection
from dynaprune.policies.loss import _greedy, _ScoreGreedyPolicy

__all__ = ["ReducibleLossPolicy"]


class ReducibleLossPolicy(_ScoreGreedyPolicy):
    """Highest reducible loss (moving-average loss minus irreducible loss) first.

    ``score_i = mean_i - irreducible_i`` for ``1 - explore`` of the budget, a uniform draw from
    the rest for the remainder; never-seen samples first, in random order, as in every score
    policy. With ``candidates``, only those samples are ever kept (the published holdout form
    trains the target on the half its irreducible-loss model did not see).

    Args:
        irreducible: one irreducible loss per sample, finite
            (:func:`~dynaprune.scores.irreducible.irreducible_losses`).
        explore: share of the budget drawn uniformly, in ``[0, 1]``.
        candidates: optional bool mask of the samples that may be kept; the budget must not
            exceed their number.

    Example:
        >>> policy = ReducibleLossPolicy(torch.zeros(4))
        >>> stats = LossStatistics(4)
        >>> stats.update(torch.arange(4), torch.tensor([0.1, 3.0, 2.0, 0.2]), epoch=0)
        >>> sorted(policy.select(stats, 1, torch.Generator().manual_seed(0)).indices.tolist())
        [1]
    """

    def __init__(
        self, irreducible: Tensor, *, explore: float = 0.3, candidates: Tensor | None = None
    ) -> None:
        il = check_vector("irreducible", irreducible, floating=True)
        if not bool(torch.isfinite(il).all()):
            raise ValueError("irreducible must be finite, got NaN or infinite entries")
        self.irreducible = il.detach().to(torch.float32)
        self.explore = check_fraction("explore", explore, open_low=False, open_high=False)
        self.candidates: Tensor | None = None
        if candidates is not None:
            if not isinstance(candidates, Tensor) or candidates.dtype != torch.bool:
                what = candidates.dtype if isinstance(candidates, Tensor) else type(candidates)
                raise TypeError(f"candidates must be a bool tensor, got {what}")
            if candidates.shape != il.shape:
                raise ValueError(
                    f"candidates must have shape {tuple(il.shape)} like irreducible, got "
                    f"{tuple(candidates.shape)}"
                )
            self.candidates = candidates

    def check_attributes(self) -> None:
        name = type(self).__name__
        check_fraction(f"{name}.explore", self.explore, open_low=False, open_high=False)

    def _on(self, stats: LossStatistics) -> tuple[Tensor, Tensor | None]:
        if self.irreducible.numel() != stats.num_samples:
            raise ValueError(
                f"irreducible has {self.irreducible.numel()} entries, the statistics "
                f"{stats.num_samples} samples"
            )
        if self.irreducible.device != stats.device:  # moved once, then kept there
            self.irreducible = self.irreducible.to(stats.device)
            if self.candidates is not None:
                self.candidates = self.candidates.to(stats.device)
        return self.irreducible, self.candidates

    def score(self, stats: LossStatistics) -> Tensor:
        il, _ = self._on(stats)
        return stats.mean - il

    def select(self, stats: LossStatistics, num_keep: int, generator: torch.Generator) -> Selection:
        _, candidates = self._on(stats)
        if candidates is None:
            return super().select(stats, num_keep, generator)
        # As the score policies, within the candidates: others score -inf and are never drawn.
        num_candidates = int(candidates.count_nonzero())
        if num_keep > num_candidates:
            raise ValueError(
                f"the budget of {num_keep} samples exceeds the {num_candidates} candidates; "
                "lower keep_ratio"
            )
        num_greedy = num_keep - round(self.explore * num_keep)
        unseen = (stats.seen == 0) & candidates
        score = self.score(stats).masked_fill_(~candidates, -math.inf)
        greedy = _greedy(score, num_greedy, generator, unseen, int(unseen.count_nonzero()))
        pool = candidates & ~greedy
        keep = random_subset(pool, num_candidates - num_greedy, num_keep - num_greedy, generator)
        keep |= greedy
        return Selection(shuffled_indices(keep, generator), None, shuffled=True)

    def __repr__(self) -> str:
        extra = "" if self.candidates is None else ", candidates=<mask>"
        return (
            f"ReducibleLossPolicy(irreducible=<{self.irreducible.numel()} losses>, "
            f"explore={self.explore}{extra})"
        )
