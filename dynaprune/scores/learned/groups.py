"""Groups of samples and their labels: what the learned selector is trained against.

InstructionGPT-4 (Wei et al., 2023; waltonfuture/InstructionGPT-4, ``cluster/kmeans++/
kmeans_pp.py``) splits its 3,439 samples into 30 subsets by k-means++ on their CLIP image
embeddings, fine-tunes a model on each subset and labels the subset with that model's score;
``cluster/spectral/spectral_clustering.py`` makes the 10 clusters its selection draws from.

For classification a subset clustered on the features is nearly one class, and a model trained
on one class tells nothing about the subset's quality. :func:`mixed_groups` therefore clusters
*within each class* (k-means++ on the embedding) and makes group ``g`` of one cluster of every
class, so that each group covers the classes and groups differ in which part of each class they
hold. :func:`proxy_accuracy` labels a group with the accuracy, on a clean held-out split, of a
linear softmax probe trained on the group's penultimate features: a small proxy model that
costs a few hundred full-batch steps per group, not a training run.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from dynaprune._checks import check_count, check_positive_float

__all__ = ["class_clusters", "kmeans_pp", "mixed_groups", "proxy_accuracy"]


def kmeans_pp(x: Tensor, k: int, *, seed: int = 0, iters: int = 20) -> Tensor:
    """k-means with k-means++ seeding (Arthur and Vassilvitskii, 2007), from a local generator.

    Args:
        x: float ``(N, D)``, ``N >= k``.
        k: clusters, ``>= 1``.
        seed: seeds the generator of the k-means++ draws.
        iters: Lloyd iterations after seeding (an empty cluster keeps its centre).

    Returns:
        int64 ``(N,)`` cluster of each row, in ``[0, k)``.

    Example:
        >>> x = torch.tensor([[0.0], [0.1], [5.0], [5.1]])
        >>> ids = kmeans_pp(x, 2)
        >>> bool(ids[0] == ids[1]) and bool(ids[2] == ids[3]) and bool(ids[0] != ids[2])
        True
    """
    check_count("k", k, 1)
    check_count("iters", iters, 0)
    check_count("seed", seed, 0)
    if x.dim() != 2 or not x.is_floating_point():
        raise ValueError(f"x must be a floating (N, D) tensor, got shape {tuple(x.shape)}")
    n = x.shape[0]
    if k > n:
        raise ValueError(f"k must be <= the number of rows {n}, got {k}")
    generator = torch.Generator(device=x.device).manual_seed(seed)
    x = x.float()
    first = torch.randint(0, n, (1,), generator=generator, device=x.device)
    centres = x[first]
    nearest = torch.cdist(x, centres).squeeze(1).pow(2)
    for _ in range(1, k):
        weights = nearest if float(nearest.sum()) > 0 else torch.ones_like(nearest)
        pick = torch.multinomial(weights, 1, generator=generator)
        centres = torch.cat([centres, x[pick]])
        nearest = torch.minimum(nearest, torch.cdist(x, x[pick]).squeeze(1).pow(2))
    ids = torch.cdist(x, centres).argmin(1)
    for _ in range(iters):
        sums = torch.zeros_like(centres).index_add_(0, ids, x)
        counts = torch.bincount(ids, minlength=k).unsqueeze(1)
        centres = torch.where(counts > 0, sums / counts.clamp_min(1), centres)
        new = torch.cdist(x, centres).argmin(1)
        if torch.equal(new, ids):
            break
        ids = new
    return ids


def class_clusters(x: Tensor, labels: Tensor, k: int, *, seed: int = 0) -> Tensor:
    """k-means++ within each class: class ``c``'s clusters are ``c * k + j`` (``j < k``).

    A class with fewer than ``k`` samples gets one cluster per sample.

    Example:
        >>> x = torch.tensor([[0.0], [9.0], [0.0], [9.0]])
        >>> ids = class_clusters(x, torch.tensor([0, 0, 1, 1]), 2)
        >>> sorted(ids[:2].tolist()), sorted(ids[2:].tolist())
        ([0, 1], [2, 3])
    """
    labels = _check_labels(x, labels)
    check_count("k", k, 1)
    out = torch.empty(x.shape[0], dtype=torch.int64, device=x.device)
    for c in labels.unique().tolist():
        members = (labels == c).nonzero().view(-1)
        kc = min(k, members.numel())
        out[members] = c * k + kmeans_pp(x[members], kc, seed=seed + c)
    return out


def mixed_groups(x: Tensor, labels: Tensor, num_groups: int, *, seed: int = 0) -> Tensor:
    """Groups that each hold one k-means++ cluster of every class (see the module docstring).

    Class ``c``'s ``num_groups`` clusters go to the groups in an order drawn from a generator
    seeded with ``seed + c``, so group sizes average out over the classes.

    Returns:
        int64 ``(N,)`` group of each sample, in ``[0, num_groups)``.

    Example:
        >>> x = torch.tensor([0.0, 0.1, 5.0, 5.1, 9.0, 9.1]).repeat(2).view(-1, 1)
        >>> groups = mixed_groups(x, torch.arange(12) // 6, 3)  # classes 0 and 1
        >>> torch.bincount(groups).tolist()  # each group: a pair of each class
        [4, 4, 4]
    """
    labels = _check_labels(x, labels)
    check_count("num_groups", num_groups, 1)
    clusters = class_clusters(x, labels, num_groups, seed=seed)
    groups = torch.empty_like(clusters)
    for c in labels.unique().tolist():
        generator = torch.Generator().manual_seed(seed + c)
        order = torch.randperm(num_groups, generator=generator).to(x.device)
        members = labels == c
        groups[members] = order[clusters[members] - c * num_groups]
    return groups


def proxy_accuracy(
    features: Tensor,
    labels: Tensor,
    groups: Tensor,
    holdout: Tensor,
    holdout_labels: Tensor | None = None,
    *,
    num_classes: int | None = None,
    steps: int = 200,
    lr: float = 0.05,
) -> Tensor:
    """Each group's label: the held-out accuracy of a linear probe trained on its members.

    The probe is a zero-initialised linear softmax classifier on ``features``, trained with
    full-batch Adam for ``steps`` steps on the group's samples outside ``holdout``, and scored on
    the ``holdout`` samples with ``holdout_labels`` (clean labels; default ``labels``). Zero
    initialisation and full batches make it deterministic. All probes train at once (batched
    matrix products over the groups padded to the largest): ``steps`` passes over the ``N x F``
    features in all, then one over the held-out ones per group.

    Args:
        features: float ``(N, F)``, e.g. :attr:`Indicators.features`.
        labels: int64 ``(N,)`` training labels.
        groups: int64 ``(N,)`` group ids ``0 .. G-1``, e.g. from :func:`mixed_groups`.
        holdout: int64 indices of the held-out samples.
        holdout_labels: their clean labels, one per index; default ``labels[holdout]``.
        num_classes: outputs of the probe; default the largest label plus one.
        steps: Adam steps per probe, ``>= 1``.
        lr: Adam's learning rate.

    Returns:
        float32 ``(G,)`` accuracies in ``[0, 1]``.

    Raises:
        ValueError: for mismatched shapes, an empty group outside the held-out split, or an
            empty held-out split.

    Example:
        >>> x = torch.tensor([[1.0], [-1.0], [1.0], [-1.0], [1.0], [-1.0]])
        >>> y = torch.tensor([1, 0, 0, 1, 1, 0])  # group 1 is mislabelled
        >>> groups, held = torch.tensor([0, 0, 1, 1, 0, 1]), torch.tensor([4, 5])
        >>> proxy_accuracy(x, y, groups, held, steps=20).tolist()
        [1.0, 0.0]
    """
    labels = _check_labels(features, labels)
    groups = _check_labels(features, groups, "groups")
    check_count("steps", steps, 1)
    lr = check_positive_float("lr", lr)
    holdout = holdout.to(features.device, torch.int64).view(-1)
    if holdout.numel() == 0:
        raise ValueError("holdout must hold at least one sample index")
    target = labels[holdout] if holdout_labels is None else holdout_labels.to(labels.device)
    if target.shape != holdout.shape:
        raise ValueError(
            f"holdout_labels has {target.numel()} entries but holdout has {holdout.numel()}"
        )
    classes = int(max(labels.max(), target.max())) + 1 if num_classes is None else num_classes
    held = torch.zeros(features.shape[0], dtype=torch.bool, device=features.device)
    held[holdout] = True
    x = features.float()
    members = [((groups == g) & ~held).nonzero().view(-1) for g in range(int(groups.max()) + 1)]
    for g, m in enumerate(members):
        if m.numel() == 0:
            raise ValueError(f"group {g} has no samples outside the held-out split")
    # All probes at once, each group's members padded to the largest group: Adam is elementwise
    # and the loss a sum over groups, so every probe trains exactly as it would alone.
    sizes = torch.tensor([m.numel() for m in members], device=x.device)
    width = int(sizes.max())
    index = torch.stack([F.pad(m, (0, width - m.numel())) for m in members])  # (G, m)
    mask = torch.arange(width, device=x.device) < sizes[:, None]
    xg, yg = x[index], labels[index]
    weight = torch.zeros(len(members), x.shape[1], classes, device=x.device, requires_grad=True)
    bias = torch.zeros(len(members), 1, classes, device=x.device, requires_grad=True)
    opt = torch.optim.Adam([weight, bias], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            logits = torch.baddbmm(bias, xg, weight)
            ce = F.cross_entropy(logits.flatten(0, 1), yg.flatten(), reduction="none")
            (ce.view_as(mask).mul(mask).sum(1) / sizes).sum().backward()
            opt.step()
    with torch.no_grad():
        predicted = torch.einsum("hf,gfc->ghc", x[holdout], weight).add(bias).argmax(2)
        return (predicted == target).float().mean(1)


def _check_labels(x: Tensor, labels: Tensor, name: str = "labels") -> Tensor:
    if not isinstance(labels, Tensor) or labels.dim() != 1 or labels.is_floating_point():
        raise ValueError(f"{name} must be a 1-D integer tensor")
    if labels.numel() != x.shape[0]:
        raise ValueError(f"{name} has {labels.numel()} entries but there are {x.shape[0]} rows")
    if int(labels.min()) < 0:
        raise ValueError(f"{name} must be >= 0, got {int(labels.min())}")
    return labels.to(x.device, torch.int64)
