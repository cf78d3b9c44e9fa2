"""dynaprune.tokens on torchvision's and timm's ViT, models it cannot wrap, and the three Onion
levels (examples, tokens, attention) together in one training run."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dynaprune import DynamicPruningSampler, OnionPolicy
from dynaprune.tokens import TokenPruner

IMAGES = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(2))


def torchvision_vit() -> nn.Module:
    models = pytest.importorskip("torchvision.models")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return models.VisionTransformer(  # 16 patches, 3 blocks
            image_size=16, patch_size=4, num_layers=3, num_heads=2, hidden_dim=16, mlp_dim=32,
            num_classes=5,
        )  # fmt: skip


def timm_vit(**kwargs) -> nn.Module:
    vision_transformer = pytest.importorskip("timm.models.vision_transformer")
    config = {"img_size": 16, "patch_size": 4, "embed_dim": 16, "depth": 3, "num_heads": 2}
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return vision_transformer.VisionTransformer(num_classes=5, **{**config, **kwargs})


BUILDERS = [pytest.param(torchvision_vit, id="torchvision"), pytest.param(timm_vit, id="timm")]


def wrap(model, mode="drop", keep=0.5, **kwargs):
    kwargs = {"warmup_epochs": 0, "decay_epochs": 0, **kwargs}
    return TokenPruner(model, mode, keep, **kwargs).train()


@pytest.mark.parametrize("build", BUILDERS)
def test_keep_one_equals_the_library_model(build):
    model = build().train()
    torch.testing.assert_close(wrap(model, "drop", 1.0, attn_keep=1.0)(IMAGES), model(IMAGES))
    torch.testing.assert_close(wrap(model, "tome", 1.0, r=0)(IMAGES), model(IMAGES))
    wrapped = wrap(model, "fuse", 0.5).eval()  # eval runs the model itself
    torch.testing.assert_close(wrapped(IMAGES), model.eval()(IMAGES))


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize(
    ("mode", "kwargs", "tokens"),
    [
        ("drop", {"attn_keep": 0.5}, [16, 8, 4]),
        ("fuse", {}, [16, 9, 6]),
        ("random", {}, [16, 8, 4]),
        ("tome", {"r": 3}, [16, 13, 10]),
    ],
)
def test_library_models_train_pruned(build, mode, kwargs, tokens):
    model = build()
    wrapped = wrap(model, mode, **kwargs)
    out = wrapped(IMAGES)
    assert out.shape == (4, 5) and wrapped.last_tokens == tokens
    out.logsumexp(-1).sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_a_torchvision_model_without_cls_token_is_refused():
    model = torchvision_vit()
    model.class_token = None
    with pytest.raises(ValueError, match=r"model has no \[CLS\] token \(class_token is None\)"):
        TokenPruner(model)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"class_token": False, "global_pool": "avg"}, r"model has no \[CLS\] token"),
        ({"reg_tokens": 2}, "num_prefix_tokens=1 .* got num_prefix_tokens=3"),
        ({"global_pool": "avg"}, "global_pool='token', got .* global_pool='avg'"),
    ],
)
def test_timm_models_that_do_not_read_cls_alone_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TokenPruner(timm_vit(**kwargs))


class OwnAttention(nn.Module):
    def forward(self, q, k, v, need_weights=False):
        return q, None


def test_an_attention_module_it_cannot_read_is_refused():
    model = torchvision_vit()
    model.encoder.layers[1].self_attention = OwnAttention()
    with pytest.raises(TypeError, match="cannot wrap the attention of block 1: .*OwnAttention"):
        TokenPruner(model)
    model.encoder.layers[1].self_attention = nn.MultiheadAttention(16, 2)  # not batch-first
    with pytest.raises(ValueError, match="block 1: it needs batch_first=True"):
        TokenPruner(model)


def test_a_block_it_cannot_read_is_refused():
    model = torchvision_vit()
    model.encoder.layers[2] = nn.Identity()
    with pytest.raises(TypeError, match="cannot wrap block 2: Identity has no ln_1, self_att"):
        TokenPruner(model)


def test_a_timm_attention_it_cannot_read_is_refused():
    model = timm_vit()
    model.blocks[2].attn = OwnAttention()
    with pytest.raises(TypeError, match="cannot wrap the attention of block 2"):
        TokenPruner(model)


def test_a_model_of_another_kind_is_refused():
    with pytest.raises(TypeError, match="cannot wrap a Sequential; supported: torchvision"):
        TokenPruner(nn.Sequential(nn.Linear(2, 2)))


def test_a_block_past_the_depth_is_refused_for_library_models():
    with pytest.raises(ValueError, match="blocks index 3 is past the model's depth 3"):
        TokenPruner(torchvision_vit(), blocks=[0, 3])


def test_the_three_onion_levels_in_one_run(tiny_vit):
    """Examples (the onion policy), tokens and attention: the sampler chooses each epoch's
    images, the wrapper reduces their tokens and attention; both follow the same epoch."""
    g = torch.Generator().manual_seed(0)
    images, labels = torch.randn(40, 3, 8, 8, generator=g), torch.randint(0, 3, (40,), generator=g)
    model = tiny_vit()
    wrapped = TokenPruner(model, "drop", 0.5, attn_keep=0.5, warmup_epochs=1, decay_epochs=1)
    sampler = DynamicPruningSampler(
        40, keep_ratio=0.5, policy=OnionPolicy(period=2, swap_fraction=0.5), seed=0
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    sizes, tokens = [], []
    for epoch in range(4):
        sampler.set_epoch(epoch)
        wrapped.set_epoch(epoch)
        order = torch.tensor(list(sampler))
        sizes.append(len(order))
        for batch in order.split(8):
            logits = wrapped.train()(images[batch])
            losses = F.cross_entropy(logits, labels[batch], reduction="none")
            loss = sampler.update(losses, correct=logits.argmax(1) == labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        tokens.append(wrapped.last_tokens)
    assert sizes == [20, 20, 20, 20]
    assert tokens[0] == [16] * 4 and tokens[2] == tokens[3] == [16, 8, 4, 2]
    assert int(sampler.stats.seen.max()) == 4
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_importing_dynaprune_imports_neither_torchvision_nor_timm():
    code = "import sys, dynaprune.tokens; print(sorted({'torchvision', 'timm'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
