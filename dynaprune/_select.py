"""Exact selection in O(N) on the statistics' device, for the pruning policies.

A full sort or a ``topk`` of half a data set costs several times the ``randperm(N)`` that any
shuffled sampler pays per epoch. These helpers choose with a few elementwise passes instead:

* :func:`largest` brackets the k-th largest value between two quantiles of a small random
  sample, counts what lies above the bracket, and selects exactly within it (a few percent of
  the entries) with ``kthvalue``.
* :func:`random_subset` draws ``k`` of a pool as the ``k`` largest of independent random keys,
  whose quantiles are known without a sample. The keys have 15 bits, four per 64-bit draw.
* Ties at the k-th value are broken uniformly at random, which keeps a random subset exactly
  uniform however coarse its keys, and makes "the k largest" well defined.
* :func:`shuffled_indices` lists a mask's indices in uniformly random order.
* :func:`sum64` sums float32 in float64 a slice at a time. The importance draw, which keeps
  each sample with its own probability, is in :mod:`dynaprune._splitting`.

Every result is exact whatever the sample: a bracket that misses only costs a slower search.
Selections are bool masks (1 byte per sample); on the CPU, NumPy lists a mask's indices several
times faster than ``torch.nonzero``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "index_dtype",
    "largest",
    "mask_indices",
    "random_prefix",
    "random_subset",
    "shuffled_indices",
    "sum64",
    "top_k_mask",
]

# Above this size, the k-th largest score is bracketed from a random sample of the scores
# before the exact selection; below it, one kthvalue over all of them is as fast.
_EXACT_BELOW = 1 << 16
_SAMPLE = 1 << 14


def top_k_mask(
    x: Tensor,
    k: int,
    generator: torch.Generator,
    bounds: tuple[Tensor | float, Tensor | float] | None = None,
    pool: Tensor | None = None,
) -> Tensor:
    """Bool mask of the ``k`` largest entries of ``x`` within the ``pool`` mask (default: all),
    ties at the k-th largest value broken uniformly at random.

    ``bounds = (lo, hi)`` should bracket the k-th largest value: then only the entries in
    ``(lo, hi]`` are selected exactly, in O(N) and a few passes over ``x``. If they do not, all
    entries are searched, so the result never depends on the bounds, only its speed does.
    """
    n = x.numel()
    band = None
    if bounds is not None:
        above, within = x > bounds[1], x > bounds[0]
        if pool is not None:
            above &= pool
            within &= pool
        num_above = int(above.count_nonzero())
        band = mask_indices(within.logical_xor_(above))  # lo < x <= hi
        if not num_above < k <= num_above + band.numel():
            band = None
    if band is None:  # no bounds, or they missed: search everything
        above, num_above = torch.zeros(n, dtype=torch.bool, device=x.device), 0
        band = torch.arange(n, device=x.device) if pool is None else mask_indices(pool)
    values = x.index_select(0, band)
    kth = torch.kthvalue(values, values.numel() - (k - num_above) + 1).values
    greater = values > kth
    above[band] = greater  # the band is disjoint from ``above``
    ties = band[values == kth]
    need = k - num_above - int(greater.count_nonzero())
    if ties.numel() > need:
        ties = ties[torch.randperm(ties.numel(), generator=generator, device=x.device)[:need]]
    above[ties] = True
    return above


def largest(
    x: Tensor,
    k: int,
    generator: torch.Generator,
    pool: Tensor | None = None,
    pool_size: int | None = None,
) -> Tensor:
    """Bool mask of the ``k`` largest entries of ``x`` (within the ``pool`` mask, which holds
    ``pool_size`` entries, if given), ties broken at random."""
    n = x.numel()
    size = n if pool is None or pool_size is None else pool_size
    if k <= 0 or k >= size:
        if pool is None:
            return torch.full((n,), k > 0, dtype=torch.bool, device=x.device)
        return pool.clone() if k > 0 else torch.zeros_like(pool)
    bounds = None
    if size > _EXACT_BELOW:
        # Quantiles of a random sample, five standard deviations either side of the k-th
        # largest: the band holds about 5 / sqrt(m) of the entries (4 % for the full sample)
        # and misses it about once in a million.
        m = min(_SAMPLE, size >> 6)
        draws = m if pool is None else min(n, math.ceil(m * n / size))
        where = torch.randint(n, (draws,), generator=generator, device=x.device)
        if pool is not None:  # the draws that fall into the pool: a sample of the pool
            where = where[pool.index_select(0, where)]
            m = where.numel()
        sample = x.index_select(0, where).sort().values
        p = k / size
        centre, margin = m * (1.0 - p), 5.0 * math.sqrt(m * p * (1.0 - p)) + 1.0
        lo, hi = math.floor(centre - margin), math.ceil(centre + margin)
        bounds = (sample[lo] if lo >= 0 else -math.inf, sample[hi] if hi < m else math.inf)
    return top_k_mask(x, k, generator, bounds, pool)


def random_subset(pool: Tensor, pool_size: int, k: int, generator: torch.Generator) -> Tensor:
    """Bool mask of ``k`` samples drawn uniformly without replacement from the ``pool`` mask,
    which holds ``pool_size`` samples."""
    if k <= 0 or k >= pool_size:
        return pool.clone() if k > 0 else torch.zeros_like(pool)
    # One random 15-bit key per sample, four per 64-bit draw (whose top bit is 0). Ties are
    # broken at random, so coarse keys still give an exactly uniform subset.
    n = pool.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=pool.device)
    key = words.random_(generator=generator).view(torch.int16)[:n].bitwise_and_(0x7FFF)
    # The k largest keys of the pool: count(key > v) is Binomial(pool_size, (top - v) / span),
    # so the bounds need no sample.
    top, span = 0x7FFF, 0x8000
    margin = 5.0 * math.sqrt(k * (1.0 - k / pool_size)) + 1.0
    lo = max(-1, math.floor(top - span * (k + margin) / pool_size))
    hi = min(top, math.ceil(top - span * (k - margin) / pool_size))
    return top_k_mask(key, k, generator, (lo, hi), pool)


def index_dtype(n: int) -> torch.dtype:
    """The integer type of indices below ``n``: 4 bytes where they fit, else 8."""
    return torch.int32 if n <= torch.iinfo(torch.int32).max else torch.int64


def random_prefix(n: int, k: int, generator: torch.Generator, device: torch.device) -> Tensor:
    """``torch.randperm(n)[:k]``, the same values from the same generator state, as 4-byte
    integers on the CPU (:func:`index_dtype`): the shuffle then moves half the memory. A copy
    when ``k < n``, so that the rest of the permutation is freed, not held by a view."""
    dtype = index_dtype(n) if device.type == "cpu" else torch.int64
    perm = torch.randperm(n, generator=generator, device=device, dtype=dtype)
    return perm[:k].clone() if k < n else perm


def shuffled_indices(mask: Tensor, generator: torch.Generator) -> Tensor:
    """The indices where ``mask`` is set (:func:`index_dtype` of its length), in uniformly
    random order."""
    # 4-byte entries: a permutation of them is drawn about twice as fast as one of 8-byte
    # entries, and gathered faster too.
    indices = mask_indices(mask, index_dtype(mask.numel()))
    k = indices.numel()
    perm = torch.randperm(k, generator=generator, device=mask.device, dtype=index_dtype(k))
    return indices.index_select(0, perm)


# Entries per slice of the float64 sums: their temporaries stay a few MB whatever N is.
_CHUNK = 1 << 20


def sum64(x: Tensor, where: Tensor | None = None) -> float:
    """The sum of ``x`` (of its entries where the mask ``where`` is set) accumulated in float64,
    a slice at a time: ``x.sum(dtype=torch.float64)`` would first copy all of ``x`` to float64.
    The total stays on ``x``'s device until the end (one read, not one per slice)."""
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    for start in range(0, x.numel(), _CHUNK):
        part = x[start : start + _CHUNK].to(torch.float64)
        if where is not None:
            part.mul_(where[start : start + _CHUNK])
        total += part.sum()
    return float(total)


def mask_indices(mask: Tensor, dtype: torch.dtype = torch.int64) -> Tensor:
    """Indices (``dtype``) of the set entries of a 1-D bool mask."""
    if mask.device.type == "cpu":  # NumPy's is several times faster than torch.nonzero here
        np_dtype = np.int32 if dtype == torch.int32 else np.int64
        return torch.from_numpy(np.flatnonzero(mask.numpy()).astype(np_dtype, copy=False))
    return mask.nonzero().view(-1).to(dtype)
