"""InfoBatch, pool-then-top and importance sampling: exact budgets, the published rules, weights."""

from __future__ import annotations

import math

import pytest
import torch

from dynaprune import (
    DynamicPruningSampler,
    ImportancePolicy,
    InfoBatchPolicy,
    PoolTopPolicy,
    Selection,
    make_policy,
)
from dynaprune._splitting import inclusion_probabilities
from dynaprune.core.statistics import LossStatistics


def _stats(losses: list[float] | torch.Tensor, unseen: int = 0) -> LossStatistics:
    losses = torch.as_tensor(losses, dtype=torch.float32)
    n = losses.numel() + unseen
    stats = LossStatistics(n, momentum=0.0)
    stats.update(torch.arange(losses.numel()), losses, epoch=0, unique=True)
    return stats


def _weights(sel: Selection) -> torch.Tensor:
    assert sel.weights is not None
    return sel.weights


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", ["infobatch", "pool_top", "importance"])
@pytest.mark.parametrize("k", [1, 7, 50, 99, 100])
def test_exact_budget_distinct_in_range(name: str, k: int) -> None:
    stats = _stats(torch.rand(90, generator=_gen(1)) * 4, unseen=10)
    for seed in range(5):
        sel = make_policy(name).select(stats, k, _gen(seed))
        assert sel.indices.numel() == k
        assert sel.indices.unique().numel() == k
        assert int(sel.indices.min()) >= 0 and int(sel.indices.max()) < 100
        if sel.weights is not None:
            assert sel.weights.shape == sel.indices.shape
            assert bool(torch.isfinite(sel.weights).all()) and bool((sel.weights > 0).all())


def test_infobatch_keeps_above_mean_and_weights_the_drawn() -> None:
    # mean score 2.5: the 4 samples at 4.0 (and the unseen one) are always kept
    stats = _stats([4.0] * 4 + [1.0] * 4, unseen=1)
    for seed in range(10):
        sel = InfoBatchPolicy().select(stats, 7, _gen(seed))
        kept = set(sel.indices.tolist())
        assert {0, 1, 2, 3, 8} <= kept
        weights = dict(zip(sel.indices.tolist(), _weights(sel).tolist(), strict=True))
        for i in kept:
            # 2 of the 4 below-mean samples are drawn: published weight 1 / P(kept) = 4 / 2
            assert weights[i] == (1.0 if i in (0, 1, 2, 3, 8) else 2.0)


def test_infobatch_over_budget_draws_uniformly_among_the_hard() -> None:
    stats = _stats([4.0] * 6 + [1.0] * 4)  # mean 2.8: six above it, budget 3
    counts = torch.zeros(10)
    for seed in range(600):
        sel = InfoBatchPolicy().select(stats, 3, _gen(seed))
        assert bool((sel.indices < 6).all())
        assert bool((_weights(sel) == 1).all())
        counts[sel.indices] += 1
    assert counts[:6].min() > 240 and counts[:6].max() < 360  # 300 expected each


def test_pool_top_takes_the_top_of_the_pool() -> None:
    losses = torch.arange(100, dtype=torch.float32)
    stats = _stats(losses)
    hits = torch.zeros(100)
    for seed in range(400):
        sel = PoolTopPolicy(pool_factor=2.0).select(stats, 10, _gen(seed))
        assert sel.weights is None
        hits[sel.indices] += 1
    # pool of 20 of 100: the top sample is kept whenever it is in the pool (20 %), the bottom
    # ten only when the pool holds at most 9 samples above them: never
    assert 50 < hits[99] < 110
    assert hits[:10].sum() == 0
    assert bool(hits[50:].sum() > hits[:50].sum())


def test_pool_top_factor_one_is_uniform_and_unseen_rank_first() -> None:
    stats = _stats([5.0] * 10, unseen=10)
    sel = PoolTopPolicy(pool_factor=10.0).select(stats, 10, _gen())
    assert set(sel.indices.tolist()) == set(range(10, 20))  # pool is everyone: unseen first
    sel = PoolTopPolicy(pool_factor=1.0).select(stats, 10, _gen())
    assert sel.indices.numel() == len(set(sel.indices.tolist())) == 10


