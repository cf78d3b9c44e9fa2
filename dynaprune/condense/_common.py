"""What every condensation method shares: argument checks, real-image batches, fresh networks,
the synthetic set's initialisation, its optimizer and the result."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.utils.data import TensorDataset

from dynaprune._checks import check_choice, check_count
from dynaprune.condense.convnet import ConvNet

__all__ = [
    "Callback",
    "CondenseResult",
    "RealImages",
    "Stopwatch",
    "check_optional_count",
    "fresh_net",
    "image_optimizer",
    "initial_images",
]

Callback = Callable[[int, Tensor, Tensor], None]
"""``callback(iterations_done, images, labels)``: called after each iteration with detached
copies of the current synthetic set; its time is not counted in ``seconds``."""


@dataclass(frozen=True)
class CondenseResult:
    """A synthetic set and what it cost.

    Attributes:
        dataset: ``TensorDataset(images, labels)`` to train on (for IDM: the expanded set,
            4 half-resolution images upsampled from each stored one).
        seconds: wall-clock seconds of the condensation (callbacks excluded).
        iterations: condensation iterations run.
        losses: the matching loss of each iteration (mean over classes and outer loops).
        stored: the tensor a user stores (``ipc`` images per class); equals the dataset's
            images except for IDM.
    """

    dataset: TensorDataset
    seconds: float
    iterations: int
    losses: list[float] = field(default_factory=list)
    stored: Tensor | None = None

    @property
    def images(self) -> Tensor:
        return self.dataset.tensors[0]

    @property
    def labels(self) -> Tensor:
        return self.dataset.tensors[1]


class RealImages:
    """The real training images, validated and indexed by class.

    Args:
        images: float ``(N, C, H, W)``, normalised as the network will see them.
        labels: integer class labels ``(N,)`` in ``[0, num_classes)``.
        ipc: synthetic images per class; every class needs at least ``ipc`` real images.
        num_classes: default ``labels.max() + 1``.
    """

    def __init__(self, images: Tensor, labels: Tensor, ipc: int, num_classes: int | None) -> None:
        check_count("ipc", ipc, 1)
        if not isinstance(images, Tensor) or images.dim() != 4 or not images.is_floating_point():
            shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise ValueError(f"images must be a float tensor of shape (N, C, H, W), got {shape}")
        if not isinstance(labels, Tensor) or labels.dim() != 1 or labels.is_floating_point():
            shape = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
            raise ValueError(f"labels must be an integer tensor of shape (N,), got {shape}")
        if len(labels) != len(images):
            raise ValueError(
                f"labels must have one entry per image ({len(images)}), got {len(labels)}"
            )
        if len(labels) == 0:
            raise ValueError("images must hold at least one image, got 0")
        low, high = int(labels.min()), int(labels.max())
        if num_classes is None:
            num_classes = high + 1
        check_count("num_classes", num_classes, 1)
        if low < 0 or high >= num_classes:
            raise ValueError(
                f"labels must lie in [0, {num_classes}), got {low if low < 0 else high}"
            )
        self.images, self.labels = images, labels.long()
        self.ipc, self.num_classes = ipc, num_classes
        self.by_class = [
            torch.nonzero(self.labels.cpu() == c).flatten() for c in range(num_classes)
        ]
        for c, idx in enumerate(self.by_class):
            if len(idx) < ipc:
                raise ValueError(
                    f"class {c} has {len(idx)} real images, fewer than ipc={ipc}; lower ipc"
                )

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def of_class(self, c: int, n: int, generator: torch.Generator) -> Tensor:
        """``min(n, size of class c)`` random images of class ``c`` (without replacement)."""
        idx = self.by_class[c]
        pick = idx[torch.randperm(len(idx), generator=generator)[:n]]
        return self.images[pick.to(self.images.device)]

    def any_class(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``min(n, N)`` random images of any class, with their labels."""
        pick = torch.randperm(len(self.labels), generator=generator)[:n].to(self.images.device)
        return self.images[pick], self.labels[pick]

    def synthetic_labels(self, per_class: int | None = None) -> Tensor:
        """``[0] * k + [1] * k + ...`` for ``k = per_class`` (default ``ipc``)."""
        k = self.ipc if per_class is None else per_class
        return torch.arange(self.num_classes, device=self.images.device).repeat_interleave(k)


def check_optional_count(name: str, value: int | None, minimum: int) -> int | None:
    return None if value is None else check_count(name, value, minimum)


def initial_images(real: RealImages, init: str, generator: torch.Generator) -> Tensor:
    """``ipc`` images per class: random real ones (``"real"``) or standard normal noise."""
    check_choice("init", init, ("real", "noise"))
    if init == "real":
        parts = [real.of_class(c, real.ipc, generator) for c in range(real.num_classes)]
        return torch.cat(parts).detach().clone()
    shape = (real.num_classes * real.ipc, *real.shape)
    return torch.randn(shape, generator=generator).to(real.images.device)


def image_optimizer(images: Tensor, lr: float) -> torch.optim.SGD:
    """SGD with momentum 0.5 over the synthetic pixels, as every official implementation."""
    return torch.optim.SGD([images], lr=lr, momentum=0.5)


def fresh_net(real: RealImages, generator: torch.Generator) -> ConvNet:
    """A newly initialised ConvNet on the images' device, its weights drawn from a CPU
    generator seeded from ``generator`` (the global RNG is not touched)."""
    seed = int(torch.randint(2**62, (1,), generator=generator))
    init = torch.Generator().manual_seed(seed)
    net = ConvNet(real.shape[0], real.num_classes, (real.shape[1], real.shape[2]), generator=init)
    return net.to(real.images.device)


class Stopwatch:
    """Seconds spent, minus the time inside callbacks; synchronises CUDA before reading."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.excluded = device, 0.0
        self.start = time.perf_counter()

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def call(self, callback: Callback | None, done: int, images: Tensor, labels: Tensor) -> None:
        if callback is None:
            return
        self._sync()
        start = time.perf_counter()
        callback(done, images.detach().clone(), labels.clone())
        self._sync()
        self.excluded += time.perf_counter() - start

    def seconds(self) -> float:
        self._sync()
        return time.perf_counter() - self.start - self.excluded
