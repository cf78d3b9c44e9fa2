"""CAFE: condensing a data set by aligning features (Wang et al., CVPR 2022).

Follows kaiwang960112/CAFE ``distill.py`` (``criterion_middle``, the ``while True`` loops
with ``acc_watcher``) and ``networks.py`` (``ConvNet.forward`` returning the layer outputs):

* every iteration builds a fresh ConvNet and runs the dynamic bi-level loop: an outer step
  updates the images with :func:`cafe_loss` on one real batch of every class; the network's
  accuracy on ``watch_batch`` real images per class is recorded, and the outer loop ends once
  the last 10 accuracies span less than ``lambda_1`` (0.04); otherwise the network trains on
  the synthetic set epoch by epoch until the last 10 accuracies span more than ``lambda_2``
  (0.03), then the next outer step follows;
* :func:`cafe_loss`: layer-wise alignment of class-mean features (summed squared error,
  weights 1, 1, 0.1, 0.1 for the last pooled map and blocks 3, 2, 1), the same on the
  flattened features, and the discrimination loss ``inner_weight * CE_sum(real_flat @
  syn_centres.T, labels)``: real features classified by the synthetic class centres.

The official accuracy watcher accumulates across steps (``acc_test += ...; acc_test /= 10``,
never reset until a loop ends); here it is the plain mean accuracy of the step, a small
deviation. Published for CIFAR-10: 2000 iterations, images from noise, image learning rate
0.1 halved at iterations 1200, 1600 and 1800, real batch 256, no DSA. Each loop has at least
10 steps, so an iteration costs at least 10 outer steps and 10 x 10 synthetic epochs;
``max_outer``/``max_inner`` cap them (unbounded as published).
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
from dynaprune.condense.augment import draw_augmentation
from dynaprune.condense.convnet import ConvNet
from dynaprune.condense.dc import _train_epochs

__all__ = ["LAYER_WEIGHTS", "cafe", "cafe_loss", "class_means"]

LAYER_WEIGHTS = (1.0, 1.0, 0.1, 0.1)  # pooled map, block 3, block 2, block 1 (first..fourth)
_WATCH = 10


def class_means(features: Tensor, num_classes: int) -> Tensor:
    """Per-class means of features ordered class by class, equally many per class."""
    return features.reshape(num_classes, -1, *features.shape[1:]).mean(1)


def cafe_loss(
    real: Sequence[Tensor],
    syn: Sequence[Tensor],
    labels: Tensor,
    num_classes: int,
    *,
    layer_weights: Sequence[float] = LAYER_WEIGHTS,
    inner_weight: float = 0.01,
) -> Tensor:
    """CAFE's loss from :meth:`ConvNet.feature_maps` outputs ``[flat, pooled, blocks...]`` of a
    real and a synthetic batch, both ordered class by class (``labels``: the real batch's).

    Example:
        >>> real = [torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.ones(2, 1)]
        >>> syn = [torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.zeros(2, 1)]
        >>> loss = cafe_loss(real, syn, torch.tensor([0, 1]), 2, layer_weights=(1.0,))
        >>> round(float(loss.detach()), 4)  # 2 (pooled) + 0.01 * 2 * log(1 + e^-1)
        2.0063
    """
    loss = torch.zeros((), device=labels.device)
    for weight, fr, fs in zip(layer_weights, real[1:], syn[1:], strict=False):
        loss = (
            loss
            + weight * ((class_means(fr, num_classes) - class_means(fs, num_classes)) ** 2).sum()
        )
    centres = class_means(syn[0], num_classes)
    loss = loss + ((class_means(real[0], num_classes) - centres) ** 2).sum()
    logits = real[0] @ centres.t()
    return loss + inner_weight * F.cross_entropy(logits, labels, reduction="sum")


def _real_accuracy(net: ConvNet, real: RealImages, n: int, generator: torch.Generator) -> float:
    with torch.no_grad():
        accs = [
            (net(real.of_class(c, n, generator)).argmax(1) == c).float().mean()
            for c in range(real.num_classes)
        ]
    return float(torch.stack(accs).mean())


def cafe(
    images: Tensor,
    labels: Tensor,
    ipc: int,
    *,
    iterations: int = 2000,
    lr_images: float = 0.1,
    lr_milestones: Sequence[int] = (1200, 1600, 1800),
    lr_net: float = 0.01,
    batch_real: int = 256,
    batch_train: int = 256,
    watch_batch: int = 128,
    lambda_1: float = 0.04,
    lambda_2: float = 0.03,
    inner_weight: float = 0.01,
    max_outer: int | None = None,
    max_inner: int | None = None,
    augment: bool = False,
    init: str = "noise",
    seed: int = 0,
    num_classes: int | None = None,
    callback: Callback | None = None,
) -> CondenseResult:
    """Condenses ``images`` into ``ipc`` images per class by aligning features (CAFE).

    Args:
        images, labels, ipc, seed, num_classes, callback: as :func:`~dynaprune.condense.dc`.
        iterations: published 2000.
        lr_images, lr_milestones: SGD (momentum 0.5) at 0.1, halved at each milestone.
        lr_net, batch_train: the inner loop's SGD (published 0.01, batches of 256).
        batch_real: real images per class in an outer step (published 256; every class gets
            the same number, at most the smallest class's size).
        watch_batch: real images per class for the accuracy watcher (published 128).
        lambda_1, lambda_2: the outer and inner loops' stopping thresholds.
        inner_weight: weight of the discrimination loss (published 0.01).
        max_outer, max_inner: caps on outer steps and inner epochs per iteration (``None``:
            as published, until the thresholds stop them).
        augment: DSA on both batches and in the inner loop (CAFE+DSA; published CAFE: off).
        init: ``"noise"`` (published) or ``"real"``.

    Example:
        >>> x, y = torch.randn(20, 3, 8, 8), torch.arange(2).repeat(10)
        >>> cafe(x, y, 1, iterations=1, batch_real=4, max_outer=2, max_inner=1).images.shape
        torch.Size([2, 3, 8, 8])
    """
    real = RealImages(images, labels, ipc, num_classes)
    check_count("iterations", iterations, 0)
    check_positive_float("lr_images", lr_images)
    check_positive_float("lr_net", lr_net)
    for name, value in (
        ("batch_real", batch_real),
        ("batch_train", batch_train),
        ("watch_batch", watch_batch),
    ):
        check_count(name, value, 1)
    check_positive_float("lambda_1", lambda_1)
    check_positive_float("lambda_2", lambda_2)
    check_optional_count("max_outer", max_outer, 1)
    check_optional_count("max_inner", max_inner, 1)
    check_bool("augment", augment)
    check_count("seed", seed, 0)
    per_class = min(batch_real, *(len(i) for i in real.by_class))

    generator = torch.Generator().manual_seed(seed)
    clock = Stopwatch(real.images.device)
    syn = initial_images(real, init, generator).requires_grad_(True)
    syn_labels = real.synthetic_labels()
    real_labels = real.synthetic_labels(per_class)
    optimizer = image_optimizer(syn, lr_images)
    size = (real.shape[1], real.shape[2])
    losses: list[float] = []
    for it in range(iterations):
        for group in optimizer.param_groups:
            group["lr"] = lr_images * 0.5 ** sum(it >= m for m in lr_milestones)
        net = fresh_net(real, generator)
        net_optimizer = torch.optim.SGD(net.parameters(), lr=lr_net)
        watcher: list[float] = []
        total, steps = 0.0, 0
        while max_outer is None or steps < max_outer:
            x_real = [real.of_class(c, per_class, generator) for c in range(real.num_classes)]
            x_syn = [syn[c * ipc : (c + 1) * ipc] for c in range(real.num_classes)]
            if augment:
                augs = [draw_augmentation(generator, size) for _ in range(real.num_classes)]
                x_real = [a(x) for a, x in zip(augs, x_real, strict=True)]
                x_syn = [a(x) for a, x in zip(augs, x_syn, strict=True)]
            with torch.no_grad():
                f_real = net.feature_maps(torch.cat(x_real))[1]
            f_syn = net.feature_maps(torch.cat(x_syn))[1]
            loss = cafe_loss(
                f_real, f_syn, real_labels, real.num_classes, inner_weight=inner_weight
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, steps = total + float(loss.detach()), steps + 1
            watcher = [*watcher, _real_accuracy(net, real, watch_batch, generator)][-_WATCH:]
            if len(watcher) == _WATCH and max(watcher) - min(watcher) < lambda_1:
                break
            if max_outer is not None and steps == max_outer:
                break
            inner: list[float] = []
            while max_inner is None or len(inner) < max_inner:
                _train_epochs(
                    net, net_optimizer, syn.detach(), syn_labels, 1, batch_train, generator, augment
                )
                inner.append(_real_accuracy(net, real, watch_batch, generator))
                if len(inner) >= _WATCH and max(inner[-_WATCH:]) - min(inner[-_WATCH:]) > lambda_2:
                    break
        losses.append(total / steps)
        clock.call(callback, it + 1, syn, syn_labels)
    data = syn.detach()
    return CondenseResult(
        torch.utils.data.TensorDataset(data, syn_labels), clock.seconds(), iterations, losses, data
    )
