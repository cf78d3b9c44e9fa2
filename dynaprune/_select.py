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
* :func:`proportional_subset` keeps each sample with its own probability, exactly ``k`` samples
  in all, by the pivotal method (Deville and Tillé, "Unequal probability sampling without
  replacement through a splitting method", Biometrika 1998): samples duel in pairs, neighbours
  in index order first, then the winners of neighbouring pairs, a tournament of sequential
  passes instead of a shuffle of all ``N``.

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
    "largest",
    "proportional_subset",
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
        band = _nonzero(within.logical_xor_(above))  # lo < x <= hi
        if not num_above < k <= num_above + band.numel():
            band = None
    if band is None:  # no bounds, or they missed: search everything
        above, num_above = torch.zeros(n, dtype=torch.bool, device=x.device), 0
        band = torch.arange(n, device=x.device) if pool is None else _nonzero(pool)
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


def shuffled_indices(mask: Tensor, generator: torch.Generator) -> Tensor:
    """The int64 indices where ``mask`` is set, in uniformly random order."""
    # 4-byte entries: a permutation of them is drawn about twice as fast as one of 8-byte
    # entries, and gathered faster too; widened once, in order, at the end.
    small = mask.numel() <= torch.iinfo(torch.int32).max
    indices = _nonzero(mask, torch.int32 if small else torch.int64)
    k = indices.numel()
    dtype = torch.int32 if k <= torch.iinfo(torch.int32).max else torch.int64
    perm = torch.randperm(k, generator=generator, device=mask.device, dtype=dtype)
    return indices.index_select(0, perm).to(torch.int64)


# Pairs per pass of the pivotal draw, and entries per slice of a float64 sum: their
# temporaries stay a few MB whatever N is.
_CHUNK = 1 << 20


def sum64(x: Tensor, where: Tensor | None = None) -> float:
    """The sum of ``x`` (of its entries where the mask ``where`` is set) accumulated in float64,
    a slice at a time: ``x.sum(dtype=torch.float64)`` would first copy all of ``x`` to float64."""
    total = 0.0
    for start in range(0, x.numel(), _CHUNK):
        part = x[start : start + _CHUNK].to(torch.float64)
        if where is not None:
            part.mul_(where[start : start + _CHUNK])
        total += float(part.sum())
    return total


def proportional_subset(weight: Tensor, scale: float, generator: torch.Generator) -> Tensor:
    """Bool mask of a draw that keeps sample ``i`` with probability exactly
    ``p_i = min(1, scale * weight[i])``, and exactly ``sum(p)`` samples in all.

    ``sum(p)`` must be a whole number (up to float64 rounding). The pivotal method: two samples
    with probabilities ``a`` and ``b`` duel; if ``a + b < 1`` one of them drops out (to 0) and
    the other carries ``a + b``, else one is kept (1) and the other carries ``a + b - 1``, at
    odds that keep each one's expected outcome. Every duel settles one sample and preserves the
    sum, so a tournament over neighbours in index order settles all of them in ``log2(N)``
    passes of shrinking length (2 N pairs' work in all). Two samples that meet early are
    rarely both kept when their probabilities sum to less than 1.
    """
    n = weight.numel()
    device = weight.device
    index_dtype = torch.int32 if n < torch.iinfo(torch.int32).max else torch.int64
    # entry n: the value-0 partner of an odd one out, dropped at the end
    keep = torch.zeros(n + 1, dtype=torch.bool, device=device)
    val: Tensor | None = None  # the first round reads ``weight``
    idx: Tensor | None = None
    m = n
    while m > 1:
        half = (m + 1) // 2
        next_val = torch.empty(half, dtype=torch.float32, device=device)
        next_idx = torch.empty(half, dtype=index_dtype, device=device)
        for start in range(0, m, 2 * _CHUNK):
            stop = min(m, start + 2 * _CHUNK)
            i: Tensor | None = None
            if val is None or idx is None:
                v = weight[start:stop].to(torch.float64).mul_(scale).clamp_max_(1.0).float()
            else:
                v, i = val[start:stop], idx[start:stop]
            if (stop - start) % 2:
                v = torch.cat([v, v.new_zeros(1)])
                if i is not None:
                    i = torch.cat([i, i.new_full((1,), n)])
            pairs = slice(start // 2, start // 2 + v.numel() // 2)
            settle_a, high = _duel(v, generator, next_val[pairs])
            if i is None:  # the first round: a pair is (start + 2j, start + 2j + 1)
                pair_keep = keep[start : start + v.numel()].view(-1, 2)
                pair_keep[:, 0] = settle_a & high
                pair_keep[:, 1] = high.logical_and_(settle_a.logical_not_())  # a carries
                # settle_a now says whether a carries: the carrier is start + 2j + 1 - that
                carrier = torch.arange(start + 1, start + v.numel(), 2, dtype=index_dtype)
                next_idx[pairs] = carrier.to(device).sub_(settle_a.to(index_dtype))
            else:
                ia, ib = i[0::2], i[1::2]
                step = ib - ia
                carrier = step.mul_(settle_a.to(index_dtype)).add_(ia)  # b when a settles
                next_idx[pairs] = carrier
                keep[(ia + ib).sub_(carrier).to(torch.int64)] = high
        val, idx, m = next_val, next_idx, half
    if val is None or idx is None:  # a single sample
        keep[0] = bool(weight[0].to(torch.float64) * scale > 0.5)
    else:  # what is left is a whole number: 0 or 1, up to rounding
        keep[idx.to(torch.int64)] = val > 0.5
    return keep[:n]


def _duel(v: Tensor, generator: torch.Generator, out_val: Tensor) -> tuple[Tensor, Tensor]:
    """One pivotal round over the pairs ``(a, b) = (v[0], v[1]), (v[2], v[3]), ...``.

    Returns whether ``a`` settles (else ``b`` does) and whether the settled one is kept (else
    dropped); the other one's new probability goes to ``out_val``. Arithmetic blends stand in
    for ``torch.where``, several times slower here.
    """
    a, b = v[0::2], v[1::2]
    s = a + b
    high = s >= 1.0
    h = high.to(s.dtype)
    rest = torch.rsub(s, 1.0)
    # a settles (to 1 if high, else to 0) with probability num / den:
    # (1 - b) / (2 - s) if high, else a / s; 0 / 0 (both 0, or both 1) never settles a
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


def _nonzero(mask: Tensor, dtype: torch.dtype = torch.int64) -> Tensor:
    """Indices (``dtype``) of the set entries of a 1-D bool mask."""
    if mask.device.type == "cpu":  # NumPy's is several times faster than torch.nonzero here
        np_dtype = np.int32 if dtype == torch.int32 else np.int64
        return torch.from_numpy(np.flatnonzero(mask.numpy()).astype(np_dtype, copy=False))
    return mask.nonzero().view(-1).to(dtype)
