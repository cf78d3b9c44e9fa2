"""The learned selector: per-sample scores whose mean over a group regresses the group's label.

InstructionGPT-4 (Wei et al., 2023; waltonfuture/InstructionGPT-4, ``selector/model/models.py``
and ``selector/train.py``): self-attention layers, each ``x <- Linear(x + Attention(x, x, x))``,
then a linear head giving one score per sample; the mean of a subset's scores is regressed on
the subset's label (MSE, Adam, lr 0.01, 20 epochs of one batch of the 30 subsets). Differences
here, each for a reason:

* Attention runs over the members of one group (``batch_first``). The published model feeds
  ``(subsets, samples, features)`` to ``nn.MultiheadAttention``, whose default layout is
  sequence-first, so in training it attends *across the subsets* at each sample position, and at
  selection over all samples at once; an ``N x N`` attention is out of reach at 50,000 samples.
* Each step sees every group as a random set of ``set_size`` members (drawn with replacement):
  the group mean is estimated from a sample, which regularises a model fit on 30 labels, and a
  sample is later scored within random sets of its own group, the context it was trained in.
* Labels are standardised, so the learning rate does not depend on their scale (the ranking
  does not depend on it either).

:class:`LinearSelector` is the simple baseline: a weighted sum of the indicators.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dynaprune._checks import check_count, check_positive_float

__all__ = ["SELECTORS", "AttentionSelector", "LinearSelector", "fit_selector", "selector_scores"]

#: The selector kinds by name.
SELECTORS = ("attention", "linear")


class AttentionSelector(nn.Module):
    """Self-attention layers and a linear head over a set of per-sample vectors (the paper's).

    Args:
        dim: features per sample.
        layers: attention layers (2 in the paper).
        heads: attention heads; must divide ``dim``.

    Example:
        >>> AttentionSelector(6)(torch.randn(3, 5, 6)).shape
        torch.Size([3, 5])
    """

    def __init__(self, dim: int, layers: int = 2, heads: int = 1) -> None:
        super().__init__()
        check_count("dim", dim, 1)
        check_count("layers", layers, 1)
        check_count("heads", heads, 1)
        if dim % heads:
            raise ValueError(f"heads must divide dim={dim}, got {heads}")
        self.attention = nn.ModuleList(
            nn.MultiheadAttention(dim, heads, batch_first=True) for _ in range(layers)
        )
        self.linears = nn.ModuleList(nn.Linear(dim, dim) for _ in range(layers))
        self.head = nn.Linear(dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Scores ``(B, S)`` of the ``(B, S, dim)`` sets of samples."""
        for attention, linear in zip(self.attention, self.linears, strict=True):
            mixed, _ = attention(x, x, x, need_weights=False)
            x = linear(x + mixed)
        out: Tensor = self.head(x).squeeze(-1)
        return out


class LinearSelector(nn.Module):
    """One weight per indicator: ``score = w . x + b``, each sample alone.

    Example:
        >>> LinearSelector(6)(torch.randn(3, 5, 6)).shape
        torch.Size([3, 5])
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        check_count("dim", dim, 1)
        self.head = nn.Linear(dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.head(x).squeeze(-1)
        return out


def _members(groups: Tensor) -> list[Tensor]:
    count = int(groups.max()) + 1
    members = [(groups == g).nonzero().view(-1) for g in range(count)]
    empty = [g for g, m in enumerate(members) if m.numel() == 0]
    if empty:
        raise ValueError(
            f"groups must number their groups 0..{count - 1}; group {empty[0]} is empty"
        )
    return members


def fit_selector(
    kind: str,
    values: Tensor,
    groups: Tensor,
    targets: Tensor,
    *,
    epochs: int = 200,
    lr: float = 0.01,
    set_size: int = 128,
    seed: int = 0,
) -> nn.Module:
    """Fits a selector so that the mean score of a group's members regresses the group's label.

    Args:
        kind: ``"attention"`` (:class:`AttentionSelector`) or ``"linear"``
            (:class:`LinearSelector`).
        values: float ``(N, D)`` per-sample indicators (:attr:`Indicators.values`).
        groups: int64 ``(N,)`` group of each sample, ``0 .. G-1``.
        targets: float ``(G,)`` group labels (e.g. :func:`proxy_accuracy`).
        epochs: Adam steps, each over every group once.
        lr: Adam's learning rate (0.01 in the paper).
        set_size: members drawn (with replacement) to stand for a group in a step.
        seed: seeds the initialisation (under a forked global RNG) and the draws.

    Returns:
        The fitted selector, in eval mode.

    Raises:
        ValueError: for an unknown ``kind``, mismatched shapes, an empty group, arguments out
            of range, or non-finite targets.

    Example:
        >>> x = torch.randn(60, 3)
        >>> groups = torch.arange(60) % 6
        >>> means = torch.stack([x[groups == g, 0].mean() for g in range(6)])
        >>> fit_selector("linear", x, groups, means, epochs=5)(x[None]).shape
        torch.Size([1, 60])
    """
    if kind not in SELECTORS:
        raise ValueError(f"kind must be one of {list(SELECTORS)}, got {kind!r}")
    if values.dim() != 2 or not values.is_floating_point():
        raise ValueError(f"values must be a floating (N, D) tensor, got {tuple(values.shape)}")
    if groups.shape != values.shape[:1]:
        raise ValueError(f"groups has {groups.numel()} entries but values has {len(values)} rows")
    check_count("epochs", epochs, 1)
    lr = check_positive_float("lr", lr)
    check_count("set_size", set_size, 1)
    check_count("seed", seed, 0)
    members = _members(groups)
    targets = targets.to(values.device, torch.float32).view(-1)
    if targets.numel() != len(members):
        raise ValueError(f"targets has {targets.numel()} entries for {len(members)} groups")
    if not bool(targets.isfinite().all()):
        raise ValueError("targets must be finite")
    std = targets.std(unbiased=False)
    goal = (targets - targets.mean()) / (std if float(std) > 0 else 1.0)
    generator = torch.Generator(device=values.device).manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        dim = values.shape[1]
        model = AttentionSelector(dim) if kind == "attention" else LinearSelector(dim)
    model = model.to(values.device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    with torch.enable_grad():
        for _ in range(epochs):
            picks = [
                m[torch.randint(0, m.numel(), (set_size,), generator=generator, device=m.device)]
                for m in members
            ]
            sets = values[torch.stack(picks)]  # (G, set_size, D)
            opt.zero_grad(set_to_none=True)
            F.mse_loss(model(sets).mean(1), goal).backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def selector_scores(
    model: nn.Module, values: Tensor, groups: Tensor, *, set_size: int = 128, seed: int = 0
) -> Tensor:
    """Every sample's score, read within random sets of at most ``set_size`` of its group.

    Example:
        >>> x = torch.randn(10, 3)
        >>> selector_scores(LinearSelector(3), x, torch.zeros(10, dtype=torch.int64)).shape
        torch.Size([10])
    """
    check_count("set_size", set_size, 1)
    if groups.shape != values.shape[:1]:
        raise ValueError(f"groups has {groups.numel()} entries but values has {len(values)} rows")
    generator = torch.Generator(device=values.device).manual_seed(seed)
    out = torch.empty(values.shape[0], device=values.device)
    model.eval()
    for m in _members(groups):
        shuffled = m[torch.randperm(m.numel(), generator=generator, device=m.device)]
        for part in shuffled.split(set_size):
            out[part] = model(values[part][None]).squeeze(0).float()
    return out
