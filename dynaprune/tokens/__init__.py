"""Token- and attention-level pruning inside Vision Transformers: Peeling the Onion's finer levels.

* :mod:`~dynaprune.tokens.pruner` — :class:`TokenPruner`, which wraps a ViT and, during training,
  drops or fuses tokens by [CLS] attention, drops them at random, merges them (ToMe), and masks
  attention per query.
* :mod:`~dynaprune.tokens.schedule` — :class:`KeepRateSchedule`, full tokens then a cosine.
* :mod:`~dynaprune.tokens.reduce` and :mod:`~dynaprune.tokens.merge` — the operations as pure
  functions.
* :mod:`~dynaprune.tokens.adapters` — how torchvision's, timm's and our ViT are read.
* :mod:`~dynaprune.tokens.vit` — :class:`SmallViT`, ViT-Lite for 32x32 images.

Torch only: torchvision and timm are never imported here (docs/tokens.md).
"""

from dynaprune.tokens.merge import matching_r, merge_tokens, proportional_bias
from dynaprune.tokens.pruner import MODES, TokenPruner, default_blocks
from dynaprune.tokens.reduce import cls_attention, keep_count, keep_tokens, key_mask
from dynaprune.tokens.schedule import KeepRateSchedule
from dynaprune.tokens.vit import SmallViT, ViTBlock

__all__ = [
    "MODES",
    "KeepRateSchedule",
    "SmallViT",
    "TokenPruner",
    "ViTBlock",
    "cls_attention",
    "default_blocks",
    "keep_count",
    "keep_tokens",
    "key_mask",
    "matching_r",
    "merge_tokens",
    "proportional_bias",
]
