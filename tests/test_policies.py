import pytest
import torch

from dynaprune.core.statistics import LossStatistics
from dynaprune.policies import (
    POLICIES,
    EpsilonGreedyPolicy,
    SoftPolicy,
    UCBPolicy,
    UniformPolicy,
    make_policy,
)


def seen_stats(mean, var=None):
    mean = torch.as_tensor(mean, dtype=torch.float32)
    stats = LossStatistics(mean.numel())
    stats.mean = mean.clone()
    stats.var = torch.zeros_like(mean) if var is None else torch.as_tensor(var, dtype=torch.float32)
    stats.count = torch.ones(mean.numel(), dtype=torch.int32)
    stats.seen = torch.ones(mean.numel(), dtype=torch.int32)
    return stats


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", POLICIES)
@pytest.mark.parametrize(("n", "k"), [(1, 1), (10, 1), (10, 7), (10, 10), (1000, 333)])
def test_exact_size_and_distinct(name, n, k):
    stats = seen_stats(torch.rand(n, generator=gen(1)))
    sel = make_policy(name).select(stats, k, gen())
    assert sel.indices.numel() == k
    assert sel.indices.unique().numel() == k
    assert sel.indices.dtype == torch.int32  # 4-byte indices below 2**31 samples
    assert sel.indices.min() >= 0 and sel.indices.max() < n
    if sel.weights is not None:
        assert sel.weights.shape == (k,) and (sel.weights > 0).all()
        if name == "soft":  # exactly 1; importance: 1 in expectation; infobatch: unnormalised
            assert sel.weights.mean().item() == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize("name", POLICIES)
def test_same_generator_seed_same_selection(name):
    stats = seen_stats(torch.rand(500, generator=gen(1)))
    a = make_policy(name).select(stats, 100, gen(7))
    b = make_policy(name).select(stats, 100, gen(7))
    c = make_policy(name).select(stats, 100, gen(8))
    assert torch.equal(a.indices, b.indices)
    assert not torch.equal(a.indices.sort().values, c.indices.sort().values)


def test_epsilon_greedy_greedy_part_is_the_top_of_the_scores():
    n, k, eps = 1000, 200, 0.25
    scores = torch.randperm(n, generator=gen(3)).float()
    sel = EpsilonGreedyPolicy(epsilon=eps).select(seen_stats(scores), k, gen())
    greedy = round((1 - eps) * k)
    top = set(torch.topk(scores, greedy).indices.tolist())
    chosen = set(sel.indices.tolist())
    assert top <= chosen
    # The random part is spread over the rest, not the next best scores.
    rest = torch.tensor(sorted(chosen - top))
    assert scores[rest].min() < n - greedy - (k - greedy)


def test_epsilon_one_is_uniform_and_zero_is_top_k():
    scores = torch.arange(100.0)
    top = EpsilonGreedyPolicy(epsilon=0.0).select(seen_stats(scores), 10, gen())
    assert sorted(top.indices.tolist()) == list(range(90, 100))
    rand = EpsilonGreedyPolicy(epsilon=1.0).select(seen_stats(scores), 10, gen())
    assert sorted(rand.indices.tolist()) != list(range(90, 100))


def test_ucb_prefers_uncertain_samples_at_equal_mean():
    n = 100
    var = torch.zeros(n)
    var[::2] = 4.0  # even samples: same mean, more uncertain
    sel = UCBPolicy(c=1.0, explore=0.0).select(seen_stats(torch.ones(n), var), 50, gen())
    assert sorted(sel.indices.tolist()) == list(range(0, n, 2))


