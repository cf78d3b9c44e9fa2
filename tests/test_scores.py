import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from dynaprune.forgetting import ForgettingTracker, forgetting_counts, forgetting_scores
from dynaprune.scores import ScoreResult, el2n_scores, grand_scores, low_curvature_scores

N, D, C = 12, 4, 3


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


X = torch.randn(N, D, generator=gen(1))
Y = torch.randint(0, C, (N,), generator=gen(2))
W = torch.randn(C, D, generator=gen(3))
B = torch.randn(C, generator=gen(4))


def fixed_linear():
    """A linear softmax model with known weights (no RNG)."""
    model = nn.Linear(D, C)
    with torch.no_grad():
        model.weight.copy_(W)
        model.bias.copy_(B)
    return model


def batches(x=X, y=Y, size=5):
    return [(x[i : i + size], y[i : i + size]) for i in range(0, len(x), size)]


class Indexed(Dataset):
    def __len__(self):
        return N

    def __getitem__(self, i):
        return i, X[i], Y[i]


def shuffled_loader():
    return DataLoader(Indexed(), batch_size=5, shuffle=True, generator=gen(5))


def closed_form_error(w=W, b=B):
    p = (X @ w.T + b).softmax(1)
    return p - F.one_hot(Y, C).float()


# ---- EL2N -----------------------------------------------------------------------------------


def test_el2n_at_initialisation_is_the_error_norm():
    result = el2n_scores(fixed_linear, batches(), epochs=0, runs=2)
    assert isinstance(result, ScoreResult) and result.seconds >= 0
    assert result.scores.dtype == torch.float32
    torch.testing.assert_close(result.scores, closed_form_error().norm(dim=1))


def test_el2n_scores_after_training_on_train_loader_with_the_given_optimizer():
    lr = 0.5
    result = el2n_scores(
        fixed_linear,
        batches(),
        epochs=1,
        runs=1,
        train_loader=[(X, Y)],
        optimizer=lambda params: torch.optim.SGD(params, lr=lr),
    )
    model = fixed_linear()  # reference: one full-batch gradient step
    F.cross_entropy(model(X), Y).backward()
    w, b = W - lr * model.weight.grad, B - lr * model.bias.grad
    torch.testing.assert_close(result.scores, closed_form_error(w, b).norm(dim=1))


