"""The papers' evaluation protocol: train a fresh ConvNet on a (synthetic or selected) set.

Follows ``evaluate_synset`` in VICO-UoE/DatasetCondensation ``utils.py``: SGD with learning
rate 0.01, momentum 0.9 and weight decay 5e-4, batches of 256 in random order, DSA on every
batch (one transformation per image), and the learning rate times 0.1 at half of the epochs
(the official code builds a new optimizer there, so the momentum restarts). Published: 1000
epochs with DSA (300 without).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from dynaprune._checks import check_bool, check_count, check_positive_float
from dynaprune.condense._common import RealImages, fresh_net
from dynaprune.condense.augment import dsa_augment
from dynaprune.condense.convnet import ConvNet
from dynaprune.core.sampler import DynamicPruningSampler

__all__ = ["accuracy", "train_convnet"]


def train_convnet(
    images: Tensor,
    labels: Tensor,
    *,
    epochs: int = 1000,
    lr: float = 0.01,
    batch_size: int = 256,
    augment: bool = True,
    seed: int = 0,
    num_classes: int | None = None,
    sampler: DynamicPruningSampler | None = None,
) -> ConvNet:
    """A freshly initialised ConvNet trained on ``(images, labels)`` with the papers' protocol.

    With a ``sampler`` (over ``len(images)`` samples), each epoch trains on the samples it
    plans for that epoch, in its order, and feeds their losses back to it
    (:meth:`~dynaprune.DynamicPruningSampler.update`): dynamic pruning of the set under the
    same protocol; without one, on all of them in random order.

    Example:
        >>> x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 0, 1])
        >>> net = train_convnet(x, y, epochs=2)
        >>> 0.0 <= accuracy(net, x, y) <= 1.0
        True
    """
    data = RealImages(images, labels, 1, num_classes)
    check_count("epochs", epochs, 0)
    check_positive_float("lr", lr)
    check_count("batch_size", batch_size, 1)
    check_bool("augment", augment)
    check_count("seed", seed, 0)
    if sampler is not None and sampler.num_samples != len(data.labels):
        raise ValueError(
            f"sampler must be over the {len(data.labels)} images, got one over "
            f"{sampler.num_samples} samples"
        )
    generator = torch.Generator().manual_seed(seed)
    net = fresh_net(data, generator)
    net.train()
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    x, y = data.images, data.labels
    for epoch in range(epochs):
        if epoch == epochs // 2 + 1:
            optimizer = torch.optim.SGD(
                net.parameters(), lr=lr * 0.1, momentum=0.9, weight_decay=5e-4
            )
        if sampler is None:
            order = torch.randperm(len(x), generator=generator).to(x.device)
        else:
            sampler.set_epoch(epoch)
            order = torch.tensor(list(sampler), dtype=torch.int64, device=x.device)
        for part in order.split(batch_size):
            xb = dsa_augment(x[part], generator) if augment else x[part]
            optimizer.zero_grad(set_to_none=True)
            if sampler is None:
                loss = F.cross_entropy(net(xb), y[part])
            else:
                loss = sampler.update(F.cross_entropy(net(xb), y[part], reduction="none"), part)
            loss.backward()
            optimizer.step()
    return net


@torch.no_grad()
def accuracy(net: torch.nn.Module, images: Tensor, labels: Tensor, batch_size: int = 500) -> float:
    """Share of ``images`` the network classifies as ``labels`` (eval mode)."""
    net.eval()
    correct = sum(
        int((net(x).argmax(1) == y).sum())
        for x, y in zip(images.split(batch_size), labels.split(batch_size), strict=True)
    )
    return correct / max(len(labels), 1)
