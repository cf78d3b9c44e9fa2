"""Bad and unusual inputs, table-driven: each gives a clear error (type, argument, value) or the
documented behaviour, never a silent wrong result."""

from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np
import pytest
import torch
from conftest import fake_losses
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader, TensorDataset

from dynaprune import DynamicPruningSampler, PruningPolicy, Selection, UCBPolicy

N = 40


def train(sampler: DynamicPruningSampler, epochs: range, batch: int = 4) -> list[list[int]]:
    """A plain loop over a DataLoader; returns the indices of every step."""
    data = TensorDataset(torch.arange(sampler.num_samples))
    loader = DataLoader(data, batch_size=batch, sampler=sampler)
    steps = []
    for epoch in epochs:
        sampler.set_epoch(epoch)
        for (idx,) in loader:
            sampler.update(fake_losses(idx, epoch))
            steps.append(idx.tolist())
    return steps


def stats_equal(a: DynamicPruningSampler, b: DynamicPruningSampler) -> bool:
    return all(
        torch.equal(getattr(a.stats, f), getattr(b.stats, f))
        for f in ("mean", "var", "count", "seen")
    )


# ----------------------------------------------------------------- 1. iterating mid-epoch
@pytest.mark.parametrize("policy", ["uniform", "ucb", "soft"])
@pytest.mark.parametrize("how", ["peek", "second_loader"])
def test_iterating_again_mid_epoch_continues_the_epoch(policy: str, how: str) -> None:
    reference = DynamicPruningSampler(N, 0.5, policy, seed=1)
    expected = train(reference, range(3))
    sampler = DynamicPruningSampler(N, 0.5, policy, seed=1)
    data = TensorDataset(torch.arange(N))
    loader = DataLoader(data, batch_size=4, sampler=sampler)
    steps = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        for step, (idx,) in enumerate(loader):
            if step == 2:
                other = loader if how == "peek" else DataLoader(data, 4, sampler=sampler)
                (peeked,) = next(iter(other))
                assert peeked.tolist() == idx.tolist()  # continues after the last recorded batch
            sampler.update(fake_losses(idx, epoch))
            steps.append(idx.tolist())
    assert steps == expected
    assert stats_equal(sampler, reference)


def test_peek_before_the_epoch_does_not_replan() -> None:
    sampler = DynamicPruningSampler(N, 0.5, "ucb")
    train(sampler, range(1))
    sampler.set_epoch(1)
    first = list(sampler)
    assert list(sampler) == first  # nothing recorded yet: the same plan
    assert sampler.timings["select_seconds"] > 0


# ----------------------------------------------------------------- 2. huge and NaN losses
@pytest.mark.parametrize("policy", ["epsilon_greedy", "ucb", "soft"])
@pytest.mark.parametrize("huge", [1e20, 3e38, -3e38])
def test_huge_finite_losses_keep_the_statistics_finite(policy: str, huge: float) -> None:
    sampler = DynamicPruningSampler(N, 0.5, policy, seed=0)

    def loss_fn(idx: torch.Tensor, epoch: int) -> torch.Tensor:
        sign = 1.0 if epoch % 2 else -1.0  # alternating signs: the worst case for the variance
        return torch.where(idx < 3, sign * huge, fake_losses(idx, epoch))

    for epoch in range(6):
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler))
        for start in range(0, len(order), 4):
            sampler.update(loss_fn(order[start : start + 4], epoch))
        assert torch.isfinite(sampler.stats.mean).all()
        assert torch.isfinite(sampler.stats.var).all()
    summary = sampler.summary()
    assert all(np.isfinite(v) for v in summary.values()), summary
    assert summary["nonfinite_skipped"] == 0


def test_soft_keeps_reweighting_with_huge_losses() -> None:
    sampler = DynamicPruningSampler(N, 0.5, "soft", seed=0)
    train(sampler, range(1))
    sampler.stats.mean[:2] = 3e38  # their float32 sum overflows
    sampler.set_epoch(1)
    list(sampler)
    assert (sampler.batch_weights(4) != 1).any() or sampler.batch_weights(20).unique().numel() > 1


@pytest.mark.parametrize("policy", ["epsilon_greedy", "ucb", "soft"])
def test_always_nan_samples_are_seen_and_not_kept_every_epoch(policy: str) -> None:
    sampler = DynamicPruningSampler(N, 0.25, policy, seed=0, nonfinite="ignore")
    nan_samples = {0, 1}

    def loss_fn(idx: torch.Tensor, epoch: int) -> torch.Tensor:
        nan = torch.tensor([i in nan_samples for i in idx.tolist()])
        return torch.where(nan, float("nan"), fake_losses(idx, epoch))

    kept = 0
    for epoch in range(12):
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler))
        kept += len(nan_samples & set(order.tolist()))
        for start in range(0, len(order), 5):
            sampler.update(loss_fn(order[start : start + 5], epoch))
    assert (sampler.stats.seen[[0, 1]] > 0).all()
    assert kept < 2 * 12  # unseen samples would be kept in every epoch


