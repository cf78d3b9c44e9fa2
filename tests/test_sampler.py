import math
import warnings

import pytest
import torch
from conftest import run_epoch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader, TensorDataset

from dynaprune import POLICIES, DynamicPruningSampler
from dynaprune.core._inputs import must_follow
from dynaprune.core.schedule import epoch_generator


@pytest.mark.parametrize("policy", POLICIES)
def test_exact_size_every_pruned_epoch(policy):
    n, keep = 103, 0.37
    sampler = DynamicPruningSampler(
        n, keep, policy, warmup_epochs=1, anneal_epochs=1, total_epochs=5
    )
    sizes = [len(set(run_epoch(sampler, e))) for e in range(5)]
    k = round(keep * n)
    assert sizes == [n, k, k, k, n]
    assert [sampler.epoch_length(e) for e in range(5)] == sizes


@pytest.mark.parametrize("policy", POLICIES)
def test_same_seed_same_subsets(policy):
    orders = []
    for _ in range(2):
        sampler = DynamicPruningSampler(200, 0.5, policy, seed=3)
        orders.append([run_epoch(sampler, e) for e in range(4)])
    assert orders[0] == orders[1]
    other = DynamicPruningSampler(200, 0.5, policy, seed=4)
    assert [run_epoch(other, e) for e in range(4)] != orders[0]


def test_len_is_known_before_iteration_and_constant_across_pruned_epochs():
    sampler = DynamicPruningSampler(100, 0.3, warmup_epochs=2)
    assert len(sampler) == 100
    sampler.set_epoch(2)
    assert len(sampler) == 30
    sampler.set_epoch(7)
    assert len(sampler) == 30


def test_keep_ratio_one_is_a_fresh_full_permutation_each_epoch():
    sampler = DynamicPruningSampler(50, 1.0, "ucb")
    a, b = run_epoch(sampler, 0), run_epoch(sampler, 1)
    assert sorted(a) == sorted(b) == list(range(50))
    assert a != b


def test_independent_of_num_workers():
    data = TensorDataset(torch.arange(64).float())
    seen = []
    for workers in (0, 2):
        sampler = DynamicPruningSampler(data, 0.5, "epsilon_greedy", seed=1)
        loader = DataLoader(data, batch_size=8, sampler=sampler, num_workers=workers)
        epochs = []
        for epoch in range(3):
            sampler.set_epoch(epoch)
            batches = []
            for (x,) in loader:
                sampler.update(x / 64.0)
                batches.append(x.long().tolist())
            epochs.append(batches)
        seen.append(epochs)
    assert seen[0] == seen[1]


def test_positional_and_indexed_updates_agree():
    a = DynamicPruningSampler(60, 0.5, "ucb", seed=0)
    b = DynamicPruningSampler(60, 0.5, "ucb", seed=0)
    for epoch in range(3):
        for s in (a, b):
            s.set_epoch(epoch)
        order = list(a)
        assert order == list(b)
        for start in range(0, len(order), 8):
            idx = torch.tensor(order[start : start + 8])
            losses = idx.float().sin() + epoch
            a.update(losses)
            b.update(losses, indices=idx)
    assert torch.equal(a.stats.mean, b.stats.mean)
    assert torch.equal(a.stats.count, b.stats.count)


def test_soft_update_returns_weighted_mean_with_grad():
    sampler = DynamicPruningSampler(40, 0.25, "soft", seed=0)
    run_epoch(sampler, 0)
    sampler.set_epoch(1)
    order = list(sampler)
    losses = torch.rand(5, requires_grad=True)
    weights = sampler.batch_weights(losses)
    assert torch.equal(weights, sampler.batch_weights(5, indices=torch.tensor(order[:5])))
    loss = sampler.update(losses)
    assert torch.allclose(loss, (losses * weights).mean())
    loss.backward()
    assert torch.allclose(losses.grad, weights / 5)
    assert (weights > 1).any()


