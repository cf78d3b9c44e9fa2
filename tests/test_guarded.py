"""The noise-guarded UCB, ambiguity-first and the two-Gaussian fit they rest on."""

import math

import pytest
import torch

from dynaprune import DynamicPruningSampler, GuardedUCBPolicy, ModeratePolicy, UCBPolicy
from dynaprune._mixture import Mixture, ashman_d, fit_two_gaussians, flag_threshold
from dynaprune.core.statistics import LossStatistics


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def stats_of(mean, count=1):
    mean = torch.as_tensor(mean, dtype=torch.float32)
    stats = LossStatistics(mean.numel())
    stats.mean = mean.clone()
    stats.count = torch.full((mean.numel(),), count, dtype=torch.int32)
    stats.seen = (stats.count > 0).to(torch.int32)
    return stats


def bimodal(n_clean=8000, n_noisy=2000, seed=0):
    """Clean losses around 1, flipped ones around 3.5: the shape of 20 % symmetric noise."""
    g = gen(seed)
    clean = 1.0 + 0.4 * torch.randn(n_clean, generator=g)
    noisy = 3.5 + 0.5 * torch.randn(n_noisy, generator=g)
    return torch.cat([clean, noisy]).clamp_min(0.05)


def skewed(n=10000, seed=0):
    """A unimodal right-skewed loss distribution (clean labels): a gamma with shape 2."""
    g = gen(seed)
    return -torch.log(torch.rand(n, generator=g) * torch.rand(n, generator=g)) * 0.6


# ------------------------------------------------------------------- the mixture


def test_fit_recovers_two_modes():
    m = fit_two_gaussians(bimodal())
    assert m.weight == pytest.approx(0.2, abs=0.02)
    assert m.mean_lo == pytest.approx(1.0, abs=0.05) and m.mean_hi == pytest.approx(3.5, abs=0.1)
    assert m.std_lo == pytest.approx(0.4, abs=0.05) and m.std_hi == pytest.approx(0.5, abs=0.1)
    assert ashman_d(m) > 5


def test_fit_reads_only_the_masked_values_and_a_bounded_sample():
    x = bimodal()
    mask = torch.zeros_like(x, dtype=torch.bool)
    mask[:8000] = True  # the clean mode alone: no second mode far away
    m = fit_two_gaussians(x, mask)
    assert m.mean_hi < 2.5
    big = fit_two_gaussians(bimodal(80000, 20000), limit=4096)
    assert big.weight == pytest.approx(0.2, abs=0.03)


@pytest.mark.parametrize("values", [torch.ones(100), torch.arange(10.0), torch.tensor([])])
def test_nothing_to_fit(values):
    assert fit_two_gaussians(values) is None


def test_a_winsorised_fit_is_not_taken_by_a_thin_tail():
    """The shape recorded under 20 % noise at a high learning rate: flipped labels a narrow
    mode (2.7) close to the clean losses (1.8), and a 2 % tail of extreme losses (mean 6). EM on
    the raw losses gives the tail a component of its own; winsorised at the 98th percentile,
    the fit finds the flipped labels' mode."""
    g = gen(1)
    x = torch.cat(
        [
            1.8 + 0.5 * torch.randn(7800, generator=g),
            2.7 + 0.3 * torch.randn(2000, generator=g),
            6.0 + 2.0 * torch.randn(200, generator=g),
        ]
    ).clamp_min(0.05)
    raw = fit_two_gaussians(x)
    assert raw.weight < 0.03 and raw.mean_hi > 6
    robust = fit_two_gaussians(x, tail=0.98)
    assert 0.2 < robust.weight < 0.4
    assert robust.mean_hi == pytest.approx(2.6, abs=0.15)
    flagged = GuardedUCBPolicy(tail=0.98).guard(stats_of(x)).flagged
    assert float(flagged[7800:9800].float().mean()) > 0.85  # most of the mode
    assert float(GuardedUCBPolicy().guard(stats_of(x)).flagged[7800:9800].float().mean()) < 0.05


def test_separation_tells_bimodal_from_skewed():
    assert ashman_d(fit_two_gaussians(bimodal())) > 3
    assert ashman_d(fit_two_gaussians(skewed())) < 2.0


def test_threshold_is_where_the_high_posterior_reaches_one_half():
    assert flag_threshold(Mixture(0.5, 0.0, 2.0, 1.0, 1.0)) == pytest.approx(1.0, abs=1e-3)
    # a rarer high mode moves the threshold towards it
    assert flag_threshold(Mixture(0.1, 0.0, 2.0, 1.0, 1.0)) > 1.5
    assert flag_threshold(Mixture(0.0, 0.0, 2.0, 1.0, 1.0)) == math.inf


