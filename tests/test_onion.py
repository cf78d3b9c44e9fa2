"""OnionPolicy (Peeling the Onion's example selector) and the correctness feedback it reads."""

import math

import pytest
import torch
from conftest import fake_correct, fake_losses, run_epoch

from dynaprune import DynamicPruningSampler, LossStatistics, OnionPolicy, make_policy
from dynaprune._checks import check_index_tensor

N, K = 20, 10
MEMBERS = list(range(K))  # the subset trained in the last epoch
# Forgetting events of each member; None: never classified correctly since the last reset.
COUNTS = [5, 0, 4, 1, None, 2, 3, 6, 7, 8]
LEAST_FORGOTTEN = {1, 3, 5}  # the three lowest counts


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def present(stats, sample, sequence):
    """Record one presentation per entry of ``sequence`` (1 correct, 0 not) for ``sample``."""
    for c in sequence:
        stats.update(torch.tensor([sample]), torch.ones(1), 0, correct=torch.tensor([bool(c)]))


def subset_stats(counts=COUNTS, planning=3, members=MEMBERS, n=N):
    """Statistics as after epoch ``planning - 1`` trained ``members``, whose forgetting counts
    since the last reset are ``counts``; the other samples were trained earlier."""
    stats = LossStatistics(n)
    stats.track_correctness()
    for sample, count in zip(members, counts, strict=True):
        present(stats, sample, [0, 0] if count is None else [1, 0] * count + [1])
    stats.seen.fill_(max(planning - 1, 0))
    stats.seen[members] = planning
    return stats


def chosen(selection):
    indices = selection.indices
    check_index_tensor("indices", indices, N)  # distinct and in range
    return set(indices.tolist())


# ----------------------------------------------------------------- the rule, by hand
def test_forgetting_counts_of_the_scripted_subset():
    counts = subset_stats().forgetting_counts()[:K].tolist()
    assert counts == [math.inf if c is None else float(c) for c in COUNTS]


@pytest.mark.parametrize("seed", range(5))
def test_swap_drops_exactly_the_least_forgotten_and_adds_outsiders(seed):
    stats = subset_stats()
    selection = OnionPolicy(period=3, swap_fraction=0.3).select(stats, K, gen(seed))
    kept = chosen(selection)
    assert len(kept) == K and selection.shuffled and selection.weights is None
    assert kept & set(MEMBERS) == set(MEMBERS) - LEAST_FORGOTTEN
    assert len(kept - set(MEMBERS)) == 3  # as many outsiders as were dropped
    # The counters restart after a swap.
    assert torch.equal(stats.correct, torch.zeros(N, dtype=torch.int32))
    assert torch.isinf(stats.forgetting_counts()).all()


def test_the_outsiders_are_uniform_over_those_left_out():
    hits = torch.zeros(N)
    for seed in range(300):
        kept = chosen(OnionPolicy(period=3, swap_fraction=0.3).select(subset_stats(), K, gen(seed)))
        hits[list(kept - set(MEMBERS))] += 1
    outsiders = hits[K:]
    assert hits[:K].sum() == 0
    assert outsiders.sum() == 300 * 3
    assert outsiders.min() > 50 and outsiders.max() < 130  # 90 each in expectation


def test_ties_at_the_cut_are_broken_at_random():
    counts = [0, 0, 0, 5, 5, 5, 5, 5, 5, 5]  # two of the three zeros leave
    dropped = set()
    for seed in range(40):
        kept = chosen(
            OnionPolicy(period=3, swap_fraction=0.2).select(subset_stats(counts), K, gen(seed))
        )
        gone = set(MEMBERS) - kept
        assert len(gone) == 2 and gone <= {0, 1, 2}
        dropped |= gone
    assert dropped == {0, 1, 2}


def test_same_generator_same_swap():
    a = OnionPolicy(period=3).select(subset_stats(), K, gen(4)).indices
    b = OnionPolicy(period=3).select(subset_stats(), K, gen(4)).indices
    assert torch.equal(a, b)


@pytest.mark.parametrize("planning", [1, 2, 4, 5, 7])
def test_other_epochs_keep_the_subset_and_its_counters(planning):
    stats = subset_stats(planning=planning)
    before = stats.correct.clone()
    kept = chosen(OnionPolicy(period=3).select(stats, K, gen()))
    assert kept == set(MEMBERS)
    assert torch.equal(stats.correct, before)


@pytest.mark.parametrize(
    ("max_swaps", "swapping"),
    [(None, [3, 6, 9, 300]), (2, [3, 6]), (0, [])],
)
def test_max_swaps_stops_swapping(max_swaps, swapping):
    policy = OnionPolicy(period=3, swap_fraction=0.3, max_swaps=max_swaps)
    for planning in (3, 6, 9, 300):
        kept = chosen(policy.select(subset_stats(planning=planning), K, gen()))
        assert (kept != set(MEMBERS)) == (planning in swapping), planning
        assert policy.swaps_at(planning) == (planning in swapping)
    assert not policy.swaps_at(0)