def test_unweighted_update_returns_plain_mean():
    sampler = DynamicPruningSampler(10, 0.5, "uniform")
    list(sampler)
    losses = torch.tensor([1.0, 2.0, 3.0])
    assert sampler.update(losses).item() == pytest.approx(2.0)
    assert torch.equal(sampler.batch_weights(2), torch.ones(2))


def test_nonfinite_losses_are_reported_once_per_epoch():
    sampler = DynamicPruningSampler(10, 0.5)
    sampler.set_epoch(0)
    list(sampler)
    sampler.update(torch.tensor([1.0, float("nan"), float("inf"), 2.0, 3.0]))
    assert torch.isfinite(sampler.stats.mean).all()
    sampler.set_epoch(1)
    with pytest.warns(RuntimeWarning, match="2 non-finite per-sample losses in epoch 0"):
        list(sampler)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sampler.set_epoch(2)
        list(sampler)


def test_nonfinite_raise_mode():
    sampler = DynamicPruningSampler(10, 0.5, nonfinite="raise")
    list(sampler)
    sampler.update(torch.tensor([float("nan")]))
    sampler.set_epoch(1)
    with pytest.raises(FloatingPointError, match="1 non-finite"):
        list(sampler)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("stop", [0, 1, 3])
def test_resume_at_epoch_boundary_equals_uninterrupted(policy, stop):
    kwargs = dict(
        keep_ratio=0.4, policy=policy, seed=5, warmup_epochs=1, anneal_epochs=1, total_epochs=6
    )
    full = DynamicPruningSampler(97, **kwargs)
    orders = [run_epoch(full, e) for e in range(6)]

    first = DynamicPruningSampler(97, **kwargs)
    resumed_orders = [run_epoch(first, e) for e in range(stop)]
    state = first.state_dict()
    second = DynamicPruningSampler(97, **kwargs)
    second.load_state_dict(state)
    resumed_orders += [run_epoch(second, e) for e in range(stop, 6)]
    assert resumed_orders == orders
    for name in ("mean", "var", "count", "seen"):
        assert torch.equal(getattr(second.stats, name), getattr(full.stats, name))


@pytest.mark.parametrize("policy", ["uniform", "soft"])
def test_resume_mid_epoch_continues_after_the_last_recorded_batch(policy):
    kwargs = dict(keep_ratio=0.5, policy=policy, seed=1)
    full = DynamicPruningSampler(80, **kwargs)
    for e in range(2):
        run_epoch(full, e, batch_size=8)
    first = DynamicPruningSampler(80, **kwargs)
    run_epoch(first, 0, batch_size=8)
    first.set_epoch(1)
    order = list(first)
    for start in (0, 8):
        idx = torch.tensor(order[start : start + 8])
        first.update((idx.float() * 0.37 + 1) % 5.0)
    second = DynamicPruningSampler(80, **kwargs)
    second.load_state_dict(first.state_dict())
    second.set_epoch(1)
    assert len(second) == len(order)  # the epoch's length, as loops count batches done
    rest = list(second)
    assert rest == order[16:]
    weights = second.batch_weights(8)
    assert torch.equal(weights, first.batch_weights(8))
    for start in range(0, len(rest), 8):
        idx = torch.tensor(rest[start : start + 8])
        second.update((idx.float() * 0.37 + 1) % 5.0)
    assert torch.equal(second.stats.mean, full.stats.mean)
    assert torch.equal(second.stats.count, full.stats.count)


def test_epoch_order_is_kept_in_four_bytes_and_batches_come_out_as_int64():
    sampler = DynamicPruningSampler(60, 0.5, "ucb", seed=2)
    run_epoch(sampler, 0, batch_size=8)
    sampler.set_epoch(1)
    order = list(sampler)
    state = sampler.state_dict()
    assert state["plan"]["order"].dtype == torch.int32
    assert sampler.batch_indices(8).dtype == torch.int64
    assert sampler.batch_indices(8).tolist() == order[:8]
    sampler.update(torch.ones(8))
    # a checkpoint written with int64 orders (earlier versions) resumes the same way
    state = sampler.state_dict()
    state["plan"]["order"] = state["plan"]["order"].to(torch.int64)
    resumed = DynamicPruningSampler(60, 0.5, "ucb", seed=2)
    resumed.load_state_dict(state)
    resumed.set_epoch(1)
    assert list(resumed) == order[8:]
    assert resumed.batch_indices(8).dtype == torch.int64


