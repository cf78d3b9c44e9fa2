import pytest
import torch

from dynaprune._select import (
    largest,
    random_prefix,
    random_subset,
    shuffled_indices,
    sum64,
    top_k_mask,
)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def assert_is_top_k(x, mask, k):
    assert mask.dtype == torch.bool and mask.shape == x.shape
    assert int(mask.sum()) == k
    kth = torch.topk(x, k).values.min()
    assert (x[mask] >= kth).all() and (x[~mask] <= kth).all()


# 200_000 entries take the sampled-bracket path, the smaller ones the exact one.
@pytest.mark.parametrize("n", [1, 10, 1000, 200_000])
@pytest.mark.parametrize("share", [0.0, 1e-5, 0.3, 0.5, 0.9, 1.0])
def test_largest_is_exactly_the_top_k(n, share):
    k = round(share * n)
    x = torch.rand(n, generator=gen(1))
    mask = largest(x, k, gen())
    assert int(mask.sum()) == k
    if k > 0:
        assert_is_top_k(x, mask, k)


@pytest.mark.parametrize("n", [1000, 200_000])
def test_largest_with_heavy_ties_and_infinities(n):
    x = torch.randint(0, 5, (n,), generator=gen(1)).float()
    x[:7] = float("inf")
    for k in (3, n // 3, n // 2, n - 1):
        assert_is_top_k(x, largest(x, k, gen()), k)


def test_ties_at_the_boundary_are_broken_uniformly():
    x = torch.cat([torch.full((5,), 2.0), torch.ones(10), torch.zeros(85)])
    counts = torch.zeros(100)
    for seed in range(2000):
        counts += largest(x, 10, gen(seed))
    assert torch.all(counts[:5] == 2000)  # above the tie: always
    assert torch.all(counts[15:] == 0)
    assert torch.allclose(counts[5:15], torch.tensor(1000.0), rtol=0.12)


@pytest.mark.parametrize("bounds", [(0.9, 0.95), (0.0, 0.1), (0.5, 0.5)])
def test_bounds_that_miss_still_give_the_exact_result(bounds):
    x = torch.rand(5000, generator=gen(2))
    assert_is_top_k(x, top_k_mask(x, 1000, gen(), bounds), 1000)


@pytest.mark.parametrize("n", [50, 300_000])
def test_random_subset_stays_in_the_pool_and_has_the_exact_size(n):
    pool = torch.rand(n, generator=gen(3)) < 0.6
    size = int(pool.sum())
    for k in (0, 1, size // 4, size - 1, size):
        mask = random_subset(pool, size, k, gen())
        assert int(mask.sum()) == k
        assert not (mask & ~pool).any()


def test_random_subset_is_uniform():
    pool = torch.zeros(60, dtype=torch.bool)
    pool[::2] = True  # 30 in the pool
    counts = torch.zeros(60)
    draws = 3000
    for seed in range(draws):
        counts += random_subset(pool, 30, 7, gen(seed))
    assert torch.all(counts[1::2] == 0)
    assert torch.allclose(counts[::2], torch.tensor(draws * 7 / 30), rtol=0.12)


@pytest.mark.parametrize("n", [10, 100_000])
def test_shuffled_indices_is_a_permutation_of_the_mask(n):
    mask = torch.rand(n, generator=gen(4)) < 0.5
    idx = shuffled_indices(mask, gen())
    assert idx.dtype == torch.int32  # 4-byte indices below 2**31 samples
    assert torch.equal(idx.sort().values, mask.nonzero().view(-1))
    assert torch.equal(idx, shuffled_indices(mask, gen()))
    if n > 10:
        assert not torch.equal(idx, mask.nonzero().view(-1))


def test_same_generator_seed_same_result():
    x = torch.rand(200_000, generator=gen(5))
    pool = x < 0.5
    assert torch.equal(largest(x, 70_000, gen(9)), largest(x, 70_000, gen(9)))
    a = random_subset(pool, int(pool.sum()), 1000, gen(9))
    assert torch.equal(a, random_subset(pool, int(pool.sum()), 1000, gen(9)))
    assert not torch.equal(a, random_subset(pool, int(pool.sum()), 1000, gen(10)))


@pytest.mark.parametrize("n", [1, 2, 1000, 70_000])
def test_random_prefix_is_the_prefix_of_randperm(n):
    for k in {0, 1, n // 2, n}:
        expected = torch.randperm(n, generator=gen(n))[:k]
        got = random_prefix(n, k, gen(n), torch.device("cpu"))
        assert got.dtype == torch.int32 and torch.equal(got.long(), expected)
        assert got.untyped_storage().nbytes() == 4 * k  # the rest of the permutation is freed


def test_largest_within_a_pool_is_the_top_k_of_the_pool():
    x = torch.rand(300_000, generator=gen(6))
    pool = torch.rand(300_000, generator=gen(7)) < 0.6
    size = int(pool.sum())
    for k in (1, size // 3, size - 1):
        mask = largest(x, k, gen(), pool, size)
        assert int(mask.sum()) == k and not (mask & ~pool).any()
        kth = torch.topk(x[pool], k).values.min()
        assert (x[mask] >= kth).all() and (x[pool & ~mask] <= kth).all()


def test_sum64_matches_a_float64_sum():
    x = torch.rand(3_000_001, generator=gen(8))
    where = x > 0.3
    assert sum64(x) == pytest.approx(float(x.double().sum()), rel=1e-12)
    assert sum64(x, where) == pytest.approx(float(x.double()[where].sum()), rel=1e-12)
