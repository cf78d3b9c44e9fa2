"""Cluster-proportional top-k: the selection rule of InstructionGPT-4, at any keep ratio.

InstructionGPT-4 (Wei et al., 2023; waltonfuture/InstructionGPT-4, ``selector/eval_clus.py``)
clusters the samples (spectral clustering, 10 clusters), takes from each cluster its top scores
in proportion to its size (``int(204 * size / 3439)``, at least one) and keeps the top 200 of
those. Two exact forms here:

* :func:`cluster_top_k` — exactly ``num_keep`` samples, each cluster's share by largest
  remainders: :class:`~dynaprune.StaticPolicy` with the clusters as its ``labels`` and
  ``class_balanced=True`` is this rule, and is what runs it (one rule, one place).
* :func:`proportional_scores` — scores whose plain top-k is cluster-proportional at *every* k
  (each cluster within one sample of its share), for a score-only consumer such as the
  benchmark's static methods, and for :class:`~dynaprune.StaticPolicy` at any budget.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dynaprune._checks import check_count, check_vector
from dynaprune.core.statistics import LossStatistics
from dynaprune.policies.static import StaticPolicy

__all__ = ["cluster_top_k", "proportional_scores"]


def _check(scores: Tensor, clusters: Tensor) -> tuple[Tensor, Tensor]:
    scores = check_vector("scores", scores, floating=True)
    clusters = check_vector("clusters", clusters, floating=False).to(scores.device, torch.int64)
    if clusters.numel() != scores.numel():
        raise ValueError(f"clusters has {clusters.numel()} entries but scores has {scores.numel()}")
    if bool(scores.isnan().any()):
        raise ValueError("scores must not contain NaN")
    return scores, clusters


def cluster_top_k(scores: Tensor, clusters: Tensor, num_keep: int, *, seed: int = 0) -> Tensor:
    """The top ``num_keep`` scores with every cluster's share of them proportional to its size.

    Args:
        scores: one per sample, higher kept first.
        clusters: integer cluster of each sample.
        num_keep: samples kept, ``0 <= num_keep <= N``.
        seed: breaks ties between equal scores.

    Returns:
        int64 sorted indices of exactly ``num_keep`` samples.

    Example:
        >>> scores = torch.tensor([0.9, 0.8, 0.7, 0.1, 0.2, 0.3])
        >>> cluster_top_k(scores, torch.tensor([0, 0, 0, 1, 1, 1]), 2).tolist()
        [0, 5]
    """
    scores, clusters = _check(scores, clusters)
    n = scores.numel()
    check_count("num_keep", num_keep, 0)
    if num_keep > n:
        raise ValueError(f"num_keep must be <= the number of samples {n}, got {num_keep}")
    if num_keep == 0:
        return torch.zeros(0, dtype=torch.int64, device=scores.device)
    policy = StaticPolicy(scores, labels=clusters, class_balanced=True, seed=seed)
    stats = LossStatistics(n, device=scores.device)
    generator = torch.Generator(device=scores.device).manual_seed(seed)
    return policy.select(stats, num_keep, generator).indices.sort().values


def proportional_scores(scores: Tensor, clusters: Tensor) -> Tensor:
    """``1 - (r + 1/2) / n_c`` for the sample ranked ``r``-th (from 0) of its cluster of ``n_c``.

    The top ``k`` of these takes ``round(k * n_c / N)`` samples of cluster ``c``, give or take
    one, each cluster's best first: the cluster-proportional rule at every ``k`` at once. Ties
    within a cluster go to the lower index.

    Example:
        >>> scores = torch.tensor([0.9, 0.8, 0.7, 0.1, 0.2, 0.3])
        >>> out = proportional_scores(scores, torch.tensor([0, 0, 0, 1, 1, 1]))
        >>> [round(v, 3) for v in out.tolist()]
        [0.833, 0.5, 0.167, 0.167, 0.5, 0.833]
    """
    scores, clusters = _check(scores, clusters)
    n = scores.numel()
    # Rank within each cluster: sort by score (descending, stable), then stably by cluster.
    order = torch.sort(scores, descending=True, stable=True).indices
    order = order[torch.sort(clusters[order], stable=True).indices]
    sizes = torch.bincount(clusters)
    start = torch.cumsum(sizes, 0) - sizes
    cluster = clusters[order]
    rank = torch.arange(n, device=scores.device) - start[cluster]
    out = torch.empty(n, device=scores.device)
    out[order] = 1.0 - (rank.double() + 0.5).div(sizes[cluster].double()).float()
    return out
