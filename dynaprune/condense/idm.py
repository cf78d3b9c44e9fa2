"""Improved distribution matching (IDM; Zhao et al., CVPR 2023).

Follows uitrbn/IDM ``IDM_cifar10.py`` with the CIFAR-10 commands of its ``command.txt``
(``--aug --syn_ce --net_decay --outer_loop 1 --train_net_num 1 --embed_last 1000
--mismatch_lambda 0 --lr_img 0.2 --init real``), on top of DM (:mod:`dynaprune.condense.dm`):

* partitioning (``number_sign_augment``): each stored image holds 4 half-resolution images in
  its quadrants; :func:`expand_partitions` upsamples them (bilinear) into 4 full-size
  training images, so ``ipc`` stored images per class train as ``4 * ipc``. Initialisation
  packs 4 downscaled random real images into each (:func:`pack_partitions`);
* a queue of partly trained networks: 3 at the start, one more every
  ``net_generate_interval`` iterations (the oldest leaves beyond ``queue_size``); each
  iteration matches under ``match_nets`` random queue members (in eval mode, frozen), then
  trains ``train_nets`` random members ``train_steps`` SGD steps (lr 0.01, momentum 0.9,
  weight decay 5e-4) on random real batches of ``train_batch`` images of any class;
* per class, the DM loss of the mean embeddings (Siamese DSA on both batches) plus the
  class-aware term ``ce_weight * acc * CE(net(syn), labels)``, where ``acc`` is the matching
  network's training accuracy in percent since the last reset (every 100 iterations; the
  official code reads it from ``torchnet``'s ``ClassErrorMeter``), and one image update per
  class.

Published for CIFAR-10: 20,000 iterations, real batch 256 per class (5,000 at ipc 1), a new
network every 30 iterations (5 at ipc 1), ``ce_weight`` 0.5 (0.1 at ipc 50).
"""

from __future__ import annotations

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
)
from dynaprune.condense.augment import draw_augmentation
from dynaprune.condense.dm import dm_loss

__all__ = ["expand_partitions", "idm", "pack_partitions"]

_ACC_RESET = 100  # the official code resets the accuracy meters at every evaluation (100 its)


