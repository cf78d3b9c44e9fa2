import pytest
import torch

import dynaprune._select as select_module
import dynaprune.policies.sampled as sampled_module
from dynaprune._select import (
    largest,
    proportional_subset,
    random_prefix,
    random_subset,
    shuffled_indices,
    sum64,
    top_k_mask,
)
from dynaprune.policies.sampled import inclusion_probabilities, inclusion_scale


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


@pytest.mark.parametrize("chunk", [1, 3, 1 << 20])
@pytest.mark.parametrize("n", [1, 2, 3, 7, 50, 1001])
def test_proportional_subset_has_the_exact_size(monkeypatch, chunk, n):
    monkeypatch.setattr(select_module, "_CHUNK", chunk)  # slices of every length
    w = torch.rand(n, generator=gen(n)).pow_(3).add_(0.05)
    for k in {1, n // 3, n - 1, n} - {0}:
        c = inclusion_scale(w, k)
        for seed in range(10):
            assert int(proportional_subset(w, c, gen(seed)).sum()) == k


def test_proportional_subset_keeps_each_sample_with_its_probability():
    n, k, runs = 30, 9, 6000
    w = torch.rand(n, generator=gen(5)).pow_(2).add_(0.1)
    w[:3] = 5.0  # capped at probability 1
    p = inclusion_probabilities(w, k).float()
    c = inclusion_scale(w, k)
    hits = torch.zeros(n)
    for seed in range(runs):
        hits += proportional_subset(w, c, gen(seed)).float()
    assert torch.equal(hits[:3], torch.full((3,), float(runs)))
    sigma = (p * (1 - p) / runs).sqrt().clamp_min(1e-6)
    assert ((hits / runs - p).abs() / sigma).max() < 4.5


@pytest.mark.parametrize("chunk", [2, 1 << 20])
def test_proportional_subset_across_slices_and_with_certain_samples(monkeypatch, chunk):
    # slices that cut both the duels and the running sums; probabilities of 0 and of 1 among
    # the rest; an odd count, so one sample has no partner
    monkeypatch.setattr(select_module, "_CHUNK", chunk)
    n, k, runs = 21, 8, 6000
    w = torch.rand(n, generator=gen(11)).add_(0.2)
    w[[0, 11]] = 0.0  # a duel between two certain drops (sample i duels i + 11)
    w[[4, 15, 10]] = 50.0  # a duel between two certain keeps, and the odd one out (10)
    p = inclusion_probabilities(w, k).float()
    c = inclusion_scale(w, k)
    hits = torch.zeros(n)
    for seed in range(runs):
        mask = proportional_subset(w, c, gen(seed))
        assert int(mask.sum()) == k
        hits += mask.float()
    assert hits[[0, 11]].sum() == 0 and bool((hits[[4, 15, 10]] == runs).all())
    sigma = (p * (1 - p) / runs).sqrt().clamp_min(1e-6)
    assert ((hits / runs - p).abs() / sigma).max() < 4.5


def test_proportional_subset_duels_sample_i_with_sample_i_plus_half():
    # probabilities 1/2 everywhere: every duel keeps exactly one of i and i + n/2, at random
    n = 1000
    masks = torch.stack([proportional_subset(torch.ones(n), 0.5, gen(s)) for s in range(200)])
    assert bool((masks[:, : n // 2] ^ masks[:, n // 2 :]).all())
    assert 0.4 < float(masks[:, : n // 2].float().mean()) < 0.6


@pytest.mark.parametrize("n", [10, 100_003, 2_200_001])  # the last: survivors span two slices
@pytest.mark.parametrize("shape", ["flat", "skewed", "few_capped", "many_capped"])
def test_proportional_subset_exact_size_at_scale(n, shape):
    g = gen(n)
    if shape == "flat":
        w = torch.ones(n)
    elif shape == "skewed":
        w = torch.rand(n, generator=g).pow_(6).add_(1e-4)
    elif shape == "few_capped":
        w = torch.rand(n, generator=g).add_(0.5)
        w[:: max(1, n // 7)] = 1e6
    else:
        w = torch.rand(n, generator=g).pow_(20).add_(1e-6)  # most of the mass in a few
    for k in {1, n // 3, n // 2, n - 1}:
        c = inclusion_scale(w, k)
        assert int(proportional_subset(w, c, gen(k)).sum()) == k


def test_systematic_step_keeps_the_exact_count_when_the_total_is_rounded():
    systematic = select_module._systematic
    # the total falls short of 2 by 1e-4 and u = 0: the running sums reach only one level, so
    # the survivor carrying the most among those left out is added
    short = torch.tensor([0.5, 0.5, 1.0 - 1e-4])
    assert systematic(short, 2, 0.0).tolist() == [False, True, True]
    # the total overshoots 1 and u is near 1: two levels are crossed, the smallest is dropped
    over = torch.tensor([0.5, 0.5, 1e-4])
    assert systematic(over, 1, 1.0 - 1e-5).tolist() == [True, False, False]
    # without rounding trouble nothing is corrected: u = 0.25 picks the levels 1 and 2
    exact = torch.tensor([0.3, 0.7, 0.4, 0.6])
    assert systematic(exact, 2, 0.25).tolist() == [False, True, False, True]


def test_inclusion_scale_equals_the_rounds_over_all_weights(monkeypatch):
    w = torch.rand(300_000, generator=gen(3)).pow_(4).add_(0.01)
    for k in (3_000, 100_000, 150_000, 290_000):
        total = sum64(w)
        full = sampled_module._solve_caps(w, k, total)
        assert inclusion_scale(w, k) == pytest.approx(full, rel=1e-12)
        p = inclusion_probabilities(w, k)
        assert float(p.sum()) == pytest.approx(k, abs=1e-6)
    # a start above the solution is noticed in the first round; one below it is raised to it
    total = sum64(w)
    solved = sampled_module._solve_caps(w, 150_000, total)
    for start in (solved * 10, solved * 1.001, solved * 0.999, solved / 10):
        assert sampled_module._solve_caps(w, 150_000, total, start) == pytest.approx(
            solved, rel=1e-12
        )
    tried = []
    threshold = sampled_module._cap_threshold
    monkeypatch.setattr(
        sampled_module, "_cap_threshold", lambda c, dtype: tried.append(c) or threshold(c, dtype)
    )
    sampled_module._solve_caps(w, 150_000, total, solved * 10)
    assert tried[0] == solved * 10 and tried[1] == 150_000 / total  # seen above: restarted
    monkeypatch.undo()
    # a floor above the final threshold leaves capped weights out: all weights are searched
    expected = sampled_module._solve_caps(w, 150_000, sum64(w))
    assert 1.0 / expected < 0.9
    searched = []
    solve = sampled_module._solve_caps
    monkeypatch.setattr(sampled_module, "_bracket", lambda weight, k: (0.9, 0.0))
    monkeypatch.setattr(
        sampled_module, "_solve_caps", lambda x, *a: searched.append(x.numel()) or solve(x, *a)
    )
    assert inclusion_scale(w, 150_000) == pytest.approx(expected, rel=1e-12)
    assert searched[-1] == w.numel() and searched[0] < w.numel()


@pytest.mark.parametrize("n", [1, 2, 1000, 70_000])
def test_random_prefix_is_the_prefix_of_randperm(n):
    for k in {0, 1, n // 2, n}:
        expected = torch.randperm(n, generator=gen(n))[:k]
        got = random_prefix(n, k, gen(n), torch.device("cpu"))
        assert got.dtype == torch.int32 and torch.equal(got.long(), expected)


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