def test_full_epochs_draw_the_permutation_of_torch_randperm():
    # warm-up epochs hand out randperm(n) of the sampler's generator, as before the order was
    # kept in four bytes
    sampler = DynamicPruningSampler(100_000, 0.5, warmup_epochs=1, seed=5)
    sampler.set_epoch(0)
    expected = torch.randperm(100_000, generator=epoch_generator(5, 0, torch.device("cpu")))
    assert list(sampler) == expected.tolist()


def test_state_from_another_data_set_size_is_rejected():
    state = DynamicPruningSampler(10, 0.5).state_dict()
    with pytest.raises(ValueError, match="data set of 10 samples, but this sampler has 11"):
        DynamicPruningSampler(11, 0.5).load_state_dict(state)


def test_total_steps_counts_each_phase():
    sampler = DynamicPruningSampler(1000, 0.3, warmup_epochs=2, anneal_epochs=1, total_epochs=10)
    assert sampler.total_steps(batch_size=64) == 3 * 16 + 7 * 5
    assert sampler.total_steps(batch_size=64, drop_last=True) == 3 * 15 + 7 * 4
    assert sampler.total_steps(batch_size=64, accumulate_grad_batches=4) == 3 * 4 + 7 * 2
    sharded = DynamicPruningSampler(1000, 0.3, num_replicas=4, rank=1, total_epochs=2)
    assert sharded.total_steps(batch_size=10) == 2 * 8


