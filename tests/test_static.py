import pytest
import torch

from dynaprune import DynamicPruningSampler
from dynaprune.core.statistics import LossStatistics
from dynaprune.policies.static import StaticPolicy, class_quotas


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def kept(policy, n, k, epoch=0):
    sel = policy.select(LossStatistics(n), k, gen(epoch))
    assert sel.shuffled and sel.weights is None
    assert sel.indices.dtype == torch.int32 and sel.indices.numel() == k
    assert sel.indices.unique().numel() == k
    return sel.indices


def test_top_scores_are_kept_the_same_set_every_epoch_in_a_new_order():
    scores = torch.randperm(100, generator=gen(1)).float()
    policy = StaticPolicy(scores)
    orders = [kept(policy, 100, 30, epoch) for epoch in range(3)]
    expected = set(torch.topk(scores, 30).indices.tolist())
    assert all(set(o.tolist()) == expected for o in orders)
    assert orders[0].tolist() != orders[1].tolist()


def test_ties_at_the_boundary_are_broken_by_the_seed_identically_every_epoch():
    scores = torch.tensor([5.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0])
    sets = {frozenset(kept(StaticPolicy(scores, seed=s), 8, 3).tolist()) for s in range(8)}
    assert all(0 in s and 7 not in s for s in sets)
    assert len(sets) > 1  # the seed decides among the tied samples
    policy = StaticPolicy(scores, seed=3)
    per_epoch = {frozenset(kept(policy, 8, 3, epoch).tolist()) for epoch in range(5)}
    assert len(per_epoch) == 1
    fresh = StaticPolicy(scores, seed=3)  # a resumed run rebuilds the policy: the same set
    assert per_epoch == {frozenset(kept(fresh, 8, 3, epoch=9).tolist())}


def test_infinite_scores_rank_first_and_the_budget_is_exact():
    scores = torch.tensor([0.0, float("inf"), 2.0, float("-inf"), float("inf")])
    assert set(kept(StaticPolicy(scores), 5, 3).tolist()) == {1, 2, 4}
    assert set(kept(StaticPolicy(scores), 5, 5).tolist()) == set(range(5))


def test_index_set_is_kept_as_given():
    policy = StaticPolicy(indices=torch.tensor([7, 2, 4]))
    assert sorted(kept(policy, 10, 3).tolist()) == [2, 4, 7]


@pytest.mark.parametrize(
    ("sizes", "k", "expected"),
    [
        ([5, 3, 2], 5, [3, 1, 1]),  # shares 2.5, 1.5, 1.0: the tie goes to the lower class
        ([1, 1, 1], 2, [1, 1, 0]),
        ([10, 10], 20, [10, 10]),
        ([7, 2, 1], 1, [1, 0, 0]),
        ([3, 3, 4], 7, [2, 2, 3]),  # shares 2.1, 2.1, 2.8: the largest remainder wins
    ],
)
def test_class_quotas_are_proportional_with_largest_remainders(sizes, k, expected):
    quota = class_quotas(torch.tensor(sizes), k)
    assert quota.tolist() == expected and int(quota.sum()) == k


def test_class_quotas_reject_impossible_budgets():
    with pytest.raises(ValueError, match="num_keep must be <= the number of samples 5, got 6"):
        class_quotas(torch.tensor([2, 3]), 6)
    with pytest.raises(ValueError, match="num_keep must be an integer >= 0, got -1"):
        class_quotas(torch.tensor([2, 3]), -1)
    with pytest.raises(ValueError, match="class_sizes must be >= 0, got -2"):
        class_quotas(torch.tensor([-2, 3]), 1)


