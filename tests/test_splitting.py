import pytest
import torch

import dynaprune._splitting as splitting_module
from dynaprune._select import sum64
from dynaprune._splitting import inclusion_probabilities, inclusion_scale, proportional_subset


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("chunk", [1, 3, 1 << 20])
@pytest.mark.parametrize("n", [1, 2, 3, 7, 50, 1001])
def test_proportional_subset_has_the_exact_size(monkeypatch, chunk, n):
    monkeypatch.setattr(splitting_module, "_CHUNK", chunk)  # slices of every length
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
    monkeypatch.setattr(splitting_module, "_CHUNK", chunk)
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
    systematic = splitting_module._systematic
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
        full = splitting_module._solve_caps(w, k, total)
        assert inclusion_scale(w, k) == pytest.approx(full, rel=1e-12)
        p = inclusion_probabilities(w, k)
        assert float(p.sum()) == pytest.approx(k, abs=1e-6)
    # a start above the solution is noticed in the first round; one below it is raised to it
    total = sum64(w)
    solved = splitting_module._solve_caps(w, 150_000, total)
    for start in (solved * 10, solved * 1.001, solved * 0.999, solved / 10):
        assert splitting_module._solve_caps(w, 150_000, total, start) == pytest.approx(
            solved, rel=1e-12
        )
    tried = []
    threshold = splitting_module._cap_threshold
    monkeypatch.setattr(
        splitting_module, "_cap_threshold", lambda c, dtype: tried.append(c) or threshold(c, dtype)
    )
    splitting_module._solve_caps(w, 150_000, total, solved * 10)
    assert tried[0] == solved * 10 and tried[1] == 150_000 / total  # seen above: restarted
    monkeypatch.undo()
    # a floor above the final threshold leaves capped weights out: all weights are searched
    expected = splitting_module._solve_caps(w, 150_000, sum64(w))
    assert 1.0 / expected < 0.9
    searched = []
    solve = splitting_module._solve_caps
    monkeypatch.setattr(splitting_module, "_bracket", lambda weight, k: (0.9, 0.0))
    monkeypatch.setattr(
        splitting_module, "_solve_caps", lambda x, *a: searched.append(x.numel()) or solve(x, *a)
    )
    assert inclusion_scale(w, 150_000) == pytest.approx(expected, rel=1e-12)
    assert searched[-1] == w.numel() and searched[0] < w.numel()