def test_epoch_steps_are_the_terms_of_total_steps():
    sampler = DynamicPruningSampler(1000, 0.3, warmup_epochs=2, anneal_epochs=1, total_epochs=10)
    for kwargs in ({}, {"drop_last": True}, {"accumulate_grad_batches": 4}):
        steps = [sampler.epoch_steps(e, 64, **kwargs) for e in range(10)]
        assert sum(steps) == sampler.total_steps(batch_size=64, **kwargs)
    assert [sampler.epoch_steps(e, 64) for e in (1, 2, 9)] == [16, 5, 16]
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        sampler.epoch_steps(0, 0)


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize(("n", "replicas"), [(10, 3), (7, 4), (100, 2), (3, 5)])
def test_shards_disjoint_and_complete(n, replicas, drop_last):
    if drop_last and n < replicas:
        with pytest.raises(ValueError, match="fewer than the"):
            list(DynamicPruningSampler(n, 1.0, num_replicas=replicas, rank=0, drop_last=True))
        return
    shards = []
    for rank in range(replicas):
        sampler = DynamicPruningSampler(
            n, 1.0, seed=2, num_replicas=replicas, rank=rank, drop_last=drop_last
        )
        shards.append(list(sampler))
        assert len(shards[-1]) == len(sampler)
    lengths = {len(s) for s in shards}
    assert len(lengths) == 1
    flat = [i for s in shards for i in s]
    if drop_last:
        assert len(flat) == len(set(flat)) == (n // replicas) * replicas
    else:
        assert set(flat) == set(range(n))
        assert len(flat) == math.ceil(n / replicas) * replicas


def test_pruned_shards_partition_one_global_subset():
    replicas = 3
    shards = [
        list(DynamicPruningSampler(100, 0.5, "ucb", num_replicas=replicas, rank=r))
        for r in range(replicas)
    ]
    flat = [i for s in shards for i in s]
    assert len(set(flat)) == 50
    assert len(flat) == 51  # padded by one repeated sample


def test_padding_is_not_recorded_twice():
    sampler = DynamicPruningSampler(5, 1.0, num_replicas=2, rank=1)
    order = list(sampler)  # 3 positions, the last one padding
    assert len(order) == 3
    sampler.update(torch.ones(3))
    assert sampler.stats.count.sum().item() == 2


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 300),
    keep=st.floats(0.01, 1.0),
    policy=st.sampled_from(POLICIES),
    replicas=st.integers(1, 4),
    drop_last=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_sampler_invariants(n, keep, policy, replicas, drop_last, seed):
    k = round(keep * n)
    if k < 1:
        with pytest.raises(ValueError, match="keep_ratio"):
            DynamicPruningSampler(n, keep, policy)
        return
    # Statistics of one epoch, shared by every rank as after a merge.
    single = DynamicPruningSampler(n, keep, policy, seed=seed)
    run_epoch(single, 0)
    state = single.state_dict()
    shards = []
    for rank in range(replicas):
        s = DynamicPruningSampler(
            n, keep, policy, seed=seed, num_replicas=replicas, rank=rank, drop_last=drop_last
        )
        s.load_state_dict(state)
        s.set_epoch(1)
        if drop_last and k < replicas:
            with pytest.raises(ValueError, match="fewer than the"):
                list(s)
            return
        shard = list(s)
        assert len(shard) == len(s) == s.epoch_length(1)
        assert all(0 <= i < n for i in shard)
        shards.append(shard)
    flat = [i for sh in shards for i in sh]
    distinct = set(flat)
    if drop_last:
        assert len(distinct) == len(flat) == (k // replicas) * replicas
    else:
        assert len(distinct) == k


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"keep_ratio": 0.0}, ValueError, r"keep_ratio must be in \(0, 1\], got 0.0"),
        ({"keep_ratio": 1.5}, ValueError, r"keep_ratio must be in \(0, 1\], got 1.5"),
        ({"keep_ratio": float("nan")}, ValueError, r"keep_ratio must be in \(0, 1\], got nan"),
        ({"keep_ratio": 0.001}, ValueError, r"keep_ratio=0.001 of 100 samples keeps .* = 0"),
        ({"policy": "topk"}, ValueError, r"policy must be one of .*'onion'\], got 'topk'"),
        ({"seed": -1}, ValueError, r"seed must be an integer >= 0, got -1"),
        ({"warmup_epochs": 1.5}, ValueError, r"warmup_epochs must be an integer >= 0, got 1.5"),
        ({"anneal_epochs": 2}, ValueError, r"anneal_epochs=2 needs total_epochs"),
        ({"total_epochs": 0}, ValueError, r"total_epochs must be an integer >= 1, got 0"),
        ({"num_replicas": 0}, ValueError, r"num_replicas must be >= 1, got 0"),
        ({"num_replicas": 2, "rank": 2}, ValueError, r"rank must be in \[0, 1\], got 2"),
        (
            {"nonfinite": "skip"},
            ValueError,
            r"nonfinite must be one of \['warn', 'raise', 'ignore'\], got 'skip'",
        ),
        ({"momentum": 1.0}, ValueError, r"momentum must be in \[0, 1\), got 1.0"),
        ({"drop_last": "yes"}, ValueError, r"drop_last must be a bool, got 'yes'"),
    ],
)
def test_bad_constructor_arguments(kwargs, error, match):
    kwargs = {"keep_ratio": 0.5, **kwargs}
    with pytest.raises(error, match=match):
        DynamicPruningSampler(100, **kwargs)


def test_bad_data_source():
    with pytest.raises(
        TypeError, match="data_source must be a sized data set or its length, got float"
    ):
        DynamicPruningSampler(3.0, 0.5)
    with pytest.raises(ValueError, match="at least one sample, got length 0"):
        DynamicPruningSampler([], 0.5)


