"""Coreset selection orders on embeddings: herding and k-center greedy.

* :func:`herding_order` — kernel herding (Welling, "Herding Dynamical Weights to Learn", ICML
  2009; Chen, Welling and Smola, UAI 2010): greedily add the sample that brings the mean of the
  selected embeddings closest to the mean of all of them. (DeepCore's implementation takes the
  *farthest* sample at this step, the opposite rule.)
* :func:`k_center_order` — k-center greedy (Sener and Savarese, "Active Learning for
  Convolutional Neural Networks: A Core-Set Approach", ICLR 2018): repeatedly add the sample
  farthest from every sample selected so far.

An order is a permutation prefix: position 0 is chosen first. :func:`scores_from_order` turns it
into scores for :class:`dynaprune.policies.static.StaticPolicy` (earlier = higher), and
:func:`herding_scores` / :func:`k_center_scores` do both, optionally within each class.
:func:`embeddings` records a model's features, by default the input of its last linear layer.

Each greedy step is one matrix-vector product over the ``(N, D)`` embeddings and a few ``O(N)``
passes, on the embeddings' device and without host syncs, so memory is ``N * D`` plus a few
``N``-vectors (never ``N x N``) and ``num`` steps cost ``O(num * N * D)``: compute only the
prefix you will keep. Equal costs go to the lowest index.
"""

from __future__ import annotations

import math
import time

import torch
from torch import Tensor, nn

from dynaprune._checks import check_count, check_vector
from dynaprune.policies.static import class_quotas
from dynaprune.scores._training import Batches, ScoreResult, iter_batches, model_device

__all__ = [
    "embeddings",
    "herding_order",
    "herding_scores",
    "k_center_order",
    "k_center_scores",
    "scores_from_order",
]


@torch.no_grad()
def embeddings(
    model: nn.Module,
    loader: Batches,
    *,
    layer: nn.Module | None = None,
    num_samples: int | None = None,
) -> Tensor:
    """Features of every sample in data set order: the (flattened) input of ``layer``.

    Args:
        model: a trained model, run in eval mode on its own device.
        loader: ``(x, y)`` batches in data set order, or ``(indices, x, y)``.
        layer: the submodule whose input is recorded; default the last ``nn.Linear`` of
            ``model`` (its penultimate features, as DeepCore uses).
        num_samples: data set size; default the number of samples ``loader`` yields.

    Returns:
        float32 ``(N, D)`` on the model's device.

    Example:
        >>> model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> embeddings(model, [(torch.randn(5, 3), torch.zeros(5))]).shape
        torch.Size([5, 4])
    """
    if layer is None:
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise ValueError("model has no nn.Linear; pass the layer whose input to record")
        layer = linears[-1]
    elif not isinstance(layer, nn.Module):
        raise TypeError(f"layer must be an nn.Module, got {type(layer).__name__}")
    seen: list[Tensor] = []
    handle = layer.register_forward_pre_hook(lambda _, args: seen.append(args[0].flatten(1)))
    was_training = model.training
    model.eval()
    device = model_device(model)
    idx, rows = [], []
    try:
        for i, x, _ in iter_batches(loader, device):
            seen.clear()
            model(x)
            if len(seen) != 1:
                raise ValueError(f"layer ran {len(seen)} times in one forward pass, expected 1")
            idx.append(i)
            rows.append(seen[0].float())
    finally:
        handle.remove()
        model.train(was_training)
    if not rows:
        raise ValueError("loader yielded no batches")
    index = torch.cat(idx)
    n = index.numel() if num_samples is None else check_count("num_samples", num_samples, 1)
    out = torch.zeros(n, rows[0].shape[1], device=device)
    return out.index_copy_(0, index, torch.cat(rows))


def _check(x: Tensor, num: int | None) -> tuple[Tensor, int]:
    if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[0] == 0 or not x.is_floating_point():
        what = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"embeddings must be a non-empty floating (N, D) tensor, got {what}")
    n = x.shape[0]
    if num is None:
        return x, n
    check_count("num", num, 1)
    if num > n:
        raise ValueError(f"num must be <= the number of embeddings {n}, got {num}")
    return x, num


