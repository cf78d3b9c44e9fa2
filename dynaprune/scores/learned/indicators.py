"""Per-sample indicators for the learned selector, computed once from one short training run.

InstructionGPT-4 (Wei et al., 2023; waltonfuture/InstructionGPT-4, ``selector/train.py``)
describes each sample by a few quality indicators and its CLIP embeddings reduced to 6 dimensions
by PCA. For training data the indicators come from training dynamics instead, each from the
library's own scorer:

==================  ==============================================================================
``loss_mean``       moving mean of the sample's training loss (:class:`~dynaprune.LossStatistics`)
``loss_spread``     moving standard deviation of that loss (ibid.)
``forgetting``      forgetting events (:class:`~dynaprune.ForgettingTracker`, via the statistics);
                    a sample never classified correctly counts one more than the most forgotten
``el2n``            EL2N at the end of the run (:mod:`dynaprune.scores.signals`)
``margin``          ``p_y - max_{k != y} p_k`` of the softmax at the end of the run
``embed<i>``        the penultimate features (:func:`dynaprune.coreset.embeddings`) reduced by PCA
``class<c>``        the one-hot class (kept 0/1; every other column is standardised)
==================  ==============================================================================

Losses and correctness are read from each training batch as presented, before its step, as the
sampler's statistics read them; EL2N, margin and features are read in eval mode afterwards.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dynaprune._checks import check_count, check_fraction
from dynaprune.core.statistics import LossStatistics
from dynaprune.scores._training import (
    Batches,
    ModelFactory,
    OnBatch,
    OptimizerFactory,
    check_common,
    cross_entropy,
    model_device,
    score_pass,
    train_then_score,
)
from dynaprune.scores.coreset import embeddings
from dynaprune.scores.signals import _el2n_batch

__all__ = ["SCALARS", "Indicators", "pca", "standardise", "training_indicators"]

#: The scalar indicators, in column order.
SCALARS = ("loss_mean", "loss_spread", "forgetting", "el2n", "margin")


class Indicators(NamedTuple):
    """What the selector reads about each sample.

    Attributes:
        values: float32 ``(N, D)``: the standardised scalars, the PCA embedding, the one-hot class.
        names: the ``D`` column names.
        labels: int64 ``(N,)`` training labels, as the loader gave them.
        features: float32 ``(N, F)`` penultimate features, standardised (the proxies' inputs).
        embedding: float32 ``(N, pca_dims)`` PCA of ``features`` (what groups are clustered on).
        seconds: wall-clock seconds of the training run and the passes.
    """

    values: Tensor
    names: tuple[str, ...]
    labels: Tensor
    features: Tensor
    embedding: Tensor
    seconds: float


def standardise(x: Tensor) -> Tensor:
    """Each column shifted to mean 0 and scaled to standard deviation 1 (constant columns: 0).

    Example:
        >>> standardise(torch.tensor([[1.0, 5.0], [3.0, 5.0]])).tolist()
        [[-1.0, 0.0], [1.0, 0.0]]
    """
    x = x.float()
    std = x.std(0, unbiased=False)
    return (x - x.mean(0)) / torch.where(std > 0, std, torch.ones_like(std))


def pca(x: Tensor, dims: int) -> Tensor:
    """The projection of the centred rows of ``x`` on its ``dims`` leading principal axes.

    The sign of each axis is fixed (its largest loading positive), so that the result does not
    depend on the eigen solver.

    Args:
        x: float ``(N, F)``.
        dims: ``1 <= dims <= F``.

    Example:
        >>> x = torch.tensor([[0.0, 0.0], [2.0, 0.1], [4.0, 0.0]])
        >>> pca(x, 1).squeeze(1).round(decimals=2).tolist()
        [-2.0, 0.0, 2.0]
    """
    check_count("dims", dims, 1)
    if x.dim() != 2 or dims > x.shape[1]:
        raise ValueError(
            f"dims must be <= the {x.shape[-1]} feature dimensions of the embedding, got {dims}"
        )
    centred = x.double() - x.double().mean(0)
    _, vectors = torch.linalg.eigh(centred.T @ centred)  # ascending eigenvalues
    axes = vectors.flip(1)[:, :dims]
    sign = torch.sign(axes.gather(0, axes.abs().argmax(0, keepdim=True)))
    out: Tensor = (centred @ (axes * sign)).float()
    return out


@torch.no_grad()
def _margin_batch(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    logits: Tensor = model(x)
    probs = logits.float().softmax(1)
    true = probs.gather(1, y.view(-1, 1)).squeeze(1)
    other = probs.scatter(1, y.view(-1, 1), -1.0).amax(1)
    margin: Tensor = true - other
    return margin


def _labels_batch(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    return y.float()


def training_indicators(
    model_factory: ModelFactory,
    loader: Batches,
    *,
    epochs: int = 5,
    pca_dims: int = 6,
    num_classes: int | None = None,
    momentum: float = 0.5,
    layer: nn.Module | str | None = None,
    seed: int = 0,
    train_loader: Batches | None = None,
    optimizer: OptimizerFactory | None = None,
    device: torch.device | str | None = None,
    num_samples: int | None = None,
) -> Indicators:
    """Trains one fresh model ``epochs`` epochs and reads every indicator (module docstring).

    Cost: ``epochs`` training epochs, three eval passes (EL2N, margin, features) and a PCA of the
    ``F x F`` feature covariance.

    Args:
        model_factory: returns a fresh classifier (inputs to logits), as for the static scores.
        loader: ``(x, y)`` batches in data set order, or ``(indices, x, y)``: the scoring passes.
        epochs: epochs of the training run, ``>= 1``.
        pca_dims: dimensions the penultimate features are reduced to (6 in the paper).
        num_classes: width of the one-hot class; default the largest label plus one.
        momentum: the moving averages' momentum (the sampler's default 0.5).
        layer: the module whose input is the embedding, or its name in ``named_modules()``;
            default the model's last ``nn.Linear``.
        seed: seeds the model and training (as the static scores do).
        train_loader: training batches, if not ``loader``'s (e.g. augmented, shuffled).
        optimizer: builds the optimizer (default :func:`dynaprune.scores.default_optimizer`).
        device: where to train and score.
        num_samples: data set size; default ``len(loader.dataset)``, else the number of samples
            ``loader`` yields (counted in one pass without the model).

    Raises:
        ValueError: for arguments out of range; when the model has no penultimate layer to read
            (no ``nn.Linear`` and no ``layer``); when the training run missed samples; when an
            indicator is not finite; for labels out of ``[0, num_classes)``.

    Example:
        >>> data = [(torch.randn(32, 3), torch.arange(32) % 2)]
        >>> model = lambda: nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> ind = training_indicators(model, data, epochs=2, pca_dims=2)
        >>> ind.values.shape, ind.names[:2]
        (torch.Size([32, 9]), ('loss_mean', 'loss_spread'))
    """
    check_common(model_factory, epochs, 1, seed, num_samples, 1)
    check_count("pca_dims", pca_dims, 1)
    check_fraction("momentum", momentum, open_low=False, open_high=True)
    if num_classes is not None:
        check_count("num_classes", num_classes, 2)
    train = loader if train_loader is None else train_loader
    n = _dataset_size(loader) if num_samples is None else num_samples
    trackers: list[LossStatistics] = []
    layers: list[nn.Module | None] = []

    def watch(model: nn.Module) -> OnBatch:
        layers.append(_penultimate(model, layer))  # before training: fail early
        stats = LossStatistics(n, momentum, model_device(model))
        stats.track_correctness()
        trackers.append(stats)

        def record(idx: Tensor, logits: Tensor, y: Tensor) -> None:
            if logits.dim() != 2:
                raise ValueError(
                    "the loss indicators need class logits of shape (B, C) from the model, got "
                    f"shape {tuple(logits.shape)}"
                )
            stats.update(idx, cross_entropy(logits, y), 0, correct=logits.argmax(1) == y)

        return record

    def score(model: nn.Module, run: int) -> Tensor:
        stats = trackers[-1]
        missed = int((stats.count == 0).sum())
        if missed:
            raise ValueError(
                f"the loss indicators need every sample trained on: {missed} of {n} were never "
                "presented in the training run (drop_last, or a sampler over part of the data?)"
            )
        el2n = score_pass(model, loader, _el2n_batch, n)
        margin = score_pass(model, loader, _margin_batch, n)
        labels = score_pass(model, loader, _labels_batch, n)
        feats = embeddings(model, loader, layer=layers[-1], num_samples=n)
        forgetting = stats.forgetting_counts()
        columns = [stats.mean, stats.var.sqrt(), forgetting, el2n, margin, labels]
        return torch.cat([torch.stack(columns, 1), feats], 1)

    result = train_then_score(
        model_factory,
        train,
        score,
        epochs=epochs,
        runs=1,
        seed=seed,
        optimizer=optimizer,
        device=device,
        watch=watch,
    )
    raw = result.scores
    scalars, labels, feats = raw[:, :5].clone(), raw[:, 5].long(), raw[:, 6:]
    never = scalars[:, 2].isinf()  # never classified correctly: most forgotten, plus one
    learned = scalars[:, 2][~never]
    most = learned.max() + 1 if learned.numel() else scalars.new_tensor(1.0)
    scalars[:, 2] = torch.where(never, most, scalars[:, 2])
    for j, name in enumerate(SCALARS):
        bad = int((~scalars[:, j].isfinite()).sum())
        if bad:
            raise ValueError(f"indicator {name!r} is not finite for {bad} samples")
    if pca_dims > feats.shape[1]:
        raise ValueError(
            f"pca_dims must be <= the {feats.shape[1]} penultimate features, got {pca_dims}"
        )
    classes = int(labels.max()) + 1 if num_classes is None else num_classes
    if int(labels.min()) < 0 or int(labels.max()) >= classes:
        raise ValueError(f"labels must be in [0, {classes}), got {int(labels.max())}")
    features = standardise(feats)
    embedding = standardise(pca(features, pca_dims))
    onehot = F.one_hot(labels, classes).float()
    values = torch.cat([standardise(scalars), embedding, onehot], 1)
    names = (
        *SCALARS,
        *(f"embed{i}" for i in range(pca_dims)),
        *(f"class{c}" for c in range(classes)),
    )
    return Indicators(values, names, labels, features, embedding, result.seconds)


def _dataset_size(loader: Batches) -> int:
    """``len(loader.dataset)``, else the samples ``loader`` yields (one pass, no model)."""
    dataset = getattr(loader, "dataset", None)
    if dataset is not None:
        return check_count("len(loader.dataset)", len(dataset), 1)
    total = sum(len(batch[-1]) for batch in loader)
    if total == 0:
        raise ValueError("loader yielded no samples")
    return total


def _penultimate(model: nn.Module, layer: nn.Module | str | None) -> nn.Module | None:
    """The module whose input is the embedding, with an error naming the indicator when the
    model has none to read."""
    if isinstance(layer, str):
        modules = dict(model.named_modules())
        if layer not in modules:
            valid = sorted(name for name in modules if name)[:20]
            raise ValueError(f"layer {layer!r} is not a module of the model; valid: {valid}")
        found: nn.Module = modules[layer]
        return found
    if layer is None and not any(isinstance(m, nn.Linear) for m in model.modules()):
        raise ValueError(
            f"the embedding indicator needs penultimate features, but {type(model).__name__} "
            "has no nn.Linear whose input could be read; pass layer= (the name of the module "
            "whose input is the embedding)"
        )
    return layer