# ------------------------------------------------------------------- the guard


def test_guard_flags_the_high_mode_on_noisy_losses():
    stats = stats_of(bimodal())
    report = GuardedUCBPolicy().guard(stats)
    noisy = torch.arange(10000) >= 8000
    recall = (report.flagged & noisy).sum() / noisy.sum()
    precision = (report.flagged & noisy).sum() / report.flagged.sum()
    assert recall > 0.97 and precision > 0.97
    assert report.share == pytest.approx(0.2, abs=0.01)
    assert bool((stats.mean[report.flagged] >= report.threshold).all())


def test_guard_below_its_separation_is_off_and_the_rule_is_ucb():
    stats = stats_of(skewed())
    stats.var = torch.rand(10000, generator=gen(3))
    assert GuardedUCBPolicy().guard(stats).share > 0.1  # separation 0: always two modes
    report = GuardedUCBPolicy(separation=2.0).guard(stats)
    assert report.share == 0.0 and report.threshold == math.inf
    assert report.separation < 2.0
    guarded = GuardedUCBPolicy(separation=2.0).select(stats, 3000, gen(5)).indices
    plain = UCBPolicy().select(stats, 3000, gen(5)).indices
    assert torch.equal(guarded, plain)


def test_guard_waits_until_enough_samples_were_seen():
    stats = stats_of(bimodal())
    stats.count[:6000] = 0
    assert GuardedUCBPolicy(min_seen=0.5).guard(stats).share == 0.0
    assert GuardedUCBPolicy(min_seen=0.4).guard(stats).share > 0.0


def test_flagged_samples_get_no_priority():
    stats = stats_of(bimodal())
    policy = GuardedUCBPolicy(explore=0.0)
    keep = policy.select(stats, 3000, gen()).indices
    flagged = policy.guard(stats).flagged
    assert keep.numel() == 3000
    assert int(flagged[keep.long()].sum()) == 0
    # the kept ones are the highest unflagged losses
    unflagged = stats.mean.masked_fill(flagged, -math.inf)
    assert set(keep.tolist()) == set(unflagged.topk(3000).indices.tolist())


def test_flagged_samples_are_drawn_at_the_exploration_rate_or_dropped():
    stats = stats_of(bimodal())
    n, k = 10000, 5000
    explore = GuardedUCBPolicy(flagged="explore").select(stats, k, gen()).indices
    pool = n - (k - round(0.3 * k))  # the exploration draw's pool
    expected = round(0.3 * k) * 2000 / pool
    assert abs(int((explore >= 8000).sum()) - expected) < 5 * math.sqrt(expected)
    dropped = GuardedUCBPolicy(flagged="drop").select(stats, k, gen()).indices
    flagged = GuardedUCBPolicy().guard(stats).flagged
    assert dropped.numel() == k and int(flagged[dropped.long()].sum()) == 0


def test_drop_fills_the_budget_from_flagged_samples_when_it_must():
    stats = stats_of(bimodal())
    keep = GuardedUCBPolicy(flagged="drop").select(stats, 9000, gen()).indices
    flagged = GuardedUCBPolicy().guard(stats).flagged
    assert keep.numel() == 9000 and keep.unique().numel() == 9000
    assert int((~flagged).sum()) == int((~flagged[keep.long()]).sum())  # every unflagged kept
    # a priority share larger than the unflagged samples: it takes flagged ones too
    policy = GuardedUCBPolicy(flagged="drop", explore=0.1)
    for k in (9500, 10000):
        keep = policy.select(stats, k, gen()).indices
        assert keep.numel() == k and keep.unique().numel() == k
        assert int((~flagged[keep.long()]).sum()) == int((~flagged).sum())


