"""A small Vision Transformer for 32x32 images (ViT-Lite), with a [CLS] token.

ViT-Lite-6/4 of Hassani et al., "Escaping the Big Data Paradigm with Compact Transformers"
(SHI-Labs/Compact-Transformers): patches of 4x4 pixels (64 tokens for a 32x32 image), 6 pre-norm
blocks of width 256 with 4 heads and an MLP ratio of 2, a learned positional embedding and a
[CLS] token read by a linear head; 90.9 % on CIFAR-10 after 200 epochs there. Its blocks name
their parts as torchvision's ``EncoderBlock`` does (``ln_1``, ``self_attention``, ``dropout``,
``ln_2``, ``mlp``) and attend with :class:`torch.nn.MultiheadAttention`, so
:class:`~dynaprune.tokens.TokenPruner` reads them the same way. The weights are initialised as
timm initialises a ViT (truncated normal, std 0.02).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dynaprune._checks import check_count, check_fraction

__all__ = ["SmallViT", "ViTBlock"]


class ViTBlock(nn.Module):
    """A pre-norm Transformer block: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``.

    Args:
        width: token width.
        heads: attention heads; must divide ``width``.
        mlp_ratio: hidden width of the MLP over ``width``.
        dropout: dropout after the attention and in the MLP.
        attention_dropout: dropout on the attention weights.
    """

    def __init__(
        self,
        width: int,
        heads: int,
        mlp_ratio: float = 2.0,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(width, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(
            width, heads, dropout=attention_dropout, batch_first=True
        )
        self.dropout = nn.Dropout(dropout)
        self.ln_2 = nn.LayerNorm(width, eps=1e-6)
        hidden = round(width * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(width, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, width),
            nn.Dropout(dropout),
        )

    def forward(self, x: Tensor) -> Tensor:
        h = self.ln_1(x)
        h, _ = self.self_attention(h, h, h, need_weights=False)
        x = x + self.dropout(h)
        out: Tensor = x + self.mlp(self.ln_2(x))
        return out


class SmallViT(nn.Module):
    """ViT-Lite for small images: ``head(norm(blocks(embed(images)))[:, 0])``.

    Args:
        image_size: side of the square input images.
        patch_size: side of a patch; must divide ``image_size``.
        num_classes: outputs of the head.
        depth: blocks (6 in ViT-Lite-6/4).
        width: token width (256).
        heads: attention heads (4).
        mlp_ratio: MLP hidden width over ``width`` (2).
        in_channels: image channels.
        dropout: dropout on the embedded tokens, after the attention and in the MLP.
        attention_dropout: dropout on the attention weights.

    Raises:
        ValueError: for a size, count or ratio out of range, a ``patch_size`` that does not
            divide ``image_size`` or ``heads`` that do not divide ``width``.

    Example:
        >>> model = SmallViT(image_size=8, patch_size=4, depth=2, width=16, heads=2)
        >>> model(torch.randn(3, 3, 8, 8)).shape
        torch.Size([3, 10])
        >>> model.embed(torch.randn(3, 3, 8, 8)).shape   # [CLS] + 4 patch tokens
        torch.Size([3, 5, 16])
    """

    def __init__(
        self,
        image_size: int = 32,
        patch_size: int = 4,
        num_classes: int = 10,
        depth: int = 6,
        width: int = 256,
        heads: int = 4,
        mlp_ratio: float = 2.0,
        in_channels: int = 3,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        for name, value in (
            ("image_size", image_size),
            ("patch_size", patch_size),
            ("num_classes", num_classes),
            ("depth", depth),
            ("width", width),
            ("heads", heads),
            ("in_channels", in_channels),
        ):
            check_count(name, value, minimum=1)
        if image_size % patch_size:
            raise ValueError(f"patch_size={patch_size!r} must divide image_size={image_size!r}")
        if width % heads:
            raise ValueError(f"heads={heads!r} must divide width={width!r}")
        if isinstance(mlp_ratio, bool) or not isinstance(mlp_ratio, (int, float)) or mlp_ratio <= 0:
            raise ValueError(f"mlp_ratio must be a number > 0, got {mlp_ratio!r}")
        check_fraction("dropout", dropout, open_low=False, open_high=True)
        check_fraction("attention_dropout", attention_dropout, open_low=False, open_high=True)
        self.num_patches = (image_size // patch_size) ** 2
        self.patch_embed = nn.Conv2d(in_channels, width, patch_size, stride=patch_size)
        self.class_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embedding = nn.Parameter(torch.zeros(1, 1 + self.num_patches, width))
        self.pos_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            ViTBlock(width, heads, mlp_ratio, dropout, attention_dropout) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.head = nn.Linear(width, num_classes)
        self.apply(_init_weights)
        nn.init.trunc_normal_(self.pos_embedding, std=0.02)
        nn.init.trunc_normal_(self.class_token, std=0.02)

    def embed(self, images: Tensor) -> Tensor:
        """The tokens entering the first block: [CLS] first, positions added."""
        x = self.patch_embed(images).flatten(2).transpose(1, 2)
        x = torch.cat([self.class_token.expand(len(x), -1, -1), x], dim=1)
        tokens: Tensor = self.pos_dropout(x + self.pos_embedding)
        return tokens

    def classify(self, tokens: Tensor) -> Tensor:
        """The logits read from the [CLS] token of the last block's output."""
        logits: Tensor = self.head(self.norm(tokens)[:, 0])
        return logits

    def forward(self, images: Tensor) -> Tensor:
        x = self.embed(images)
        for block in self.blocks:
            x = block(x)
        return self.classify(x)


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
