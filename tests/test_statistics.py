import numpy as np
import pytest
import torch

from dynaprune.statistics import LossStatistics


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