def test_unflagged_uniform_draws_the_budget_from_the_unflagged_samples():
    stats = stats_of(bimodal())
    flagged = GuardedUCBPolicy().guard(stats).flagged
    num_clean = int((~flagged).sum())
    policy = GuardedUCBPolicy(unflagged="uniform")
    draws = torch.zeros(10000)
    for seed in range(20):
        keep = policy.select(stats, 4000, gen(seed)).indices
        assert keep.numel() == 4000 and keep.unique().numel() == 4000
        assert not bool(flagged[keep.long()].any())
        draws[keep.long()] += 1
    # uniform over the unflagged: no preference for their highest losses, unlike UCB
    clean_idx = (~flagged).nonzero().squeeze(1)
    top = clean_idx[stats.mean[clean_idx].argsort(descending=True)[: num_clean // 10]]
    assert draws[top].mean() == pytest.approx(20 * 4000 / num_clean, rel=0.1)
    ucb_keep = GuardedUCBPolicy().select(stats, 4000, gen()).indices
    assert float(torch.isin(top, ucb_keep).float().mean()) > 0.9
    # a budget larger than the unflagged samples: all of them, flagged ones at random
    keep = policy.select(stats, num_clean + 100, gen()).indices
    assert int(flagged[keep.long()].sum()) == 100 and keep.unique().numel() == num_clean + 100


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"separation": -1.0}, "separation must be a finite number >= 0, got -1.0"),
        ({"flagged": "keep"}, "flagged must be one of"),
        ({"min_seen": 0.0}, r"min_seen must be in \(0, 1\], got 0.0"),
        ({"min_seen": 1.5}, "min_seen must be a number in"),
        ({"explore": 2.0}, "explore must be a number in"),
        ({"c": math.nan}, "c must be a finite number"),
        ({"tail": 1.0}, r"tail must be None or a quantile in \(0, 1\), got 1.0"),
        ({"unflagged": "greedy"}, "unflagged must be one of"),
        ({"tail": True}, r"tail must be None or a quantile in \(0, 1\), got True"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GuardedUCBPolicy(**kwargs)


def test_attributes_changed_after_construction_are_refused_by_the_sampler():
    sampler = DynamicPruningSampler(100, keep_ratio=0.5, policy=GuardedUCBPolicy(), seed=0)
    sampler.policy.min_seen = 0.0
    with pytest.raises(ValueError, match=r"GuardedUCBPolicy.min_seen must be in \(0, 1\], got 0.0"):
        sampler.set_epoch(0)
        list(sampler)
    moderate = DynamicPruningSampler(100, keep_ratio=0.5, policy=ModeratePolicy(), seed=0)
    moderate.policy.explore = -1
    with pytest.raises(ValueError, match="ModeratePolicy.explore must be a number in"):
        moderate.set_epoch(0)
        list(moderate)


def test_sampler_takes_the_names_and_keeps_exact_budgets():
    for name in ("guarded_ucb", "moderate"):
        sampler = DynamicPruningSampler(1000, keep_ratio=0.3, policy=name, seed=1)
        for epoch in range(3):
            sampler.set_epoch(epoch)
            order = list(sampler)
            assert len(order) == 300 and len(set(order)) == 300
            idx = torch.tensor(order)
            sampler.update(torch.where(idx >= 800, 4.0, 1.0) + 0.1 * (idx % 7))


# ------------------------------------------------------------------- ambiguity first


def test_moderate_prefers_losses_near_the_median():
    losses = torch.cat([torch.linspace(0.0, 2.0, 900), torch.full((100,), 9.0)])
    stats = stats_of(losses)
    keep = ModeratePolicy(explore=0.0).select(stats, 300, gen()).indices
    kept = losses[keep.long()]
    assert float((kept - losses.median()).abs().max()) < 0.4
    assert int((kept == 9.0).sum()) == 0


def test_moderate_ranks_unseen_samples_first():
    stats = stats_of(torch.linspace(0, 1, 100))
    stats.count[:10] = 0
    stats.seen[:10] = 0
    keep = ModeratePolicy(explore=0.0).select(stats, 20, gen()).indices
    assert set(range(10)) <= set(keep.tolist())


def test_chance_level_decides_whether_the_high_mode_is_noise():
    losses = bimodal()  # modes at 1.0 and 3.5
    stats = stats_of(losses)
    # 3.5 is above the chance level of 10 classes (log 10 = 2.30): flipped labels
    noisy = GuardedUCBPolicy(num_classes=10).guard(stats)
    assert noisy.share == pytest.approx(0.2, abs=0.01)
    assert noisy.threshold >= math.log(10)
    # with 100 classes (log 100 = 4.6) the same high mode is only hard: nothing flagged
    hard = GuardedUCBPolicy(num_classes=100).guard(stats)
    assert hard.share == 0.0 and hard.threshold == math.inf
    assert hard.mixture is not None and hard.mixture.mean_hi < math.log(100)
    # the mode above chance, but the split below it: only losses above chance are flagged
    stats = stats_of(torch.cat([losses[:8000], losses[8000:] - 1.0]))  # modes at 1.0 and 2.5
    report = GuardedUCBPolicy(num_classes=10).guard(stats)
    assert report.threshold == pytest.approx(math.log(10))
    assert bool((stats.mean[report.flagged] >= math.log(10)).all())
    assert report.share < 0.2


@pytest.mark.parametrize("value", [1, 2.5, True, "10"])
def test_num_classes_must_be_an_integer_of_at_least_two(value):
    with pytest.raises(
        ValueError, match=f"num_classes must be None or an integer >= 2, got {value!r}"
    ):
        GuardedUCBPolicy(num_classes=value)
