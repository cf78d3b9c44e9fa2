"""Datasets for the benchmark, decoded once into uint8 tensors and cached on disk.

``digits`` (scikit-learn's 8x8 handwritten digits) ships inside an installed package and needs no
network; ``cifar10``/``cifar100`` come through torchvision (downloaded into the cache directory) or
from an ImageFolder tree given as ``data.root``; ``imagefolder`` reads any
``root/{train,test}/<class>/`` tree. JPEG decoding happens once, here, never per epoch
(unless ``data.streaming`` asks for it).
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["IMAGE_SUFFIXES", "DataBundle", "add_label_noise", "list_image_folder", "load_data"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# train images, train labels, test images, test labels, number of classes
_Splits = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]
_SPLIT_SEED = 0  # subsets and the digits test split are fixed, independent of the run seed


@dataclass
class DataBundle:
    """Decoded train and test images (uint8, NCHW) with labels and per-channel statistics.

    ``train_files`` holds ``(path, label)`` pairs when the train split is streamed from disk.
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    train_files: list[tuple[str, int]] | None = None
    flipped: torch.Tensor | None = None  # bool mask of the labels data.label_noise changed

    @property
    def num_train(self) -> int:
        return len(self.train_files) if self.train_files is not None else len(self.train_y)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.test_x.shape[1:])  # type: ignore[return-value]


def load_data(data_cfg: dict[str, Any]) -> DataBundle:
    """Loads (and caches) the dataset named in ``data_cfg`` and applies the configured subsets."""
    name = data_cfg["dataset"]
    cache = Path(data_cfg["cache_dir"]).expanduser()
    root = Path(data_cfg["root"]) if data_cfg["root"] else None
    if name == "digits":
        splits = _digits()
    elif root is not None and (root / "train").is_dir():
        splits = _image_folder_cached(root, cache, data_cfg["image_size"])
    elif name in ("cifar10", "cifar100"):
        splits = _torchvision_cifar(name, root or cache / "torchvision", download=root is None)
    else:
        raise ValueError(
            f"data.root {str(root)!r} holds neither train/ and test/ folders nor a {name} download"
        )
    train_x, train_y, test_x, test_y, num_classes = splits
    if data_cfg["train_subset"] is not None:
        train_x, train_y = _subset(train_x, train_y, data_cfg["train_subset"], "data.train_subset")
    if data_cfg["test_subset"] is not None:
        test_x, test_y = _subset(test_x, test_y, data_cfg["test_subset"], "data.test_subset")
    flipped = None
    if data_cfg["label_noise"] > 0:
        clean_y = train_y
        train_y = add_label_noise(
            train_y,
            num_classes,
            data_cfg["label_noise"],
            data_cfg["label_noise_seed"],
            kind=data_cfg.get("label_noise_kind", "symmetric"),
        )
        flipped = train_y != clean_y
    mean, std = _channel_stats(train_x)
    files = (
        list_image_folder(root / "train")[0] if data_cfg["streaming"] and root is not None else None
    )
    return DataBundle(train_x, train_y, test_x, test_y, num_classes, mean, std, files, flipped)


#: CIFAR-10's asymmetric noise (Patrini et al., CVPR 2017, as in DivideMix's dataloader):
#: truck -> automobile, bird -> airplane, deer -> horse, cat <-> dog, in label order.
ASYMMETRIC_PAIRS: dict[int, int] = {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}


def add_label_noise(
    labels: torch.Tensor, num_classes: int, share: float, seed: int, kind: str = "symmetric"
) -> torch.Tensor:
    """Label noise on the training labels; the test labels are never touched.

    ``kind="symmetric"``: ``round(share * N)`` labels, chosen with ``seed``, each replaced by a
    different class drawn uniformly, so exactly that share is wrong. ``kind="asymmetric"``: in
    each source class of :data:`ASYMMETRIC_PAIRS`, ``round(share * n_class)`` labels, chosen
    with ``seed``, become the paired class (CIFAR-10's usual class-dependent noise; 40 % of
    five classes is 20 % of the data set).

    Example:
        >>> y = torch.zeros(10, dtype=torch.long)
        >>> int((add_label_noise(y, 10, 0.2, 0) != y).sum())
        2
        >>> y = torch.arange(10).repeat(5)
        >>> noisy = add_label_noise(y, 10, 0.4, 0, kind="asymmetric")
        >>> int((noisy != y).sum()), sorted(set(noisy[noisy != y].tolist()))
        (10, [0, 1, 3, 5, 7])
    """
    generator = torch.Generator().manual_seed(seed)
    if kind == "asymmetric":
        if num_classes != 10:
            raise ValueError(
                f"kind='asymmetric' is CIFAR-10's class pairs and needs 10 classes, "
                f"got num_classes={num_classes}"
            )
        noisy = labels.clone()
        for source, target in ASYMMETRIC_PAIRS.items():
            members = (labels == source).nonzero().flatten()
            order = torch.randperm(len(members), generator=generator)
            noisy[members[order[: round(share * len(members))]]] = target
        return noisy
    if kind != "symmetric":
        raise ValueError(f"kind must be 'symmetric' or 'asymmetric', got {kind!r}")
    n = len(labels)
    flip = torch.randperm(n, generator=generator)[: round(share * n)]
    shift = torch.randint(1, num_classes, (len(flip),), generator=generator)
    noisy = labels.clone()
    noisy[flip] = (labels[flip] + shift) % num_classes
    return noisy


