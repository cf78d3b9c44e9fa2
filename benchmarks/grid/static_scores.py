"""The static methods of the benchmark: score every sample once, then train on a fixed subset.

A static method (``static-forgetting``, ``static-el2n``, ``static-grand``, ``static-herding``,
``static-kcenter``, ``static-curvature``) first runs its scoring recipe with the library's
functions (:mod:`dynaprune.scores`, :mod:`dynaprune.forgetting`, :mod:`dynaprune.coreset`),
then trains like any policy with :class:`dynaprune.StaticPolicy` over those scores: the same
subset every epoch, at the same budget as the dynamic policies. The scoring run is timed on the
same clock as training (``scoring_seconds``), and a user pays it on top of training, so it is
added to the method's total time and to ``speedup_with_scoring``.

The recipes (the ``static`` config section; defaults in :data:`benchmarks.grid.config.DEFAULTS`):

* ``static-forgetting`` (Toneva et al., ICLR 2019): forgetting events over
  ``static.forgetting_epochs`` epochs of full-data training (default: as many as the run
  itself, since the published method tracks a whole training run); never-learned samples first.
* ``static-el2n`` (Paul et al., NeurIPS 2021): EL2N after ``static.epochs`` epochs, averaged
  over ``static.runs`` runs (published: epoch 20 of 200, i.e. a tenth of training, 10 runs).
* ``static-grand`` (ibid.): GraNd after ``static.grand_epochs`` epochs (default 0: at
  initialisation, as published), averaged over ``static.runs`` initialisations.
* ``static-herding`` / ``static-kcenter`` (Welling, ICML 2009; Sener and Savarese, ICLR 2018):
  greedy orders on the penultimate features of a proxy (the same model) trained ``static.epochs``
  epochs, computed for the largest budget of the grid (a smaller budget keeps a prefix of the
  same greedy order).
* ``static-curvature`` (Garg and Roy, CVPR 2023): minus the input-space loss curvature after
  ``static.epochs`` epochs, over ``static.curvature_directions`` Rademacher directions.
* ``static-learned`` / ``static-learned-linear`` (InstructionGPT-4's selector, Wei et al. 2023):
  a selector learned over indicators from a ``static.epochs``-epoch proxy run
  (:mod:`benchmarks.grid.learned_scores`); ``static-alone-<indicator>``: the linear selector over
  one of its indicators alone.
* ``static-random``: a random subset (uniform scores drawn with the scoring seed), fixed for the
  whole run: the static counterpart of ``uniform``; it costs nothing to score.

Scoring trains with the run's optimizer settings (SGD or AdamW, learning rate, momentum, weight
decay) and the learning-rate schedule of ``full`` (warm-up, then cosine over ``train.epochs``),
so that a score taken after ``static.epochs`` epochs sees the model of ``full`` at that point,
as the published recipes score early in a standard run (EL2N at epoch 20 of 200). It trains on
the augmented training data in random order with plain cross-entropy, and scores the
unaugmented data in eval mode. With ``static.class_balanced``
(default) every class keeps its proportional share of the budget, as DeepCore does. A seed's
scores are computed once and serve every keep ratio of that seed; each of its runs is charged
the whole scoring time. Scoring run ``r`` of seed ``s`` seeds the model with ``1000 * s + r``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from benchmarks.grid.data import DataBundle
from benchmarks.grid.learned_scores import alone, learned_attention, learned_linear
from benchmarks.grid.loaders import DeviceLoader, normalize
from benchmarks.grid.methods import REGISTRY, STATIC_METHODS
from benchmarks.grid.models import build_model
from benchmarks.grid.train import make_optimizer, make_scheduler
from dynaprune.scores.learned.indicators import SCALARS

__all__ = ["STATIC_METHODS", "StaticScorer"]


class _Shuffled(torch.utils.data.Sampler[int]):
    """Every index once per epoch, in a new order drawn from its own generator."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.generator = n, torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        return iter(torch.randperm(self.n, generator=self.generator).tolist())


class _IndexedLoader(DeviceLoader):
    """The device loader's augmented batches, as ``(indices, images, labels)``."""

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor]]:  # type: ignore[override]
        order = torch.tensor(list(iter(self.sampler)), dtype=torch.long).to(self.device)
        for start in range(0, len(order), self._batch):
            index = order[start : start + self._batch]
            images = self._augment(index) if self.augment else self.images[index]
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            yield index, images, self.labels[index]


