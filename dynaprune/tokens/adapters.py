"""How :class:`~dynaprune.tokens.TokenPruner` reads a Vision Transformer it is given.

A model is read, never changed: its modules are called in the order its own ``forward`` calls
them, and the attention is recomputed from the attention module's weights so that tokens can be
scored, dropped, merged or masked between the attention and the MLP of a block (where EViT, Peeling
the Onion and ToMe all reduce). Three kinds are read:

* torchvision's ``VisionTransformer`` (``EncoderBlock`` with ``nn.MultiheadAttention``). The
  patch embedding is its ``_process_input`` method, unchanged since torchvision 0.12.
* timm's ``VisionTransformer`` (``Block`` with ``Attention``), when timm is installed; its
  ``_pos_embed`` (the [CLS] token and positions) and ``forward_head`` are used as they are.
* :class:`~dynaprune.tokens.vit.SmallViT`.

Neither library is imported here: a model of theirs can only exist once they are.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from dynaprune.tokens.vit import SmallViT

__all__ = ["AttentionParts", "BlockParts", "ViTParts", "adapt_vit"]

_SUPPORTED = (
    "torchvision.models.VisionTransformer, timm.models.vision_transformer.VisionTransformer "
    "or dynaprune.tokens.SmallViT"
)


_MHA_BLOCK_PARTS = ("ln_1", "self_attention", "dropout", "ln_2", "mlp")


class AttentionParts:
    """The projections of one attention module, with its head count, scale and dropout."""

    def __init__(self, module: nn.Module, num_heads: int, head_dim: int, dropout: float) -> None:
        self.module: Any = module  # read by attribute, as its library names them
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.scale = head_dim**-0.5
        self.dropout = dropout

    def project(self, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Queries, keys and values ``(B, heads, N, head_dim)`` of the normed tokens ``h``."""
        raise NotImplementedError

    def output(self, o: Tensor, h: Tensor) -> Tensor:
        """The module's output ``(B, N, C)`` from the attended values ``o`` ``(B, heads, N, d)``."""
        raise NotImplementedError

    def _split(self, qkv: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b, n, _ = qkv.shape
        q, k, v = qkv.view(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return q, k, v


class _MultiheadAttention(AttentionParts):
    def project(self, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        m = self.module
        return self._split(nn.functional.linear(h, m.in_proj_weight, m.in_proj_bias))

    def output(self, o: Tensor, h: Tensor) -> Tensor:
        out: Tensor = self.module.out_proj(o.transpose(1, 2).flatten(2))
        return out


class _TimmAttention(AttentionParts):
    def project(self, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        m = self.module
        q, k, v = self._split(m.qkv(h))
        return m.q_norm(q), m.k_norm(k), v  # timm >= 0.9

    def output(self, o: Tensor, h: Tensor) -> Tensor:
        m = self.module
        x = o.transpose(1, 2).flatten(2)
        if getattr(m, "norm", None) is not None:
            x = m.norm(x)
        if getattr(m, "gate", None) is not None:  # newer timm: an optional sigmoid gate
            x = x * m.gate(h).sigmoid()
        return m.proj_drop(m.proj(x))  # type: ignore[no-any-return]


@dataclass
class BlockParts:
    """One block: ``x + after_attention(attention(norm1(x)))``, then the MLP likewise."""

    norm1: nn.Module
    attention: AttentionParts
    after_attention: Callable[[Tensor], Tensor]
    norm2: nn.Module
    mlp: nn.Module
    after_mlp: Callable[[Tensor], Tensor]


@dataclass
class ViTParts:
    """A model as ``classify(blocks(embed(images)))``, token 0 being its [CLS] token."""

    embed: Callable[[Tensor], Tensor]
    blocks: list[BlockParts]
    classify: Callable[[Tensor], Tensor]


def _identity(x: Tensor) -> Tensor:
    return x


def _cannot_wrap(index: int, module: Any, supported: str) -> TypeError:
    return TypeError(
        f"cannot wrap the attention of block {index}: {type(module).__module__}."
        f"{type(module).__qualname__}; supported: {supported}"
    )


def _mha_block(index: int, block: Any) -> BlockParts:
    """torchvision's ``EncoderBlock`` or a :class:`~dynaprune.tokens.vit.ViTBlock`."""
    missing = [a for a in _MHA_BLOCK_PARTS if not isinstance(getattr(block, a, None), nn.Module)]
    if missing:
        raise TypeError(
            f"cannot wrap block {index}: {type(block).__qualname__} has no {', '.join(missing)}; "
            "supported: torchvision's EncoderBlock and dynaprune.tokens.ViTBlock"
        )
    m = block.self_attention
    if not isinstance(m, nn.MultiheadAttention):
        raise _cannot_wrap(index, m, "torch.nn.MultiheadAttention")
    if not m.batch_first or not m._qkv_same_embed_dim or m.bias_k is not None or m.add_zero_attn:
        raise ValueError(
            f"cannot wrap the nn.MultiheadAttention of block {index}: it needs batch_first=True, "
            "equal query, key and value widths, no bias_k/bias_v and add_zero_attn=False, got "
            f"batch_first={m.batch_first}, kdim={m.kdim}, vdim={m.vdim}, "
            f"add_bias_kv={m.bias_k is not None}, add_zero_attn={m.add_zero_attn}"
        )
    attention = _MultiheadAttention(m, m.num_heads, m.head_dim, float(m.dropout))
    return BlockParts(block.ln_1, attention, block.dropout, block.ln_2, block.mlp, _identity)


def _timm_block(index: int, block: Any, timm_vit: Any) -> BlockParts:
    if type(block) is not timm_vit.Block:  # other block kinds order their parts differently
        raise TypeError(
            f"cannot wrap block {index}: {type(block).__qualname__}; supported: timm's "
            "vision_transformer.Block"
        )
    m = block.attn
    if type(m) is not timm_vit.Attention:
        raise _cannot_wrap(index, m, "timm.models.vision_transformer.Attention")
    head_dim = getattr(m, "head_dim", m.qkv.out_features // (3 * m.num_heads))
    attention = _TimmAttention(m, m.num_heads, head_dim, float(m.attn_drop.p))

    def after_attention(x: Tensor) -> Tensor:
        return block.drop_path1(block.ls1(x))  # type: ignore[no-any-return]

    def after_mlp(x: Tensor) -> Tensor:
        return block.drop_path2(block.ls2(x))  # type: ignore[no-any-return]

    return BlockParts(block.norm1, attention, after_attention, block.norm2, block.mlp, after_mlp)


def _torchvision(model: Any) -> ViTParts:
    if getattr(model, "class_token", None) is None:
        raise ValueError("model has no [CLS] token (class_token is None); token pruning scores it")

    def embed(images: Tensor) -> Tensor:
        x = model._process_input(images)  # the patch embedding, as VisionTransformer.forward
        x = model.encoder.pos_embedding + _cat_cls(model.class_token, x)
        return model.encoder.dropout(x)  # type: ignore[no-any-return]

    def classify(x: Tensor) -> Tensor:
        return model.heads(model.encoder.ln(x)[:, 0])  # type: ignore[no-any-return]

    blocks = [_mha_block(i, b) for i, b in enumerate(model.encoder.layers)]
    return ViTParts(embed, blocks, classify)


def _timm(model: Any, timm_vit: Any) -> ViTParts:
    if getattr(model, "cls_token", None) is None:
        raise ValueError("model has no [CLS] token (cls_token is None); token pruning scores it")
    if model.num_prefix_tokens != 1 or model.global_pool != "token" or model.attn_pool is not None:
        raise ValueError(
            "model must read its [CLS] token alone: num_prefix_tokens=1 (no register or "
            "distillation tokens) and global_pool='token', got "
            f"num_prefix_tokens={model.num_prefix_tokens}, global_pool={model.global_pool!r}"
        )

    def embed(images: Tensor) -> Tensor:
        x = model._pos_embed(model.patch_embed(images))  # [CLS] and positions, as timm does
        return model.norm_pre(model.patch_drop(x))  # type: ignore[no-any-return]

    def classify(x: Tensor) -> Tensor:
        return model.forward_head(model.norm(x))  # type: ignore[no-any-return]

    blocks = [_timm_block(i, b, timm_vit) for i, b in enumerate(model.blocks)]
    return ViTParts(embed, blocks, classify)


def _cat_cls(cls: Tensor, x: Tensor) -> Tensor:
    return torch.cat([cls.expand(len(x), -1, -1), x], dim=1)


def adapt_vit(model: nn.Module) -> ViTParts:
    """Read ``model`` as embedding, blocks and classifier; raise if it cannot be read.

    Raises:
        TypeError: for a model, block or attention module of a kind not supported.
        ValueError: for a supported kind configured without a [CLS] token read by the head, or
            an ``nn.MultiheadAttention`` that is not batch-first with packed projections.

    Example:
        >>> parts = adapt_vit(SmallViT(image_size=8, depth=3, width=16, heads=2))
        >>> len(parts.blocks), parts.blocks[0].attention.num_heads
        (3, 2)
    """
    if isinstance(model, SmallViT):
        blocks = [_mha_block(i, b) for i, b in enumerate(model.blocks)]
        return ViTParts(model.embed, blocks, model.classify)
    torchvision_vit = sys.modules.get("torchvision.models.vision_transformer")
    if torchvision_vit is not None and isinstance(model, torchvision_vit.VisionTransformer):
        return _torchvision(model)
    timm_vit = sys.modules.get("timm.models.vision_transformer")
    if timm_vit is not None and isinstance(model, timm_vit.VisionTransformer):
        return _timm(model, timm_vit)
    raise TypeError(f"cannot wrap a {type(model).__qualname__}; supported: {_SUPPORTED}")