@pytest.mark.parametrize(("spread", "winners"), [("std", 0), ("variance", 1)])
def test_ucb_spread_weighs_the_standard_deviation_or_the_variance(spread, winners):
    n = 20
    mean = torch.tensor([1.0, 1.2] * (n // 2))
    var = torch.tensor([0.16, 0.0] * (n // 2))
    # std: 1.0 + 0.4 = 1.4 beats 1.2 (even samples win); variance: 1.0 + 0.16 = 1.16 loses
    sel = UCBPolicy(spread=spread, explore=0.0).select(seen_stats(mean, var), n // 2, gen())
    assert sorted(sel.indices.tolist()) == list(range(winners, n, 2))


def test_ucb_count_bonus_prefers_rarely_seen_samples():
    stats = seen_stats(torch.ones(10))
    stats.count = torch.tensor([1, 9, 9, 9, 9, 9, 9, 9, 9, 2], dtype=torch.int32)
    sel = UCBPolicy(c=0.0, count_bonus=1.0, explore=0.0).select(stats, 2, gen())
    assert sorted(sel.indices.tolist()) == [0, 9]


@pytest.mark.parametrize("name", ["epsilon_greedy", "ucb", "soft"])
def test_unseen_samples_rank_first_in_random_order(name):
    n = 100
    stats = seen_stats(torch.full((n,), 100.0))
    unseen = torch.arange(0, n, 5)
    stats.count[unseen] = 0
    stats.seen[unseen] = 0  # never trained on (count 0 alone: trained on, losses non-finite)
    stats.mean[unseen] = 0.0
    picks = []
    for seed in range(2):
        sel = make_policy(name).select(stats, 10, gen(seed))
        picks.append(set(sel.indices.tolist()))
    # With 20 unseen and 10 kept, the greedy share is unseen only; the random share may differ.
    greedy = {"epsilon_greedy": 7, "ucb": 7, "soft": 5}[name]
    for chosen in picks:
        assert len(chosen & set(unseen.tolist())) >= greedy
    assert picks[0] != picks[1]


def test_all_unseen_gives_a_random_subset():
    stats = LossStatistics(1000)
    a = make_policy("ucb").select(stats, 100, gen(0)).indices
    # Not the first indices (a class-sorted data set would lose whole classes).
    assert a.max() > 500 and a.min() < 500


def test_soft_weights_are_unbiased():
    n, k = 40, 12
    losses = torch.rand(n, generator=gen(5)) ** 3 * 5
    stats = seen_stats(losses)
    policy = SoftPolicy(random_share=0.5)
    draws = 4000
    total = torch.zeros(())
    inclusion = torch.zeros(n)
    for seed in range(draws):
        sel = policy.select(stats, k, gen(seed))
        total += (losses[sel.indices] * sel.weights).sum()
        inclusion[sel.indices] += 1
    # The mean weighted loss over the kept samples estimates the full data set's mean loss.
    estimate = total / draws / k
    assert estimate == pytest.approx(losses.mean().item(), rel=0.02)
    # The top of the scores (above the mean, within 1 - random_share of the budget) is always kept.
    top = torch.topk(losses, k - round(0.5 * k)).indices
    assert (losses[top] >= losses.mean()).all()
    assert torch.all(inclusion[top] == draws)
    # Every other sample is drawn with the same probability.
    rest = torch.ones(n, dtype=torch.bool)
    rest[top] = False
    expected = draws * (k - top.numel()) / (n - top.numel())
    assert torch.allclose(inclusion[rest], torch.tensor(expected), rtol=0.15)


def test_soft_keeps_high_scores_and_weights_by_inverse_probability():
    losses = torch.cat([torch.full((10,), 10.0), torch.full((90,), 0.1)])
    sel = SoftPolicy(random_share=0.5).select(seen_stats(losses), 40, gen())
    high = sel.indices < 10
    assert high.sum() == 10
    scale = 40 / 100  # k / N, so that the weights average 1
    assert torch.allclose(sel.weights[high], torch.tensor(scale))
    assert torch.allclose(sel.weights[~high], torch.tensor(scale * 90 / 30))


def test_uniform_is_already_shuffled():
    sel = UniformPolicy().select(LossStatistics(100), 100, gen())
    assert sel.shuffled and sorted(sel.indices.tolist()) == list(range(100))


@pytest.mark.parametrize(
    ("factory", "error", "match"),
    [
        (
            lambda: EpsilonGreedyPolicy(epsilon=1.5),
            ValueError,
            r"epsilon must be a number in \[0, 1\], got 1.5",
        ),
        (lambda: EpsilonGreedyPolicy(epsilon=-0.1), ValueError, r"epsilon .* got -0.1"),
        (lambda: UCBPolicy(c=-1.0), ValueError, r"c must be a finite number >= 0, got -1.0"),
        (lambda: UCBPolicy(c=float("nan")), ValueError, r"c must be .* got nan"),
        (lambda: UCBPolicy(count_bonus=-2), ValueError, r"count_bonus .* got -2"),
        (
            lambda: UCBPolicy(spread="var"),
            ValueError,
            r"spread must be one of \['std', 'variance'\], got 'var'",
        ),
        (lambda: UCBPolicy(explore=2), ValueError, r"explore must be a number in \[0, 1\], got 2"),
        (lambda: SoftPolicy(random_share=0.0), ValueError, r"random_share must be > 0"),
        (
            lambda: make_policy("greedy"),
            ValueError,
            r"policy must be one of \['uniform', 'epsilon_greedy', .*'infobatch'.*\], got 'greedy'",
        ),
        (lambda: make_policy(3), TypeError, r"policy must be a name .* got int"),  # type: ignore[arg-type]
    ],
)
def test_bad_arguments(factory, error, match):
    with pytest.raises(error, match=match):
        factory()


def test_nan_scores_still_give_an_exact_budget():
    stats = seen_stats(torch.rand(10, generator=gen(1)))
    stats.var[3] = float("inf")  # c = 0 times an infinite deviation is NaN
    for policy in (UCBPolicy(c=0.0), UCBPolicy(c=1.0)):
        sel = policy.select(stats, 5, gen())
        assert sel.indices.unique().numel() == 5


# ------------------------------------------------------------------ settings changed later
def _changed(policy, attr, value):
    setattr(policy, attr, value)
    return policy


@pytest.mark.parametrize(
    ("policy", "match"),
    [
        (_changed(EpsilonGreedyPolicy(), "epsilon", 5), r"EpsilonGreedyPolicy\.epsilon .*got 5$"),
        (_changed(UCBPolicy(), "explore", -0.1), r"UCBPolicy\.explore .*got -0\.1$"),
        (_changed(UCBPolicy(), "c", float("nan")), r"UCBPolicy\.c .*got nan$"),
        (_changed(UCBPolicy(), "spread", "var"), r"UCBPolicy\.spread must be one of .*'var'"),
        (_changed(UCBPolicy(), "count_bonus", -1), r"UCBPolicy\.count_bonus .*got -1$"),
        (_changed(SoftPolicy(), "random_share", 0.0), r"SoftPolicy\.random_share must be > 0"),
        (_changed(make_policy("pool_top"), "pool_factor", 0.5), r"PoolTopPolicy\.pool_factor"),
        (_changed(make_policy("importance"), "mix", 0), r"ImportancePolicy\.mix .*got 0$"),
        (_changed(make_policy("onion"), "period", 0), r"OnionPolicy\.period .*got 0$"),
        (_changed(make_policy("onion"), "swap_fraction", 2.0), r"OnionPolicy\.swap_fraction"),
        (_changed(make_policy("onion"), "max_swaps", -1), r"OnionPolicy\.max_swaps .*got -1$"),
    ],
)
def test_a_setting_changed_after_construction_is_refused_at_selection(policy, match):
    from dynaprune import DynamicPruningSampler

    sampler = DynamicPruningSampler(20, 0.5, policy, seed=0)
    with pytest.raises(ValueError, match=match):
        list(sampler)  # the first epoch is pruned: the policy selects
    assert sampler.planned_epoch is None  # nothing planned


def test_settings_are_checked_before_every_selection_not_only_the_first():
    from dynaprune import DynamicPruningSampler

    policy = EpsilonGreedyPolicy()
    sampler = DynamicPruningSampler(20, 0.5, policy, seed=0, warmup_epochs=1)
    list(sampler)  # warm-up: a full epoch, no selection
    policy.epsilon = 5
    sampler.set_epoch(1)
    with pytest.raises(ValueError, match=r"EpsilonGreedyPolicy\.epsilon must be .*got 5"):
        list(sampler)
    policy.epsilon = 0.5
    assert len(list(sampler)) == 10


# ------------------------------------------------------------------ trusted selections
def test_built_in_policies_declare_their_selection_trusted_and_subclasses_do_not_inherit_it():
    from dynaprune import ReducibleLossPolicy, StaticPolicy
    from dynaprune.policies.base import PruningPolicy

    for name in POLICIES:
        assert type(make_policy(name)).trusted_selection, name
    assert StaticPolicy.trusted_selection
    assert not PruningPolicy.trusted_selection
    assert not ReducibleLossPolicy.trusted_selection  # checked, as before

    class Mine(UCBPolicy):
        pass

    class Declared(UCBPolicy):
        trusted_selection = True

    assert not Mine.trusted_selection and Mine().trusted_selection is False
    assert Declared.trusted_selection


def test_a_subclass_of_a_built_in_policy_has_its_selection_checked():
    from dynaprune import DynamicPruningSampler, Selection

    class Repeats(UniformPolicy):
        def select(self, stats, num_keep, generator):
            return Selection(torch.zeros(num_keep, dtype=torch.int64))

    with pytest.raises(ValueError, match="distinct"):
        list(DynamicPruningSampler(10, 0.5, Repeats()))
