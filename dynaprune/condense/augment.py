"""Differentiable Siamese augmentation (DSA; Zhao and Bilen, ICML 2021).

Follows ``DiffAugment`` and ``ParamDiffAug`` in VICO-UoE/DatasetCondensation ``utils.py``
(after mit-han-lab/data-efficient-gans) in its default single mode (``aug_mode='S'``): each
call picks one group of the strategy uniformly at random (``color`` = brightness, saturation
and contrast; ``crop``; ``cutout``; ``flip``; ``scale``; ``rotate``) and applies it. Every
operation is differentiable with respect to the pixels.

Siamese use (matching): draw one :class:`Augmentation` with ``batch=1`` and apply it to the
real and to the synthetic batch; both get exactly the same transformation, on every image, as
the official code does when it passes the same seed twice. Training use (evaluation, inner
loops): ``batch=len(x)`` draws one transformation per image. Parameters come from the
``generator`` passed in, never from the global RNG.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from dynaprune._checks import check_count

__all__ = ["DSA_STRATEGY", "Augmentation", "DSAParams", "draw_augmentation", "dsa_augment"]

DSA_STRATEGY = "color_crop_cutout_flip_scale_rotate"
_GROUPS = ("color", "crop", "cutout", "flip", "scale", "rotate")


@dataclass(frozen=True)
class DSAParams:
    """DSA's ranges (``ParamDiffAug`` defaults)."""

    prob_flip: float = 0.5
    ratio_scale: float = 1.2
    ratio_rotate: float = 15.0  # degrees
    ratio_crop_pad: float = 0.125
    ratio_cutout: float = 0.5
    brightness: float = 1.0
    saturation: float = 2.0
    contrast: float = 0.5


@dataclass(frozen=True)
class Augmentation:
    """One draw of DSA: the chosen group and its random values (one row, or one per image).

    Calling it on a batch applies the transformation; a draw with one row applies the same
    transformation to every image of every batch it is called on.
    """

    group: str
    values: dict[str, Tensor]
    image_size: tuple[int, int]
    params: DSAParams = DSAParams()

    def __call__(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or tuple(x.shape[-2:]) != self.image_size:
            h, w = self.image_size
            raise ValueError(f"x must be (N, C, {h}, {w}), got {tuple(x.shape)}")
        v = {k: t.to(x.device).expand(len(x), *t.shape[1:]) for k, t in self.values.items()}
        if self.group == "color":
            x = x + (v["brightness"] - 0.5) * self.params.brightness
            mean = x.mean(dim=1, keepdim=True)
            x = (x - mean) * (v["saturation"] * self.params.saturation) + mean
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            return (x - mean) * (v["contrast"] + self.params.contrast) + mean
        if self.group == "crop":
            return _translate(x, v["shift_x"], v["shift_y"])
        if self.group == "cutout":
            return _cutout(x, v["offset_x"], v["offset_y"], self.params.ratio_cutout)
        if self.group == "flip":
            return torch.where(v["flip"] < self.params.prob_flip, x.flip(3), x)
        theta = v["theta"].to(x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, align_corners=False)


def _translate(x: Tensor, shift_x: Tensor, shift_y: Tensor) -> Tensor:
    """Shift by whole pixels; what moves in from outside is zero (one-pixel zero pad, clamped)."""
    n, _, h, w = x.shape
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)
    rows = (torch.arange(h, device=x.device) + shift_x.view(n, 1) + 1).clamp(0, h + 1)
    cols = (torch.arange(w, device=x.device) + shift_y.view(n, 1) + 1).clamp(0, w + 1)
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    return padded[batch, rows.view(n, h, 1), cols.view(n, 1, w)].permute(0, 3, 1, 2)