def test_el2n_averages_runs_seeded_from_seed_and_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    result = el2n_scores(lambda: nn.Linear(D, C), batches(), epochs=0, runs=2, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    expected = []
    for seed in (7, 8):
        torch.manual_seed(seed)
        model = nn.Linear(D, C)
        p = model(X).softmax(1).detach()
        expected.append((p - F.one_hot(Y, C)).norm(dim=1))
    torch.testing.assert_close(result.scores, (expected[0] + expected[1]) / 2)


def test_indexed_shuffled_loader_gives_scores_in_data_set_order():
    result = el2n_scores(fixed_linear, shuffled_loader(), epochs=0, runs=1)
    torch.testing.assert_close(result.scores, closed_form_error().norm(dim=1))


# ---- GraNd ----------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [None, 2])
def test_grand_of_a_linear_softmax_model_has_a_closed_form(chunk_size):
    result = grand_scores(fixed_linear, batches(), runs=1, chunk_size=chunk_size)
    # d loss / dW = (p - y) x^T and d loss / db = p - y: the norm is ||p - y|| ||[x, 1]||.
    expected = closed_form_error().norm(dim=1) * (X.pow(2).sum(1) + 1).sqrt()
    torch.testing.assert_close(result.scores, expected)


def test_grand_works_on_a_batch_norm_model_in_eval_mode():
    def factory():
        return nn.Sequential(nn.Linear(D, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, C))

    result = grand_scores(factory, shuffled_loader(), epochs=1, runs=2)
    assert result.scores.shape == (N,) and bool((result.scores > 0).all())


# ---- low curvature --------------------------------------------------------------------------


def test_curvature_of_a_quadratic_loss_is_known():
    # loss_i(x) = a_i / 2 ||x||^2: grad = a_i x, so ||grad(x + h v) - grad(x)|| / h = a_i ||v||,
    # and a Rademacher v in D dimensions has ||v|| = sqrt(D) exactly.
    a = torch.linspace(0.5, 3.0, N)

    def quadratic(out, y):
        return 0.5 * y * out.pow(2).sum(1)

    result = low_curvature_scores(
        nn.Identity, batches(X, a), epochs=0, directions=3, loss_fn=quadratic
    )
    torch.testing.assert_close(result.scores, -a * math.sqrt(D), rtol=1e-3, atol=1e-3)


def test_curvature_with_cross_entropy_is_reproducible_and_flat_samples_score_highest():
    def run(seed):
        return low_curvature_scores(
            fixed_linear, batches(), epochs=0, directions=2, seed=seed
        ).scores

    first = run(0)
    assert torch.equal(first, run(0))
    assert first.shape == (N,) and bool((first <= 0).all())
    # A linear model's loss curvature grows with the softmax's uncertainty p(1 - p):
    # a sample with confident logits (scaled up) is flatter.
    flat = low_curvature_scores(fixed_linear, [(X * 100, Y)], epochs=0, directions=2).scores
    assert bool((flat > first).all())


# ---- forgetting -----------------------------------------------------------------------------

SCRIPT = torch.tensor(
    [  # presentations x samples
        [0, 1, 1, 0, 1],
        [1, 0, 1, 0, 1],
        [0, 1, 1, 0, 0],
        [1, 0, 1, 0, 1],
        [1, 1, 1, 0, 0],
    ],
    dtype=torch.bool,
)
SCRIPT_COUNTS = [1.0, 2.0, 0.0, math.inf, 2.0]


def test_forgetting_counts_correct_to_incorrect_transitions():
    assert forgetting_counts(SCRIPT).tolist() == SCRIPT_COUNTS
    assert forgetting_counts(SCRIPT[:1]).tolist() == [math.inf, 0.0, 0.0, math.inf, 0.0]


def test_tracker_fed_in_shuffled_batches_matches_the_matrix_and_resumes():
    tracker = ForgettingTracker(5)
    for e, row in enumerate(SCRIPT):
        perm = torch.randperm(5, generator=gen(e))
        for part in (perm[:2], perm[2:]):
            tracker.update(part, row[part])
        if e == 2:  # a checkpoint: a fresh tracker continues exactly
            state = tracker.state_dict()
            tracker = ForgettingTracker(5)
            tracker.load_state_dict(state)
    assert tracker.scores().tolist() == SCRIPT_COUNTS


def test_tracker_loads_the_separate_counters_of_older_checkpoints():
    tracker = ForgettingTracker(5)
    for row in SCRIPT[:3]:
        tracker.update(torch.arange(5), row)
    forgets = torch.tensor([(SCRIPT[i] & ~SCRIPT[i + 1]).tolist() for i in range(2)]).sum(0)
    old = {"forgets": forgets, "last_correct": SCRIPT[2], "learned": SCRIPT[:3].any(0)}
    resumed = ForgettingTracker(5)
    resumed.load_state_dict(old)
    assert torch.equal(resumed.packed, tracker.packed)


def test_tracker_refuses_an_impossible_state():
    with pytest.raises(ValueError, match="impossible values"):
        ForgettingTracker(2).load_state_dict({"packed": torch.tensor([4, 0], dtype=torch.int32)})


def test_forgetting_scores_count_the_events_of_the_training_run():
    optimizer = lambda params: torch.optim.SGD(params, lr=2.0)  # noqa: E731
    result = forgetting_scores(
        fixed_linear, batches(), epochs=4, optimizer=optimizer, num_samples=N
    )
    model, rows = fixed_linear(), []
    opt = optimizer(model.parameters())
    for _ in range(4):
        row = []
        for x, y in batches():
            out = model(x)
            row.append(out.argmax(1) == y)
            opt.zero_grad()
            F.cross_entropy(out, y).backward()
            opt.step()
        rows.append(torch.cat(row))
    expected = forgetting_counts(torch.stack(rows))
    assert result.scores.tolist() == expected.tolist()
    assert bool(((expected > 0) & expected.isfinite()).any())  # the run did forget


def test_forgetting_scores_read_the_data_set_size_from_a_data_loader():
    result = forgetting_scores(fixed_linear, shuffled_loader(), epochs=2, runs=2)
    assert result.scores.shape == (N,)


# ---- argument errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"epochs": -1}, ValueError, "epochs must be an integer >= 0, got -1"),
        ({"epochs": 1.5}, ValueError, "epochs must be an integer >= 0, got 1.5"),
        ({"runs": 0}, ValueError, "runs must be an integer >= 1, got 0"),
        ({"runs": True}, ValueError, "runs must be an integer >= 1, got True"),
        ({"seed": -2}, ValueError, "seed must be an integer >= 0, got -2"),
        ({"num_samples": 0}, ValueError, "num_samples must be an integer >= 1, got 0"),
        ({"num_samples": 20}, ValueError, "loader visited 12 of 20 samples"),
        ({"num_samples": 5}, ValueError, r"loader yielded index 11, outside \[0, 5\)"),
    ],
)
def test_bad_common_arguments_are_rejected(kwargs, error, match):
    with pytest.raises(error, match=match):
        el2n_scores(fixed_linear, batches(), **{"epochs": 0, "runs": 1, **kwargs})


