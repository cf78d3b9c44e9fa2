"""Token merging (ToMe), the strongest published alternative to dropping tokens, as a control.

Bolya et al., "Token Merging: Your ViT But Faster", ICLR 2023; reference code
facebookresearch/ToMe, ``tome/merge.py`` (``bipartite_soft_matching``, ``merge_wavg``) and
``tome/patch/timm.py`` (where it runs). After each block's attention, the tokens are split
alternately into sets A and B; every token of A is matched to its most similar token of B by the
cosine similarity of the keys averaged over heads; the ``r`` best-matched tokens of A are merged
into their partners by an average weighted by token size (how many patches a token stands for),
and the next blocks add ``log(size)`` to the attention logits of each key ("proportional
attention"). The [CLS] token is never merged. ``r`` is capped at half the tokens, as there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from dynaprune.tokens.reduce import keep_count

__all__ = ["matching_r", "merge_tokens", "proportional_bias"]


def merge_tokens(x: Tensor, metric: Tensor, size: Tensor | None, r: int) -> tuple[Tensor, Tensor]:
    """Merge ``r`` tokens of ``x`` by bipartite soft matching on ``metric``.

    Args:
        x: tokens ``(B, N, C)``, the [CLS] token first.
        metric: ``(B, N, c)``, the keys averaged over heads.
        size: ``(B, N, 1)``, patches per token, or ``None`` for all ones.
        r: tokens to remove, at most ``(N - 1) // 2`` (larger values are capped, as in ToMe).

    Returns:
        The merged tokens ``(B, N - r, C)`` (the unmerged tokens of set A, [CLS] first, then
        set B) and their sizes ``(B, N - r, 1)``.

    Example:
        >>> x = torch.tensor([[[0.0], [1.0], [2.0], [1.1], [5.0]]])
        >>> metric = torch.tensor([[[1.0, 0.0], [0, 1], [1, 0], [0, 1], [1, 1]]])
        >>> merged, size = merge_tokens(x, metric, None, 1)   # token 2 joins token 1 or 3
        >>> merged.shape, size.flatten().tolist()
        (torch.Size([1, 4, 1]), [1.0, 1.0, 2.0, 1.0])
    """
    r = min(r, (x.shape[1] - 1) // 2)
    if size is None:
        size = torch.ones_like(x[..., :1])
    if r <= 0:
        return x, size
    with torch.no_grad():  # the matching is a choice: no gradient, as in ToMe
        unit = metric / metric.norm(dim=-1, keepdim=True)
        scores = unit[:, ::2] @ unit[:, 1::2].transpose(-1, -2)
        scores[:, 0, :] = -math.inf  # the [CLS] token (first of set A) is never merged
        best, partner = scores.max(dim=-1)
        order = best.argsort(dim=-1, descending=True)
        merged_src = order[:, :r]
        kept_src = order[:, r:].sort(dim=-1).values  # sorted: [CLS] stays first
        dst = partner.gather(1, merged_src)

    def combine(values: Tensor) -> Tensor:
        a, b = values[:, ::2], values[:, 1::2]
        channels = values.shape[-1]
        unmerged = a.gather(1, kept_src.unsqueeze(-1).expand(-1, -1, channels))
        src = a.gather(1, merged_src.unsqueeze(-1).expand(-1, -1, channels))
        b = b.scatter_reduce(1, dst.unsqueeze(-1).expand(-1, -1, channels), src, reduce="sum")
        return torch.cat([unmerged, b], dim=1)

    total = combine(x * size)
    new_size = combine(size)
    return total / new_size, new_size


def proportional_bias(size: Tensor) -> Tensor:
    """ToMe's proportional attention: ``log(size)`` added to each key's logit, ``(B, 1, 1, N)``.

    A token standing for ``s`` patches then weighs in the softmax as ``s`` copies of itself.

    Example:
        >>> proportional_bias(torch.tensor([[[1.0], [2.0]]])).shape
        torch.Size([1, 1, 1, 2])
    """
    return size.log()[:, None, None, :, 0]


def _drop_counts(patches: int, depth: int, keep: float, blocks: Sequence[int]) -> list[int]:
    counts, n = [], patches
    for block in range(depth):
        counts.append(n)
        if block in blocks:
            n = keep_count(n, keep)
    return counts


def _tome_counts(patches: int, depth: int, r: int) -> list[int]:
    counts, n = [], patches + 1
    for _ in range(depth):
        counts.append(n - 1)
        n -= min(r, (n - 1) // 2)
    return counts


def matching_r(patches: int, depth: int, keep: float, blocks: Sequence[int]) -> int:
    """The constant ToMe ``r`` whose tokens per block best match dropping at ``keep``.

    Matches the total of patch tokens entering the blocks, a proxy for their cost, with that of
    :func:`~dynaprune.tokens.reduce.keep_tokens` at ``blocks`` (without a fused token).

    Example:
        >>> matching_r(64, 6, 0.5, (1, 3, 4))
        11
    """
    target = sum(_drop_counts(patches, depth, keep, blocks))
    return min(
        range(patches // 2 + 1), key=lambda r: abs(sum(_tome_counts(patches, depth, r)) - target)
    )
