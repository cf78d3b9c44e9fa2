"""The learned selector: indicators, groups and their labels, the selectors, cluster-proportional
selection and the end-to-end function, each on tiny tensors."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from dynaprune import LossStatistics, StaticPolicy
from dynaprune.learned import cluster_top_k, learned_scores, proportional_scores
from dynaprune.policies.static import class_quotas
from dynaprune.scores.learned import (
    SCALARS,
    fit_selector,
    kmeans_pp,
    mixed_groups,
    pca,
    proxy_accuracy,
    selector_scores,
    training_indicators,
)

CLASSES = 3


def blobs(n: int = 90, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % CLASSES
    centres = torch.randn(CLASSES, 5, generator=g) * 3
    return centres[y] + torch.randn(n, 5, generator=g), y


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, CLASSES))


def conv() -> nn.Module:
    return nn.Sequential(nn.Unflatten(1, (1, 5)), nn.Conv1d(1, CLASSES, 5), nn.Flatten())


@pytest.fixture(scope="module")
def data() -> list[tuple[torch.Tensor, torch.Tensor]]:
    x, y = blobs()
    return list(zip(x.split(30), y.split(30), strict=True))


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra, rb = a.argsort().argsort().float(), b.argsort().argsort().float()
    return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])


# ----------------------------------------------------------------- indicators
def test_indicators_have_one_standardised_row_per_sample(data: list) -> None:
    ind = training_indicators(mlp, data, epochs=2, pca_dims=3)
    assert ind.values.shape == (90, len(SCALARS) + 3 + CLASSES)
    assert ind.names[: len(SCALARS)] == SCALARS and ind.names[-1] == f"class{CLASSES - 1}"
    assert torch.equal(ind.labels, torch.arange(90) % CLASSES)
    scaled = ind.values[:, : len(SCALARS) + 3]
    std = scaled.std(0, unbiased=False)
    assert torch.allclose(scaled.mean(0), torch.zeros(len(SCALARS) + 3), atol=1e-5)
    assert bool(((std - 1).abs() < 1e-4).logical_or(std == 0).all())
    onehot = ind.values[:, -CLASSES:]
    assert torch.equal(onehot.argmax(1), ind.labels) and bool((onehot.sum(1) == 1).all())
    assert ind.features.shape == (90, 8) and ind.embedding.shape == (90, 3)
    assert bool(ind.values.isfinite().all()) and ind.seconds > 0


def test_indicators_repeat_for_a_seed(data: list) -> None:
    first = training_indicators(mlp, data, epochs=1, pca_dims=2, seed=3)
    again = training_indicators(mlp, data, epochs=1, pca_dims=2, seed=3)
    torch.testing.assert_close(first.values, again.values)


def test_pca_orders_axes_by_variance() -> None:
    x = torch.randn(200, 3, generator=torch.Generator().manual_seed(0)) * torch.tensor([5, 1, 0.1])
    out = pca(x, 2)
    assert out.shape == (200, 2) and float(out[:, 0].var()) > float(out[:, 1].var())


@pytest.mark.parametrize(
    ("kwargs", "model", "match"),
    [
        ({}, conv, "Sequential has no nn.Linear whose input could be read; pass layer="),
        ({"layer": "nope"}, mlp, "layer 'nope' is not a module of the model"),
        ({"pca_dims": 9}, mlp, "pca_dims must be <= the 8 penultimate features, got 9"),
        ({"epochs": 0}, mlp, "epochs must be an integer >= 1, got 0"),
        ({"num_classes": 1}, mlp, "num_classes must be an integer >= 2, got 1"),
        ({"num_classes": 2}, mlp, r"labels must be in \[0, 2\), got 2"),
    ],
)
def test_indicators_that_cannot_be_computed_say_why(
    data: list, kwargs: dict, model: Any, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        training_indicators(model, data, **{"epochs": 1, **kwargs})


def test_indicators_refuse_a_training_run_that_misses_samples(data: list) -> None:
    with pytest.raises(ValueError, match="30 of 90 were never presented in the training run"):
        training_indicators(mlp, data, epochs=1, train_loader=data[:2], num_samples=90)


def test_indicators_refuse_a_model_without_class_logits(data: list) -> None:
    def flat() -> nn.Module:
        return nn.Sequential(nn.Linear(5, 3), nn.Flatten(0))

    with pytest.raises(ValueError, match=r"class logits of shape \(B, C\)"):
        training_indicators(flat, data, epochs=1)


# ----------------------------------------------------------------- groups and labels
def test_kmeans_pp_is_deterministic_and_finds_separated_clusters() -> None:
    x, y = blobs(60)
    ids = kmeans_pp(x, CLASSES, seed=1)
    assert torch.equal(ids, kmeans_pp(x, CLASSES, seed=1))
    # each blob is one cluster
    assert all(ids[y == c].unique().numel() == 1 for c in range(CLASSES))
    with pytest.raises(ValueError, match="k must be <= the number of rows 60, got 61"):
        kmeans_pp(x, 61)


def test_mixed_groups_repeat_for_a_seed_and_hold_every_class() -> None:
    x, y = blobs(120)
    groups = mixed_groups(x, y, 4, seed=5)
    assert torch.equal(groups, mixed_groups(x, y, 4, seed=5))
    assert groups.min() == 0 and groups.max() == 3
    for g in range(4):
        assert y[groups == g].unique().tolist() == list(range(CLASSES))
    with pytest.raises(ValueError, match="labels has 3 entries but there are 120 rows"):
        mixed_groups(x, y[:3], 4)


def test_proxy_accuracy_labels_a_mislabelled_group_lower() -> None:
    x, y = blobs(120)
    groups = torch.arange(120) % 4
    held = torch.arange(100, 120)
    noisy = y.clone()
    bad = (groups == 2) & (torch.arange(120) < 100)
    noisy[bad] = (noisy[bad] + 1) % CLASSES
    labels = proxy_accuracy(x, noisy, groups, held, y[held], steps=30)
    assert labels.shape == (4,) and int(labels.argmin()) == 2
    assert float(labels[2]) < 0.5 <= float(labels[[0, 1, 3]].min())
    with pytest.raises(ValueError, match="holdout_labels has 2 entries but holdout has 20"):
        proxy_accuracy(x, y, groups, held, y[:2])


# ----------------------------------------------------------------- selectors
@pytest.mark.parametrize("kind", ["linear", "attention"])
def test_selector_learns_a_planted_per_sample_signal(kind: str) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 4, generator=g)
    quality = x[:, 0] - 0.5 * x[:, 1]
    groups = kmeans_pp(x, 30, seed=0)  # group means differ, as clustered groups do
    targets = torch.stack([quality[groups == k].mean() for k in range(30)])
    model = fit_selector(kind, x, groups, targets, epochs=60, set_size=16, seed=0)
    scores = selector_scores(model, x, groups, set_size=16)
    assert spearman(scores, quality) > 0.8


def test_selector_arguments_are_checked() -> None:
    x, groups = torch.randn(10, 2), torch.arange(10) % 2
    with pytest.raises(ValueError, match=r"kind must be one of \['attention', 'linear'\]"):
        fit_selector("mlp", x, groups, torch.zeros(2))
    with pytest.raises(ValueError, match="targets has 3 entries for 2 groups"):
        fit_selector("linear", x, groups, torch.zeros(3))
    with pytest.raises(ValueError, match="group 1 is empty"):
        fit_selector("linear", x, groups * 2, torch.zeros(3))


# ----------------------------------------------------------------- selection
def test_cluster_top_k_keeps_exact_cluster_shares() -> None:
    scores = torch.rand(100, generator=torch.Generator().manual_seed(0))
    clusters = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    for k in (0, 1, 7, 33, 100):
        kept = cluster_top_k(scores, clusters, k)
        assert kept.numel() == k and kept.unique().numel() == k
        counts = torch.bincount(clusters[kept], minlength=3)
        assert torch.equal(counts, class_quotas(torch.tensor([50, 30, 20]), k))
        for c in range(3):  # each cluster's best
            members = (clusters == c).nonzero().view(-1)
            best = members[scores[members].argsort(descending=True)[: int(counts[c])]]
            assert set(best.tolist()) <= set(kept.tolist())
    with pytest.raises(ValueError, match="num_keep must be <= the number of samples 100, got 101"):
        cluster_top_k(scores, clusters, 101)


def test_proportional_scores_give_cluster_shares_at_every_keep_ratio() -> None:
    scores = torch.rand(100, generator=torch.Generator().manual_seed(1))
    clusters = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    out = proportional_scores(scores, clusters)
    sizes = torch.tensor([50, 30, 20])
    for k in range(1, 101):
        kept = out.argsort(descending=True)[:k]
        counts = torch.bincount(clusters[kept], minlength=3)
        assert bool(((counts - k * sizes / 100).abs() <= 1).all())
    # the static policy runs them at any budget
    sel = StaticPolicy(out).select(LossStatistics(100), 30, torch.Generator().manual_seed(0))
    assert torch.bincount(clusters[sel.indices], minlength=3).tolist() == [15, 9, 6]
    with pytest.raises(ValueError, match="clusters has 2 entries but scores has 100"):
        proportional_scores(scores, clusters[:2])


# ----------------------------------------------------------------- end to end
def small(**kwargs: object) -> dict:
    base = dict(
        epochs=2,
        num_groups=3,
        clusters_per_class=2,
        pca_dims=2,
        proxy_steps=10,
        selector_epochs=10,
        set_size=8,
    )
    return {**base, **kwargs}


@pytest.mark.parametrize("selector", ["attention", "linear"])
def test_learned_scores_rank_every_sample(data: list, selector: str) -> None:
    out = learned_scores(mlp, data, selector=selector, **small())
    assert out.scores.shape == out.raw.shape == out.clusters.shape == (90,)
    assert out.group_labels.shape == (3,) and bool((out.group_labels <= 1).all())
    assert bool(out.scores.isfinite().all()) and 0 < float(out.scores.min()) < 1
    assert out.seconds >= out.indicators.seconds > 0
    again = learned_scores(mlp, data, selector=selector, **small())
    torch.testing.assert_close(out.scores, again.scores)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"selector": "mlp"}, r"selector must be one of \['attention', 'linear'\], got 'mlp'"),
        ({"holdout": 1.5}, r"holdout must be in \(0, 1\), got 1.5"),
        ({"holdout": torch.tensor([90])}, r"holdout must hold sample indices in \[0, 90\)"),
        ({"num_groups": 0}, "num_groups must be an integer >= 1, got 0"),
    ],
)
def test_learned_scores_errors_name_the_argument(data: list, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        learned_scores(mlp, data, **small(**kwargs))


def test_learned_scores_cover_a_whole_group_held_out_with_an_error(data: list) -> None:
    with pytest.raises(ValueError, match="has no samples outside the held-out split"):
        learned_scores(mlp, data, **small(holdout=torch.arange(90)))


def test_a_cluster_proportional_pool_is_a_dynamic_policys_candidate_set() -> None:
    """The documented prior: a dynamic policy over the learned pool (a sampler on its length)."""
    from conftest import run_epoch

    from dynaprune import DynamicPruningSampler

    scores = torch.rand(40, generator=torch.Generator().manual_seed(2))
    pool = cluster_top_k(scores, torch.arange(40) % 4, 20)
    sampler = DynamicPruningSampler(len(pool), keep_ratio=0.5, policy="ucb", seed=0)
    for epoch in range(2):
        kept = pool[torch.tensor(run_epoch(sampler, epoch))]
        assert kept.numel() == 10 and set(kept.tolist()) <= set(pool.tolist())


def test_the_benchmarks_holdout_is_a_clean_tenth_whatever_the_noise_seed() -> None:
    from benchmarks.grid.data import add_label_noise
    from benchmarks.grid.learned_scores import clean_holdout

    y = torch.arange(1000) % 10
    flipped = add_label_noise(y, 10, 0.2, 0) != y
    for seed in (0, 1000):
        held = clean_holdout(1000, flipped, seed)
        assert 70 <= held.numel() <= 100 and not bool(flipped[held].any())
    assert clean_holdout(1000, None, 0).numel() == 100


def test_one_indicator_alone_is_the_linear_selector_over_that_column(data: list) -> None:
    """``columns=("el2n",)``: the selector reads that column only, so its raw scores are a
    monotone function of it (a learned sign and offset), while ``indicators`` keeps them all."""
    out = learned_scores(mlp, data, selector="linear", columns=("el2n",), **small())
    el2n = out.indicators.values[:, out.indicators.names.index("el2n")]
    assert abs(spearman(out.raw, el2n)) == pytest.approx(1.0)
    assert out.indicators.values.shape[1] > 1
    both = learned_scores(mlp, data, selector="linear", columns=("el2n", "margin"), **small())
    assert abs(spearman(both.raw, el2n)) < 1.0


@pytest.mark.parametrize(
    ("columns", "match"),
    [
        (("loss",), r"columns must name indicators in \('loss_mean'.*got 'loss'"),
        (("class0",), "columns must name indicators in .*got 'class0'"),
        ("el2n", "columns must be a non-empty sequence"),
        ((), "columns must be a non-empty sequence"),
        (("el2n", "el2n"), r"columns must be distinct, got \['el2n', 'el2n'\]"),
    ],
)
def test_columns_are_checked_before_training(data: list, columns: Any, match: str) -> None:
    def never() -> nn.Module:
        raise AssertionError("trained before checking columns")

    with pytest.raises(ValueError, match=match):
        learned_scores(never, data, columns=columns, **small())


def test_every_scalar_indicator_has_an_alone_method_and_static_random_costs_nothing() -> None:
    from benchmarks.grid.methods import REGISTRY
    from benchmarks.grid.static_scores import _RECIPES

    for name in SCALARS:
        entry = REGISTRY[f"static-alone-{name}"]
        assert entry.kind == "static" and entry.recipe in _RECIPES
    assert REGISTRY["static-random"].recipe in _RECIPES
