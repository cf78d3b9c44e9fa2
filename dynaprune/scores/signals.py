"""Static per-sample scores from training signals: EL2N, GraNd and low loss curvature.

Each function trains fresh models from a ``model_factory`` on a ``loader`` and returns a
:class:`ScoreResult`: one float32 score per sample (higher = keep first) and the seconds it
took. Rank with :class:`dynaprune.policies.static.StaticPolicy`. Forgetting events are in
:mod:`dynaprune.forgetting`, herding and k-center greedy orders in :mod:`dynaprune.coreset`.

* :func:`el2n_scores` — EL2N (Paul, Ganguli and Dziugaite, "Deep Learning on a Data Diet",
  NeurIPS 2021): ``||softmax(f(x)) - onehot(y)||_2`` after a few epochs, averaged over runs.
* :func:`grand_scores` — GraNd (ibid.): the norm of the per-sample loss gradient over all
  parameters (``torch.func``: ``vmap`` over ``grad``), averaged over initialisations.
* :func:`low_curvature_scores` — low input-space loss curvature (Garg and Roy, "Samples With
  Low Loss Curvature Improve Data Efficiency", CVPR 2023): minus the finite-difference
  curvature ``mean_v ||grad_x l(x + h v) - grad_x l(x)|| / h`` over Rademacher directions ``v``.

What every function needs: ``model_factory()`` returns a fresh ``nn.Module`` mapping a batch of
inputs to logits (a ``LightningModule`` works). Each run (model construction, training and
scoring) executes under ``torch.random.fork_rng`` with the global RNG seeded to ``seed + run``:
module initialisation and dropout take no local generator, so this makes runs reproducible,
and the caller's global RNG state is restored afterwards. ``loader`` yields ``(x, y)`` batches
in data set order, or ``(indices, x, y)`` in any order (e.g. a shuffled ``DataLoader`` over a
data set that returns its index). It is iterated once per training epoch and once per scoring
pass; ``train_loader`` (same format) replaces it for training, e.g. to train with augmentation
and score without.
Scores are computed in eval mode and returned on the model's device.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from dynaprune._checks import check_count, check_positive_float
from dynaprune.scores._training import (
    Batches,
    LossFn,
    ModelFactory,
    OptimizerFactory,
    ScoreResult,
    check_common,
    cross_entropy,
    default_optimizer,
    model_device,
    score_pass,
    train_then_score,
)

__all__ = [
    "ScoreResult",
    "default_optimizer",
    "el2n_scores",
    "grand_scores",
    "low_curvature_scores",
]


@torch.no_grad()
def _el2n_batch(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    logits: Tensor = model(x)
    error: Tensor = logits.softmax(1) - F.one_hot(y, logits.shape[1]).to(logits.dtype)
    norm: Tensor = error.norm(dim=1)
    return norm


def el2n_scores(
    model_factory: ModelFactory,
    loader: Batches,
    *,
    epochs: int = 20,
    runs: int = 10,
    seed: int = 0,
    train_loader: Batches | None = None,
    optimizer: OptimizerFactory | None = None,
    device: torch.device | str | None = None,
    num_samples: int | None = None,
) -> ScoreResult:
    """EL2N: the L2 norm of the error vector ``softmax(f(x)) - onehot(y)``, averaged over runs.

    Higher = harder = kept first. The defaults follow Paul et al.: 20 epochs, 10 runs; the cost
    is ``runs * epochs`` training epochs plus ``runs`` forward passes.

    Args:
        model_factory: returns a fresh model (see the module docstring).
        loader: ``(x, y)`` batches in data set order, or ``(indices, x, y)``.
        epochs: training epochs before scoring (``0``: at initialisation).
        runs: independent runs to average.
        seed: run ``r`` seeds the model factory with ``seed + r``.
        train_loader: training batches, if not ``loader``'s.
        optimizer: builds the optimizer from the parameters (default :func:`default_optimizer`).
        device: where to train and score; default: where the factory's model lives.
        num_samples: data set size; default: the number of samples ``loader`` yields.

    Example:
        >>> data = [(torch.randn(8, 3), torch.randint(0, 2, (8,)))]
        >>> result = el2n_scores(lambda: nn.Linear(3, 2), data, epochs=1, runs=2)
        >>> result.scores.shape, bool((result.scores <= 2**0.5).all())
        (torch.Size([8]), True)
    """
    check_common(model_factory, epochs, runs, seed, num_samples, 0)

    def score(model: nn.Module, run: int) -> Tensor:
        return score_pass(model, loader, _el2n_batch, num_samples)

    train = loader if train_loader is None else train_loader
    return train_then_score(
        model_factory,
        train,
        score,
        epochs=epochs,
        runs=runs,
        seed=seed,
        optimizer=optimizer,
        device=device,
    )


def _grand_batch(chunk_size: int | None) -> Callable[[nn.Module, Tensor, Tensor], Tensor]:
    def batch(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        params = {k: p.detach() for k, p in model.named_parameters()}
        buffers = {k: b.detach() for k, b in model.named_buffers()}

        def loss(p: dict[str, Tensor], xi: Tensor, yi: Tensor) -> Tensor:
            logits = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
            return F.cross_entropy(logits, yi.unsqueeze(0))

        def norm(xi: Tensor, yi: Tensor) -> Tensor:
            g = grad(loss)(params, xi, yi)
            return torch.stack([t.pow(2).sum() for t in g.values()]).sum().sqrt()

        return vmap(norm, chunk_size=chunk_size)(x, y)

    return batch


def grand_scores(
    model_factory: ModelFactory,
    loader: Batches,
    *,
    epochs: int = 0,
    runs: int = 10,
    chunk_size: int | None = None,
    seed: int = 0,
    train_loader: Batches | None = None,
    optimizer: OptimizerFactory | None = None,
    device: torch.device | str | None = None,
    num_samples: int | None = None,
) -> ScoreResult:
    """GraNd: the norm of the per-sample cross-entropy gradient over all parameters.

    Higher = larger expected gradient = kept first. Averaged over ``runs`` initialisations
    (Paul et al. score at initialisation, ``epochs=0``, over 10). Per-sample gradients come
    from ``torch.func`` (``vmap`` over ``grad`` of a ``functional_call``) in eval mode, so
    batch norm uses its running statistics. A batch holds ``B x P`` gradient entries for
    ``P`` parameters: bound it with ``chunk_size`` (samples per vectorised chunk).

    Args:
        model_factory: returns a fresh model (see the module docstring).
        loader: ``(x, y)`` batches in data set order, or ``(indices, x, y)``.
        epochs: training epochs before scoring (``0``: at initialisation).
        runs: independent initialisations to average.
        chunk_size: samples per ``vmap`` chunk; default the whole batch.
        seed: run ``r`` seeds the model factory with ``seed + r``.
        train_loader: training batches, if not ``loader``'s.
        optimizer: builds the optimizer from the parameters (default :func:`default_optimizer`).
        device: where to train and score; default: where the factory's model lives.
        num_samples: data set size; default: the number of samples ``loader`` yields.

    Example:
        >>> data = [(torch.randn(8, 3), torch.randint(0, 2, (8,)))]
        >>> grand_scores(lambda: nn.Linear(3, 2), data, runs=2).scores.shape
        torch.Size([8])
    """
    check_common(model_factory, epochs, runs, seed, num_samples, 0)
    if chunk_size is not None:
        check_count("chunk_size", chunk_size, 1)

    def score(model: nn.Module, run: int) -> Tensor:
        return score_pass(model, loader, _grand_batch(chunk_size), num_samples)

    train = loader if train_loader is None else train_loader
    return train_then_score(
        model_factory,
        train,
        score,
        epochs=epochs,
        runs=runs,
        seed=seed,
        optimizer=optimizer,
        device=device,
    )


def _curvature_batch(
    loss_fn: LossFn, directions: int, h: float, temperature: float, generator: torch.Generator
) -> Callable[[nn.Module, Tensor, Tensor], Tensor]:
    def batch(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        if not x.is_floating_point():
            raise TypeError(f"low_curvature_scores needs floating inputs, got {x.dtype}")

        def input_grad(z: Tensor) -> Tensor:
            z = z.detach().requires_grad_(True)
            with torch.enable_grad():
                loss = loss_fn(model(z) / temperature, y).sum()
                return torch.autograd.grad(loss, z)[0]

        g0 = input_grad(x)
        total = torch.zeros(len(x), device=x.device)
        for _ in range(directions):
            v = torch.randint(0, 2, x.shape, generator=generator, device=x.device)
            v = v.to(x.dtype).mul_(2).sub_(1)  # Rademacher: +-1
            total += (input_grad(x + h * v) - g0).flatten(1).norm(dim=1)
        return total.div_(-directions * h)

    return batch


def low_curvature_scores(
    model_factory: ModelFactory,
    loader: Batches,
    *,
    epochs: int,
    runs: int = 1,
    directions: int = 10,
    h: float = 1e-3,
    temperature: float = 1.0,
    loss_fn: LossFn | None = None,
    seed: int = 0,
    train_loader: Batches | None = None,
    optimizer: OptimizerFactory | None = None,
    device: torch.device | str | None = None,
    num_samples: int | None = None,
) -> ScoreResult:
    """Minus the input-space loss curvature: flat (low-curvature) samples are kept first.

    ``curvature(x) = mean_v ||grad_x l(x + h v) - grad_x l(x)|| / h`` over ``directions``
    Rademacher vectors ``v`` (entries +-1), in eval mode, with logits divided by
    ``temperature``; the score is ``-curvature``. It is ``||H v||`` averaged over ``v`` for
    the input Hessian ``H``, up to ``O(h)``; Garg and Roy's estimator omits the ``1 / h``,
    which does not change the ranking. Cost: ``runs * epochs`` training epochs plus
    ``runs * (directions + 1)`` forward and backward passes.

    Args:
        model_factory: returns a fresh model (see the module docstring).
        loader: ``(x, y)`` batches in data set order, or ``(indices, x, y)``; ``x`` floating.
        epochs: training epochs before scoring (the curvature ranking is reported to be
            identifiable early in training).
        runs: independent runs to average.
        directions: Rademacher directions per sample.
        h: finite-difference step.
        temperature: divides the logits before the loss.
        loss_fn: per-sample loss ``loss_fn(output, y)`` of shape ``(B,)``, used for training and
            curvature; default cross-entropy.
        seed: run ``r`` seeds the model factory and the directions with ``seed + r``.
        train_loader: training batches, if not ``loader``'s.
        optimizer: builds the optimizer from the parameters (default :func:`default_optimizer`).
        device: where to train and score; default: where the factory's model lives.
        num_samples: data set size; default: the number of samples ``loader`` yields.

    Example:
        >>> data = [(torch.randn(8, 3), torch.randint(0, 2, (8,)))]
        >>> low_curvature_scores(lambda: nn.Linear(3, 2), data, epochs=1).scores.shape
        torch.Size([8])
    """
    check_common(model_factory, epochs, runs, seed, num_samples, 0)
    check_count("directions", directions, 1)
    h = check_positive_float("h", h)
    temperature = check_positive_float("temperature", temperature)
    loss = cross_entropy if loss_fn is None else loss_fn

    def score(model: nn.Module, run: int) -> Tensor:
        generator = torch.Generator(device=model_device(model)).manual_seed(seed + run)
        fn = _curvature_batch(loss, directions, h, temperature, generator)
        return score_pass(model, loader, fn, num_samples)

    train = loader if train_loader is None else train_loader
    return train_then_score(
        model_factory,
        train,
        score,
        epochs=epochs,
        runs=runs,
        seed=seed,
        optimizer=optimizer,
        loss_fn=loss,
        device=device,
    )
