"""Dataset condensation with distribution matching (DM; Zhao and Bilen, WACV 2023).

Follows VICO-UoE/DatasetCondensation ``main_DM.py`` (the ConvNet branch): every iteration
draws a freshly initialised ConvNet whose parameters stay frozen; for every class, a real batch
and the class's synthetic images get the same DSA transformation (Siamese), and the loss is
the squared distance between their mean embeddings (:func:`dm_loss`, the flattened features);
the sum over classes updates the synthetic images (SGD, ``lr_images``, momentum 0.5).
Images start from random real ones. Published for CIFAR-10: 20,000 iterations, real batch 256
per class, image learning rate 1.0. Cost per iteration: ``classes x batch_real`` forward passes
and ``classes x ipc`` forward-backward passes; no network training at all.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dynaprune._checks import check_bool, check_count, check_positive_float
from dynaprune.condense._common import (
    Callback,
    CondenseResult,
    RealImages,
    Stopwatch,
    fresh_net,
    image_optimizer,
    initial_images,
)
from dynaprune.condense.augment import draw_augmentation

__all__ = ["dm", "dm_loss"]


def dm_loss(real: Tensor, syn: Tensor) -> Tensor:
    """``||mean(real) - mean(syn)||^2`` over the embeddings' rows.

    Example:
        >>> dm_loss(torch.tensor([[1.0, 0.0], [3.0, 0.0]]), torch.tensor([[0.0, 1.0]]))
        tensor(5.)
    """
    return ((real.mean(0) - syn.mean(0)) ** 2).sum()


def dm(
    images: Tensor,
    labels: Tensor,
    ipc: int,
    *,
    iterations: int = 20000,
    lr_images: float = 1.0,
    batch_real: int = 256,
    augment: bool = True,
    init: str = "real",
    seed: int = 0,
    num_classes: int | None = None,
    callback: Callback | None = None,
) -> CondenseResult:
    """Condenses ``images`` into ``ipc`` images per class by matching mean embeddings.

    Args:
        images: real images, float ``(N, C, H, W)``, normalised as the network will see them.
        labels: their integer classes ``(N,)``.
        ipc: synthetic images per class.
        iterations: published 20,000.
        lr_images: SGD learning rate of the pixels (published 1.0, momentum 0.5).
        batch_real: real images per class and iteration (published 256).
        augment: DSA on both batches (published: on).
        init: ``"real"`` (published) or ``"noise"``.
        seed: seeds a local generator (real batches, initialisation, networks, DSA).
        num_classes: default ``labels.max() + 1``.
        callback: ``callback(iterations_done, images, labels)`` after each iteration.

    Example:
        >>> x, y = torch.randn(20, 3, 8, 8), torch.arange(2).repeat(10)
        >>> dm(x, y, ipc=2, iterations=3, batch_real=5).images.shape
        torch.Size([4, 3, 8, 8])
    """
    real = RealImages(images, labels, ipc, num_classes)
    check_count("iterations", iterations, 0)
    check_positive_float("lr_images", lr_images)
    check_count("batch_real", batch_real, 1)
    check_bool("augment", augment)
    check_count("seed", seed, 0)

    generator = torch.Generator().manual_seed(seed)
    clock = Stopwatch(real.images.device)
    syn = initial_images(real, init, generator).requires_grad_(True)
    syn_labels = real.synthetic_labels()
    optimizer = image_optimizer(syn, lr_images)
    size = (real.shape[1], real.shape[2])
    losses: list[float] = []
    for it in range(iterations):
        net = fresh_net(real, generator).requires_grad_(False)
        loss = torch.zeros((), device=syn.device)
        for c in range(real.num_classes):
            x_real = real.of_class(c, batch_real, generator)
            x_syn = syn[c * ipc : (c + 1) * ipc]
            if augment:
                aug = draw_augmentation(generator, size)
                x_real, x_syn = aug(x_real), aug(x_syn)
            with torch.no_grad():
                e_real = net.embed(x_real)
            loss = loss + dm_loss(e_real, net.embed(x_syn))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()) / real.num_classes)
        clock.call(callback, it + 1, syn, syn_labels)
    data = syn.detach()
    return CondenseResult(
        torch.utils.data.TensorDataset(data, syn_labels), clock.seconds(), iterations, losses, data
    )
