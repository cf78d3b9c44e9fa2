import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from dynaprune.core.statistics import LossStatistics
from dynaprune.coreset import (
    embeddings,
    herding_order,
    herding_scores,
    k_center_order,
    k_center_scores,
    scores_from_order,
)
from dynaprune.policies.static import StaticPolicy

LINE = torch.tensor([[0.0, 0.0], [1.0, 0.0], [4.0, 0.0], [7.0, 0.0]])  # mean (3, 0)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def herding_reference(x, num):
    """Brute force: try every candidate, keep the one whose running mean is closest to the mean."""
    mu, chosen = x.double().mean(0), []
    for _ in range(num):
        best = min(
            (i for i in range(len(x)) if i not in chosen),
            key=lambda i: (x[[*chosen, i]].double().mean(0) - mu).norm().item(),
        )
        chosen.append(best)
    return chosen


def k_center_reference(x, num, first):
    chosen = [first]
    while len(chosen) < num:
        d = torch.cdist(x.double(), x[chosen].double()).min(1).values
        d[chosen] = -1
        chosen.append(int(d.argmax()))
    return chosen


def test_herding_on_a_line_by_hand():
    # Mean 3: first the point nearest it (4); then (4 + x) / 2 is closest to 3 for x = 1;
    # then (5 + x) / 3 is closer for x = 7 (mean 4) than for x = 0 (mean 5/3); then 0.
    assert herding_order(LINE).tolist() == [2, 1, 3, 0]
    assert herding_order(LINE, 2).tolist() == [2, 1]


def test_herding_moves_toward_the_mean_not_away_from_it():
    # DeepCore's argmax rule would start from the point farthest from the mean (7, index 3).
    x = torch.randn(60, 2, generator=gen(1))
    order = herding_order(x, 10)
    full = x.mean(0)
    gaps = [(x[order[: t + 1]].mean(0) - full).norm() for t in range(10)]
    assert gaps[-1] < 0.1 * (x - full).norm(dim=1).mean()


def test_herding_matches_brute_force():
    x = torch.randn(40, 2, generator=gen(2))
    assert herding_order(x, 15).tolist() == herding_reference(x, 15)


def test_k_center_on_a_line_by_hand():
    # Start nearest the mean (4); then the farthest point from {4} is 0; then 7; then 1.
    assert k_center_order(LINE).tolist() == [2, 0, 3, 1]
    assert k_center_order(LINE, first=3).tolist() == [3, 0, 2, 1]


def test_k_center_matches_brute_force_and_covers_duplicates():
    x = torch.randn(50, 3, generator=gen(3))
    assert k_center_order(x, 20, first=5).tolist() == k_center_reference(x, 20, 5)
    twins = torch.cat([x[:3], x[:3]])  # every point twice: the order is still a permutation
    assert sorted(k_center_order(twins).tolist()) == list(range(6))


def test_scores_from_order_rank_earlier_higher():
    scores = scores_from_order(torch.tensor([3, 0, 1]), 5)
    torch.testing.assert_close(scores, torch.tensor([0.8, 0.6, 0.0, 1.0, 0.0]))
    assert scores.argsort(descending=True)[:3].tolist() == [3, 0, 1]


def test_score_functions_give_the_order_and_the_time():
    result = herding_scores(LINE)
    assert result.seconds >= 0
    assert result.scores.argsort(descending=True).tolist() == [2, 1, 3, 0]
    assert k_center_scores(LINE, 2, first=3).scores.tolist() == [0.75, 0.0, 0.0, 1.0]


def test_per_class_orders_with_a_class_balanced_static_policy():
    x = torch.cat([LINE, LINE + 100])
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    scores = herding_scores(x, 4, labels=labels).scores  # two per class
    assert scores.tolist() == [0.0, 0.75, 1.0, 0.0, 0.0, 0.75, 1.0, 0.0]
    policy = StaticPolicy(scores, labels=labels, class_balanced=True)
    kept = policy.select(LossStatistics(8), 4, gen()).indices
    assert sorted(kept.tolist()) == [1, 2, 5, 6]
    centers = k_center_scores(x, 4, labels=labels).scores
    assert centers.tolist() == [0.75, 0.0, 1.0, 0.0, 0.75, 0.0, 1.0, 0.0]


class Indexed(Dataset):
    def __init__(self, x):
        self.x = x

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return i, self.x[i], 0


def test_embeddings_record_the_input_of_the_last_linear_layer_in_data_set_order():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))
    model.train()
    x = torch.randn(11, 3, generator=gen(4))
    loader = DataLoader(Indexed(x), batch_size=4, shuffle=True, generator=gen(5))
    emb = embeddings(model, loader)
    torch.testing.assert_close(emb, model[1](model[0](x)).detach())
    assert model.training  # the mode is restored
    first = embeddings(model, [(x, torch.zeros(11))], layer=model[0])
    torch.testing.assert_close(first, x)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match=r"embeddings must be a non-empty floating \(N, D\)"):
        herding_order(torch.zeros(4))
    with pytest.raises(ValueError, match=r"embeddings .* got \(4, 2\)"):
        k_center_order(torch.zeros(4, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="num must be <= the number of embeddings 4, got 5"):
        herding_order(LINE, 5)
    with pytest.raises(ValueError, match="num must be an integer >= 1, got 0"):
        k_center_scores(LINE, 0)
    with pytest.raises(ValueError, match=r"first must be an integer in \[0, 4\), got 4"):
        k_center_order(LINE, first=4)
    with pytest.raises(ValueError, match="first applies without labels only"):
        k_center_scores(LINE, labels=torch.zeros(4, dtype=torch.long), first=0)
    with pytest.raises(ValueError, match="labels has 3 entries but embeddings has 4 rows"):
        herding_scores(LINE, labels=torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="order has 3 entries, more than num_samples=2"):
        scores_from_order(torch.arange(3), 2)
    with pytest.raises(ValueError, match=r"order must hold indices in \[0, 3\), got 5"):
        scores_from_order(torch.tensor([0, 5]), 3)
    with pytest.raises(ValueError, match="order must hold distinct indices"):
        scores_from_order(torch.tensor([1, 1]), 3)
    with pytest.raises(ValueError, match="model has no nn.Linear"):
        embeddings(nn.Identity(), [(LINE, torch.zeros(4))])
    with pytest.raises(TypeError, match="layer must be an nn.Module, got str"):
        embeddings(nn.Linear(2, 2), [(LINE, torch.zeros(4))], layer="fc")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_orders_on_cuda_do_not_sync_and_match_the_cpu():
    x = torch.randn(300, 4, generator=gen(6))
    xc = x.cuda()
    torch.cuda.set_sync_debug_mode("error")
    try:
        herd, centers = herding_order(xc, 20), k_center_order(xc, 20)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert herd.cpu().tolist() == herding_order(x, 20).tolist()
    assert centers.cpu().tolist() == k_center_order(x, 20).tolist()
    policy = StaticPolicy(herding_scores(xc, 20).scores)
    kept = policy.select(LossStatistics(300, device="cuda"), 20, torch.Generator("cuda"))
    assert kept.indices.device.type == "cuda"
    assert sorted(kept.indices.tolist()) == sorted(herd.tolist())