def test_bad_updates():
    sampler = DynamicPruningSampler(10, 0.5)
    with pytest.raises(RuntimeError, match="before the sampler was iterated"):
        sampler.update(torch.ones(2))
    list(sampler)
    with pytest.raises(TypeError, match="losses must be a torch.Tensor, got list"):
        sampler.update([1.0, 2.0])
    with pytest.raises(ValueError, match=r"1-D floating tensor .* got shape \(2, 3\)"):
        sampler.update(torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"dtype torch.int64"):
        sampler.update(torch.ones(2, dtype=torch.long))
    with pytest.raises(ValueError, match="losses has 6 entries but only 5 samples of epoch 0"):
        sampler.update(torch.ones(6))
    with pytest.raises(
        TypeError, match="indices must be an integer tensor, got dtype torch.float32"
    ):
        sampler.update(torch.ones(2), indices=torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"indices must have shape \(2,\) like losses, got \(3,\)"):
        sampler.update(torch.ones(2), indices=torch.tensor([0, 1, 2]))
    with pytest.raises(IndexError, match=r"indices must be in \[0, 10\), got 10"):
        sampler.update(torch.ones(2), indices=torch.tensor([0, 10]))
    with pytest.raises(IndexError, match=r"got -1"):
        sampler.update(torch.ones(1), indices=torch.tensor([-1]))
    with pytest.raises(ValueError, match="epoch must be an integer >= 0, got -1"):
        sampler.set_epoch(-1)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        sampler.total_steps(batch_size=0, epochs=1)
    with pytest.raises(ValueError, match="epochs must be given"):
        sampler.total_steps(batch_size=4)


class _ReportsCuda(torch.Tensor):
    """CPU values that report the device ``cuda:0``: what the sampler sees of losses computed
    on another device, on a machine without one."""

    @property
    def device(self) -> torch.device:  # type: ignore[override]
        return torch.device("cuda", 0)


def test_device_is_fixed_once():
    sampler = DynamicPruningSampler(10, 0.5, device="cpu")
    assert sampler.stats.device == torch.device("cpu")
    list(sampler)
    sampler.update(torch.ones(2))
    elsewhere = torch.ones(2).as_subclass(_ReportsCuda)
    assert elsewhere.device == torch.device("cuda", 0)
    with pytest.raises(ValueError, match="losses are on cuda:0, but the statistics live on cpu"):
        sampler.update(elsewhere)
    with pytest.raises(ValueError, match="losses are on cuda:0, but the statistics live on cpu"):
        sampler.batch_weights(elsewhere)
    # refused before anything was recorded or moved
    assert sampler.stats.device == torch.device("cpu")
    assert int(sampler.stats.count.sum()) == 2
    sampler.update(torch.ones(2))  # the batch is still the next one
    assert int(sampler.stats.count.sum()) == 4
    # the rule itself: an unindexed device matches any index of its type
    assert not must_follow(torch.device("cuda"), torch.device("cuda", 1), fixed=True)
    assert must_follow(torch.device("cuda", 0), torch.device("cpu"), fixed=False)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_statistics_follow_the_first_losses_once_then_stay():
    sampler = DynamicPruningSampler(10, 0.5)
    list(sampler)
    sampler.update(torch.ones(2, device="cuda"))
    assert sampler.stats.device.type == "cuda"
    with pytest.raises(ValueError, match="losses are on cpu, but the statistics live on cuda"):
        sampler.update(torch.ones(2))


def test_meta_losses_are_refused_and_the_statistics_stay():
    sampler = DynamicPruningSampler(10, 0.5)
    list(sampler)
    sampler.update(torch.ones(2))
    with pytest.raises(ValueError, match="losses are on the meta device, which holds no values"):
        sampler.update(torch.ones(2, device="meta"))
    with pytest.raises(ValueError, match="correct are on the meta device"):
        sampler.update(torch.ones(2), correct=torch.ones(2, dtype=torch.bool, device="meta"))
    with pytest.raises(ValueError, match="indices are on the meta device"):
        sampler.update(torch.ones(2), indices=torch.zeros(2, dtype=torch.long, device="meta"))
    with pytest.raises(ValueError, match="device='meta': the meta device holds no values"):
        DynamicPruningSampler(10, 0.5, device="meta")
    with pytest.raises(ValueError, match="device='meta'"):
        sampler.to("meta")
    assert sampler.stats.device == torch.device("cpu")
    assert int(sampler.stats.count.sum()) == 2
    assert sampler.state_dict()["stats"]["count"].sum() == 2


