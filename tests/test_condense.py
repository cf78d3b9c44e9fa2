"""dynaprune.condense: matching losses by hand, DSA, IDM's partitions, each method's progress
and its argument checks, on tiny tensors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from dynaprune import DynamicPruningSampler
from dynaprune import condense as cd
from dynaprune.condense.augment import _GROUPS


@pytest.fixture
def tiny() -> tuple[torch.Tensor, torch.Tensor]:
    """2 classes of 12 8x8 images: class 0 bright in the top half, class 1 in the bottom half."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(24, 3, 8, 8, generator=g) * 0.5
    y = torch.arange(2).repeat(12)
    x[y == 0, :, :4] += 1.0
    x[y == 1, :, 4:] += 1.0
    return x, y


def _nets(k: int = 4) -> list[cd.ConvNet]:
    with torch.random.fork_rng():
        torch.manual_seed(123)
        return [cd.ConvNet(3, 2, (8, 8)) for _ in range(k)]


# ------------------------------------------------------------------ losses by hand
def test_gradient_distance_by_hand() -> None:
    conv_s = torch.tensor([1.0, 0.0, 0.0, 1.0]).view(2, 1, 1, 2)  # two output channels
    conv_r = torch.tensor([2.0, 0.0, 3.0, 0.0]).view(2, 1, 1, 2)
    lin_s, lin_r = torch.tensor([[1.0, 1.0]]), torch.tensor([[1.0, -1.0]])
    bias = torch.tensor([5.0, -5.0])  # one-dimensional: skipped
    got = cd.gradient_distance([conv_s, bias, lin_s], [conv_r, -bias, lin_r])
    # channel 0: cos 1 -> 0; channel 1: cos 0 -> 1; linear row: cos 0 -> 1
    assert float(got) == pytest.approx(2.0, abs=1e-5)
    assert float(cd.gradient_distance([conv_s], [-conv_s])) == pytest.approx(4.0, abs=1e-5)


def test_dm_loss_by_hand() -> None:
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # mean (2, 3)
    syn = torch.tensor([[0.0, 0.0], [2.0, 0.0], [1.0, 3.0]])  # mean (1, 1)
    assert float(cd.dm_loss(real, syn)) == pytest.approx(1.0 + 4.0)


def test_cafe_loss_by_hand() -> None:
    flat_r = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    flat_s = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # centre of class 1 differs by 1
    pooled_r, pooled_s = torch.ones(2, 1, 1, 1), torch.zeros(2, 1, 1, 1)
    labels = torch.tensor([0, 1])
    got = cd.cafe_loss([flat_r, pooled_r], [flat_s, pooled_s], labels, 2, inner_weight=0.5)
    logits = flat_r @ flat_s.t()  # [[1, 0], [0, 2]]
    ce = math.log(1 + math.exp(-1)) + math.log(1 + math.exp(-2))
    assert float(F.cross_entropy(logits, labels, reduction="sum")) == pytest.approx(ce)
    assert float(got) == pytest.approx(1.0 * 2 + 1.0 + 0.5 * ce, rel=1e-5)


# ------------------------------------------------------------------ DSA
@pytest.mark.parametrize("group", _GROUPS)
def test_siamese_augmentation_is_identical_on_real_and_synthetic(group: str) -> None:
    real, syn = torch.randn(5, 3, 8, 8), torch.randn(2, 3, 8, 8)
    aug = cd.draw_augmentation(torch.Generator().manual_seed(7), (8, 8), strategy=group)
    again = cd.draw_augmentation(torch.Generator().manual_seed(7), (8, 8), strategy=group)
    both = aug(torch.cat([real, syn]))
    torch.testing.assert_close(both, torch.cat([aug(real), again(syn)]))
    # one transformation for every image: image i augmented alone gives the same pixels
    torch.testing.assert_close(aug(syn[1:]), aug(syn)[1:])
    # geometric groups only move or erase pixels (zero padding): a black image stays black;
    # ``color`` shifts every pixel of an image by one brightness offset
    black = aug(torch.zeros_like(syn))
    assert black.shape == syn.shape
    if group == "color":
        assert bool((black != 0).all())
        torch.testing.assert_close(black, black[:, :1, :1, :1].expand_as(black))
    else:
        assert bool((black == 0).all())


