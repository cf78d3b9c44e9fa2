"""Reducible loss: irreducible losses from the model that never saw a sample (two-fold) or
from the holdout model, and the policy that keeps the highest moving loss minus them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dynaprune import DynamicPruningSampler, LossStatistics
from dynaprune.reducible import ReducibleLossPolicy, irreducible_losses


class _Biased(nn.Module):
    """Predicts class ``favour`` whatever the input; with lr 0 training changes nothing."""

    def __init__(self, favour: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.tensor([2.0, -2.0] if favour == 0 else [-2.0, 2.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(x.shape[0], 2) + 0 * x[:, :1]


def _frozen(params: object) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=0.0)  # type: ignore[arg-type]


def test_twofold_scores_each_sample_with_the_model_of_the_other_half() -> None:
    built: list[int] = []

    def factory() -> nn.Module:
        built.append(len(built))
        return _Biased(favour=len(built) - 1)  # model 0 says class 0, model 1 class 1

    x, y = torch.randn(10, 3), torch.zeros(10, dtype=torch.long)
    data = [(x[:6], y[:6]), (x[6:], y[6:])]
    result = irreducible_losses(factory, data, epochs=1, optimizer=_frozen)
    assert len(built) == 2
    odd = torch.arange(10) % 2 == 1
    low, high = nn.functional.cross_entropy(
        torch.tensor([[2.0, -2.0], [-2.0, 2.0]]), y[:2], reduction="none"
    )
    # odd samples: scored by model 0 (trained on the even half), which predicts their label
    torch.testing.assert_close(result.scores[odd], low.expand(5))
    torch.testing.assert_close(result.scores[~odd], high.expand(5))
    assert result.seconds > 0


def test_holdout_trains_one_model_on_the_even_half_only() -> None:
    trained: list[torch.Tensor] = []

    def loss_fn(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            trained.append(y.clone())
        return nn.functional.cross_entropy(logits, y, reduction="none")

    x, y = torch.randn(12, 3), torch.arange(12) % 2  # label = parity
    result = irreducible_losses(
        lambda: nn.Linear(3, 2), [(x, y)], epochs=2, form="holdout", loss_fn=loss_fn
    )
    assert len(trained) == 2 and all(bool((t == 0).all()) for t in trained)  # even samples only
    assert result.scores.shape == (12,)


def test_irreducible_losses_are_reproducible_and_checked() -> None:
    x, y = torch.randn(16, 3), torch.randint(0, 2, (16,))
    a = irreducible_losses(lambda: nn.Linear(3, 2), [(x, y)], epochs=2, seed=4)
    b = irreducible_losses(lambda: nn.Linear(3, 2), [(x, y)], epochs=2, seed=4)
    torch.testing.assert_close(a.scores, b.scores)
    with pytest.raises(ValueError, match=r"form must be one of \['twofold', 'holdout'\]"):
        irreducible_losses(lambda: nn.Linear(3, 2), [(x, y)], epochs=1, form="half")
    with pytest.raises(ValueError, match="epochs must be an integer >= 1, got 0"):
        irreducible_losses(lambda: nn.Linear(3, 2), [(x, y)], epochs=0)


def _stats(losses: list[float]) -> LossStatistics:
    stats = LossStatistics(len(losses), momentum=0.0)
    stats.update(torch.arange(len(losses)), torch.tensor(losses), epoch=0)
    return stats


def test_policy_keeps_learnable_samples_not_noisy_ones() -> None:
    # sample 0: high loss under both models (mislabelled); 1 and 3: learnable; 2: learnt
    stats = _stats([4.0, 3.0, 0.2, 2.0])
    policy = ReducibleLossPolicy(torch.tensor([3.9, 0.5, 0.1, 0.5]), explore=0.0)
    chosen = policy.select(stats, 2, torch.Generator().manual_seed(0))
    assert sorted(chosen.indices.tolist()) == [1, 3]
    assert chosen.shuffled and chosen.weights is None


def test_policy_with_candidates_never_keeps_others_and_explores_within() -> None:
    n = 200
    stats = _stats(torch.rand(n, generator=torch.Generator().manual_seed(1)).tolist())
    odd = torch.arange(n) % 2 == 1
    policy = ReducibleLossPolicy(torch.zeros(n), explore=0.5, candidates=odd)
    for seed in range(5):
        idx = policy.select(stats, 60, torch.Generator().manual_seed(seed)).indices
        assert idx.numel() == 60 and idx.unique().numel() == 60
        assert bool(odd[idx].all())
    with pytest.raises(ValueError, match="budget of 101 samples exceeds the 100 candidates"):
        policy.select(stats, 101, torch.Generator())


def test_unseen_samples_come_first() -> None:
    stats = LossStatistics(6)
    stats.update(torch.tensor([0, 1, 2]), torch.tensor([9.0, 9.0, 9.0]), epoch=0)
    policy = ReducibleLossPolicy(torch.zeros(6), explore=0.0)
    idx = policy.select(stats, 3, torch.Generator().manual_seed(0)).indices
    assert sorted(idx.tolist()) == [3, 4, 5]


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="irreducible must be finite"):
        ReducibleLossPolicy(torch.tensor([0.0, float("nan")]))
    with pytest.raises(TypeError, match="irreducible must have a floating-point dtype"):
        ReducibleLossPolicy(torch.tensor([1, 2]))
    with pytest.raises(TypeError, match="candidates must be a bool tensor, got torch.int64"):
        ReducibleLossPolicy(torch.zeros(2), candidates=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"candidates must have shape \(2,\)"):
        ReducibleLossPolicy(torch.zeros(2), candidates=torch.tensor([True]))
    with pytest.raises(ValueError, match=r"explore must be in \[0, 1\], got 2"):
        ReducibleLossPolicy(torch.zeros(2), explore=2)
    with pytest.raises(ValueError, match="irreducible has 3 entries, the statistics 4 samples"):
        ReducibleLossPolicy(torch.zeros(3)).select(LossStatistics(4), 2, torch.Generator())


def test_sampler_with_the_policy_keeps_exact_budgets_and_resumes() -> None:
    il = torch.rand(50, generator=torch.Generator().manual_seed(2))

    def run(stop: int | None) -> list[list[int]]:
        sampler = DynamicPruningSampler(50, 0.4, ReducibleLossPolicy(il), seed=1)
        epochs: list[list[int]] = []
        for epoch in range(4):
            if stop is not None and epoch == stop:
                state = sampler.state_dict()
                sampler = DynamicPruningSampler(50, 0.4, ReducibleLossPolicy(il), seed=1)
                sampler.load_state_dict(state)
            sampler.set_epoch(epoch)
            order = list(iter(sampler))
            assert len(order) == 20
            sampler.update(torch.arange(len(order), dtype=torch.float32) % 7)
            epochs.append(order)
        return epochs

    assert run(None) == run(2)