def test_paper_schedule_swaps_five_times_every_thirty_epochs():
    policy = OnionPolicy()
    assert [e for e in range(400) if policy.swaps_at(e)] == [30, 60, 90, 120, 150]


def test_first_epoch_is_a_uniform_subset_and_needs_no_history():
    stats = LossStatistics(N)  # nothing tracked yet: the first epoch reads no correctness
    kept = chosen(OnionPolicy(period=1).select(stats, K, gen()))
    assert len(kept) == K
    hits = torch.zeros(N)
    for seed in range(200):
        hits[list(chosen(OnionPolicy().select(stats, K, gen(seed))))] += 1
    assert hits.min() > 60 and hits.max() < 140  # 100 each in expectation


@pytest.mark.parametrize("planning", [1, 3])
def test_after_full_warmup_a_random_part_is_kept_without_a_swap(planning):
    stats = subset_stats(planning=planning, members=list(range(N)), counts=[0] * N)
    before = stats.correct.clone()
    kept = chosen(OnionPolicy(period=3).select(stats, K, gen()))
    assert len(kept) == K  # a random subset of the data set, trained in full last epoch
    assert torch.equal(stats.correct, before)  # a swap due now is skipped: nothing reset


def test_a_partly_recorded_subset_is_filled_up_before_the_swap():
    members = MEMBERS[:7]  # three of the last subset's samples were not recorded
    counts = COUNTS[:7]
    kept = chosen(OnionPolicy(period=5).select(subset_stats(counts, 4, members), K, gen()))
    assert set(members) <= kept and len(kept) == K
    # At a swap epoch the least forgotten of the filled-up subset leave; the fill-ins have no
    # correct presentation, so they rank as most forgotten.
    stats = subset_stats(counts, 3, members)
    kept = chosen(OnionPolicy(period=3, swap_fraction=0.3).select(stats, K, gen()))
    assert kept & set(members) == set(members) - LEAST_FORGOTTEN
    assert len(kept) == K


def test_swap_size_is_rounded_and_bounded_by_the_samples_left_out():
    stats = subset_stats(counts=[0] * 15, members=list(range(15)))
    kept = chosen(OnionPolicy(period=3, swap_fraction=1.0).select(stats, 15, gen()))
    assert len(kept) == 15 and set(range(15, N)) <= kept  # all 5 outsiders came in
    stats = subset_stats(counts=[0] * N, members=list(range(N)))
    kept = chosen(OnionPolicy(period=3, swap_fraction=1.0).select(stats, N, gen()))
    assert kept == set(range(N))  # nothing left out: nothing to swap
    kept = chosen(OnionPolicy(period=3, swap_fraction=0.01).select(subset_stats(), K, gen()))
    assert len(set(MEMBERS) - kept) == 1  # at least one sample swaps


