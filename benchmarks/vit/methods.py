"""The methods of the ViT benchmark: which model wrapper and which sampler each one trains with.

| method | what it trains |
|---|---|
| ``full`` | the unpruned ViT, every token and image, ``epochs`` epochs: the reference |
| ``full-short`` | the same for a share of the epochs (``--curve``): the full-data curve |
| ``drop`` | Peeling the Onion's token level: top-k [CLS] attention, the rest dropped |
| ``fuse`` | EViT: the same, the dropped tokens fused into one weighted by attention |
| ``random`` | tokens dropped uniformly at random, as many as ``drop`` keeps |
| ``tome`` | ToMe merging, a constant ``r`` per block matching ``drop``'s token total |
| ``attention`` | Peeling the Onion's attention level alone: each query keeps ``keep`` of its keys |
| ``all-three`` | the ``onion`` example policy (80 % of the images, swaps every ``E / 10``
epochs, at most 5) + ``drop`` + the attention level at the same keep rate |

Keep rates follow EViT's schedule (full tokens, then a cosine to the target), scaled from the
papers' 10 + 100 of 300 epochs to ``round(E / 30)`` + ``round(E / 3)``; ToMe's ``r`` is constant
from the first epoch, as ToMe trains. Evaluation uses all tokens (``TokenPruner``'s default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import RandomSampler, Sampler

from dynaprune import DynamicPruningSampler, OnionPolicy
from dynaprune.tokens import SmallViT, TokenPruner, default_blocks, matching_r

__all__ = ["METHODS", "MODELS", "Method", "build_method", "build_model"]

METHODS = ("full", "full-short", "drop", "fuse", "random", "tome", "attention", "all-three")
TOKEN_METHODS = METHODS[2:]
# width, depth, heads, MLP ratio, patch size; "vit-lite" is ViT-Lite-6/4; "vit-mini" is the
# same depth, patches and tokens at width 96 (3 heads of 32), for accuracy grids that must fit a
# CPU session (about 4x ViT-Lite's training images/s on one CPU thread).
MODELS: dict[str, dict[str, Any]] = {
    "vit-lite": {"width": 256, "depth": 6, "heads": 4, "mlp_ratio": 2.0, "patch_size": 4},
    "vit-mini": {"width": 96, "depth": 6, "heads": 3, "mlp_ratio": 2.0, "patch_size": 4},
    "deit-tiny": {"width": 192, "depth": 12, "heads": 3, "mlp_ratio": 4.0, "patch_size": 4},
    "tiny": {"width": 64, "depth": 4, "heads": 2, "mlp_ratio": 2.0, "patch_size": 4},
}
ONION_KEEP = 0.8  # the paper removes 20 % of ImageNet's images


@dataclass
class Method:
    """One run's model (possibly wrapped), the raw model (for its parameters) and sampler."""

    name: str
    keep: float
    model: nn.Module
    net: nn.Module
    sampler: Sampler[int]
    uses_losses: bool  # whether the sampler needs update(losses, correct=...)

    def set_epoch(self, epoch: int) -> None:
        set_epoch = getattr(self.sampler, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(epoch)
        if isinstance(self.model, TokenPruner):
            self.model.set_epoch(epoch)


def build_model(name: str, image_size: int, num_classes: int, seed: int) -> SmallViT:
    """The ViT preset ``name``, initialised from ``seed`` alone (paired across methods)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SmallViT(image_size=image_size, num_classes=num_classes, **MODELS[name])


def schedule_epochs(epochs: int) -> tuple[int, int]:
    """EViT's 10 warm-up and 100 decay epochs of 300, scaled to ``epochs``."""
    return round(epochs / 30), max(1, round(epochs / 3))


def build_method(
    name: str, keep: float, net: SmallViT, num_train: int, epochs: int, seed: int
) -> Method:
    """Wrap ``net`` and choose the sampler for method ``name`` at token keep rate ``keep``."""
    shuffle = RandomSampler(range(num_train), generator=torch.Generator().manual_seed(seed))
    if name in ("full", "full-short"):
        return Method(name, 1.0, net, net, shuffle, False)
    warmup, decay = schedule_epochs(epochs)
    common: dict[str, Any] = {"warmup_epochs": warmup, "decay_epochs": decay, "seed": seed}
    depth = len(net.blocks)
    if name == "tome":
        r = matching_r(net.num_patches, depth, keep, default_blocks(depth))
        model = TokenPruner(net, "tome", keep, r=r, **common)
    elif name == "attention":
        model = TokenPruner(net, "none", 1.0, attn_keep=keep, **common)
    elif name in ("drop", "fuse", "random"):
        model = TokenPruner(net, name, keep, **common)
    elif name == "all-three":
        model = TokenPruner(net, "drop", keep, attn_keep=keep, **common)
        policy = OnionPolicy(period=max(1, math.ceil(epochs / 10)), swap_fraction=0.2)
        sampler = DynamicPruningSampler(
            num_train, keep_ratio=ONION_KEEP, policy=policy, seed=seed, total_epochs=epochs
        )
        return Method(name, keep, model, net, sampler, True)
    else:
        raise ValueError(f"method must be one of {list(METHODS)}, got {name!r}")
    return Method(name, keep, model, net, shuffle, False)