_CHUNK = 1 << 16  # rows per chunk of the O(N * D) passes, bounding their temporaries


def _norms_and_mean(x: Tensor) -> tuple[Tensor, Tensor]:
    """float32 squared row norms and the float64 mean row, in chunks of rows."""
    sq = torch.empty(x.shape[0], device=x.device)
    total = torch.zeros(x.shape[1], dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], _CHUNK):
        rows = x[start : start + _CHUNK].float()
        sq[start : start + _CHUNK] = rows.pow(2).sum(1)
        total += rows.sum(0, dtype=torch.float64)
    return sq, total / x.shape[0]


def _matvec(x: Tensor, v: Tensor) -> Tensor:
    return torch.mv(x, v.to(x.dtype)).float()


@torch.no_grad()
def herding_order(embeddings: Tensor, num: int | None = None) -> Tensor:
    """Herding: each step adds the sample that brings the selected mean closest to the full mean.

    Step ``t + 1`` picks ``argmin_i ||(S + x_i) / (t + 1) - mu||``, with ``S`` the sum of the
    ``t`` embeddings selected so far and ``mu`` the mean of all.

    Args:
        embeddings: ``(N, D)`` floating tensor, on the device to compute on.
        num: length of the order to compute (default ``N``).

    Returns:
        int64 ``(num,)`` distinct indices; position 0 is chosen first.

    Example:
        >>> herding_order(torch.tensor([[0.0, 0.0], [1.0, 0.0], [4.0, 0.0], [7.0, 0.0]])).tolist()
        [2, 1, 3, 0]
    """
    x, num = _check(embeddings, num)
    sq, mu = _norms_and_mean(x)
    # ||S + x_i - (t + 1) mu||^2 = ||x_i||^2 - 2 x_i . w + const, with w = (t + 1) mu - S
    # updated as w <- w + mu - x_p (in float64, to keep its small residual accurate).
    w = mu.clone()
    order = torch.empty(num, dtype=torch.int64, device=x.device)
    for t in range(num):
        cost = _matvec(x, w).mul_(-2.0).add_(sq)
        if t:
            cost.index_fill_(0, order[:t], math.inf)
        p = cost.argmin()
        order[t] = p
        w += mu - x.index_select(0, p.view(1)).squeeze(0).double()
    return order


@torch.no_grad()
def k_center_order(
    embeddings: Tensor, num: int | None = None, *, first: int | None = None
) -> Tensor:
    """k-center greedy: each step adds the sample farthest from all samples selected so far.

    Args:
        embeddings: ``(N, D)`` floating tensor, on the device to compute on.
        num: length of the order to compute (default ``N``).
        first: the first center; default the sample closest to the mean embedding.

    Returns:
        int64 ``(num,)`` distinct indices; position 0 is chosen first.

    Example:
        >>> k_center_order(torch.tensor([[0.0, 0.0], [1.0, 0.0], [4.0, 0.0], [7.0, 0.0]])).tolist()
        [2, 0, 3, 1]
    """
    x, num = _check(embeddings, num)
    n = x.shape[0]
    sq, mu = _norms_and_mean(x)

    def sq_dist(p: Tensor) -> Tensor:  # squared distances of all samples to sample ``p``
        c = x.index_select(0, p.view(1)).squeeze(0)
        return _matvec(x, c).mul_(-2.0).add_(sq).add_(c.float().pow(2).sum()).clamp_min_(0.0)

    if first is None:
        p = _matvec(x, mu).mul_(-2.0).add_(sq).argmin()
    else:
        if isinstance(first, bool) or not isinstance(first, int) or not 0 <= first < n:
            raise ValueError(f"first must be an integer in [0, {n}), got {first!r}")
        p = torch.tensor(first, device=x.device)
    order = torch.empty(num, dtype=torch.int64, device=x.device)
    nearest = torch.full((n,), math.inf, device=x.device)  # squared distance to nearest center
    for t in range(num):
        order[t] = p
        if t == num - 1:
            break
        torch.minimum(nearest, sq_dist(p), out=nearest)
        nearest.index_fill_(0, p.view(1), -math.inf)  # selected: never the farthest again
        p = nearest.argmax()
    return order


