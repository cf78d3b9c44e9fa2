"""In-batch selection: exact row counts, Selective Backprop's distribution, RHO's top rows,
the selector's schedule, seeding and resume, and the sampler feeding of every forwarded loss."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dynaprune import DynamicPruningSampler
from dynaprune.inbatch import InBatchSelector, num_rows, rho, selective_backprop, uniform


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def picked(
    selector: InBatchSelector, losses: torch.Tensor, il: torch.Tensor | None = None
) -> torch.Tensor:
    """The rows of a selecting step (the selector's schedule is always on in these tests)."""
    rows = selector.select(losses, il)
    assert rows is not None
    return rows


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(1, 300),
    keep=st.floats(0.01, 1.0, allow_nan=False),
    seed=st.integers(0, 2**16),
)
def test_every_rule_returns_exactly_the_rounded_budget_of_distinct_rows(
    size: int, keep: float, seed: int
) -> None:
    k = round(keep * size)
    losses = torch.rand(size, generator=gen(seed))
    il = torch.rand(size, generator=gen(seed + 1))
    for rows in (
        (lambda: uniform(losses, keep, gen(seed))),
        (lambda: selective_backprop(losses, keep, gen(seed))),
        (lambda: rho(losses, il, keep)),
    ):
        if k < 1:
            with pytest.raises(ValueError, match="keeps no row"):
                rows()
            continue
        out = rows()
        assert out.dtype == torch.int64 and out.numel() == k
        assert torch.equal(out, out.unique())  # distinct and ascending
        assert int(out.min()) >= 0 and int(out.max()) < size


def _successive_inclusion(weights: list[float], k: int, row: int) -> float:
    """P(row is among k draws without replacement, each ∝ weight among those left)."""

    def p(left: tuple[int, ...], draws: int) -> float:
        if draws == 0:
            return 0.0
        total = sum(weights[i] for i in left)
        out = 0.0
        for i in left:
            q = weights[i] / total
            out += q * (1.0 if i == row else p(tuple(j for j in left if j != i), draws - 1))
        return out

    return p(tuple(range(len(weights))), k)


def test_selective_backprop_draws_composers_distribution() -> None:
    """Rows ranked by loss, drawn without replacement ∝ percentile ** (1/keep - 1): the
    Gumbel-top-k draw matches the exact inclusion probabilities of successive sampling."""
    n, keep = 5, 0.4
    losses = torch.tensor([0.3, 2.0, 0.1, 5.0, 1.0])  # ranks: row 2, 0, 4, 1, 3
    rank_of_row = losses.argsort().argsort().tolist()
    weights = [((r + 0.5) / n) ** (1 / keep - 1) for r in range(n)]
    trials = 4000
    counts = torch.zeros(n)
    g = gen(3)
    for _ in range(trials):
        counts[selective_backprop(losses, keep, g)] += 1
    for row in range(n):
        expected = _successive_inclusion(weights, 2, rank_of_row[row])
        se = math.sqrt(expected * (1 - expected) / trials)
        assert abs(counts[row] / trials - expected) < 5 * se + 1e-3, (row, expected)


def test_selective_backprop_keeps_everything_at_keep_one_and_ranks_nonfinite_last() -> None:
    assert selective_backprop(torch.rand(6), 1.0, gen()).tolist() == list(range(6))
    # NaN and inf rank lowest (stably: rank 0 and 1), below the finite losses 1.0 and 2.0
    losses = torch.tensor([float("nan"), 1.0, float("inf"), 2.0])
    rank_of_row = [0, 2, 1, 3]
    weights = [((r + 0.5) / 4) ** (1 / 0.5 - 1) for r in range(4)]
    trials, counts, g = 3000, torch.zeros(4), gen(5)
    for _ in range(trials):
        counts[selective_backprop(losses, 0.5, g)] += 1
    for row in range(4):
        expected = _successive_inclusion(weights, 2, rank_of_row[row])
        assert abs(counts[row] / trials - expected) < 0.04, (row, expected)
    assert rho(losses, torch.zeros(4), 0.5).tolist() == [1, 3]


def test_rho_keeps_the_highest_reducible_loss() -> None:
    losses = torch.tensor([4.0, 3.0, 0.5, 2.0])
    irreducible = torch.tensor([3.9, 0.5, 0.4, 0.5])  # row 0: mislabelled (high under both)
    assert rho(losses, irreducible, 0.5).tolist() == [1, 3]
    with pytest.raises(ValueError, match=r"irreducible must be a tensor of shape \(4,\), got"):
        rho(losses, torch.zeros(3), 0.5)
    nan_il = torch.tensor([float("nan"), 0.0, 0.0, 0.0])
    assert 0 not in rho(losses, nan_il, 0.75).tolist()