def expand_partitions(images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """4 full-size images per stored one: its quadrants, upsampled 2x (bilinear).

    Order: all top-left quadrants, then bottom-left, top-right, bottom-right (as
    ``number_sign_augment``); labels repeat accordingly.

    Example:
        >>> x, y = expand_partitions(torch.zeros(3, 1, 4, 4), torch.tensor([0, 1, 2]))
        >>> x.shape, y.tolist()
        (torch.Size([12, 1, 4, 4]), [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2])
    """
    h, w = images.shape[-2] // 2, images.shape[-1] // 2
    quads = [images[..., :h, :w], images[..., h:, :w], images[..., :h, w:], images[..., h:, w:]]
    up = [F.interpolate(q, scale_factor=2, mode="bilinear", align_corners=False) for q in quads]
    return torch.cat(up), labels.repeat(4)


def pack_partitions(parts: Tensor) -> Tensor:
    """The inverse layout: ``parts`` of shape ``(4, N, C, H, W)`` downscaled 2x (bilinear)
    into the quadrants (top-left, bottom-left, top-right, bottom-right) of ``N`` images."""
    if parts.dim() != 5 or parts.shape[0] != 4:
        raise ValueError(f"parts must have shape (4, N, C, H, W), got {tuple(parts.shape)}")
    _, n, c, h, w = parts.shape
    if h % 2 or w % 2:
        raise ValueError(f"images must have an even height and width, got {h}x{w}")
    small = F.interpolate(
        parts.flatten(0, 1), scale_factor=0.5, mode="bilinear", align_corners=False
    )
    small = small.view(4, n, c, h // 2, w // 2)
    top = torch.cat([small[0], small[2]], dim=-1)
    bottom = torch.cat([small[1], small[3]], dim=-1)
    return torch.cat([top, bottom], dim=-2)


class _QueuedNet:
    """A queue member: the network, its optimizer and its training accuracy counters."""

    def __init__(self, real: RealImages, generator: torch.Generator, lr_net: float) -> None:
        self.net = fresh_net(real, generator)
        self.optimizer = torch.optim.SGD(
            self.net.parameters(), lr=lr_net, momentum=0.9, weight_decay=5e-4
        )
        self.correct = torch.zeros((), device=real.images.device)
        self.seen = 0

    def accuracy_percent(self) -> Tensor:
        return 100 * self.correct / self.seen if self.seen else self.correct * 0


def idm(
    images: Tensor,
    labels: Tensor,
    ipc: int,
    *,
    iterations: int = 20000,
    lr_images: float = 0.2,
    batch_real: int | None = None,
    augment: bool = True,
    ce_weight: float | None = None,
    net_generate_interval: int | None = None,
    queue_size: int = 100,
    match_nets: int = 1,
    train_nets: int = 2,
    train_steps: int = 10,
    train_batch: int = 256,
    lr_net: float = 0.01,
    seed: int = 0,
    num_classes: int | None = None,
    callback: Callback | None = None,
) -> CondenseResult:
    """Condenses ``images`` into ``ipc`` partitioned images per class (IDM).

    Args:
        images, labels, ipc, seed, num_classes, callback: as :func:`~dynaprune.condense.dm`.
        iterations: published 20,000.
        lr_images: published 0.2 (SGD, momentum 0.5).
        batch_real: real images per class and update; default 5000 at ipc 1, else 256.
        augment: Siamese DSA on both batches (published: on).
        ce_weight: weight of the class-aware term; default 0.5 below ipc 50, else 0.1.
        net_generate_interval: iterations between new queue networks; default 5 at ipc 1, else 30.
        queue_size: most networks in the queue (published 100).
        match_nets: queue networks matched under per iteration (published 1).
        train_nets, train_steps, train_batch, lr_net: queue training per iteration (published
            2 networks, 10 steps of 256 real images, lr 0.01).

    Returns:
        :class:`~dynaprune.condense.CondenseResult` whose ``dataset`` is the expanded set
        (``4 * ipc`` images per class) and ``stored`` the ``ipc`` packed images per class.

    Example:
        >>> x, y = torch.randn(40, 3, 8, 8), torch.arange(2).repeat(20)
        >>> result = idm(x, y, ipc=1, iterations=2, batch_real=4, train_steps=1, train_batch=8)
        >>> result.stored.shape, result.images.shape
        (torch.Size([2, 3, 8, 8]), torch.Size([8, 3, 8, 8]))
    """
    real = RealImages(images, labels, ipc, num_classes)
    check_count("iterations", iterations, 0)
    check_positive_float("lr_images", lr_images)
    batch_real = check_optional_count("batch_real", batch_real, 1) or (5000 if ipc == 1 else 256)
    check_bool("augment", augment)
    ce_weight = 0.5 if ce_weight is None and ipc < 50 else 0.1 if ce_weight is None else ce_weight
    if ce_weight < 0:
        raise ValueError(f"ce_weight must be >= 0, got {ce_weight!r}")
    interval = check_optional_count("net_generate_interval", net_generate_interval, 1)
    interval = interval or (5 if ipc == 1 else 30)
    check_count("queue_size", queue_size, 1)
    check_count("match_nets", match_nets, 1)
    check_count("train_nets", train_nets, 0)
    check_count("train_steps", train_steps, 0)
    check_count("train_batch", train_batch, 1)
    check_positive_float("lr_net", lr_net)
    check_count("seed", seed, 0)
    if real.shape[1] % 2 or real.shape[2] % 2:
        raise ValueError(f"images must have an even height and width for IDM, got {real.shape[1:]}")

    generator = torch.Generator().manual_seed(seed)
    clock = Stopwatch(real.images.device)
    parts = [
        torch.stack([real.of_class(c, ipc, generator) for _ in range(4)])
        for c in range(real.num_classes)
    ]
    syn = pack_partitions(torch.cat(parts, dim=1)).detach().clone().requires_grad_(True)
    syn_labels = real.synthetic_labels()
    optimizer = image_optimizer(syn, lr_images)
    size = (real.shape[1], real.shape[2])
    queue = [_QueuedNet(real, generator, lr_net) for _ in range(3)]
    losses: list[float] = []
    for it in range(iterations):
        if it % interval == 0:
            if len(queue) == queue_size:
                queue.pop(0)
            queue.append(_QueuedNet(real, generator, lr_net))
        if it % _ACC_RESET == 0:
            for member in queue:
                member.correct.zero_()
                member.seen = 0
        total = 0.0
        for pick in torch.randperm(len(queue), generator=generator)[:match_nets].tolist():
            member = queue[pick]
            member.net.eval().requires_grad_(False)  # only the pixels learn here
            weight = ce_weight * member.accuracy_percent()
            for c in range(real.num_classes):
                x_syn, y_syn = expand_partitions(syn[c * ipc : (c + 1) * ipc], syn_labels[:ipc] + c)
                x_real = real.of_class(c, batch_real, generator)
                if augment:
                    aug = draw_augmentation(generator, size)
                    x_real, x_syn = aug(x_real), aug(x_syn)
                with torch.no_grad():
                    e_real = member.net.embed(x_real)
                e_syn = member.net.embed(x_syn)
                logits = member.net.classifier(e_syn)
                loss = dm_loss(e_real, e_syn) + weight * F.cross_entropy(logits, y_syn)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach())
            member.net.requires_grad_(True)
        losses.append(total / (real.num_classes * match_nets))
        for pick in torch.randperm(len(queue), generator=generator)[:train_nets].tolist():
            _train_member(queue[pick], real, generator, train_steps, train_batch)
        clock.call(callback, it + 1, *expand_partitions(syn, syn_labels))
    stored = syn.detach()
    x, y = expand_partitions(stored, syn_labels)
    return CondenseResult(
        torch.utils.data.TensorDataset(x, y), clock.seconds(), iterations, losses, stored
    )


def _train_member(
    member: _QueuedNet, real: RealImages, generator: torch.Generator, steps: int, batch: int
) -> None:
    member.net.train()
    for _ in range(steps):
        x, y = real.any_class(batch, generator)
        logits = member.net(x)
        member.optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(logits, y).backward()
        member.optimizer.step()
        member.correct += (logits.argmax(1) == y).sum()
        member.seen += len(y)