def test_bad_specific_arguments_are_rejected():
    with pytest.raises(TypeError, match="a fresh model, got the model Linear itself"):
        el2n_scores(fixed_linear(), batches())  # a model, not a factory
    with pytest.raises(TypeError, match="model_factory must be callable, got int"):
        grand_scores(3, batches())
    with pytest.raises(TypeError, match="model_factory must return an nn.Module, got int"):
        el2n_scores(lambda: 3, batches(), epochs=0, runs=1)
    with pytest.raises(ValueError, match=r"\(x, y\) or \(indices, x, y\).*got Tensor"):
        el2n_scores(fixed_linear, [X], epochs=0, runs=1)
    with pytest.raises(ValueError, match="chunk_size must be an integer >= 1, got 0"):
        grand_scores(fixed_linear, batches(), chunk_size=0)
    with pytest.raises(ValueError, match="directions must be an integer >= 1, got 0"):
        low_curvature_scores(fixed_linear, batches(), epochs=0, directions=0)
    with pytest.raises(ValueError, match=r"h must be a finite number > 0, got -0.1"):
        low_curvature_scores(fixed_linear, batches(), epochs=0, h=-0.1)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0, got inf"):
        low_curvature_scores(fixed_linear, batches(), epochs=0, temperature=math.inf)
    with pytest.raises(ValueError, match="epochs must be an integer >= 1, got 0"):
        forgetting_scores(fixed_linear, batches(), epochs=0, num_samples=N)
    with pytest.raises(ValueError, match="num_samples is needed"):
        forgetting_scores(fixed_linear, batches(), epochs=1)
    with pytest.raises(ValueError, match="correct must be a 2-D bool tensor"):
        forgetting_counts(torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"1-D of one shape, got \(2,\) and \(3,\)"):
        ForgettingTracker(5).update(torch.arange(2), torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="num_samples must be an integer >= 1, got 0"):
        ForgettingTracker(0)


# ---- Lightning and CUDA ---------------------------------------------------------------------


def test_tracker_in_a_lightning_module_matches_forgetting_scores(tmp_path):
    pl = pytest.importorskip("pytorch_lightning")

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = fixed_linear()
            self.tracker = ForgettingTracker(N)

        def training_step(self, batch, batch_idx):
            idx, x, y = batch
            logits = self.net(x)
            self.tracker.update(idx, logits.argmax(1) == y)
            return F.cross_entropy(logits, y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=2.0)

    module = Module()
    loader = DataLoader(Indexed(), batch_size=5)
    trainer = pl.Trainer(
        max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(module, loader)
    optimizer = lambda params: torch.optim.SGD(params, lr=2.0)  # noqa: E731
    plain = forgetting_scores(fixed_linear, loader, epochs=3, optimizer=optimizer)
    assert module.tracker.scores().tolist() == plain.scores.tolist()


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.gpu
@cuda
def test_tracker_update_does_not_sync_on_cuda():
    tracker = ForgettingTracker(N, device="cuda")
    idx, correct = torch.arange(N, device="cuda"), torch.ones(N, dtype=torch.bool, device="cuda")
    torch.cuda.set_sync_debug_mode("error")
    try:
        tracker.update(idx, correct)
        tracker.update(idx, ~correct)
        scores = tracker.scores()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert scores.device.type == "cuda" and scores.tolist() == [1.0] * N


@pytest.mark.gpu
@cuda
def test_scores_on_cuda_match_the_cpu():
    def on(device):
        def factory():
            return fixed_linear().to(device)

        return [
            el2n_scores(factory, batches(), epochs=1, runs=1).scores.cpu(),
            grand_scores(factory, batches(), runs=1).scores.cpu(),
        ]

    for got, want in zip(on("cuda"), on("cpu"), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
