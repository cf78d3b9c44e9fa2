import math

import numpy as np
import pytest
import torch

from dynaprune.core.statistics import LossStatistics


def reference(num_samples, batches, momentum):
    """A plain NumPy version of the update rule, one sample at a time."""
    mean = np.zeros(num_samples)
    var = np.zeros(num_samples)
    count = np.zeros(num_samples, dtype=int)
    seen = np.zeros(num_samples, dtype=int)
    a = 1.0 - momentum
    for epoch, idx, losses in batches:
        groups = {}
        for i, x in zip(idx, losses, strict=False):
            seen[int(i)] = epoch + 1  # trained on, whether its loss is finite or not
            if np.isfinite(x):
                groups.setdefault(int(i), []).append(float(x))
        for i, xs in groups.items():
            x = float(np.mean(xs))
            if count[i] == 0:
                mean[i], var[i] = x, 0.0
            else:
                d = x - mean[i]
                mean[i] += a * d
                var[i] = (1 - a) * (var[i] + a * d * d)
            count[i] += 1
    return mean, var, count, seen


@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9])
def test_matches_numpy_reference(momentum):
    rng = np.random.default_rng(0)
    n = 50
    batches = []
    for step in range(40):
        idx = rng.integers(0, n, size=16)  # duplicates within a batch on purpose
        losses = rng.exponential(size=16).astype(np.float32)
        losses[rng.random(16) < 0.1] = np.nan
        losses[rng.random(16) < 0.05] = np.inf
        batches.append((step // 10, idx, losses))
    stats = LossStatistics(n, momentum=momentum)
    for epoch, idx, losses in batches:
        stats.update(torch.as_tensor(idx), torch.as_tensor(losses), epoch)
    mean, var, count, seen = reference(n, batches, momentum)
    np.testing.assert_allclose(stats.mean.numpy(), mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats.var.numpy(), var, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(stats.count.numpy(), count)
    np.testing.assert_array_equal(stats.seen.numpy(), seen)
    expected_nonfinite = sum(int((~np.isfinite(b[2])).sum()) for b in batches)
    assert stats.pop_nonfinite() == expected_nonfinite
    assert stats.pop_nonfinite() == 0


def test_nonfinite_losses_never_enter_statistics():
    stats = LossStatistics(3)
    stats.update(torch.tensor([0, 1, 2]), torch.tensor([float("nan"), float("inf"), 2.0]), 0)
    assert torch.isfinite(stats.mean).all() and torch.isfinite(stats.var).all()
    assert stats.count.tolist() == [0, 0, 1]
    # Trained on, so seen: a sample whose loss is always NaN is not "never seen" forever.
    assert stats.seen.tolist() == [1, 1, 1]


def test_valid_mask_excludes_entries_without_counting_them_as_nonfinite():
    stats = LossStatistics(3)
    stats.update(
        torch.tensor([0, 1]), torch.tensor([1.0, 2.0]), 0, valid=torch.tensor([True, False])
    )
    assert stats.count.tolist() == [1, 0, 0]
    assert stats.pop_nonfinite() == 0


def test_half_precision_losses_are_recorded_as_float32():
    stats = LossStatistics(2)
    stats.update(torch.tensor([0, 1]), torch.tensor([1.5, 2.5], dtype=torch.bfloat16), 0)
    assert stats.mean.dtype == torch.float32
    assert stats.mean.tolist() == [1.5, 2.5]


def test_sixteen_bytes_per_sample():
    assert LossStatistics(10).bytes_per_sample == 16


def test_state_dict_roundtrip_and_size_check():
    stats = LossStatistics(4, momentum=0.3)
    stats.update(torch.tensor([1, 3]), torch.tensor([1.0, 4.0]), 2)
    other = LossStatistics(4)
    other.load_state_dict(stats.state_dict())
    for name in ("mean", "var", "count", "seen"):
        assert torch.equal(getattr(other, name), getattr(stats, name))
    assert other.momentum == 0.5  # the configuration is the constructor's, not the state's
    with pytest.raises(ValueError, match="holds 4 samples, but this data set has 5"):
        LossStatistics(5).load_state_dict(stats.state_dict())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_samples": 0}, "num_samples must be a positive integer, got 0"),
        ({"num_samples": 3.0}, "num_samples must be a positive integer, got 3.0"),
        ({"num_samples": 3, "momentum": 1.0}, r"momentum must be in \[0, 1\), got 1.0"),
        ({"num_samples": 3, "momentum": -0.1}, r"momentum must be in \[0, 1\), got -0.1"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LossStatistics(**kwargs)


def test_unique_fast_path_equals_the_general_path():
    g = torch.Generator().manual_seed(0)
    general, fast = LossStatistics(1000), LossStatistics(1000)
    for epoch in range(5):
        idx = torch.randperm(1000, generator=g)[:300]
        losses = torch.rand(300, generator=g)
        losses[::17] = float("nan")
        general.update(idx, losses, epoch)
        fast.update(idx, losses, epoch, unique=True)
    for name in ("mean", "var", "count", "seen", "nonfinite"):
        assert torch.equal(getattr(general, name), getattr(fast, name)), name


# ----------------------------------------------------------------- correctness
def tracked(n):
    stats = LossStatistics(n)
    stats.track_correctness()
    return stats


def present_all(stats, sequences, epoch=0):
    """Record column after column of ``sequences`` (one row per sample, 1 correct, 0 not)."""
    idx = torch.arange(len(sequences))
    for column in zip(*sequences, strict=True):
        stats.update(idx, torch.ones(len(idx)), epoch, correct=torch.tensor(column).bool())


def test_forgetting_counts_of_scripted_sequences():
    stats = tracked(5)
    present_all(stats, [[1, 0, 1, 0], [0, 0, 0, 0], [1, 1, 1, 1], [0, 1, 0, 1], [0, 1, 1, 0]])
    assert stats.forgetting_counts().tolist() == [2.0, math.inf, 0.0, 1.0, 1.0]
    stats.reset_correctness()
    assert torch.isinf(stats.forgetting_counts()).all()
    # After a reset the last correctness is gone too: a first incorrect presentation is no
    # forgetting event, whatever came before.
    present_all(stats, [[0, 1], [1, 0], [1, 1], [0, 0], [1, 0]])
    assert stats.forgetting_counts().tolist() == [0.0, 1.0, 0.0, math.inf, 1.0]


def forgetting_reference(num_samples, batches):
    """Forgetting events from the rule, one presentation per sample and call: its recorded
    entries (finite loss, valid) are correct only if all of them are."""
    last = [None] * num_samples
    forgets, learned = [0] * num_samples, [False] * num_samples
    for idx, losses, valid, correct in batches:
        groups = {}
        for i, x, v, c in zip(idx, losses, valid, correct, strict=True):
            if v and np.isfinite(x):
                groups.setdefault(int(i), []).append(bool(c))
        for i, cs in groups.items():
            now = all(cs)
            forgets[i] += last[i] is True and not now
            learned[i] |= now
            last[i] = now
    return [float(f) if ok else math.inf for f, ok in zip(forgets, learned, strict=True)]


@pytest.mark.parametrize("unique", [False, True])
def test_correctness_matches_the_rule_with_repeats_nan_and_padding(unique):
    rng = np.random.default_rng(1)
    n, batches = 30, []
    for _ in range(60):
        # Without unique=True, repeats within a batch on purpose.
        idx = rng.permutation(n)[:12] if unique else rng.integers(0, n, size=12)
        losses = rng.exponential(size=12).astype(np.float32)
        losses[rng.random(12) < 0.15] = np.nan
        valid = rng.random(12) > 0.1  # padding
        batches.append((idx, losses, valid, rng.random(12) < 0.6))
    stats = tracked(n)
    for idx, losses, valid, correct in batches:
        stats.update(
            torch.as_tensor(idx),
            torch.as_tensor(losses),
            0,
            torch.as_tensor(valid),
            unique=unique,
            correct=torch.as_tensor(correct),
        )
    assert stats.forgetting_counts().tolist() == forgetting_reference(n, batches)
    assert stats.forgetting_counts().isfinite().any()  # the comparison is not vacuous


def test_a_nan_loss_records_no_correctness_but_the_sample_is_seen():
    stats = tracked(2)
    present_all(stats, [[1], [1]])
    nan = torch.tensor([float("nan"), 1.0])
    stats.update(torch.tensor([0, 1]), nan, 1, correct=torch.tensor([False, False]))
    assert stats.forgetting_counts().tolist() == [0.0, 1.0]
    assert stats.seen.tolist() == [2, 2]


def test_repeated_index_is_correct_only_if_all_its_entries_are():
    stats = tracked(3)
    present_all(stats, [[1], [1], [1]])
    idx = torch.tensor([0, 0, 1, 1, 2, 2])
    losses = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, float("nan")])
    correct = torch.tensor([True, False, True, True, True, False])
    stats.update(idx, losses, 1, correct=correct)
    # 0: one entry wrong; 1: all right; 2: its wrong entry has a NaN loss and is not recorded
    assert stats.forgetting_counts().tolist() == [1.0, 0.0, 0.0]


def test_correct_is_ignored_without_tracking_and_tracking_is_idempotent():
    stats = LossStatistics(2)
    stats.update(torch.tensor([0, 1]), torch.ones(2), 0, correct=torch.tensor([True, False]))
    assert stats.correct is None and not stats.tracks_correctness
    with pytest.raises(RuntimeError, match=r"call track_correctness\(\)"):
        stats.forgetting_counts()
    stats.track_correctness()
    present_all(stats, [[1, 0], [1, 1]])
    stats.track_correctness()  # keeps what was recorded
    assert stats.forgetting_counts().tolist() == [1.0, 0.0]


def test_twenty_bytes_per_sample_with_correctness():
    stats = LossStatistics(10)
    assert stats.bytes_per_sample == 16
    stats.track_correctness()
    assert stats.bytes_per_sample == 20


def test_state_dict_roundtrip_with_correctness():
    stats = tracked(4)
    present_all(stats, [[1, 0], [0, 0], [1, 1], [0, 1]])
    state = stats.state_dict()
    assert state["correct"].dtype == torch.int32
    other = LossStatistics(4)  # not tracking: a saved history is kept, not dropped
    other.load_state_dict(state)
    assert other.tracks_correctness
    assert torch.equal(other.correct, stats.correct)
    assert other.forgetting_counts().tolist() == [1.0, math.inf, 0.0, 0.0]
    assert "correct" not in LossStatistics(4).state_dict()


def test_old_state_without_correctness_restarts_the_counters():
    old = LossStatistics(3)
    old.update(torch.tensor([0, 1]), torch.ones(2), 0)
    stats = tracked(3)
    present_all(stats, [[1, 0], [1, 1], [0, 0]])
    stats.load_state_dict(old.state_dict())
    assert stats.tracks_correctness and torch.equal(
        stats.correct, torch.zeros(3, dtype=torch.int32)
    )
    assert stats.count.tolist() == [1, 1, 0]


@pytest.mark.parametrize(
    ("correct", "error", "match"),
    [
        (
            torch.tensor([3, -4, 0]),
            TypeError,
            r"\['correct'\] must be a 1-D int32 tensor, got .*int64",
        ),
        (torch.tensor([3.0, 0.0, 0.0]), TypeError, r"\['correct'\] must be a 1-D int32 tensor"),
        ([3, 0, 0], TypeError, r"\['correct'\] must be a 1-D int32 tensor, got list"),
        (
            torch.tensor([3, 0], dtype=torch.int32),
            ValueError,
            r"\['correct'\] holds 2 samples, but",
        ),
        (
            torch.tensor([3, -4, 0], dtype=torch.int32),
            ValueError,
            r"\['correct'\] holds 1 impossible",
        ),
        # correct last time, or forgotten, without ever being learned
        (
            torch.tensor([1, 4, 0], dtype=torch.int32),
            ValueError,
            r"\['correct'\] holds 2 impossible",
        ),
    ],
)
def test_corrupted_correctness_is_refused_and_nothing_changes(correct, error, match):
    stats = tracked(3)
    present_all(stats, [[1, 0], [1, 1], [0, 0]])
    before = stats.state_dict()
    state = {**before, "correct": correct}
    with pytest.raises(error, match=r"statistics state_dict" + match):
        stats.load_state_dict(state)
    for name, value in before.items():
        assert torch.equal(stats.state_dict()[name], value), name


def test_update_refuses_negative_and_too_large_indices_and_records_nothing():
    stats = LossStatistics(5)
    with pytest.raises(IndexError, match=r"indices must be in \[0, 5\), got -1"):
        stats.update(torch.tensor([0, -1]), torch.ones(2), epoch=0)
    with pytest.raises(IndexError, match=r"indices must be in \[0, 5\), got 5"):
        stats.update(torch.tensor([5]), torch.ones(1), epoch=0, unique=True)
    assert int(stats.count.sum()) == 0 and int(stats.seen.sum()) == 0
    stats.update(torch.tensor([4]), torch.ones(1), epoch=0, validated=True)
    assert stats.count.tolist() == [0, 0, 0, 0, 1]


def test_forgetting_has_one_owner_shared_with_the_public_tracker():
    import dynaprune
    from dynaprune.core.forgetting import ForgettingTracker
    from dynaprune.scores import forgetting

    assert dynaprune.ForgettingTracker is forgetting.ForgettingTracker is ForgettingTracker
    stats, tracker = LossStatistics(4), ForgettingTracker(4)
    stats.track_correctness()
    assert isinstance(stats.forgetting, ForgettingTracker)
    idx = torch.arange(4)
    for c in ([1, 1, 0, 1], [0, 1, 0, 0], [1, 0, 0, 1]):
        correct = torch.tensor(c, dtype=torch.bool)
        stats.update(idx, torch.ones(4), 0, unique=True, correct=correct)
        tracker.update(idx, correct)
    assert torch.equal(stats.correct, tracker.packed)
    assert (
        stats.forgetting_counts().tolist() == tracker.scores().tolist() == [1.0, 1.0, math.inf, 1.0]
    )