# ----------------------------------------------------------------- 3. resume at a last batch
@pytest.mark.parametrize("save_after", ["last_batch", "epoch_loop", "mid_epoch"])
def test_plain_loop_resume_counts_nothing_twice(save_after: str) -> None:
    """The README's recipe: save ``sampler.state_dict()`` with the model; on resume, load it and
    continue from ``sampler.epoch``."""
    epochs, batch = 3, 4
    reference = DynamicPruningSampler(N, 0.5, "ucb", warmup_epochs=1)
    expected = train(reference, range(epochs), batch)  # 10 + 5 + 5 steps

    first = DynamicPruningSampler(N, 0.5, "ucb", warmup_epochs=1)
    data = TensorDataset(torch.arange(N))
    loader = DataLoader(data, batch_size=batch, sampler=first)
    steps, checkpoint = [], None
    first.set_epoch(0)
    for i, (idx,) in enumerate(loader):
        first.update(fake_losses(idx, 0))
        steps.append(idx.tolist())
        if (save_after == "mid_epoch" and i == 4) or (save_after == "last_batch" and i == 9):
            checkpoint = copy.deepcopy(first.state_dict())
            break
    if save_after == "epoch_loop":
        checkpoint = copy.deepcopy(first.state_dict())

    second = DynamicPruningSampler(N, 0.5, "ucb", warmup_epochs=1)
    assert checkpoint is not None
    second.load_state_dict(checkpoint)
    steps += train(second, range(second.epoch, epochs), batch)
    assert steps == expected
    assert len(steps) == reference.total_steps(batch, epochs=epochs)
    assert stats_equal(second, reference)


# ----------------------------------------------------------------- 4. forgotten set_epoch
def test_forgetting_set_epoch_warns() -> None:
    sampler = DynamicPruningSampler(N, 0.5, "uniform")
    data = TensorDataset(torch.arange(N))
    loader = DataLoader(data, batch_size=3, sampler=sampler, drop_last=True)
    for (idx,) in loader:
        sampler.update(fake_losses(idx, 0))
    with pytest.warns(UserWarning, match=r"epoch 0 is planned a second time .* sampler\.set_epoch"):
        batches = list(loader)
    assert len(batches) == 20 // 3  # a whole epoch again, not the unrecorded tail


def test_set_epoch_every_epoch_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train(DynamicPruningSampler(N, 0.5, "uniform"), range(3))


# ----------------------------------------------------------------- 5. corrupted states
def _state() -> dict[str, Any]:
    sampler = DynamicPruningSampler(N, 0.5, "soft", seed=0)
    train(sampler, range(1))
    sampler.set_epoch(1)
    order = torch.tensor(list(sampler))
    sampler.update(fake_losses(order[:4], 1))
    return copy.deepcopy(sampler.state_dict())


def _edit(path: str, value: Any) -> dict[str, Any]:
    state = _state()
    *parents, key = path.split(".")
    target = state
    for part in parents:
        target = target[part]
    if value is KeyError:
        del target[key]
    else:
        target[key] = value(target[key]) if callable(value) else value
    return state


