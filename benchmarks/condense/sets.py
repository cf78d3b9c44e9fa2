"""The small training sets of the condensation benchmark: coresets and synthetic sets.

Each maker returns ``(images, labels, seconds)`` for one method, images per class and seed:

* ``random``: ``ipc`` real images per class drawn uniformly (no cost);
* ``herding``, ``kcenter``, ``forgetting``: the library's scores (:mod:`dynaprune.coreset`,
  :class:`dynaprune.ForgettingTracker`), kept class-balanced by :class:`dynaprune.StaticPolicy`.
  One proxy ConvNet per seed is trained ``static.proxy_epochs`` epochs on the real pool; its
  forgetting events and its penultimate features serve all three, and each is charged the
  whole proxy time (a user who wants one of them pays for it);
* ``condense-dc``, ``condense-dsa``, ``condense-dm``, ``condense-idm``, ``condense-cafe``: the
  library's condensation functions with the config's arguments for that ``ipc``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from dynaprune import ForgettingTracker, StaticPolicy
from dynaprune import condense as cd
from dynaprune.core.statistics import LossStatistics

__all__ = ["CONDENSE", "METHODS", "SetMaker"]

CONDENSE: dict[str, Callable[..., cd.CondenseResult]] = {
    "condense-dc": cd.dc,
    "condense-dsa": cd.dsa,
    "condense-dm": cd.dm,
    "condense-idm": cd.idm,
    "condense-cafe": cd.cafe,
}
METHODS = ("random", "herding", "kcenter", "forgetting", *CONDENSE)


class SetMaker:
    """Builds the training set of a method from the real pool ``(x, y)`` (normalised floats)."""

    def __init__(self, cfg: dict[str, Any], x: Tensor, y: Tensor, num_classes: int) -> None:
        self.cfg, self.x, self.y, self.num_classes = cfg, x, y, num_classes
        self._proxy: dict[int, tuple[dict[str, Tensor], float]] = {}

    def make(
        self, method: str, ipc: int, seed: int, callback: cd._common.Callback | None = None
    ) -> tuple[Tensor, Tensor, float]:
        if method in CONDENSE:
            kwargs = dict(self.cfg["condense"][method].get(ipc, {}))
            result = CONDENSE[method](self.x, self.y, ipc, seed=seed, callback=callback, **kwargs)
            return result.images, result.labels, result.seconds
        if method == "random":
            g = torch.Generator().manual_seed(seed)
            idx = torch.cat(
                [
                    torch.nonzero(self.y == c).flatten()[
                        torch.randperm(int((self.y == c).sum()), generator=g)[:ipc]
                    ]
                    for c in range(self.num_classes)
                ]
            )
            return self.x[idx], self.y[idx], 0.0
        if method not in METHODS:
            raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
        scores, seconds = self._scores(seed)
        policy = StaticPolicy(scores[method], labels=self.y, class_balanced=True, seed=seed)
        keep = ipc * self.num_classes
        g = torch.Generator().manual_seed(seed)
        idx = policy.select(LossStatistics(len(self.y)), keep, g).indices
        return self.x[idx], self.y[idx], seconds

    def _scores(self, seed: int) -> tuple[dict[str, Tensor], float]:
        if seed not in self._proxy:
            self._proxy[seed] = self._score(seed)
        return self._proxy[seed]

    def _score(self, seed: int) -> tuple[dict[str, Tensor], float]:
        from dynaprune.coreset import embeddings, herding_scores, k_center_scores
        from dynaprune.scores._training import cross_entropy, default_optimizer, train_epochs

        static, n = self.cfg["static"], len(self.y)
        budget = max(self.cfg["ipc"]) * self.num_classes
        start = time.perf_counter()
        g = torch.Generator().manual_seed(1000 + seed)
        shape = (self.x.shape[2], self.x.shape[3])
        # the same weights as under a global seed of 1000 + seed, as these results were made
        init = torch.Generator().manual_seed(1000 + seed)
        proxy = cd.ConvNet(self.x.shape[1], self.num_classes, shape, generator=init)
        tracker = ForgettingTracker(n)

        def batches() -> Iterator[tuple[Tensor, Tensor, Tensor]]:
            for idx in torch.randperm(n, generator=g).split(static["batch_size"]):
                yield idx, cd.dsa_augment(self.x[idx], g), self.y[idx]

        class _Epochs:
            def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
                return batches()

        train_epochs(
            proxy,
            _Epochs(),
            static["proxy_epochs"],
            default_optimizer,
            cross_entropy,
            on_batch=lambda idx, logits, y: tracker.update(idx, logits.argmax(1) == y),
        )
        ordered = list(zip(self.x.split(500), self.y.split(500), strict=True))
        features = embeddings(proxy, ordered, num_samples=n)
        scores = {
            "forgetting": tracker.scores(),
            "herding": herding_scores(features, budget, labels=self.y).scores,
            "kcenter": k_center_scores(features, budget, labels=self.y).scores,
        }
        return scores, time.perf_counter() - start