@pytest.mark.parametrize("group", _GROUPS)
def test_augmentation_is_differentiable_in_the_synthetic_pixels(group: str) -> None:
    syn = torch.randn(2, 3, 8, 8, requires_grad=True)
    aug = cd.draw_augmentation(torch.Generator().manual_seed(3), (8, 8), strategy=group)
    (aug(syn) * torch.randn(2, 3, 8, 8)).sum().backward()
    assert syn.grad is not None and bool(syn.grad.abs().sum() > 0)


def test_per_image_augmentation_and_bad_strategy() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 3, 8, 8)
    assert cd.dsa_augment(x, g).shape == x.shape
    with pytest.raises(ValueError, match="strategy must join groups of .* got 'blur'"):
        cd.draw_augmentation(g, (8, 8), strategy="blur")


# ------------------------------------------------------------------ IDM partitions
def test_idm_partition_round_trip() -> None:
    # constant images survive bilinear down- and upsampling exactly
    parts = torch.arange(4 * 3 * 2, dtype=torch.float).view(4, 3, 2, 1, 1).expand(4, 3, 2, 8, 8)
    packed = cd.pack_partitions(parts)
    assert packed.shape == (3, 2, 8, 8)
    torch.testing.assert_close(packed[:, :, :4, :4], parts[0, :, :, :4, :4])  # top-left
    torch.testing.assert_close(packed[:, :, 4:, :4], parts[1, :, :, :4, :4])  # bottom-left
    images, labels = cd.expand_partitions(packed, torch.tensor([0, 1, 2]))
    torch.testing.assert_close(images, parts.reshape(12, 2, 8, 8))
    assert labels.tolist() == [0, 1, 2] * 4
    with pytest.raises(ValueError, match="even height and width, got 7x8"):
        cd.pack_partitions(torch.zeros(4, 1, 1, 7, 8))