class StaticScorer:
    """Computes (once per method and seed) and times the scores of the static methods.

    Args:
        cfg: the validated benchmark config.
        data: the decoded data set (device-resident tensors are built from it).
        device: where scoring trains and scores.
    """

    def __init__(self, cfg: dict[str, Any], data: DataBundle, device: torch.device) -> None:
        if data.train_files is not None:
            raise ValueError("static methods need the train split in memory, not streaming")
        self.cfg, self.data, self.device = cfg, data, device
        self.channels_last = bool(cfg["model"]["channels_last"])
        self._cache: dict[tuple[str, int], tuple[Tensor, float]] = {}
        # Built here, outside every timer, so that no method pays for what all of them share.
        self._eval = self._eval_batches()

    def irreducible(self, form: str, seed: int, epochs: int) -> tuple[Tensor, float]:
        """``(irreducible losses, seconds)`` of ``form`` for ``seed``; computed on the first call.

        The ``reducible`` config section's model (default: the run's) trains ``epochs`` epochs
        on each half (the holdout form: on the even half only) with the run's optimizer, its own
        warm-up and cosine schedule over those steps, and the run's augmentation and label
        smoothing, in batches of about ``train.batch_size`` samples of its half; it scores
        the unaugmented samples in eval mode. Seeded with ``1000 * seed``.
        """
        key = (self.irreducible_key(form, epochs), seed)
        return self._timed(key, lambda: self._irreducible(form, seed, epochs))

    @staticmethod
    def irreducible_key(form: str, epochs: int) -> str:
        """The name :meth:`irreducible` caches its losses under (see :meth:`cached`)."""
        return f"irreducible-{form}-{epochs}"

    def cached(self, method: str, seed: int) -> bool:
        """Whether the scores of ``method`` for ``seed`` are already computed."""
        return (method, seed) in self._cache

    def scores(self, method: str, seed: int) -> tuple[Tensor, float]:
        """``(scores, seconds)`` of ``method`` for ``seed``; computed on the first call."""
        return self._timed((method, seed), lambda: self._compute(method, seed))

    def _timed(self, key: tuple[str, int], compute: Callable[[], Tensor]) -> tuple[Tensor, float]:
        if key not in self._cache:
            start = time.perf_counter()
            scores = compute()
            if scores.device.type == "cuda":
                torch.cuda.synchronize(scores.device)
            self._cache[key] = (scores.float().cpu(), time.perf_counter() - start)
        return self._cache[key]

    # ----------------------------------------------------------------- pieces
    def _model(self) -> nn.Module:
        model = build_model(self.cfg["model"]["name"], self.data.image_shape, self.data.num_classes)
        model = model.to(self.device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def _optimizer(self, params: Any) -> torch.optim.Optimizer:
        """The run's optimizer, its learning rate following ``full``'s schedule step by step."""
        train = self.cfg["train"]
        optimizer = make_optimizer(params, train)
        total = train["epochs"] * math.ceil(self.data.num_train / train["batch_size"])
        schedule = make_scheduler(optimizer, train, total)
        optimizer.register_step_post_hook(lambda *_: schedule.step())
        return optimizer

    def _train_loader(self, seed: int) -> _IndexedLoader:
        data, train = self.data, self.cfg["train"]
        return _IndexedLoader(
            data,
            _Shuffled(data.num_train, seed),
            train["batch_size"],
            self.device,
            self.cfg["data"]["augment"],
            seed,
            channels_last=self.channels_last,
        )

    def _eval_batches(self) -> list[tuple[Tensor, Tensor]]:
        """Unaugmented batches in data set order, on the device."""
        data, size = self.data, self.cfg["train"]["eval_batch_size"]
        x = normalize(data.train_x.to(self.device), data.mean, data.std)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = data.train_y.to(self.device)
        return list(zip(x.split(size), y.split(size), strict=True))

    def _eval_loader(self) -> list[tuple[Tensor, Tensor]]:
        """The unaugmented batches, shared by every method."""
        return self._eval

    def _budget(self) -> int:
        """Samples kept at the grid's largest keep ratio (a greedy order's longest prefix)."""
        n = self.data.num_train
        return min(n, math.ceil(max(self.cfg["pruning"]["keep_ratios"]) * n))

    def _irreducible(self, form: str, seed: int, epochs: int) -> Tensor:
        from functools import partial

        import torch.nn.functional as F

        from dynaprune.reducible import irreducible_losses

        cfg, data = self.cfg, self.data
        name = cfg["reducible"]["model"] or cfg["model"]["name"]
        train = cfg["train"]
        size = 2 * train["batch_size"]  # each model trains on its half of every batch
        steps = epochs * math.ceil(data.num_train / size)

        def optimizer(params: Any) -> torch.optim.Optimizer:
            opt = make_optimizer(params, train)
            schedule = make_scheduler(opt, train, steps)
            opt.register_step_post_hook(lambda *_: schedule.step())
            return opt

        def model() -> nn.Module:
            net = build_model(name, data.image_shape, data.num_classes).to(self.device)
            return net.to(memory_format=torch.channels_last) if self.channels_last else net

        loader = _IndexedLoader(
            data,
            _Shuffled(data.num_train, 1000 * seed),
            size,
            self.device,
            cfg["data"]["augment"],
            1000 * seed,
            channels_last=self.channels_last,
        )
        smoothing = train["label_smoothing"]
        return irreducible_losses(
            model,
            self._eval_loader(),
            epochs=epochs,
            form=form,
            seed=1000 * seed,
            train_loader=loader,
            optimizer=optimizer,
            loss_fn=partial(F.cross_entropy, reduction="none", label_smoothing=smoothing),
            device=self.device,
            num_samples=data.num_train,
        ).scores

    # ----------------------------------------------------------------- recipes
    def _compute(self, method: str, seed: int) -> Tensor:
        """The scores of a static method: its registry entry names its recipe."""
        entry = REGISTRY.get(method)
        if entry is None or entry.kind != "static" or entry.recipe not in _RECIPES:
            raise ValueError(f"unknown static method {method!r}; valid: {list(STATIC_METHODS)}")
        base = 1000 * seed
        common: dict[str, Any] = {
            "seed": base,
            "optimizer": self._optimizer,
            "device": self.device,
            "num_samples": self.data.num_train,
        }
        return _RECIPES[entry.recipe](self, self._train_loader(base), common)

    def _forgetting(self, train: _IndexedLoader, common: dict[str, Any]) -> Tensor:
        from dynaprune.forgetting import forgetting_scores

        epochs = self.cfg["static"]["forgetting_epochs"] or self.cfg["train"]["epochs"]
        return forgetting_scores(self._model, train, epochs=epochs, **common).scores

    def _el2n(self, train: _IndexedLoader, common: dict[str, Any]) -> Tensor:
        from dynaprune.scores import el2n_scores

        static = self.cfg["static"]
        return el2n_scores(
            self._model,
            self._eval_loader(),
            epochs=static["epochs"],
            runs=static["runs"],
            train_loader=train,
            **common,
        ).scores

    def _grand(self, train: _IndexedLoader, common: dict[str, Any]) -> Tensor:
        from dynaprune.scores import grand_scores

        static = self.cfg["static"]
        return grand_scores(
            self._model,
            self._eval_loader(),
            epochs=static["grand_epochs"],
            runs=static["runs"],
            chunk_size=static["grand_chunk_size"],
            train_loader=train,
            **common,
        ).scores

    def _curvature(self, train: _IndexedLoader, common: dict[str, Any]) -> Tensor:
        from dynaprune.scores import low_curvature_scores

        static = self.cfg["static"]
        return low_curvature_scores(
            self._model,
            self._eval_loader(),
            epochs=static["epochs"],
            directions=static["curvature_directions"],
            train_loader=train,
            **common,
        ).scores

    def _random(self, train: _IndexedLoader, common: dict[str, Any]) -> Tensor:
        generator = torch.Generator().manual_seed(common["seed"])
        return torch.rand(self.data.num_train, generator=generator)

    def _herding(self, train: _IndexedLoader, common: dict[str, Any]) -> Tensor:
        return self._coreset("static-herding", common["seed"], train)

    def _kcenter(self, train: _IndexedLoader, common: dict[str, Any]) -> Tensor:
        return self._coreset("static-kcenter", common["seed"], train)

    def _coreset(self, method: str, seed: int, train: _IndexedLoader) -> Tensor:
        from dynaprune.coreset import embeddings, herding_scores, k_center_scores
        from dynaprune.scores._training import average_runs, cross_entropy, train_epochs

        static = self.cfg["static"]
        labels = self.data.train_y.to(self.device) if static["class_balanced"] else None
        herding = method == "static-herding"
        order: Callable[..., Any] = herding_scores if herding else k_center_scores

        def one_run(run: int) -> Tensor:
            proxy = self._model()
            train_epochs(proxy, train, static["epochs"], self._optimizer, cross_entropy)
            features = embeddings(proxy, self._eval_loader(), num_samples=self.data.num_train)
            scores: Tensor = order(features, self._budget(), labels=labels).scores
            return scores

        return average_runs(1, seed, one_run).scores


# The scoring recipe of each static method, by the name its registry entry gives.
_RECIPES: dict[str, Callable[[StaticScorer, _IndexedLoader, dict[str, Any]], Tensor]] = {
    "forgetting": StaticScorer._forgetting,
    "el2n": StaticScorer._el2n,
    "grand": StaticScorer._grand,
    "curvature": StaticScorer._curvature,
    "herding": StaticScorer._herding,
    "kcenter": StaticScorer._kcenter,
    "learned": learned_attention,
    "learned-linear": learned_linear,
    "random": StaticScorer._random,
    **{f"alone-{name}": alone(name) for name in SCALARS},  # each indicator of the selector
}
