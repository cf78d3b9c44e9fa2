"""Unequal-probability sampling of an exact size, for importance sampling.

* :func:`inclusion_probabilities` and :func:`inclusion_scale`: probabilities ``min(1, c · w_i)``
  proportional to positive weights, the largest capped at 1, summing exactly to ``k``.
* :func:`proportional_subset` keeps each sample with its own probability, exactly ``k`` samples
  in all, by two steps of the splitting method (Deville and Tillé, "Unequal probability
  sampling without replacement through a splitting method", Biometrika 1998): one pivotal round
  in which sample ``i`` duels sample ``i + N/2``, then systematic sampling of the survivors in
  index order. A few passes over contiguous memory, no shuffle of all ``N``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from dynaprune._select import index_dtype, mask_indices, sum64

__all__ = ["inclusion_probabilities", "inclusion_scale", "proportional_subset"]

# Entries per slice of the draw's passes: their temporaries stay a few MB whatever N is.
_CHUNK = 1 << 20


def inclusion_probabilities(weight: Tensor, k: int) -> Tensor:
    """Probabilities ``min(1, c · weight_i)`` that sum to ``k``: the largest weights are capped
    at 1 and ``c`` is solved for the rest (float64).

    Example:
        >>> inclusion_probabilities(torch.tensor([1.0, 1.0, 8.0]), 2).tolist()
        [0.5, 0.5, 1.0]
    """
    return weight.to(torch.float64).mul_(inclusion_scale(weight, k)).clamp_max_(1.0)


def inclusion_scale(weight: Tensor, k: int, total: float | None = None) -> float:
    """The ``c`` of :func:`inclusion_probabilities`, for positive float32 (or float64) weights
    (``total``: their float64 sum, if known).

    Each round caps the samples with ``c · weight_i > 1`` and solves ``c`` for the rest; the
    capped set only grows, and the rounds stop when it does not (a handful of passes). The cap
    is decided by comparing ``weight`` with the float threshold that gives exactly the float64
    products' verdict, so the capped set and ``min(1, c · weight_i)`` agree on every sample.
    On large inputs the rounds run over the few weights above a lower bound for the final
    threshold, estimated from a strided sample; if the bound turns out too high, they run again
    over all weights, so the result never depends on the sample.
    """
    total = sum64(weight) if total is None else total
    if weight.numel() > _BRACKET_ABOVE:
        floor, start = _bracket(weight, k)
        if floor > -math.inf:
            above = mask_indices(weight > floor, index_dtype(weight.numel()))
            candidates = weight.index_select(0, above)
            c = _solve_caps(candidates, k, total, start)
            if _cap_threshold(c, weight.dtype) >= floor:  # no capped weight was left out
                return c
    return _solve_caps(weight, k, total)


# Above this many weights, the capping rounds run over the weights above a sampled floor.
_BRACKET_ABOVE = 1 << 16
_BRACKET_SAMPLE = 1 << 14


def _bracket(weight: Tensor, k: int) -> tuple[float, float]:
    """``(floor, start)``: a value that the final cap threshold of ``weight`` most likely
    exceeds (``-inf`` when that would leave nothing out), and a ``c`` most likely below the
    final one. The caps are solved on a strided sample, and the capped share in it moved five
    standard errors either way."""
    n = weight.numel()
    sample = weight[:: max(1, n // _BRACKET_SAMPLE)].to(torch.float64).sort(descending=True).values
    m = sample.numel()
    above = sample.cumsum(0).tolist()
    values = sample.tolist()
    budget, num_capped = k * m / n, 0
    c = budget / above[-1]
    while values[num_capped] * c > 1.0:
        num_capped += 1
        if num_capped == m:
            return -math.inf, 0.0
        c = (budget - num_capped) / (above[-1] - above[num_capped - 1])
    share = num_capped / m
    margin = 5.0 * math.sqrt(m * max(share * (1.0 - share), 1.0 / m))
    low, high = math.ceil(m * share + margin) + 1, math.floor(m * share - margin) - 1
    floor = values[low] if low < m else -math.inf
    return floor, (1.0 / values[high] if high >= 0 else 0.0)


def _solve_caps(weight: Tensor, k: int, total: float, start: float = 0.0) -> float:
    """:func:`inclusion_scale`'s rounds over ``weight``, which holds every weight that ends up
    capped (``total``: the sum of all weights), from ``c = max(start, k / total)``.

    From below the final ``c`` the rounds only raise it and cap more, and stop at it: a round
    that caps no more than the last one has solved ``sum(min(1, c · weight)) = k`` (up to the
    float rounding of ``c``, which could otherwise make a weight at the threshold flip forever).
    A ``start`` above the solution is seen in the first round, which then starts again from
    ``k / total``; from there, capping nothing solves it at once.
    """
    floor = k / total
    c = max(start, floor)
    num_capped = 0 if c == floor else -1
    while True:
        over = weight > _cap_threshold(c, weight.dtype)
        count = int(over.count_nonzero())
        if count <= num_capped:
            return c
        capped = sum64(weight, over)
        if num_capped < 0 and count + c * (total - capped) > k:  # started above the solution
            c, num_capped = floor, 0
            continue
        num_capped = count
        c = (k - count) / (total - capped)


def _cap_threshold(c: float, dtype: torch.dtype) -> float:
    """The largest value ``t`` of ``dtype`` with ``c * t <= 1`` in float64: ``w > t`` exactly
    when ``c * w > 1``, for any ``w`` of that dtype."""
    kind = np.float32 if dtype == torch.float32 else np.float64
    t = kind(1.0 / c)
    while c * float(t) > 1.0:
        t = np.nextafter(t, kind(-np.inf))
    while c * float(np.nextafter(t, kind(np.inf))) <= 1.0:
        t = np.nextafter(t, kind(np.inf))
    return float(t)


def proportional_subset(weight: Tensor, scale: float, generator: torch.Generator) -> Tensor:
    """Bool mask of a draw that keeps sample ``i`` with probability exactly
    ``p_i = min(1, scale * weight[i])``, and exactly ``sum(p)`` samples in all.

    ``sum(p)`` must be a whole number (up to float rounding). Two steps of the splitting method
    (Deville and Tillé, "Unequal probability sampling without replacement through a splitting
    method", Biometrika 1998), each of which keeps every sample's inclusion probability:

    1. A pivotal round: sample ``i`` duels sample ``i + h`` (``h = ceil(N / 2)``). With
       probabilities ``a`` and ``b``, if ``a + b < 1`` one of them drops out (to 0) and the
       other carries ``a + b``, else one is kept (1) and the other carries ``a + b - 1``, at
       odds that keep each one's expected outcome. Every duel settles one of its two samples.
    2. Systematic sampling of the ``h`` survivors, in index order: with one uniform start
       ``u``, survivor ``j`` is kept when ``floor(C_j + u) > floor(C_(j-1) + u)``, ``C`` the
       running sum of what the survivors carry (float64). This keeps survivor ``j`` with
       probability exactly what it carries, and exactly as many survivors as they carry in all
       (:func:`_systematic`; up to the float rounding of their total).

    Both steps are elementwise passes over contiguous halves (and one running sum), in slices
    of ``_CHUNK``; they draw one float32 uniform per pair and one float64 start. Samples ``i``
    and ``i + h`` are never both kept when ``p_i + p_(i+h) <= 1`` (and always when it is 2);
    survivors next to each other in index order are rarely kept together when what they carry
    sums to less than 1. Survivors that carry the same amount are kept at a regular spacing in
    index order; the duels decide which sample of each pair that is, and every call draws its
    duels and ``u`` afresh.
    """
    n = weight.numel()
    device = weight.device
    h = (n + 1) // 2  # survivors: one per pair, and the odd one out when n is odd
    q = n - h  # pairs (i, i + h) for i < q
    keep = torch.zeros(n, dtype=torch.bool, device=device)
    carried = torch.empty(h, dtype=torch.float32, device=device)
    second = torch.empty(q, dtype=torch.bool, device=device)  # whether i + h survives
    for start in range(0, q, _CHUNK):
        stop = min(q, start + _CHUNK)
        a = _probabilities(weight[start:stop], scale)
        b = _probabilities(weight[h + start : h + stop], scale)
        settle_a, high = _duel(a, b, generator, carried[start:stop])
        torch.logical_and(settle_a, high, out=keep[start:stop])
        torch.logical_and(high, settle_a.logical_not(), out=keep[h + start : h + stop])
        second[start:stop] = settle_a  # a settled: b carries on
    if h > q:  # the odd one out carries its own probability
        carried[q:] = _probabilities(weight[q : q + 1], scale)
    # Their total is a whole number up to float rounding (about 1e-4 at 1e8 samples).
    start_u = torch.rand((), generator=generator, dtype=torch.float64, device=device)
    chosen = _systematic(carried, round(sum64(carried)), start_u)
    # A chosen survivor of pair i is sample i, or i + h when i settled.
    first = chosen[:q]
    keep[:q] |= first & second.logical_not()
    keep[h:] |= first & second
    if h > q:
        keep[q] = chosen[q]
    return keep


def _systematic(carried: Tensor, need: int, start_u: Tensor | float) -> Tensor:
    """Bool mask of exactly ``need`` entries of ``carried`` (values in [0, 1] that sum to
    ``need`` up to float rounding), entry ``j`` chosen with probability ``carried[j]``:
    systematic sampling in index order from the uniform start ``start_u``, entry ``j`` chosen
    when ``floor(C_j + u) > floor(C_(j-1) + u)``, ``C`` the running float64 sum.

    The rounding of the total can leave the count one off, about as often as its size (1e-4 at
    1e8 samples); then the entries carrying the most that were left out are added, or those
    carrying the least that were chosen are dropped: a correction of the same order.
    """
    device = carried.device
    running = torch.zeros((), dtype=torch.float64, device=device)
    previous = torch.zeros((), dtype=torch.float64, device=device)  # floor(u) = 0
    chosen = torch.empty(carried.numel(), dtype=torch.bool, device=device)
    for start in range(0, carried.numel(), _CHUNK):
        stop = min(carried.numel(), start + _CHUNK)
        level = carried[start:stop].to(torch.float64).cumsum_(0).add_(running)
        running = level[-1].clone()
        level = level.add_(start_u).floor_()
        torch.gt(level[1:], level[:-1], out=chosen[start + 1 : stop])
        chosen[start] = level[0] > previous
        previous = level[-1].clone()
    count = int(chosen.count_nonzero())
    if count < need:
        left_out = carried.masked_fill(chosen, -math.inf)
        chosen[left_out.topk(need - count).indices] = True
    elif count > need:
        taken = carried.masked_fill(chosen.logical_not(), math.inf)
        chosen[taken.topk(count - need, largest=False).indices] = False
    return chosen


def _probabilities(weight: Tensor, scale: float) -> Tensor:
    """``min(1, scale * weight)`` in float32, each product taken in float64 and rounded once."""
    return weight.to(torch.float64).mul_(scale).clamp_max_(1.0).to(torch.float32)


def _duel(
    a: Tensor, b: Tensor, generator: torch.Generator, out_val: Tensor
) -> tuple[Tensor, Tensor]:
    """One pivotal round over the pairs ``(a[j], b[j])``.

    Returns whether ``a`` settles (else ``b`` does) and whether the settled one is kept (else
    dropped); the other one's new probability goes to ``out_val``. Arithmetic blends stand in
    for ``torch.where``, several times slower here.
    """
    s = a + b
    high = s >= 1.0
    h = high.to(s.dtype)
    rest = torch.rsub(s, 1.0)
    # a settles (to 1 if high, else to 0) with probability num / den:
    # (1 - b) / (2 - s) if high, else b / s. At 0 / 0 (both 0, or both 1) a is dropped and
    # b carries 0, or b is kept and a carries 1.
    num = torch.addcmul(a, h, rest)
    den = torch.addcmul(s, h, rest, value=2.0)
    settle_a = torch.lt(_uniform(s.numel(), generator, s.device).mul_(den), num).eq_(high)
    torch.sub(s, h, out=out_val)
    return settle_a, high


def _uniform(size: int, generator: torch.Generator, device: torch.device) -> Tensor:
    """float32 uniforms in [0, 1) with 24 random bits, two per 64-bit draw (whose top bit is 0):
    twice as fast as ``torch.rand``."""
    words = torch.empty((size + 1) // 2, dtype=torch.int64, device=device)
    bits = words.random_(generator=generator).view(torch.int32)[:size].bitwise_right_shift_(7)
    return bits.bitwise_and_(0xFFFFFF).to(torch.float32).mul_(2.0**-24)