BAD_STATES = [
    (lambda: None, TypeError, "state_dict must be a mapping, got NoneType"),
    (lambda: [1, 2], TypeError, "state_dict must be a mapping, got list"),
    (lambda: _edit("stats", KeyError), ValueError, "state_dict lacks 'stats'"),
    (lambda: _edit("version", KeyError), ValueError, "state_dict lacks 'version'"),
    (lambda: _edit("version", 2), ValueError, r"state_dict\['version'\] is 2, newer than"),
    (lambda: _edit("version", "1"), ValueError, r"version'\] must be an integer >= 1, got '1'"),
    (lambda: _edit("num_samples", "40"), ValueError, "data set of '40' samples"),
    (lambda: _edit("epoch", -1), ValueError, r"state_dict\['epoch'\] must be .* got -1"),
    (lambda: _edit("epoch", "1"), ValueError, r"state_dict\['epoch'\] must be .* got '1'"),
    (lambda: _edit("stats.mean", lambda t: t[:10]), ValueError, r"'mean'\] holds 10 samples"),
    (lambda: _edit("stats.count", lambda t: t - 5), ValueError, r"'count'\] holds .* negative"),
    (lambda: _edit("stats.var", lambda t: t - 1), ValueError, r"'var'\] holds .* negative"),
    (lambda: _edit("stats.mean", lambda t: t / 0), ValueError, r"'mean'\] holds .* non-finite"),
    (lambda: _edit("stats.seen", [0] * N), TypeError, r"'seen'\] must be a 1-D tensor, got list"),
    (lambda: _edit("stats.nonfinite", -3), ValueError, r"'nonfinite'\] must be .* got -3"),
    (lambda: _edit("stats.mean", lambda t: t.long()), TypeError, r"'mean'\] must have dtype"),
    (lambda: _edit("plan", [1]), TypeError, r"state_dict\['plan'\] must be a mapping or None"),
    (lambda: _edit("plan.order", lambda t: t + N), ValueError, r"order'\] must be in \[0, 40\)"),
    (lambda: _edit("plan.order", lambda t: t * 0), ValueError, r"order'\] must be distinct"),
    (lambda: _edit("plan.order", lambda t: t.float()), TypeError, r"order'\] must be a 1-D int"),
    (lambda: _edit("plan.cursor", -1), ValueError, r"cursor'\] must be an integer >= 0, got -1"),
    (lambda: _edit("plan.cursor", 99), ValueError, r"cursor'\] must be in \[0, 20\] .* got 99"),
    (lambda: _edit("plan.cursor", "4"), ValueError, r"cursor'\] must be .* got '4'"),
    (lambda: _edit("plan.epoch", KeyError), ValueError, r"state_dict\['plan'\] lacks 'epoch'"),
    (lambda: _edit("plan.weights", lambda t: -t), ValueError, r"weights'\] must be finite and"),
    (lambda: _edit("plan.weights", lambda t: t[:3]), ValueError, r"weights'\] must have shape"),
    (lambda: _edit("device_type", 0), TypeError, r"device_type'\] must be a string, got 0"),
]


@pytest.mark.parametrize(("make", "error", "match"), BAD_STATES)
def test_corrupted_states_are_refused_and_change_nothing(make: Any, error: Any, match: str) -> None:
    sampler = DynamicPruningSampler(N, 0.5, "soft", seed=0)
    train(sampler, range(1))
    before = copy.deepcopy(sampler.state_dict())
    with pytest.raises(error, match=match):
        sampler.load_state_dict(make())
    after = sampler.state_dict()
    for name in ("mean", "var", "count", "seen"):
        assert torch.equal(before["stats"][name], after["stats"][name])
    assert after["epoch"] == before["epoch"] and after["plan"]["cursor"] == before["plan"]["cursor"]


def test_mid_epoch_state_of_another_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="planned by SoftPolicy, but this sampler's policy is UCB"):
        DynamicPruningSampler(N, 0.5, "ucb").load_state_dict(_state())
    with pytest.raises(ValueError, match="drop_last=False, but this sampler has drop_last=True"):
        DynamicPruningSampler(N, 0.5, "soft", drop_last=True).load_state_dict(_state())


def test_valid_state_still_loads() -> None:
    sampler = DynamicPruningSampler(N, 0.5, "soft", seed=0)
    sampler.load_state_dict(_state())
    assert sampler.resuming and len(list(sampler)) == 16


# ----------------------------------------------------------------- 6. custom selections
class _Custom(PruningPolicy):
    def __init__(self, make: Any) -> None:
        self.make = make

    def select(self, stats: Any, num_keep: int, generator: torch.Generator) -> Selection:
        return self.make(num_keep)


BAD_SELECTIONS = [
    (lambda k: Selection(torch.zeros(k, dtype=torch.long)), ValueError, "must be distinct"),
    (lambda k: Selection(torch.arange(k) + N - 1), ValueError, r"must be in \[0, 40\), got 58"),
    (lambda k: Selection(torch.arange(k) - 1), ValueError, r"must be in \[0, 40\), got -1"),
    (lambda k: Selection(torch.arange(k + 1)), ValueError, "returned 21 indices, expected 20"),
    (lambda k: Selection(torch.arange(k).float()), TypeError, "must return 1-D integer indices"),
    (lambda k: torch.arange(k), TypeError, "must return a Selection, got Tensor"),
    (lambda k: Selection(torch.arange(k), -torch.ones(k)), ValueError, "must be finite and >= 0"),
    (lambda k: Selection(torch.arange(k), torch.ones(3)), ValueError, "returned weights of shape"),
]


@pytest.mark.parametrize(("make", "error", "match"), BAD_SELECTIONS)
def test_custom_selections_are_checked(make: Any, error: Any, match: str) -> None:
    sampler = DynamicPruningSampler(N, 0.5, _Custom(make))
    with pytest.raises(error, match=match):
        list(sampler)


def test_valid_custom_selection_is_used() -> None:
    sampler = DynamicPruningSampler(N, 0.5, _Custom(lambda k: Selection(torch.arange(k))))
    assert sorted(sampler) == list(range(20))