def test_a_swap_without_tracked_correctness_is_explained():
    stats = subset_stats()
    stats.correct = None
    with pytest.raises(RuntimeError, match=r"forgetting_counts\(\) needs per-sample correctness"):
        OnionPolicy(period=3).select(stats, K, gen())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"period": 0}, r"period must be an integer >= 1, got 0"),
        ({"period": 2.0}, r"period must be an integer >= 1, got 2.0"),
        ({"period": True}, r"period must be an integer >= 1, got True"),
        ({"swap_fraction": 0.0}, r"swap_fraction must be in \(0, 1\], got 0.0"),
        ({"swap_fraction": 1.5}, r"swap_fraction must be in \(0, 1\], got 1.5"),
        ({"swap_fraction": float("nan")}, r"swap_fraction must be in \(0, 1\], got nan"),
        ({"max_swaps": -1}, r"max_swaps must be an integer >= 0, got -1"),
        ({"max_swaps": 1.0}, r"max_swaps must be an integer >= 0, got 1.0"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OnionPolicy(**kwargs)


def test_registered_by_name():
    policy = make_policy("onion")
    assert isinstance(policy, OnionPolicy) and policy.needs_correctness
    assert repr(policy) == "OnionPolicy(period=30, swap_fraction=0.2, max_swaps=5)"


# ----------------------------------------------------------------- in the sampler
def test_sampler_keeps_the_subset_between_swaps_and_swaps_on_schedule():
    policy = OnionPolicy(period=2, swap_fraction=0.25, max_swaps=2)
    sampler = DynamicPruningSampler(60, 0.5, policy, seed=2, warmup_epochs=1)
    assert sampler.stats.bytes_per_sample == 20
    subsets = [set(run_epoch(sampler, e, batch_size=6)) for e in range(8)]
    assert [len(s) for s in subsets] == [60] + [30] * 7
    changed = [len(subsets[e] - subsets[e - 1]) for e in range(2, 8)]
    # epochs 2..7: swaps at 2 and 4 (max_swaps=2), of round(0.25 * 30) = 8 samples
    assert changed == [8, 0, 8, 0, 0, 0]


def test_a_policy_without_correctness_costs_nothing_and_ignores_it():
    sampler = DynamicPruningSampler(60, 0.5, "uniform")
    assert sampler.stats.bytes_per_sample == 16
    run_epoch(sampler, 0, batch_size=6)  # correct= is accepted and ignored
    assert sampler.stats.correct is None


@pytest.mark.parametrize("stop", [2, 3])
def test_resume_at_epoch_boundary_equals_uninterrupted(stop):
    kwargs = dict(keep_ratio=0.4, policy=OnionPolicy(period=2), seed=5, warmup_epochs=1)
    full = DynamicPruningSampler(50, **kwargs)
    orders = [run_epoch(full, e, batch_size=6) for e in range(6)]
    first = DynamicPruningSampler(50, **kwargs)
    resumed = [run_epoch(first, e, batch_size=6) for e in range(stop)]
    second = DynamicPruningSampler(50, **kwargs)
    second.load_state_dict(first.state_dict())
    resumed += [run_epoch(second, e, batch_size=6) for e in range(stop, 6)]
    assert resumed == orders
    for name in ("mean", "var", "count", "seen", "correct"):
        assert torch.equal(getattr(second.stats, name), getattr(full.stats, name)), name


def test_resume_mid_epoch_equals_uninterrupted():
    kwargs = dict(keep_ratio=0.4, policy=OnionPolicy(period=2), seed=5)
    full = DynamicPruningSampler(50, **kwargs)
    orders = [run_epoch(full, e, batch_size=6) for e in range(5)]
    first = DynamicPruningSampler(50, **kwargs)
    for e in range(2):
        run_epoch(first, e, batch_size=6)
    first.set_epoch(2)  # a swap epoch: the counters were reset when it was planned
    order = list(first)
    idx = torch.tensor(order[:6])
    first.update(fake_losses(idx, 2), correct=fake_correct(idx, 2))
    second = DynamicPruningSampler(50, **kwargs)
    second.load_state_dict(first.state_dict())
    second.set_epoch(2)
    rest = list(second)
    assert order == orders[2] and rest == order[6:]
    for start in range(0, len(rest), 6):
        idx = torch.tensor(rest[start : start + 6])
        second.update(fake_losses(idx, 2), correct=fake_correct(idx, 2))
    assert [run_epoch(second, e, batch_size=6) for e in (3, 4)] == orders[3:]
    for name in ("mean", "var", "count", "seen", "correct"):
        assert torch.equal(getattr(second.stats, name), getattr(full.stats, name)), name


# ----------------------------------------------------------------- update(correct=...) checks
def planned(policy="onion"):
    sampler = DynamicPruningSampler(8, 0.5, policy)
    list(sampler)
    return sampler


@pytest.mark.parametrize(
    ("correct", "error", "match"),
    [
        (torch.ones(4), TypeError, r"correct must have dtype torch.bool .* got torch.float32"),
        (torch.ones(4, dtype=torch.int64), TypeError, r"correct must have dtype .* torch.int64"),
        (
            torch.ones(3, dtype=torch.bool),
            ValueError,
            r"correct must have shape \(4,\) like losses, got \(3,\)",
        ),
        (
            torch.ones(4, 1, dtype=torch.bool),
            ValueError,
            r"correct must have shape \(4,\) like losses, got \(4, 1\)",
        ),
        ([True] * 4, TypeError, r"correct must be a bool torch.Tensor, got list"),
    ],
)
@pytest.mark.parametrize("policy", ["onion", "uniform"])
def test_bad_correct_is_refused_before_anything_is_recorded(policy, correct, error, match):
    sampler = planned(policy)
    with pytest.raises(error, match=match):
        sampler.update(torch.ones(4), correct=correct)
    assert sampler.stats.count.sum() == 0
    sampler.update(torch.ones(4), correct=torch.ones(4, dtype=torch.bool))  # the same batch
    assert sampler.stats.count.sum() == 4


def test_missing_correct_names_the_argument_and_the_policy():
    sampler = planned()
    with pytest.raises(
        ValueError, match=r"correct is required by OnionPolicy\(period=30, swap_fraction=0.2"
    ):
        sampler.update(torch.ones(4))
    assert sampler.stats.count.sum() == 0


def test_update_with_correct_reads_nothing_back_to_the_host(monkeypatch):
    sampler = DynamicPruningSampler(8, 1.0, "onion")
    list(sampler)

    def host_read(*args, **kwargs):
        raise AssertionError("a host read in the per-step path")

    for name in ("item", "tolist", "__bool__", "__int__", "__float__", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, host_read)
    sampler.update(
        torch.tensor([1.0, float("nan"), 2.0, 3.0]), correct=torch.ones(4, dtype=torch.bool)
    )
    sampler.update(torch.ones(4), correct=torch.zeros(4, dtype=torch.bool))
    monkeypatch.undo()
    assert sampler.stats.forgetting_counts().isfinite().sum() == 3  # the NaN one never learned
