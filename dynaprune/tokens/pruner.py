"""Token- and attention-level pruning of a Vision Transformer during training.

The two finer levels of Peeling the Onion (Kong et al., AAAI 2023; ZLKong/Tri-Level-ViT
``models/models_attn_tok.py``, ``engine.py``), with EViT's fused token (Liang et al., ICLR 2022;
youweiliang/evit ``evit.py``) and two controls, random dropping and ToMe merging (Bolya et al.,
ICLR 2023; facebookresearch/ToMe). At each chosen block, between its attention and its MLP:

* ``mode="drop"``: keep the ``ceil(n * keep)`` patch tokens with the highest head-averaged [CLS]
  attention, drop the rest (the count compounds over the blocks: ``n`` is what is left).
* ``mode="fuse"``: the same, plus one token summing the dropped ones weighted by that attention.
* ``mode="random"``: keep as many, drawn uniformly (a control at the same cost).
* ``mode="tome"``: merge ``r`` tokens at every block by bipartite soft matching, with
  proportional attention (``r`` is a count, not scheduled: ToMe trains at a constant ``r``).
* ``mode="none"``: no token reduction (for the attention level alone).

``attn_keep`` adds the attention level: at the same blocks, after the tokens are reduced, each
patch query keeps its ``ceil(k * attn_keep)`` most attended keys among the ``k`` kept patch tokens
(the [CLS] row and column, and a fused token's, always kept), and the following blocks attend
through that mask until the next chosen block replaces it. The mask is dense, as in the paper: the
attention still computes every query-key product, so it saves no FLOPs; a block that builds the
mask also computes its attention explicitly (it needs the full matrix), the others stay on
:func:`~torch.nn.functional.scaled_dot_product_attention`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dynaprune._checks import check_bool, check_choice, check_count, check_fraction
from dynaprune.core.schedule import epoch_generator
from dynaprune.tokens.adapters import BlockParts, adapt_vit
from dynaprune.tokens.merge import merge_tokens, proportional_bias
from dynaprune.tokens.reduce import cls_attention, keep_count, keep_tokens, key_mask
from dynaprune.tokens.schedule import KeepRateSchedule, check_epoch

__all__ = ["MODES", "TokenPruner", "default_blocks"]

MODES = ("drop", "fuse", "random", "tome", "none")


def default_blocks(depth: int) -> tuple[int, ...]:
    """The papers' blocks, 0-based: 1-based positions ``depth * (1/3, 7/12, 5/6)``, rounded.

    EViT and Peeling the Onion reduce in blocks 4, 7 and 10 of DeiT's 12.

    Example:
        >>> default_blocks(12), default_blocks(6), default_blocks(2)
        ((3, 6, 9), (1, 3, 4), (0, 1))
    """
    check_count("depth", depth, minimum=1)
    return tuple(sorted({max(1, math.floor(depth * f + 0.5)) - 1 for f in (1 / 3, 7 / 12, 5 / 6)}))


class TokenPruner(nn.Module):
    """Wraps a ViT so that its training forward reduces tokens and attention; eval is unchanged.

    The wrapper holds the model (``wrapper.model``, the same parameters) and calls its modules;
    nothing of the model is replaced. In ``eval()`` mode it calls ``model`` itself unless
    ``prune_in_eval``: the papers evaluate pruned, at the target rates (Tri-Level-ViT
    ``engine.evaluate``; EViT's blocks default to the target), ToMe at its ``r``.

    Args:
        model: a torchvision or timm ``VisionTransformer`` or a
            :class:`~dynaprune.tokens.SmallViT`, with a [CLS] token read by the head.
        mode: one of :data:`MODES` (see the module's description).
        keep: target share of patch tokens kept at each chosen block, in ``(0, 1]``.
        blocks: 0-based indices of the blocks that reduce; default :func:`default_blocks`.
        attn_keep: target share of keys per query for the attention level, in ``(0, 1]``, or
            ``None`` for none.
        r: for ``mode="tome"``, tokens merged per block: one count for every block or one per
            block.
        prop_attn: ToMe's proportional attention (``+ log(size)`` on the keys).
        warmup_epochs: epochs with every token (10 in the papers), see :class:`KeepRateSchedule`.
        decay_epochs: epochs of the cosine from 1 to ``keep`` and ``attn_keep`` (100 there).
        prune_in_eval: reduce in ``eval()`` mode too, at the target rates.
        seed: seeds ``mode="random"``'s draws with the epoch set by :meth:`set_epoch`.

    Raises:
        ValueError: for a rate outside ``(0, 1]``, a block index past the model's depth, a model
            without a [CLS] token, ``r`` missing for ToMe (or given for another mode), or ToMe
            combined with the attention level.
        TypeError: for a model, block or attention module it cannot read.

    Example:
        >>> from dynaprune.tokens import SmallViT
        >>> model = SmallViT(image_size=16, depth=6, width=32, heads=2)
        >>> pruner = TokenPruner(model, mode="fuse", keep=0.5, warmup_epochs=1, decay_epochs=2)
        >>> pruner.set_epoch(3)
        >>> logits = pruner(torch.randn(2, 3, 16, 16))
        >>> pruner.last_tokens     # patch tokens entering each block: 16, then 8 + 1 fused, ...
        [16, 16, 9, 9, 6, 4]
    """

    def __init__(
        self,
        model: nn.Module,
        mode: str = "drop",
        keep: float = 0.7,
        *,
        blocks: Sequence[int] | None = None,
        attn_keep: float | None = None,
        r: int | Sequence[int] | None = None,
        prop_attn: bool = True,
        warmup_epochs: int = 10,
        decay_epochs: int = 100,
        prune_in_eval: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.mode = check_choice("mode", mode, MODES)
        check_fraction("keep", keep, open_low=True, open_high=False)
        if attn_keep is not None:
            check_fraction("attn_keep", attn_keep, open_low=True, open_high=False)
        self.schedule = KeepRateSchedule(keep, warmup_epochs, decay_epochs)
        self.attn_schedule = (
            None if attn_keep is None else KeepRateSchedule(attn_keep, warmup_epochs, decay_epochs)
        )
        depth = len(adapt_vit(model).blocks)  # raises for what it cannot read
        self.blocks = _check_blocks(blocks, depth)
        self.r = _check_r(r, mode, depth)
        if mode == "tome" and attn_keep is not None:
            raise ValueError(
                f"attn_keep={attn_keep!r} combines with mode 'drop', 'fuse', 'random' or "
                "'none', not 'tome'"
            )
        self.prop_attn = check_bool("prop_attn", prop_attn)
        self.prune_in_eval = check_bool("prune_in_eval", prune_in_eval)
        self.seed = check_count("seed", seed)
        self.model = model
        self.epoch = 0.0
        self.last_tokens: list[int] = []
        self._generator: torch.Generator | None = None

    @property
    def keep_rate(self) -> float:
        """The token keep rate of the epoch set by :meth:`set_epoch`."""
        return self.schedule(self.epoch)

    @property
    def attn_keep_rate(self) -> float | None:
        """The attention keep rate of the epoch set by :meth:`set_epoch`, or ``None``."""
        return None if self.attn_schedule is None else self.attn_schedule(self.epoch)

    def set_epoch(self, epoch: float) -> None:
        """Set the (whole or fractional) epoch that drives the keep rates and random draws."""
        epoch = check_epoch(epoch)
        if int(epoch) != int(self.epoch):
            self._generator = None
        self.epoch = epoch

    def get_extra_state(self) -> dict[str, Any]:
        """The epoch, saved in :meth:`state_dict` beside the model's parameters."""
        return {"epoch": self.epoch}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore the epoch (``0`` for a state without one), as :meth:`load_state_dict` does."""
        self.epoch = check_epoch(state.get("epoch", 0.0))
        self._generator = None

    def forward(self, images: Tensor) -> Tensor:
        if not self.training and not self.prune_in_eval:
            return self.model(images)  # type: ignore[no-any-return]
        if self.training:
            keep, attn_keep = self.keep_rate, self.attn_keep_rate
        else:
            keep = self.schedule.target
            attn_keep = None if self.attn_schedule is None else self.attn_schedule.target
        parts = adapt_vit(self.model)
        x = parts.embed(images)
        size: Tensor | None = None
        mask: Tensor | None = None
        self.last_tokens = []
        for index, block in enumerate(parts.blocks):
            self.last_tokens.append(x.shape[1] - 1)
            x, size, mask = self._block(index, block, x, size, mask, keep, attn_keep)
        return parts.classify(x)

    def _block(
        self,
        index: int,
        block: BlockParts,
        x: Tensor,
        size: Tensor | None,
        mask: Tensor | None,
        keep: float,
        attn_keep: float | None,
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        attention = block.attention
        h = block.norm1(x)
        q, k, v = attention.project(h)
        bias: Tensor | None = mask
        if size is not None and self.prop_attn:
            bias = proportional_bias(size).to(q.dtype)
        n = x.shape[1] - 1
        chosen = index in self.blocks
        num_keep = keep_count(n, keep)
        reduce = chosen and self.mode in ("drop", "fuse", "random") and num_keep < n
        build_mask = chosen and attn_keep is not None and attn_keep < 1.0
        dropout = attention.dropout if self.training else 0.0
        scores: Tensor | None = None
        averaged: Tensor | None = None
        if build_mask:  # the mask needs the whole (head-averaged) attention matrix
            logits = (q * attention.scale) @ k.transpose(-2, -1)
            if mask is not None:
                logits = logits.masked_fill(~mask, -math.inf)
            weights = logits.softmax(-1)
            out = F.dropout(weights, dropout, self.training) @ v
            averaged = weights.mean(1)
            scores = averaged[:, 0, 1:]
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout)
            if reduce and self.mode != "random":
                # The [CLS] row is never masked, so its score needs no mask. Only fusing uses
                # the scores' values (and their gradient); dropping uses their order.
                with torch.set_grad_enabled(self.mode == "fuse" and torch.is_grad_enabled()):
                    scores = cls_attention(q, k, attention.scale)
        x = x + block.after_attention(attention.output(out, h))
        idx: Tensor | None = None
        if reduce:
            if self.mode == "random":
                scores = torch.rand(len(x), n, generator=self._draws(x.device), device=x.device)
            assert scores is not None
            x, idx = keep_tokens(x, scores, num_keep, fuse=self.mode == "fuse")
        elif self.mode == "tome" and self.r[index] > 0:
            x, size = merge_tokens(x, k.mean(1), size, self.r[index])
        if build_mask:
            assert attn_keep is not None and averaged is not None
            if idx is None:
                idx = torch.arange(n, device=x.device).expand(len(x), n)
            mask = key_mask(averaged, idx, attn_keep, extra=x.shape[1] - 1 - idx.shape[1])
        elif reduce:  # an old mask no longer fits the tokens (only when attn_keep is 1 here)
            mask = None
        x = x + block.after_mlp(block.mlp(block.norm2(x)))
        return x, size, mask

    def _draws(self, device: torch.device) -> torch.Generator:
        if self._generator is None or self._generator.device != device:
            self._generator = epoch_generator(self.seed, int(self.epoch), device)
        return self._generator

    def extra_repr(self) -> str:
        rates = f"keep={self.schedule.target}, attn_keep={self.attn_keep_rate!r}"
        return f"mode={self.mode!r}, {rates}, blocks={list(self.blocks)}, epoch={self.epoch}"


def _check_blocks(blocks: Sequence[int] | None, depth: int) -> tuple[int, ...]:
    if blocks is None:
        return default_blocks(depth)
    if isinstance(blocks, (str, bytes)) or not isinstance(blocks, Sequence) or not blocks:
        raise ValueError(f"blocks must be a non-empty sequence of block indices, got {blocks!r}")
    for block in blocks:
        check_count("blocks index", block)
        if block >= depth:
            raise ValueError(
                f"blocks index {block} is past the model's depth {depth} (0-based: 0 to "
                f"{depth - 1})"
            )
    if len(set(blocks)) != len(blocks):
        raise ValueError(f"blocks must be distinct, got {list(blocks)!r}")
    return tuple(sorted(blocks))


def _check_r(r: int | Sequence[int] | None, mode: str, depth: int) -> tuple[int, ...]:
    if mode != "tome":
        if r is not None:
            raise ValueError(f"r={r!r} is ToMe's merge count; it needs mode='tome', got {mode!r}")
        return (0,) * depth
    if r is None:
        raise ValueError("mode='tome' needs r, the tokens merged per block (see matching_r)")
    counts = [r] * depth if isinstance(r, int) and not isinstance(r, bool) else r
    if isinstance(counts, (str, bytes)) or not isinstance(counts, Sequence):
        raise ValueError(f"r must be a count or one count per block, got {r!r}")
    if len(counts) != depth:
        raise ValueError(f"r must have one count per block ({depth}), got {len(counts)}: {r!r}")
    return tuple(check_count("r", c) for c in counts)