def scores_from_order(order: Tensor, num_samples: int) -> Tensor:
    """Scores for :class:`~dynaprune.policies.static.StaticPolicy`: earlier in ``order`` = higher.

    The sample at position ``j`` gets ``(num_samples - j) / num_samples`` (in ``(0, 1]``);
    samples not in ``order`` get ``0``.

    Example:
        >>> scores_from_order(torch.tensor([2, 0]), 4).tolist()
        [0.75, 0.0, 1.0, 0.0]
    """
    check_count("num_samples", num_samples, 1)
    order = check_vector("order", order, floating=False).to(torch.int64)
    if order.numel() > num_samples:
        raise ValueError(f"order has {order.numel()} entries, more than num_samples={num_samples}")
    lo, hi = int(order.min()), int(order.max())
    if lo < 0 or hi >= num_samples:
        raise ValueError(
            f"order must hold indices in [0, {num_samples}), got {lo if lo < 0 else hi}"
        )
    if order.unique().numel() != order.numel():
        raise ValueError("order must hold distinct indices")
    j = torch.arange(order.numel(), device=order.device, dtype=torch.float64)
    scores = torch.zeros(num_samples, device=order.device)
    return scores.index_copy_(0, order, ((num_samples - j) / num_samples).float())


def _scores(
    fn: str, x: Tensor, num: int | None, labels: Tensor | None, first: int | None = None
) -> ScoreResult:
    start = time.perf_counter()
    x, num = _check(x, num)
    n = x.shape[0]
    if labels is not None and first is not None:
        raise ValueError("first applies without labels only; got both")

    def order(sub: Tensor, k: int) -> Tensor:
        if fn == "herding":
            return herding_order(sub, k)
        return k_center_order(sub, k, first=first)

    if labels is None:
        scores = scores_from_order(order(x, num), n)
    else:
        labels = check_vector("labels", labels, floating=False).to(x.device)
        if labels.numel() != n:
            raise ValueError(f"labels has {labels.numel()} entries but embeddings has {n} rows")
        classes = torch.unique(labels, return_inverse=True)[1]
        sizes = torch.bincount(classes)
        quotas = class_quotas(sizes, num).tolist()
        scores = torch.zeros(n, device=x.device)
        for c, k in enumerate(quotas):
            members = (classes == c).nonzero().view(-1)
            if k > 0:
                scores[members] = scores_from_order(order(x[members], k), members.numel())
    if scores.device.type == "cuda":
        torch.cuda.synchronize(scores.device)
    return ScoreResult(scores, time.perf_counter() - start)


def herding_scores(
    embeddings: Tensor, num: int | None = None, *, labels: Tensor | None = None
) -> ScoreResult:
    """:func:`herding_order` as scores (:func:`scores_from_order`), timed.

    Args:
        embeddings: ``(N, D)`` floating tensor, on the device to compute on.
        num: how many samples to order (the budget you will keep); the rest score ``0``.
        labels: if given, herd within each class: class ``c`` orders its proportional share
            of ``num`` (:func:`~dynaprune.policies.static.class_quotas`) and scores relative to
            its size, as DeepCore's class-balanced selection; pair with ``class_balanced=True``.

    Example:
        >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [4.0, 0.0], [7.0, 0.0]])
        >>> herding_scores(x, 2).scores.tolist()
        [0.0, 0.75, 1.0, 0.0]
    """
    return _scores("herding", embeddings, num, labels)


def k_center_scores(
    embeddings: Tensor,
    num: int | None = None,
    *,
    labels: Tensor | None = None,
    first: int | None = None,
) -> ScoreResult:
    """:func:`k_center_order` as scores (:func:`scores_from_order`), timed.

    Args:
        embeddings: ``(N, D)`` floating tensor, on the device to compute on.
        num: how many samples to order (the budget you will keep); the rest score ``0``.
        labels: if given, select within each class, as in :func:`herding_scores`.
        first: the first center without ``labels``; default the sample closest to the mean.

    Example:
        >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [4.0, 0.0], [7.0, 0.0]])
        >>> k_center_scores(x).scores.tolist()
        [0.75, 0.25, 1.0, 0.5]
    """
    return _scores("k_center", embeddings, num, labels, first)
