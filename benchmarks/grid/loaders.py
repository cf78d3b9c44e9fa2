"""The two input paths, both driven by the same ``DynamicPruningSampler``.

* :func:`make_dataloader`: the drop-in path, a ``torch.utils.data.DataLoader`` over a dataset with
  per-sample torchvision transforms, run in worker processes.
* :class:`DeviceLoader`: the device-resident path in the style of airbench: the whole normalised
  train set lives on the training device, and augmentation (random crop, horizontal flip) runs on
  whole batches.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from benchmarks.grid.data import DataBundle, decode_image

__all__ = ["DeviceLoader", "ImageFileDataset", "TensorImageDataset", "make_dataloader", "normalize"]

_PAD = 4  # CIFAR-style random crop padding


def normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 NCHW (or CHW) images to normalised float32."""
    shape = (-1, 1, 1)
    m = torch.tensor(mean, device=x.device).view(shape)
    s = torch.tensor(std, device=x.device).view(shape)
    return (x.float() / 255.0 - m) / s


def _sample_transform(data: DataBundle, augment: bool) -> Any:
    from torchvision.transforms import v2

    steps: list[Any] = []
    if augment:
        size = data.image_shape[1:]
        steps += [v2.RandomCrop(size, padding=_PAD), v2.RandomHorizontalFlip()]
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(data.mean), list(data.std))]
    return v2.Compose(steps)


class TensorImageDataset(Dataset):
    """Decoded uint8 images with a per-sample transform; without one it pre-normalises once."""

    def __init__(
        self, x: torch.Tensor, y: torch.Tensor, transform: Any | None, data: DataBundle
    ) -> None:
        self.transform = transform
        self.x = x if transform is not None else normalize(x, data.mean, data.std)
        self.y = y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.x[index]
        return (self.transform(x) if self.transform is not None else x), self.y[index]


class ImageFileDataset(Dataset):
    """The streaming path: decodes one JPEG per item (in the DataLoader workers)."""

    def __init__(
        self, files: list[tuple[str, int]], image_size: int | None, transform: Any
    ) -> None:
        self.files, self.image_size, self.transform = files, image_size, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.files[index]
        image = torch.from_numpy(decode_image(path, self.image_size)).permute(2, 0, 1)
        return self.transform(image), label


def make_dataloader(
    data: DataBundle,
    data_cfg: dict[str, Any],
    sampler: Sampler,
    batch_size: int,
    drop_last: bool,
    seed: int,
    pin_memory: bool,
) -> DataLoader:
    """The drop-in path: a DataLoader whose sampler is the (pruning or full-data) sampler."""
    augment = data_cfg["augment"]
    if data_cfg["streaming"] and data.train_files is not None:
        dataset: Dataset = ImageFileDataset(
            data.train_files, data_cfg["image_size"], _sample_transform(data, augment)
        )
    else:
        dataset = TensorImageDataset(
            data.train_x, data.train_y, _sample_transform(data, augment) if augment else None, data
        )
    workers = data_cfg["num_workers"]
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        drop_last=drop_last,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(seed),  # seeds the workers' augmentation RNG
    )


class _IndexSet(Dataset):
    """Stands in for the data set of a :class:`DeviceLoader`: only its length is used."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> int:
        return index


class DeviceLoader(DataLoader):
    """Yields ``(images, labels)`` batches of device-resident data in the sampler's order.

    A ``DataLoader`` subclass only so that Lightning and ``DynamicPruningCallback`` treat it as
    the train loader (``set_epoch``, finding the sampler); iteration is its own, in the main
    process.

    Args:
        data: decoded dataset.
        sampler: yields the indices of the epoch, in order.
        batch_size: samples per batch.
        device: where the data lives and augmentation runs.
        augment: random crop with 4 pixels of zero padding plus horizontal flip, per sample.
        seed: seeds the local augmentation generator.
        drop_last: drop the last incomplete batch of each epoch.
        channels_last: yield images in channels-last memory format.
    """

    def __init__(
        self,
        data: DataBundle,
        sampler: Sampler,
        batch_size: int,
        device: torch.device,
        augment: bool,
        seed: int,
        drop_last: bool = False,
        channels_last: bool = False,
    ) -> None:
        super().__init__(_IndexSet(len(data.train_y)), batch_size=None, sampler=sampler)
        # DataLoader guards its own batch_size/drop_last attributes, hence the private names
        self._batch, self._drop, self.device = batch_size, drop_last, device
        self.augment, self.channels_last = augment, channels_last
        images = normalize(data.train_x.to(device), data.mean, data.std)
        if augment:  # pad once; a crop is then a gather at a random offset
            black = [-m / s for m, s in zip(data.mean, data.std, strict=True)]
            pad_value = torch.tensor(black, device=device)
            n, c, h, w = images.shape
            padded = pad_value.view(1, c, 1, 1).repeat(n, 1, h + 2 * _PAD, w + 2 * _PAD)
            padded[:, :, _PAD:-_PAD, _PAD:-_PAD] = images
            images = padded
        self.images, self.labels = images, data.train_y.to(device)
        self.height, self.width = data.image_shape[1:]
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        return n // self._batch if self._drop else math.ceil(n / self._batch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:  # type: ignore[override]
        order = torch.tensor(list(iter(self.sampler)), dtype=torch.long).to(
            self.device, non_blocking=True
        )
        stop = len(order) - len(order) % self._batch if self._drop else len(order)
        for start in range(0, stop, self._batch):
            index = order[start : start + self._batch]
            images = self._augment(index) if self.augment else self.images[index]
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            yield images, self.labels[index]

    def _augment(self, index: torch.Tensor) -> torch.Tensor:
        n, device, g = len(index), self.device, self.generator
        dy = torch.randint(0, 2 * _PAD + 1, (n, 1), device=device, generator=g)
        dx = torch.randint(0, 2 * _PAD + 1, (n, 1), device=device, generator=g)
        rows = (dy + torch.arange(self.height, device=device))[:, None, :, None]
        cols = (dx + torch.arange(self.width, device=device))[:, None, None, :]
        channels = torch.arange(self.images.shape[1], device=device)[None, :, None, None]
        crops = self.images[index[:, None, None, None], channels, rows, cols]
        flip = torch.rand(n, device=device, generator=g) < 0.5
        return torch.where(flip[:, None, None, None], crops.flip(-1), crops)
