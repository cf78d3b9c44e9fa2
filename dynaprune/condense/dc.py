"""Dataset Condensation with gradient matching (DC; Zhao, Mopuri and Bilen, ICLR 2021).

Follows VICO-UoE/DatasetCondensation ``main.py`` (the training loop) and ``utils.py``
(``match_loss`` with ``dis_metric='ours'``, ``distance_wb``, ``get_loops``):

* every iteration builds a freshly initialised ConvNet;
* ``outer_loops`` times: for every class, the gradients of the cross-entropy of a real batch
  (``batch_real`` images of that class) and of the class's synthetic images with respect to
  every network parameter are compared by :func:`gradient_distance`; the sum over classes
  updates the synthetic images (SGD, ``lr_images``, momentum 0.5); then, except after the last
  outer loop, the network trains ``inner_loops`` epochs on the synthetic set (SGD ``lr_net``,
  batches of ``batch_train``);
* outer/inner loops by images per class as published (:func:`published_loops`).

The DSA variant (:mod:`dynaprune.condense.dsa`) runs the same loop with the same Siamese
augmentation on both batches. Cost per iteration: ``outer_loops x classes`` real and synthetic
forward-backward passes (the synthetic one twice, for the gradient of the gradient) plus
``(outer_loops - 1) x inner_loops`` epochs on the synthetic set.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from dynaprune._checks import check_bool, check_count, check_positive_float
from dynaprune.condense._common import (
    Callback,
    CondenseResult,
    RealImages,
    Stopwatch,
    check_optional_count,
    fresh_net,
    image_optimizer,
    initial_images,
)
from dynaprune.condense.augment import draw_augmentation, dsa_augment

__all__ = ["dc", "gradient_distance", "gradient_matching", "published_loops"]

_LOOPS = {1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 20), 40: (40, 15), 50: (50, 10)}


def published_loops(ipc: int) -> tuple[int, int]:
    """``(outer_loops, inner_loops)`` of ``get_loops`` for 1, 10, 20, 30, 40 or 50 images per class.

    Example:
        >>> published_loops(10)
        (10, 50)
    """
    if ipc not in _LOOPS:
        raise ValueError(
            f"ipc has no published outer/inner loops for {ipc!r} (published: {sorted(_LOOPS)}); "
            "pass outer_loops and inner_loops"
        )
    return _LOOPS[ipc]


def gradient_distance(syn: Sequence[Tensor], real: Sequence[Tensor]) -> Tensor:
    """DC's gradient distance: ``sum over layers and output channels of 1 - cos``.

    Each parameter's gradient is viewed as ``(out_channels, -1)``; one-dimensional gradients
    (biases, normalisation parameters) count zero, as in ``distance_wb``.

    Example:
        >>> a, b = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 0.0], [1.0, 0.0]])
        >>> round(float(gradient_distance([a, torch.ones(2)], [b, torch.ones(2)])), 4)
        1.0
    """
    if len(syn) != len(real):
        raise ValueError(
            f"syn and real must hold as many gradients, got {len(syn)} and {len(real)}"
        )
    total = torch.zeros((), device=real[0].device if real else None)
    for gs, gr in zip(syn, real, strict=True):
        if gr.dim() <= 1:
            continue
        gs, gr = gs.reshape(gs.shape[0], -1), gr.reshape(gr.shape[0], -1)
        cos = (gs * gr).sum(-1) / (gs.norm(dim=-1) * gr.norm(dim=-1) + 1e-6)
        total = total + (1 - cos).sum()
    return total


def gradient_matching(
    images: Tensor,
    labels: Tensor,
    ipc: int,
    *,
    iterations: int,
    outer_loops: int | None,
    inner_loops: int | None,
    lr_images: float,
    lr_net: float,
    batch_real: int,
    batch_train: int,
    init: str,
    augment: bool,
    seed: int,
    num_classes: int | None,
    callback: Callback | None,
) -> CondenseResult:
    """The loop of DC and DSA (see the module docstring); ``augment`` selects DSA."""
    real = RealImages(images, labels, ipc, num_classes)
    check_count("iterations", iterations, 0)
    check_optional_count("outer_loops", outer_loops, 1)
    check_optional_count("inner_loops", inner_loops, 0)
    check_positive_float("lr_images", lr_images)
    check_positive_float("lr_net", lr_net)
    check_count("batch_real", batch_real, 1)
    check_count("batch_train", batch_train, 1)
    check_bool("augment", augment)
    check_count("seed", seed, 0)
    if outer_loops is None or inner_loops is None:
        published = published_loops(ipc)
        outer_loops = published[0] if outer_loops is None else outer_loops
        inner_loops = published[1] if inner_loops is None else inner_loops

    generator = torch.Generator().manual_seed(seed)
    clock = Stopwatch(real.images.device)
    syn = initial_images(real, init, generator).requires_grad_(True)
    syn_labels = real.synthetic_labels()
    optimizer = image_optimizer(syn, lr_images)
    size = (real.shape[1], real.shape[2])
    losses: list[float] = []
    for it in range(iterations):
        net = fresh_net(real, generator)
        params = list(net.parameters())
        net_optimizer = torch.optim.SGD(params, lr=lr_net)
        total = 0.0
        for outer in range(outer_loops):
            loss = torch.zeros((), device=syn.device)
            for c in range(real.num_classes):
                x_real = real.of_class(c, batch_real, generator)
                x_syn = syn[c * ipc : (c + 1) * ipc]
                if augment:
                    aug = draw_augmentation(generator, size)
                    x_real, x_syn = aug(x_real), aug(x_syn)
                target = torch.full((len(x_real),), c, device=syn.device)
                loss_real = F.cross_entropy(net(x_real), target)
                g_real = [g.detach() for g in torch.autograd.grad(loss_real, params)]
                target = torch.full((ipc,), c, device=syn.device)
                loss_syn = F.cross_entropy(net(x_syn), target)
                g_syn = torch.autograd.grad(loss_syn, params, create_graph=True)
                loss = loss + gradient_distance(g_syn, g_real)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            if outer == outer_loops - 1:
                break
            _train_epochs(
                net,
                net_optimizer,
                syn.detach(),
                syn_labels,
                inner_loops,
                batch_train,
                generator,
                augment,
            )
        losses.append(total / (real.num_classes * outer_loops))
        clock.call(callback, it + 1, syn, syn_labels)
    data = syn.detach()
    return CondenseResult(
        torch.utils.data.TensorDataset(data, syn_labels), clock.seconds(), iterations, losses, data
    )


def _train_epochs(
    net: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    x: Tensor,
    y: Tensor,
    epochs: int,
    batch: int,
    generator: torch.Generator,
    augment: bool,
) -> None:
    """The inner loop: ``epochs`` shuffled epochs of cross-entropy on the synthetic set."""
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator).to(x.device)
        for part in order.split(batch):
            xb = dsa_augment(x[part], generator) if augment else x[part]
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(net(xb), y[part]).backward()
            optimizer.step()


def dc(
    images: Tensor,
    labels: Tensor,
    ipc: int,
    *,
    iterations: int = 1000,
    outer_loops: int | None = None,
    inner_loops: int | None = None,
    lr_images: float = 0.1,
    lr_net: float = 0.01,
    batch_real: int = 256,
    batch_train: int = 256,
    init: str = "noise",
    seed: int = 0,
    num_classes: int | None = None,
    callback: Callback | None = None,
) -> CondenseResult:
    """Condenses ``images`` into ``ipc`` synthetic images per class by gradient matching.

    Args:
        images: real images, float ``(N, C, H, W)``, normalised as the network will see them.
        labels: their integer classes ``(N,)``.
        ipc: synthetic images per class.
        iterations: condensation iterations (published 1000).
        outer_loops, inner_loops: per iteration; default :func:`published_loops` of ``ipc``.
        lr_images: SGD learning rate of the synthetic pixels (published 0.1, momentum 0.5).
        lr_net: SGD learning rate of the inner loop (published 0.01).
        batch_real: real images per class and outer loop (published 256).
        batch_train: batch size of the inner loop (published 256).
        init: ``"noise"`` (published for DC) or ``"real"``.
        seed: seeds a local generator (real batches, initialisation, networks).
        num_classes: default ``labels.max() + 1``.
        callback: ``callback(iterations_done, images, labels)`` after each iteration.

    Returns:
        :class:`~dynaprune.condense.CondenseResult`.

    Raises:
        ValueError: naming the argument and value (``ipc must be an integer >= 1, got 0``).

    Example:
        >>> x, y = torch.randn(20, 3, 8, 8), torch.arange(2).repeat(10)
        >>> result = dc(x, y, ipc=1, iterations=2, batch_real=4)
        >>> result.images.shape, result.labels.tolist()
        (torch.Size([2, 3, 8, 8]), [0, 1])
    """
    return gradient_matching(
        images,
        labels,
        ipc,
        iterations=iterations,
        outer_loops=outer_loops,
        inner_loops=inner_loops,
        lr_images=lr_images,
        lr_net=lr_net,
        batch_real=batch_real,
        batch_train=batch_train,
        init=init,
        augment=False,
        seed=seed,
        num_classes=num_classes,
        callback=callback,
    )