# ------------------------------------------------------------------ progress
@pytest.fixture
def fixed_net(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every "fresh" network is a copy of one initialisation, so that a method's loss from
    iteration to iteration is one objective (real batches = whole classes, no augmentation)."""
    import copy
    import sys

    base = _nets(1)[0]
    for module in ("dc", "dm", "idm", "cafe"):
        target = sys.modules[f"dynaprune.condense.{module}"]
        monkeypatch.setattr(target, "fresh_net", lambda *a: copy.deepcopy(base))
    # DSA's Siamese draw, fixed too: one rotation for every step
    rotate = cd.draw_augmentation(torch.Generator().manual_seed(0), (8, 8), strategy="rotate")
    monkeypatch.setattr(
        sys.modules["dynaprune.condense.dc"], "draw_augmentation", lambda *a: rotate
    )


PROGRESS = {
    "dc": lambda x, y: cd.dc(x, y, 1, iterations=8, batch_real=12),
    "dsa": lambda x, y: cd.dsa(x, y, 1, iterations=8, batch_real=12, init="noise"),
    "dm": lambda x, y: cd.dm(x, y, 1, iterations=8, batch_real=12, augment=False, lr_images=0.1),
    "idm": lambda x, y: cd.idm(
        x, y, 1, iterations=8, batch_real=12, augment=False, lr_images=0.1, train_nets=0
    ),
    "cafe": lambda x, y: cd.cafe(x, y, 1, iterations=8, batch_real=12, max_outer=1),
}


@pytest.mark.parametrize("name", PROGRESS)
def test_iterations_lower_the_methods_own_loss(
    name: str, tiny: tuple[torch.Tensor, torch.Tensor], fixed_net: None
) -> None:
    x, y = tiny
    losses = PROGRESS[name](x, y).losses
    assert len(losses) == 8
    # DC's distance sums 1 - cos over 2 x 128 channels: a few percent is real progress
    assert losses[-1] < (0.98 if name in ("dc", "dsa") else 0.95) * losses[0], losses


def test_seeded_reproducible_and_global_rng_untouched(
    tiny: tuple[torch.Tensor, torch.Tensor],
) -> None:
    x, y = tiny
    state = torch.random.get_rng_state()
    a = cd.dm(x, y, 2, iterations=2, batch_real=4, seed=3)
    b = cd.dm(x, y, 2, iterations=2, batch_real=4, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    torch.testing.assert_close(a.images, b.images)
    assert a.labels.tolist() == [0, 0, 1, 1] and a.seconds > 0 and len(a.losses) == 2
    calls: list[int] = []
    cd.dm(x, y, 1, iterations=3, batch_real=4, callback=lambda i, im, lab: calls.append(i))
    assert calls == [1, 2, 3]


def test_convnet_from_a_generator_has_the_weights_of_a_global_seed_and_leaves_it_alone() -> None:
    # the condensation results were made with the global RNG seeded before building the net
    with torch.random.fork_rng():
        torch.manual_seed(7)
        seeded = cd.ConvNet(3, 10, (32, 32))
    state = torch.random.get_rng_state()
    drawn = cd.ConvNet(3, 10, (32, 32), generator=torch.Generator().manual_seed(7))
    assert torch.equal(torch.random.get_rng_state(), state)
    for (name, a), b in zip(seeded.state_dict().items(), drawn.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    other = cd.ConvNet(3, 10, (32, 32), generator=torch.Generator().manual_seed(8))
    assert not torch.equal(other.classifier.weight, drawn.classifier.weight)


def test_train_convnet_with_a_sampler_trains_on_its_epochs_and_checks_its_size() -> None:
    x, y = torch.randn(12, 3, 8, 8), torch.arange(12) % 3
    sampler = cd_sampler(12)
    cd.train_convnet(x, y, epochs=3, batch_size=4, sampler=sampler)
    assert sampler.planned_epoch == 2
    # three epochs of 6 of the 12 images, each one's losses fed back: 18 updates; ucb ranks the
    # 6 unseen images first in epoch 1, so after two epochs all 12 were trained on
    assert int(sampler.stats.count.sum()) == 3 * 6
    assert sampler.stats.summary()["seen_samples"] == 12
    with pytest.raises(ValueError, match=r"sampler must be over the 12 images, got one over 13"):
        cd.train_convnet(x, y, epochs=1, sampler=cd_sampler(13))


def cd_sampler(n: int) -> DynamicPruningSampler:
    return DynamicPruningSampler(n, 0.5, "ucb", seed=0)


# ------------------------------------------------------------------ arguments
METHODS = {
    "dc": lambda x, y, ipc: cd.dc(x, y, ipc, iterations=1, outer_loops=1, inner_loops=1),
    "dsa": lambda x, y, ipc: cd.dsa(x, y, ipc, iterations=1, outer_loops=1, inner_loops=1),
    "dm": lambda x, y, ipc: cd.dm(x, y, ipc, iterations=1),
    "idm": lambda x, y, ipc: cd.idm(x, y, ipc, iterations=1),
    "cafe": lambda x, y, ipc: cd.cafe(x, y, ipc, iterations=1, max_outer=1),
}


@pytest.mark.parametrize("name", METHODS)
def test_bad_arguments_name_the_argument_and_value(
    name: str, tiny: tuple[torch.Tensor, torch.Tensor]
) -> None:
    x, y = tiny
    run = METHODS[name]
    with pytest.raises(ValueError, match="ipc must be an integer >= 1, got 0"):
        run(x, y, 0)
    with pytest.raises(ValueError, match="class 1 has 1 real images, fewer than ipc=2"):
        run(x[:3], y[:3], 2)
    with pytest.raises(
        ValueError, match=r"images must be a float tensor of shape \(N, C, H, W\), got \(24, 8, 8\)"
    ):
        run(x[:, 0], y, 1)
    with pytest.raises(ValueError, match="labels must have one entry per image"):
        run(x, y[:5], 1)


def test_published_loops_and_defaults() -> None:
    assert cd.published_loops(1) == (1, 1) and cd.published_loops(10) == (10, 50)
    with pytest.raises(ValueError, match="ipc has no published outer/inner loops for 7"):
        cd.published_loops(7)
    with pytest.raises(ValueError, match="lr_images must be a finite number > 0, got 0"):
        cd.dm(torch.zeros(2, 3, 8, 8), torch.tensor([0, 1]), 1, lr_images=0)


def test_convnet_shapes_and_evaluation(tiny: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = tiny
    net = cd.ConvNet(3, 2, (8, 8))
    logits, maps = net.feature_maps(x[:2])
    torch.testing.assert_close(logits, net(x[:2]))
    assert [tuple(m.shape[1:]) for m in maps] == [
        (128,),
        (128, 1, 1),
        (128, 2, 2),
        (128, 4, 4),
        (128, 8, 8),
    ]
    trained = cd.train_convnet(x, y, epochs=30, batch_size=8)
    assert cd.accuracy(trained, x, y) > 0.8
    with pytest.raises(ValueError, match="image_size must be at least 8"):
        cd.ConvNet(3, 2, (4, 4))
