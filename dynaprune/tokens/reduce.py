"""Token and attention reduction as pure functions on ``(batch, tokens, channels)`` tensors.

Token 0 is the [CLS] token everywhere: it is never scored, dropped or masked.

* :func:`cls_attention` — the head-averaged attention of the [CLS] query over the patch tokens,
  computed from that one query (``O(N d)``), so the block's own attention can stay on
  :func:`torch.nn.functional.scaled_dot_product_attention`. It equals row 0 of the full
  softmax, gradient included.
* :func:`keep_tokens` — keep the ``k`` best-scored patch tokens: ``fuse=False`` drops the rest
  (Peeling the Onion, ZLKong/Tri-Level-ViT ``models/models_attn_tok.py``: top-k indices of the
  [CLS] attention, no gradient through the choice); ``fuse=True`` also appends one token, the
  sum of the dropped tokens weighted by their [CLS] attention (EViT, youweiliang/evit
  ``evit.py``, ``Block.forward``: the weights are not renormalised and carry the gradient into
  the attention).
* :func:`key_mask` — the attention level of Peeling the Onion (``Block.forward``, "Attention
  Prune"): per query, the keys whose head-averaged attention reaches the ``k``-th largest of its
  row (ties kept), among the kept patch tokens; the [CLS] row and column are always kept.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["cls_attention", "keep_count", "keep_tokens", "key_mask"]

_TOLERANCE = 1e-9  # so that ceil(0.7 * 10) is 7, not 8 as in float arithmetic


def keep_count(n: int, keep: float) -> int:
    """``ceil(n * keep)``, the tokens (or keys) kept of ``n``; at least 1 when ``n >= 1``.

    Example:
        >>> keep_count(64, 0.7), keep_count(10, 0.7), keep_count(3, 0.01)
        (45, 7, 1)
    """
    return min(n, max(1, math.ceil(n * keep - _TOLERANCE))) if n > 0 else 0


def cls_attention(q: Tensor, k: Tensor, scale: float, bias: Tensor | None = None) -> Tensor:
    """The [CLS] query's attention over the patch tokens, averaged over heads.

    Args:
        q: queries ``(B, H, N, d)``; only ``q[:, :, :1]`` is used.
        k: keys ``(B, H, N, d)``.
        scale: the attention's scale, usually ``d ** -0.5``.
        bias: an additive bias broadcastable to ``(B, H, 1, N)`` (e.g. ToMe's log sizes).

    Returns:
        ``(B, N - 1)``: the softmax row of the [CLS] token without its own column, averaged over
        heads, as ``attn[:, :, 0, 1:].mean(1)`` in EViT and Peeling the Onion.

    Example:
        >>> q, k = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 5, 4)
        >>> full = (q @ k.transpose(-2, -1) * 0.5).softmax(-1)[:, :, 0, 1:].mean(1)
        >>> torch.allclose(cls_attention(q, k, 0.5), full)
        True
    """
    logits = (q[:, :, :1] * scale) @ k.transpose(-2, -1)  # (B, H, 1, N)
    if bias is not None:
        logits = logits + bias
    return logits.softmax(-1)[:, :, 0, 1:].mean(1)


def keep_tokens(x: Tensor, scores: Tensor, num_keep: int, *, fuse: bool) -> tuple[Tensor, Tensor]:
    """Keep the [CLS] token and the ``num_keep`` patch tokens with the highest ``scores``.

    Args:
        x: tokens ``(B, 1 + n, C)``, the [CLS] token first.
        scores: ``(B, n)``, one per patch token; only their order matters unless ``fuse``.
        num_keep: patch tokens kept, ``1 <= num_keep <= n``.
        fuse: append the dropped tokens' sum weighted by their scores as one more token.

    Returns:
        The new tokens ``(B, 1 + num_keep [+ 1], C)`` (the kept ones in descending score order,
        then the fused one) and the kept patch tokens' positions ``(B, num_keep)`` in ``x[:, 1:]``.

    Example:
        >>> x = torch.arange(5.0).view(1, 5, 1)          # [CLS] = 0, patches 1..4
        >>> s = torch.tensor([[0.1, 0.4, 0.2, 0.3]])
        >>> kept, idx = keep_tokens(x, s, 2, fuse=True)
        >>> kept.flatten().tolist(), idx.tolist()       # 1*0.1 + 3*0.2 fused
        ([0.0, 2.0, 4.0, 0.7000000476837158], [[1, 3]])
    """
    idx = scores.detach().topk(num_keep, dim=1).indices  # the choice carries no gradient
    patches = x[:, 1:]
    kept = patches.gather(1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
    parts = [x[:, :1], kept]
    if fuse and num_keep < patches.shape[1]:
        dropped = torch.ones_like(scores).scatter_(1, idx, 0.0)
        weights = (scores * dropped).unsqueeze(-1).to(x.dtype)
        parts.append((patches * weights).sum(1, keepdim=True))
    return torch.cat(parts, dim=1), idx


def key_mask(attn: Tensor, idx: Tensor, keep: float, extra: int = 0) -> Tensor:
    """The attention-level mask over the tokens kept by :func:`keep_tokens`.

    Args:
        attn: the block's head-averaged attention ``(B, 1 + n, 1 + n)`` before token reduction.
        idx: kept patch positions ``(B, k)`` in ``x[:, 1:]``, as :func:`keep_tokens` returns.
        keep: share of keys each patch query keeps, in ``(0, 1]``: ``ceil(k * keep)``.
        extra: tokens appended after the kept ones (EViT's fused token), kept like [CLS].

    Returns:
        A boolean mask ``(B, 1, 1 + k + extra, 1 + k + extra)``, ``True`` where a query (row)
        may attend to a key (column), for ``scaled_dot_product_attention``.

    Example:
        >>> attn = torch.tensor([[[.4, .3, .2, .1], [.1, .6, .2, .1], [.1, .1, .1, .7],
        ...                       [.2, .2, .5, .1]]])
        >>> kept = torch.tensor([[2, 0]])       # patches 2 and 0 kept, 1 key each of the 2
        >>> key_mask(attn, kept, 0.5)[0, 0].int().tolist()
        [[1, 1, 1], [1, 0, 1], [1, 0, 1]]
    """
    batch, k = idx.shape
    patch = attn[:, 1:, 1:]
    rows = patch.gather(1, idx.unsqueeze(-1).expand(-1, -1, patch.shape[-1]))
    sub = rows.gather(2, idx.unsqueeze(1).expand(-1, k, -1))  # (B, k, k)
    kth = sub.topk(keep_count(k, keep), dim=-1).values[..., -1:]
    size = 1 + k + extra
    mask = torch.ones(batch, size, size, dtype=torch.bool, device=attn.device)
    mask[:, 1 : 1 + k, 1 : 1 + k] = sub >= kth
    return mask.unsqueeze(1)