def _digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    # pixel values are counts 0..16; scale to the uint8 range the other datasets use
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    x_tr, x_te, y_tr, y_te = train_test_split(
        images, digits.target, test_size=0.2, stratify=digits.target, random_state=_SPLIT_SEED
    )
    return (
        torch.from_numpy(x_tr),
        torch.from_numpy(y_tr).long(),
        torch.from_numpy(x_te),
        torch.from_numpy(y_te).long(),
        10,
    )


def _torchvision_cifar(name: str, root: Path, download: bool) -> _Splits:
    import torchvision

    cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
    try:
        train, test = (cls(str(root), train=flag, download=download) for flag in (True, False))
    except (RuntimeError, OSError) as err:  # offline and not cached, or a corrupt download
        raise RuntimeError(
            f"could not load {name} from {str(root)!r} ({err}); without a network, pass "
            "--data-root "
            "pointing to an ImageFolder tree (train/ and test/) or a torchvision download"
        ) from err

    def to_tensor(split: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(split.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(
            split.targets
        )

    return (*to_tensor(train), *to_tensor(test), len(train.classes))


def list_image_folder(folder: Path) -> tuple[list[tuple[str, int]], list[str]]:
    """Lists ``(path, label)`` pairs of ``folder/<class>/*`` in sorted order, like ImageFolder."""
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if not classes:
        raise ValueError(f"data.root split {str(folder)!r} has no class folders")
    files = [
        (str(path), label)
        for label, cls in enumerate(classes)
        for path in sorted((folder / cls).iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES
    ]
    return files, classes


def decode_image(path: str, image_size: int | None) -> np.ndarray:
    """Decodes one image file to an RGB uint8 HWC array, resized to a square if asked."""
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("RGB")
        if image_size is not None and img.size != (image_size, image_size):
            img = img.resize((image_size, image_size), Image.Resampling.BILINEAR)
        return np.array(img, dtype=np.uint8)  # a writable copy, as torch.from_numpy wants


def _decode_split(
    folder: Path, image_size: int | None
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    files, classes = list_image_folder(folder)
    with ThreadPoolExecutor() as pool:  # Pillow releases the GIL while decoding
        arrays = list(pool.map(lambda f: decode_image(f[0], image_size), files, chunksize=256))
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(
            f"images under {str(folder)!r} differ in size {sorted(shapes)[:3]}; set data.image_size"
        )
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return x, torch.tensor([label for _, label in files]), classes


def _image_folder_cached(root: Path, cache: Path, image_size: int | None) -> _Splits:
    key = hashlib.sha1(f"{root.resolve()}|{image_size}".encode()).hexdigest()[:12]
    path = cache / f"imagefolder-{root.name}-{key}.pt"
    if path.is_file():
        blob = torch.load(path)
    else:
        train_x, train_y, classes = _decode_split(root / "train", image_size)
        test_x, test_y, test_classes = _decode_split(root / "test", image_size)
        if test_classes != classes:
            raise ValueError(
                f"data.root {str(root)!r}: train/ and test/ have different class folders"
            )
        blob = {
            "train_x": train_x,
            "train_y": train_y,
            "test_x": test_x,
            "test_y": test_y,
            "classes": classes,
        }
        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")  # runs started together each write their own
        torch.save(blob, tmp)
        tmp.replace(path)  # atomic, so a killed run never leaves a truncated cache
    return blob["train_x"], blob["train_y"], blob["test_x"], blob["test_y"], len(blob["classes"])


def _subset(
    x: torch.Tensor, y: torch.Tensor, size: int, key: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """A class-stratified subset of fixed composition (same for every run and seed)."""
    if size > len(y):
        raise ValueError(f"{key} must be at most the split size {len(y)}, got {size}")
    if size == len(y):
        return x, y
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(
        np.arange(len(y)), train_size=size, stratify=y.numpy(), random_state=_SPLIT_SEED
    )
    keep = torch.from_numpy(np.sort(keep))
    return x[keep], y[keep]


def _channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    total = torch.zeros(x.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for chunk in x.split(4096):  # chunked: a float copy of CIFAR at once would take 600 MB
        values = chunk.transpose(0, 1).reshape(x.shape[1], -1).double() / 255.0
        total += values.sum(1)
        squares += values.square().sum(1)
    count = x.numel() / x.shape[1]
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(1e-12).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())