# ----------------------------------------------------------------- 7-8. arguments
BAD_ARGUMENTS = [
    ({"data_source": 3.0}, TypeError, "data_source must be a sized data set .* got float 3.0"),
    ({"data_source": True}, TypeError, "data_source must be .* got bool True"),
    ({"data_source": torch.tensor(2.5)}, TypeError, "data_source must be .* got Tensor"),
    ({"data_source": object()}, TypeError, "data_source must be .* got object <object"),
    ({"policy": UCBPolicy}, TypeError, r"got the class UCBPolicy; pass UCBPolicy\(\)"),
    ({"policy": 3}, TypeError, "policy must be a name in .* got int"),
    ({"process_group": "world"}, TypeError, "process_group must be a .*ProcessGroup.* got str"),
    ({"warmup_epochs": 5, "total_epochs": 3}, ValueError, "warmup_epochs=5 exceeds total_epochs"),
    (
        {"warmup_epochs": 2, "anneal_epochs": 2, "total_epochs": 3},
        ValueError,
        "warmup_epochs=2 and anneal_epochs=2 overlap",
    ),
    ({"num_replicas": 2.0}, ValueError, "num_replicas must be an integer, got 2.0"),
    ({"rank": "0"}, ValueError, "rank must be an integer, got '0'"),
    ({"device": "gpu"}, ValueError, "device 'gpu' is not a valid device"),
    ({"device": 0}, TypeError, "device must be a torch.device, a string or None, got 0"),
    ({"keep_ratio": "0.5"}, ValueError, r"keep_ratio must be in \(0, 1\], got '0.5'"),
    ({"seed": 1.0}, ValueError, "seed must be an integer >= 0, got 1.0"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), BAD_ARGUMENTS)
def test_bad_arguments_name_argument_and_value(kwargs: dict, error: Any, match: str) -> None:
    kwargs = {"data_source": N, "keep_ratio": 0.5, **kwargs}
    with pytest.raises(error, match=match):
        DynamicPruningSampler(**kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_device_without_a_gpu() -> None:
    with pytest.raises(ValueError, match="device='cuda' but CUDA is not available"):
        DynamicPruningSampler(N, 0.5, device="cuda")


@pytest.mark.parametrize("length", [np.int64(N), torch.tensor(N), N])
def test_integer_lengths_of_any_kind(length: Any) -> None:
    assert DynamicPruningSampler(length, 0.5).num_samples == N


BAD_TOTAL_STEPS = [
    ({"drop_last": "no"}, ValueError, "drop_last must be a bool, got 'no'"),
    ({"epochs": 10}, ValueError, "epochs=10 exceeds total_epochs=5"),
    ({"epochs": -1}, ValueError, "epochs must be an integer >= 0, got -1"),
    ({"accumulate_grad_batches": 0}, ValueError, "accumulate_grad_batches must be .* got 0"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), BAD_TOTAL_STEPS)
def test_bad_total_steps_arguments(kwargs: dict, error: Any, match: str) -> None:
    sampler = DynamicPruningSampler(N, 0.5, anneal_epochs=1, total_epochs=5)
    with pytest.raises(error, match=match):
        sampler.total_steps(4, **kwargs)


def test_replicas_without_rank_outside_a_process_group() -> None:
    sampler = DynamicPruningSampler(N, 0.5, num_replicas=2)  # the group may come later
    with pytest.raises(ValueError, match="rank must be given with num_replicas=2 .* rank=None"):
        list(sampler)


def test_nonfinite_raise_raises_every_time() -> None:
    sampler = DynamicPruningSampler(N, 0.5, nonfinite="raise")
    list(sampler)
    sampler.update(torch.tensor([float("nan"), 1.0]))
    for epoch in (1, 1, 2):
        sampler.set_epoch(epoch)
        with pytest.raises(FloatingPointError, match="1 non-finite"):
            list(sampler)


# ----------------------------------------------------------------- properties
@settings(max_examples=30, deadline=None)
@given(
    losses=st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True, width=32),
            st.sampled_from([1e20, -1e20, 3e38, -3e38]),
        ),
        min_size=N,
        max_size=N,
    ),
    policy=st.sampled_from(["uniform", "epsilon_greedy", "ucb", "soft"]),
    momentum=st.sampled_from([0.0, 0.5, 0.99]),
)
def test_any_losses_keep_statistics_and_selection_sound(
    losses: list[float], policy: str, momentum: float
) -> None:
    sampler = DynamicPruningSampler(N, 0.5, policy, momentum=momentum, nonfinite="ignore")
    table = torch.tensor(losses, dtype=torch.float32)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler))
        assert len(set(order.tolist())) == len(order) == sampler.epoch_size(epoch)
        for start in range(0, len(order), 7):
            idx = order[start : start + 7]
            sampler.update(table[idx])
        assert torch.isfinite(sampler.stats.mean).all() and torch.isfinite(sampler.stats.var).all()
        assert (sampler.stats.var >= 0).all()