def test_class_balanced_keeps_each_class_share_of_its_highest_scores():
    labels = torch.tensor([3, 3, 3, 3, 3, 3, -1, -1, -1, -1])  # any integer labels
    scores = torch.tensor([0.0, 1, 2, 3, 4, 5, 9, 8, 7, 6])
    policy = StaticPolicy(scores, labels=labels, class_balanced=True)
    got = sorted(kept(policy, 10, 5).tolist())
    # shares: class -1 has 4 of 10 -> 2.0, class 3 has 6 -> 3.0
    assert got == [3, 4, 5, 6, 7]
    unbalanced = StaticPolicy(scores, labels=labels)  # labels alone change nothing
    assert sorted(kept(unbalanced, 10, 5).tolist()) == [5, 6, 7, 8, 9]


def test_class_balanced_budget_is_exact_for_many_budgets():
    labels = torch.randint(0, 7, (200,), generator=gen(2))
    policy = StaticPolicy(torch.rand(200, generator=gen(3)), labels=labels, class_balanced=True)
    sizes = torch.bincount(labels)
    for k in (1, 13, 99, 200):
        idx = kept(policy, 200, k)
        assert torch.bincount(labels[idx], minlength=7).tolist() == class_quotas(sizes, k).tolist()


def test_with_the_sampler_every_pruned_epoch_keeps_the_same_subset():
    scores = torch.arange(40).float()
    sampler = DynamicPruningSampler(40, 0.25, StaticPolicy(scores), warmup_epochs=1, seed=0)
    epochs = []
    for epoch in range(4):
        sampler.set_epoch(epoch)
        epochs.append(list(sampler))
    assert sorted(epochs[0]) == list(range(40))
    assert all(sorted(e) == list(range(30, 40)) for e in epochs[1:])
    assert epochs[1] != epochs[2]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, ValueError, "exactly one of scores or indices"),
        ({"scores": torch.ones(3), "indices": torch.arange(2)}, ValueError, "exactly one"),
        ({"scores": [1.0, 2.0]}, TypeError, "scores must be a torch.Tensor, got list"),
        ({"scores": torch.ones(2, 2)}, ValueError, r"scores must be .*1-D.*\(2, 2\)"),
        ({"scores": torch.arange(3)}, TypeError, "scores must have a floating-point dtype"),
        ({"scores": torch.tensor([1.0, float("nan")])}, ValueError, "scores must not contain NaN"),
        ({"indices": torch.tensor([1.0])}, TypeError, "indices must have an integer dtype"),
        ({"indices": torch.tensor([1, 1])}, ValueError, "indices must be distinct"),
        ({"indices": torch.tensor([-1, 2])}, ValueError, "indices must be >= 0, got -1"),
        ({"scores": torch.ones(3), "class_balanced": True}, ValueError, "needs labels"),
        (
            {
                "indices": torch.arange(2),
                "labels": torch.zeros(2, dtype=torch.long),
                "class_balanced": True,
            },
            ValueError,
            "needs scores",
        ),
        (
            {"scores": torch.ones(3), "labels": torch.zeros(2, dtype=torch.long)},
            ValueError,
            "labels has 2 entries but scores has 3",
        ),
        (
            {"scores": torch.ones(3), "class_balanced": 1},
            TypeError,
            "class_balanced must be a bool",
        ),
        ({"scores": torch.ones(3), "seed": -1}, ValueError, "seed must be an integer >= 0, got -1"),
    ],
)
def test_bad_arguments_are_rejected_at_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        StaticPolicy(**kwargs)


def test_sizes_that_do_not_fit_the_data_set_or_budget_are_rejected_at_selection():
    with pytest.raises(ValueError, match="scores has 3 entries, but the data set has 4"):
        kept(StaticPolicy(torch.ones(3)), 4, 2)
    with pytest.raises(ValueError, match="indices holds 3 samples but the budget num_keep is 2"):
        kept(StaticPolicy(indices=torch.arange(3)), 4, 2)
    with pytest.raises(ValueError, match="indices must be < the data set size 4, got 9"):
        kept(StaticPolicy(indices=torch.tensor([0, 9])), 4, 2)