@pytest.mark.parametrize(
    ("keep", "match"),
    [(0.0, r"keep must be in \(0, 1\], got 0.0"), (1.5, "got 1.5"), (True, "got True")],
)
def test_bad_keep_is_named(keep: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        num_rows(10, keep)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=match):
        InBatchSelector("uniform", keep)  # type: ignore[arg-type]


def test_selector_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match=r"rule must be one of \['selective_backprop'"):
        InBatchSelector("topk")
    with pytest.raises(ValueError, match="end must be > start=0.5, got 0.5"):
        InBatchSelector(start=0.5, end=0.5)
    with pytest.raises(ValueError, match="interrupt must be an integer >= 0, got -1"):
        InBatchSelector(interrupt=-1)
    with pytest.raises(ValueError, match="needs irreducible="):
        InBatchSelector("rho").select(torch.rand(4))
    with pytest.raises(ValueError, match="takes no irreducible losses"):
        InBatchSelector("uniform").select(torch.rand(4), torch.rand(4))
    with pytest.raises(ValueError, match="losses must be a non-empty 1-D floating tensor"):
        InBatchSelector().select(torch.rand(2, 2))


def test_selector_follows_composers_schedule() -> None:
    selector = InBatchSelector("uniform", 0.5, start=0.5, end=0.9, interrupt=2)
    losses = torch.rand(8)
    assert selector.select(losses, progress=0.2) is None  # before start
    picked = [selector.select(losses, progress=0.6) is not None for _ in range(4)]
    # steps 1..4 of the run (step 0 came first): every second step is an ordinary one
    assert picked == [False, True, False, True]
    assert selector.select(losses, progress=0.95) is None  # after end
    with pytest.raises(ValueError, match=r"progress must be in \[0, 1\], got 1.2"):
        selector.select(losses, progress=1.2)


def test_selector_is_seeded_per_step_and_resumes_exactly() -> None:
    batches = [torch.rand(32, generator=gen(i)) for i in range(6)]
    whole = InBatchSelector("selective_backprop", 0.25, seed=7)
    expected = [picked(whole, b) for b in batches]
    first = InBatchSelector("selective_backprop", 0.25, seed=7)
    for b in batches[:3]:
        first.select(b)
    resumed = InBatchSelector("selective_backprop", 0.25, seed=7)
    resumed.load_state_dict(first.state_dict())
    got = [picked(resumed, b) for b in batches[3:]]
    for a, b in zip(expected[3:], got, strict=True):
        assert torch.equal(a, b)
    other = InBatchSelector("selective_backprop", 0.25, seed=8)
    assert any(not torch.equal(picked(other, b), e) for b, e in zip(batches, expected, strict=True))
    with pytest.raises(ValueError, match="state_dict has keep=0.25, this selector 0.5"):
        InBatchSelector("selective_backprop", 0.5).load_state_dict(whole.state_dict())


def test_selection_never_reads_a_device_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """No host sync per step: nothing is read back from the tensors while selecting."""
    losses, il = torch.rand(64), torch.rand(64)
    selectors = [InBatchSelector(r, 0.3) for r in ("selective_backprop", "uniform")]

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("host sync")

    monkeypatch.setattr(torch.Tensor, "item", forbidden)
    monkeypatch.setattr(torch.Tensor, "tolist", forbidden)
    monkeypatch.setattr(torch.Tensor, "__bool__", forbidden)
    for selector in selectors:
        assert picked(selector, losses).numel() == 19
    assert picked(InBatchSelector("rho", 0.3), losses, il).numel() == 19


def test_batch_indices_name_the_samples_update_will_match() -> None:
    sampler = DynamicPruningSampler(20, keep_ratio=0.5, seed=3)
    order = list(iter(sampler))
    assert sampler.batch_indices(4).tolist() == order[:4]
    sampler.update(torch.rand(4))
    assert sampler.batch_indices(6).tolist() == order[4:10]
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        sampler.batch_indices(0)


def test_every_forwarded_loss_feeds_the_sampler_while_a_part_is_trained() -> None:
    """The plain-loop pattern of the module docstring: every loaded sample is recorded."""
    torch.manual_seed(0)
    x, y = torch.randn(40, 3), torch.randint(0, 2, (40,))
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sampler = DynamicPruningSampler(40, keep_ratio=1.0, seed=0)
    selector = InBatchSelector("selective_backprop", 0.25)
    trained = 0
    order = torch.tensor(list(iter(sampler)))
    for batch in order.split(8):
        with torch.no_grad():
            losses = torch.nn.functional.cross_entropy(model(x[batch]), y[batch], reduction="none")
        sampler.update(losses)
        rows = selector.select(losses)
        chosen = batch[rows]
        torch.nn.functional.cross_entropy(model(x[chosen]), y[chosen]).backward()
        opt.step()
        opt.zero_grad()
        trained += chosen.numel()
    assert trained == 5 * 2
    assert int(sampler.stats.count.sum()) == 40  # every forwarded loss was recorded