def test_indexed_update_with_a_sample_outside_the_epoch_raises_and_records_nothing():
    sampler = DynamicPruningSampler(20, 0.5, "ucb", seed=0)
    order = list(sampler)
    outside = sorted(set(range(20)) - set(order))[0]
    sampler.update(torch.ones(2), indices=torch.tensor(order[:2]))
    with pytest.raises(ValueError, match=rf"named sample {outside} not in epoch 0's subset"):
        sampler.update(torch.ones(2), indices=torch.tensor([order[2], outside]))
    assert int(sampler.stats.count.sum()) == 2  # the refused batch left no trace
    sampler.update(torch.ones(2), indices=torch.tensor(order[2:4]))
    assert int(sampler.stats.count.sum()) == 4


def test_indexed_update_outside_a_full_epoch_is_impossible_so_any_index_is_fine():
    sampler = DynamicPruningSampler(20, 0.5, "ucb", warmup_epochs=1)
    list(sampler)  # epoch 0: warm-up, every sample is in it
    sampler.update(torch.ones(3), indices=torch.tensor([19, 0, 7]))
    assert int(sampler.stats.count.sum()) == 3


def test_strangers_counted_on_an_accelerator_raise_at_the_next_epoch_boundary():
    # Off the CPU, EpochMembers counts strangers on the device instead of raising (no host
    # sync per step); planning the next epoch reads the count. Simulated here on the CPU.
    sampler = DynamicPruningSampler(20, 0.5, "ucb", seed=0)
    order = list(sampler)
    sampler.update(torch.ones(2), indices=torch.tensor(order[:2]))
    sampler._plan._members.strangers += 3
    sampler.set_epoch(1)
    for _ in range(2):  # like nonfinite="raise", it keeps being raised
        with pytest.raises(ValueError, match=r"named 3 samples not in epoch 0's subset"):
            list(sampler)


def test_indexed_updates_resume_mid_epoch_after_the_recorded_samples():
    first = DynamicPruningSampler(20, 0.5, seed=0)
    order = list(first)
    first.update(torch.ones(4), indices=torch.tensor(order[:4]))
    second = DynamicPruningSampler(20, 0.5, seed=0)
    second.load_state_dict(first.state_dict())
    assert list(second) == order[4:]


def test_mid_epoch_state_with_another_epoch_size_is_rejected():
    first = DynamicPruningSampler(20, 0.5)
    order = list(first)
    first.update(torch.ones(4))
    with pytest.raises(
        ValueError, match="mid-way through epoch 0 of 10 samples, but this sampler's epoch 0 has 5"
    ):
        DynamicPruningSampler(20, 0.25).load_state_dict(first.state_dict())
    with pytest.raises(ValueError, match="num_replicas=1, but this sampler has 2"):
        DynamicPruningSampler(20, 0.5, num_replicas=2, rank=0).load_state_dict(first.state_dict())
    # At an epoch boundary another configuration may continue the statistics.
    first.update(torch.ones(len(order) - 4))
    other = DynamicPruningSampler(20, 0.25, momentum=0.1)
    other.load_state_dict(first.state_dict())
    assert other.stats.momentum == 0.1  # the sampler's own configuration wins
    assert torch.equal(other.stats.count, first.stats.count)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"anneal_epochs": 5, "total_epochs": 3}, "anneal_epochs=5 exceeds total_epochs=3"),
        ({"momentum": "0.5"}, r"momentum must be in \[0, 1\), got '0.5'"),
    ],
)
def test_more_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DynamicPruningSampler(100, 0.5, **kwargs)


def test_empty_shards_are_refused():
    sampler = DynamicPruningSampler(
        10, 0.1, num_replicas=2, rank=0, drop_last=True, warmup_epochs=1
    )
    assert len(list(sampler)) == 5  # warm-up: full data
    sampler.set_epoch(1)
    with pytest.raises(ValueError, match="keeps 1 samples, fewer than the 2 ranks"):
        list(sampler)


def test_empty_losses_are_refused():
    sampler = DynamicPruningSampler(10, 0.5)
    list(sampler)
    with pytest.raises(ValueError, match=r"non-empty 1-D .* got shape \(0,\)"):
        sampler.update(torch.ones(0))