def _cutout(x: Tensor, offset_x: Tensor, offset_y: Tensor, ratio: float) -> Tensor:
    n, _, h, w = x.shape
    size_h, size_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    rows = torch.arange(h, device=x.device).view(1, h) - offset_x.view(n, 1) + size_h // 2
    cols = torch.arange(w, device=x.device).view(1, w) - offset_y.view(n, 1) + size_w // 2
    inside_r = (rows >= 0) & (rows < size_h)
    inside_c = (cols >= 0) & (cols < size_w)
    mask = ~(inside_r.view(n, h, 1) & inside_c.view(n, 1, w))
    return x * mask.unsqueeze(1).to(x.dtype)


def draw_augmentation(
    generator: torch.Generator,
    image_size: tuple[int, int],
    *,
    batch: int = 1,
    strategy: str = DSA_STRATEGY,
    params: DSAParams | None = None,
) -> Augmentation:
    """Draws one DSA transformation (``batch`` rows of random values) from ``generator``.

    Args:
        generator: a CPU generator; the values are moved to the images' device when applied.
        image_size: ``(height, width)`` of the images it will be applied to.
        batch: 1 for a Siamese draw (the same transformation for every image), else one per image.
        strategy: groups joined by ``_`` (subset of ``color_crop_cutout_flip_scale_rotate``).
        params: the ranges; :class:`DSAParams` defaults.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> aug = draw_augmentation(g, (8, 8))
        >>> real, syn = torch.rand(5, 3, 8, 8), torch.rand(2, 3, 8, 8)
        >>> aug(real).shape, aug(syn).shape
        (torch.Size([5, 3, 8, 8]), torch.Size([2, 3, 8, 8]))
    """
    check_count("batch", batch, 1)
    groups = strategy.split("_")
    unknown = [g for g in groups if g not in _GROUPS]
    if not strategy or unknown:
        raise ValueError(f"strategy must join groups of {list(_GROUPS)} with '_', got {strategy!r}")
    p = params or DSAParams()
    h, w = image_size
    group = groups[int(torch.randint(len(groups), (1,), generator=generator))]

    def rand(*shape: int) -> Tensor:
        return torch.rand(batch, *shape, generator=generator)

    values: dict[str, Tensor]
    if group == "color":
        values = {k: rand(1, 1, 1) for k in ("brightness", "saturation", "contrast")}
    elif group == "crop":
        sx, sy = int(h * p.ratio_crop_pad + 0.5), int(w * p.ratio_crop_pad + 0.5)
        values = {
            "shift_x": torch.randint(-sx, sx + 1, (batch,), generator=generator),
            "shift_y": torch.randint(-sy, sy + 1, (batch,), generator=generator),
        }
    elif group == "cutout":
        ch, cw = int(h * p.ratio_cutout + 0.5), int(w * p.ratio_cutout + 0.5)
        values = {
            "offset_x": torch.randint(0, h + (1 - ch % 2), (batch,), generator=generator),
            "offset_y": torch.randint(0, w + (1 - cw % 2), (batch,), generator=generator),
        }
    elif group == "flip":
        values = {"flip": rand(1, 1, 1)}
    elif group == "scale":
        low = 1.0 / p.ratio_scale
        scale_x = rand() * (p.ratio_scale - low) + low
        scale_y = rand() * (p.ratio_scale - low) + low
        zero = torch.zeros(batch)
        theta = [scale_x, zero, zero, zero, scale_y, zero]
        values = {"theta": torch.stack(theta, 1).view(batch, 2, 3)}
    else:
        angle = (rand() - 0.5) * 2 * p.ratio_rotate / 180 * math.pi
        cos, sin, zero = angle.cos(), angle.sin(), torch.zeros(batch)
        values = {"theta": torch.stack([cos, -sin, zero, sin, cos, zero], 1).view(batch, 2, 3)}
    return Augmentation(group, values, (h, w), p)


def dsa_augment(
    x: Tensor,
    generator: torch.Generator,
    *,
    strategy: str = DSA_STRATEGY,
    params: DSAParams | None = None,
) -> Tensor:
    """``x`` with one DSA transformation per image (for training on a synthetic set)."""
    aug = draw_augmentation(
        generator, (x.shape[-2], x.shape[-1]), batch=len(x), strategy=strategy, params=params
    )
    return aug(x)