def test_pool_top_factor_one_keeps_as_uniform_does() -> None:
    # With a pool as large as the budget the scores are never read: every sample is kept with
    # probability k / N whatever its loss, as by the uniform rule, and unseen samples get no
    # priority.
    stats = _stats(torch.arange(20, dtype=torch.float32) ** 2, unseen=4)
    n, k, runs = 24, 6, 600
    hits = {"pool_top": torch.zeros(n), "uniform": torch.zeros(n)}
    for seed in range(runs):
        for name, policy in (("pool_top", PoolTopPolicy(1.0)), ("uniform", make_policy("uniform"))):
            sel = policy.select(stats, k, _gen(seed))
            assert sel.weights is None and sorted(set(sel.indices.tolist())) == sorted(
                sel.indices.tolist()
            )
            hits[name][sel.indices] += 1
    for name, count in hits.items():
        freq = count / runs
        # binomial std at p = 1/4 over 600 draws: 0.018; 5 std
        assert (freq - k / n).abs().max() < 0.09, (name, freq)
        # the six highest losses are kept no more often than the six lowest
        assert abs(float(freq[14:20].mean() - freq[:6].mean())) < 0.05, name


def test_inclusion_probabilities_cap_and_sum() -> None:
    p = inclusion_probabilities(torch.tensor([1.0, 1.0, 1.0, 1.0, 100.0, 50.0]), 3)
    assert p[4] == 1.0 and p[5] == 1.0
    assert torch.allclose(p[:4], torch.full((4,), 0.25, dtype=torch.float64))
    assert math.isclose(float(p.sum()), 3.0)


def test_importance_inclusion_is_proportional_and_weights_unbiased() -> None:
    losses = torch.cat([torch.full((20,), 3.0), torch.full((80,), 0.5)])
    stats = _stats(losses)
    policy, k, runs = ImportancePolicy(mix=0.5), 30, 800
    weight = 0.5 * losses / losses.mean() + 0.5
    expected = inclusion_probabilities(weight, k).to(torch.float32)
    hits = torch.zeros(100)
    estimate = 0.0
    for seed in range(runs):
        sel = policy.select(stats, k, _gen(seed))
        hits[sel.indices] += 1
        # the batch mean of weight * loss estimates the full data set's mean loss
        estimate += float((_weights(sel) * losses[sel.indices]).mean())
    assert (hits / runs - expected).abs().max() < 0.08  # 4.5 sigma of 800 draws
    assert math.isclose(estimate / runs, float(losses.mean()), rel_tol=0.03)


def test_importance_gives_unknown_samples_the_hardest_seen_weight() -> None:
    losses = torch.full((90,), 0.1)
    losses[40] = 100.0  # the hardest seen sample: capped at probability 1
    stats = _stats(losses, unseen=5)
    stats.mean[[3, 7, 11, 13]] = math.nan  # nothing known: weighed like the unseen
    stats.mean[20] = -1.0  # a negative loss weighs as a loss of 0 (sample 21)
    stats.mean[21] = 0.0
    certain = {40, 3, 7, 11, 13, 90, 91, 92, 93, 94}
    zero_loss: set[float] = set()
    seen: set[int] = set()
    for seed in range(40):
        sel = ImportancePolicy(mix=0.5).select(stats, 30, _gen(seed))
        kept = set(sel.indices.tolist())
        assert len(kept) == 30 and certain <= kept
        by_index = dict(zip(sel.indices.tolist(), _weights(sel).tolist(), strict=True))
        assert all(by_index[i] == pytest.approx(30 / 95) for i in certain)  # (k / N) / 1
        zero_loss |= {by_index[i] for i in (20, 21) if i in by_index}
        seen |= {i for i in (20, 21) if i in by_index}
    assert seen == {20, 21} and len(zero_loss) == 1  # the same weight for both


def test_importance_before_any_loss_is_uniform_with_weight_one() -> None:
    sel = ImportancePolicy().select(LossStatistics(50), 20, _gen())
    assert sel.indices.unique().numel() == 20 and bool((_weights(sel) == 1).all())


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: PoolTopPolicy(pool_factor=0.5), r"pool_factor must be a finite number >= 1"),
        (lambda: PoolTopPolicy(pool_factor=math.inf), r"pool_factor .* got inf"),
        (lambda: PoolTopPolicy(pool_factor=True), r"pool_factor .* got True"),
        (lambda: ImportancePolicy(mix=0.0), r"mix must be in \(0, 1\], got 0\.0"),
        (lambda: ImportancePolicy(mix=1.5), r"mix must be in \(0, 1\], got 1\.5"),
    ],
)
def test_bad_arguments(factory, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        factory()


@pytest.mark.parametrize("name", ["infobatch", "pool_top", "importance"])
def test_in_the_sampler_deterministic_and_exact(name: str) -> None:
    def run() -> list[list[int]]:
        sampler = DynamicPruningSampler(200, 0.3, name, seed=3)
        epochs = []
        for epoch in range(3):
            sampler.set_epoch(epoch)
            order = list(sampler)
            assert len(order) == 60 == len(set(order))
            for chunk in torch.tensor(order).split(16):
                sampler.update(chunk.float() / 50.0)  # loss grows with the index
            epochs.append(order)
        return epochs

    assert run() == run()
