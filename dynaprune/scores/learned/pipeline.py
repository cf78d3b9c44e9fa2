"""The learned selector end to end, on your own model and data: :func:`learned_scores`.

InstructionGPT-4's selector (Wei et al., 2023; waltonfuture/InstructionGPT-4) transferred to
training data, in five steps, each a function of this package:

1. indicators per sample from one short training run (:func:`training_indicators`);
2. ``num_groups`` groups, each one k-means++ cluster of every class (:func:`mixed_groups`);
3. each group labelled with the held-out accuracy of a linear probe on its members' penultimate
   features (:func:`proxy_accuracy`); the held-out split is part of the training data, never
   the test set, and should have clean labels;
4. a selector fitted so that a group's mean score regresses its label (:func:`fit_selector`),
   then every sample scored (:func:`selector_scores`);
5. k-means++ clusters within each class for the selection, and the scores made
   cluster-proportional at every keep ratio (:func:`proportional_scores`).

The result's ``scores`` rank for :class:`~dynaprune.StaticPolicy` (optionally class-balanced);
:func:`cluster_top_k` with ``raw`` and ``clusters`` gives the exact subset at one budget.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from dynaprune._checks import check_choice, check_count, check_fraction
from dynaprune.scores._training import Batches, ModelFactory, OptimizerFactory
from dynaprune.scores.learned.groups import class_clusters, mixed_groups, proxy_accuracy
from dynaprune.scores.learned.indicators import SCALARS, Indicators, training_indicators
from dynaprune.scores.learned.select import proportional_scores
from dynaprune.scores.learned.selector import SELECTORS, fit_selector, selector_scores

__all__ = ["LearnedScores", "learned_scores", "split_holdout"]


class LearnedScores(NamedTuple):
    """What :func:`learned_scores` computed.

    Attributes:
        scores: float32 ``(N,)``, cluster-proportional at every keep ratio; higher kept first.
        raw: float32 ``(N,)`` the selector's own scores.
        clusters: int64 ``(N,)`` selection clusters (``class * clusters_per_class + j``).
        groups: int64 ``(N,)`` the labelled groups.
        group_labels: float32 ``(G,)`` each group's held-out proxy accuracy.
        indicators: the per-sample indicators.
        selector: the fitted selector.
        seconds: wall-clock seconds of everything.
    """

    scores: Tensor
    raw: Tensor
    clusters: Tensor
    groups: Tensor
    group_labels: Tensor
    indicators: Indicators
    selector: nn.Module
    seconds: float


def split_holdout(num_samples: int, fraction: float, *, seed: int = 0) -> Tensor:
    """A random ``fraction`` of ``range(num_samples)`` (at least one), sorted, from a local
    generator.

    Example:
        >>> split_holdout(10, 0.2).tolist()
        [1, 4]
    """
    check_count("num_samples", num_samples, 2)
    check_fraction("holdout", fraction, open_low=True, open_high=True)
    count = max(1, round(fraction * num_samples))
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(num_samples, generator=generator)[:count].sort().values


def learned_scores(
    model_factory: ModelFactory,
    loader: Batches,
    *,
    selector: str = "attention",
    holdout: float | Tensor = 0.1,
    holdout_labels: Tensor | None = None,
    epochs: int = 5,
    num_groups: int = 30,
    clusters_per_class: int = 10,
    pca_dims: int = 6,
    proxy_steps: int = 200,
    selector_epochs: int = 200,
    set_size: int = 128,
    layer: nn.Module | str | None = None,
    num_classes: int | None = None,
    seed: int = 0,
    train_loader: Batches | None = None,
    optimizer: OptimizerFactory | None = None,
    device: torch.device | str | None = None,
    num_samples: int | None = None,
    columns: Sequence[str] | None = None,
) -> LearnedScores:
    """Scores every training sample with a selector learned from what groups of samples do to a
    proxy model (module docstring).

    Cost: ``epochs`` training epochs and three eval passes of ``model_factory``'s model (the
    indicators), then work on ``(N, F)`` features only: k-means++ twice, ``num_groups`` linear
    probes of ``proxy_steps`` full-batch steps, and ``selector_epochs`` steps of the selector.

    Args:
        model_factory: returns a fresh classifier (inputs to logits).
        loader: ``(x, y)`` batches in data set order, or ``(indices, x, y)``, no augmentation.
        selector: ``"attention"`` (the paper's) or ``"linear"`` (the baseline).
        holdout: the held-out split of the training data that labels the groups: a fraction
            drawn at random with ``seed``, or int64 sample indices. Its samples are scored like
            every other, but no proxy trains on them.
        holdout_labels: clean labels of the held-out samples (one per index); default the
            loader's labels, i.e. the training labels are taken to be clean there.
        epochs: epochs of the indicators' training run.
        num_groups: labelled groups (30 in the paper).
        clusters_per_class: selection clusters per class.
        pca_dims: dimensions of the embedding indicator (6 in the paper).
        proxy_steps: full-batch Adam steps of each group's probe.
        selector_epochs: Adam steps of the selector.
        set_size: members that stand for a group in a selector step.
        layer: the module whose input is the embedding (default the last ``nn.Linear``).
        num_classes: classes; default the largest label plus one.
        seed: seeds the training run, the split, the clusterings and the selector.
        train_loader: training batches for the indicators' run, if not ``loader``'s.
        optimizer: the indicators' run's optimizer factory.
        device: where to train and score.
        num_samples: data set size; default ``len(loader.dataset)`` or the samples yielded.
        columns: the indicators the selector reads, by :attr:`Indicators.names` (e.g.
            ``("el2n",)``: one indicator alone, its direction learned from the groups, to ask
            whether the combination beats it); default all of them. ``indicators`` still holds
            every column.

    Raises:
        ValueError: for arguments out of range, for indicators that cannot be computed (no
            penultimate layer, non-finite values), or a group left empty.

    Example:
        >>> x = torch.randn(120, 4)
        >>> y = (x[:, 0] > 0).long()
        >>> model = lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> out = learned_scores(model, [(x, y)], selector="linear", epochs=2, num_groups=4,
        ...                      clusters_per_class=2, pca_dims=2, proxy_steps=5,
        ...                      selector_epochs=5, set_size=8)
        >>> out.scores.shape, out.group_labels.shape
        (torch.Size([120]), torch.Size([4]))
    """
    start = time.perf_counter()
    check_choice("selector", selector, SELECTORS)
    check_count("num_groups", num_groups, 1)
    check_count("clusters_per_class", clusters_per_class, 1)
    check_count("seed", seed, 0)
    if not isinstance(holdout, Tensor):
        check_fraction("holdout", holdout, open_low=True, open_high=True)
    _check_columns(columns, pca_dims)
    ind = training_indicators(
        model_factory,
        loader,
        epochs=epochs,
        pca_dims=pca_dims,
        num_classes=num_classes,
        layer=layer,
        seed=seed,
        train_loader=train_loader,
        optimizer=optimizer,
        device=device,
        num_samples=num_samples,
    )
    n = ind.labels.numel()
    if isinstance(holdout, Tensor):
        held = holdout.to(torch.int64).view(-1)
        if held.numel() == 0 or int(held.min()) < 0 or int(held.max()) >= n:
            raise ValueError(
                f"holdout must hold sample indices in [0, {n}), got {held.tolist()[:5]}"
            )
    else:
        held = split_holdout(n, holdout, seed=seed)
    held = held.to(ind.values.device)
    groups = mixed_groups(ind.embedding, ind.labels, num_groups, seed=seed)
    labels = proxy_accuracy(
        ind.features,
        ind.labels,
        groups,
        held,
        holdout_labels,
        num_classes=_classes(ind),
        steps=proxy_steps,
    )
    values = ind.values
    if columns is not None:
        values = values[:, [ind.names.index(name) for name in columns]].contiguous()
    model = fit_selector(
        selector, values, groups, labels, epochs=selector_epochs, set_size=set_size, seed=seed
    )
    raw = selector_scores(model, values, groups, set_size=set_size, seed=seed)
    clusters = class_clusters(ind.embedding, ind.labels, clusters_per_class, seed=seed)
    scores = proportional_scores(raw, clusters)
    if scores.device.type == "cuda":
        torch.cuda.synchronize(scores.device)
    seconds = time.perf_counter() - start
    return LearnedScores(scores, raw, clusters, groups, labels, ind, model, seconds)


def _check_columns(columns: Sequence[str] | None, pca_dims: int) -> None:
    """Raises unless ``columns`` is ``None`` or names distinct scalar or embedding indicators
    (the class columns are known only once the labels are read, and a class alone ranks
    nothing within a class)."""
    if columns is None:
        return
    known = (*SCALARS, *(f"embed{i}" for i in range(pca_dims)))
    if isinstance(columns, str) or not columns:
        raise ValueError(
            f"columns must be a non-empty sequence of names in {known}, got {columns!r}"
        )
    for name in columns:
        if name not in known:
            raise ValueError(f"columns must name indicators in {known}, got {name!r}")
    if len(set(columns)) != len(columns):
        raise ValueError(f"columns must be distinct, got {list(columns)}")


def _classes(ind: Indicators) -> int:
    """Width of the one-hot class columns: the number of classes."""
    return sum(name.startswith("class") for name in ind.names)
