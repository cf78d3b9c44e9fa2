"""dynaprune.tokens: the reduction functions, the keep-rate schedule and TokenPruner on SmallViT."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from dynaprune.tokens import (
    KeepRateSchedule,
    TokenPruner,
    cls_attention,
    default_blocks,
    keep_count,
    keep_tokens,
    key_mask,
    matching_r,
    merge_tokens,
    proportional_bias,
)

IMAGES = torch.randn(5, 3, 8, 8, generator=torch.Generator().manual_seed(1))


def pruner(model, mode="drop", keep=0.5, **kwargs):
    kwargs = {"warmup_epochs": 0, "decay_epochs": 0, **kwargs}
    return TokenPruner(model, mode, keep, **kwargs).train()


# ---- the functions -------------------------------------------------------------------------


def test_keep_count_is_the_ceiling_without_float_surprises():
    assert [keep_count(n, 0.7) for n in (10, 16, 64, 196)] == [7, 12, 45, 138]
    assert keep_count(5, 1.0) == 5 and keep_count(5, 0.01) == 1 and keep_count(0, 0.5) == 0


def test_cls_attention_is_row_zero_of_the_softmax_gradient_included():
    g = torch.Generator().manual_seed(0)
    q, k = (torch.randn(2, 3, 6, 4, generator=g, requires_grad=True) for _ in range(2))
    ours = cls_attention(q, k, 0.5)
    full = (q @ k.transpose(-2, -1) * 0.5).softmax(-1)[:, :, 0, 1:].mean(1)
    torch.testing.assert_close(ours, full)
    weights = torch.randn(2, 5, generator=g)
    grads = [torch.autograd.grad((t * weights).sum(), (q, k)) for t in (ours, full)]
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("fuse", [False, True])
def test_keep_tokens_keeps_cls_and_the_top_scored(fuse):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 9, 4, generator=g)
    scores = torch.rand(3, 8, generator=g).softmax(-1)
    out, idx = keep_tokens(x, scores, 3, fuse=fuse)
    assert out.shape == (3, 1 + 3 + fuse, 4)
    torch.testing.assert_close(out[:, 0], x[:, 0])  # the [CLS] token, untouched and first
    assert torch.equal(idx, scores.topk(3, dim=1).indices)
    torch.testing.assert_close(out[:, 1:4], x[:, 1:].gather(1, idx[..., None].expand(-1, -1, 4)))
    if fuse:
        dropped = torch.ones(3, 8, dtype=torch.bool).scatter_(1, idx, False)
        expected = (x[:, 1:] * (scores * dropped)[..., None]).sum(1)
        torch.testing.assert_close(out[:, -1], expected)


def test_keep_tokens_gradient_reaches_scores_only_when_fusing():
    x = torch.randn(2, 7, 3, requires_grad=True)
    for fuse in (False, True):
        scores = torch.rand(2, 6).requires_grad_()
        out, _ = keep_tokens(x, scores, 2, fuse=fuse)
        out.sum().backward()
        assert (scores.grad is not None) == fuse
    assert x.grad is not None and x.grad[:, 0].abs().sum() > 0


def test_keep_tokens_keeping_all_adds_no_fused_token():
    x = torch.randn(1, 5, 2)
    out, _ = keep_tokens(x, torch.rand(1, 4), 4, fuse=True)
    assert out.shape == (1, 5, 2)


def test_key_mask_keeps_cls_and_extra_rows_and_columns_and_k_keys_per_query():
    g = torch.Generator().manual_seed(0)
    attn = torch.rand(2, 9, 9, generator=g).softmax(-1)  # distinct values: no ties
    idx = torch.stack([torch.randperm(8, generator=g)[:5] for _ in range(2)])
    mask = key_mask(attn, idx, 0.4, extra=1)
    assert mask.shape == (2, 1, 7, 7) and mask.dtype == torch.bool
    m = mask[:, 0]
    assert m[:, 0].all() and m[:, :, 0].all() and m[:, -1].all() and m[:, :, -1].all()
    assert (m[:, 1:6, 1:6].sum(-1) == keep_count(5, 0.4)).all()
    # the keys kept are the most attended ones of each query among the kept tokens
    rows = attn[:, 1:, 1:].gather(1, idx[..., None].expand(-1, -1, 8))
    sub = rows.gather(2, idx[:, None].expand(-1, 5, -1))
    best = sub.topk(2, dim=-1).indices
    assert m[:, 1:6, 1:6].gather(2, best).all()


def test_merge_tokens_removes_r_keeps_cls_and_conserves_mass():
    g = torch.Generator().manual_seed(0)
    x, metric = torch.randn(2, 11, 4, generator=g), torch.randn(2, 11, 6, generator=g)
    merged, size = merge_tokens(x, metric, None, 3)
    assert merged.shape == (2, 8, 4) and size.shape == (2, 8, 1)
    torch.testing.assert_close(merged[:, 0], x[:, 0])
    assert size[:, 0].eq(1).all() and size.sum((1, 2)).eq(11).all() and size.max() > 1
    torch.testing.assert_close((merged * size).sum(1), x.sum(1))  # size-weighted averages
    again, size2 = merge_tokens(merged, torch.randn(2, 8, 6, generator=g), size, 2)
    assert again.shape[1] == 6 and size2.sum((1, 2)).eq(11).all()
    torch.testing.assert_close((again * size2).sum(1), x.sum(1))


def test_merge_tokens_caps_r_at_half_the_patch_tokens():
    x = torch.randn(1, 7, 2)
    assert merge_tokens(x, torch.randn(1, 7, 3), None, 100)[0].shape[1] == 4
    assert merge_tokens(x, torch.randn(1, 7, 3), None, 0)[0] is x


def test_proportional_bias_weighs_a_token_as_its_copies():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 4, 3, generator=g) for _ in range(3))
    size = torch.tensor([[[1.0], [3.0], [1.0], [2.0]]])
    merged = F.scaled_dot_product_attention(q, k, v, attn_mask=proportional_bias(size))
    copies = torch.tensor([0, 1, 1, 1, 2, 3, 3])
    expanded = F.scaled_dot_product_attention(q, k[:, :, copies], v[:, :, copies])
    torch.testing.assert_close(merged, expanded)


def test_matching_r_matches_the_drop_token_total():
    assert matching_r(64, 6, 1.0, (1, 3, 4)) == 0
    assert matching_r(64, 6, 0.7, (1, 3, 4)) < matching_r(64, 6, 0.5, (1, 3, 4))


# ---- the schedule and the default blocks ---------------------------------------------------


def test_schedule_warmup_cosine_then_target():
    s = KeepRateSchedule(0.5, warmup_epochs=10, decay_epochs=100)
    assert s(0) == s(9.99) == 1.0
    assert s(10) == 1.0 and s(60) == pytest.approx(0.75) and s(110) == s(500) == 0.5
    assert s(35) == pytest.approx(0.5 + 0.25 * (1 + math.cos(math.pi / 4)))
    values = [s(e) for e in range(10, 111)]
    assert all(a >= b for a, b in itertools.pairwise(values))
    assert KeepRateSchedule(0.7, 0, 0)(0) == 0.7


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"target": 0.0}, r"target must be in \(0, 1\], got 0.0"),
        ({"target": 1.5}, r"target must be in \(0, 1\], got 1.5"),
        ({"target": 0.5, "warmup_epochs": -1}, "warmup_epochs must be an integer >= 0, got -1"),
        ({"target": 0.5, "decay_epochs": 2.5}, "decay_epochs must be an integer >= 0, got 2.5"),
    ],
)
def test_schedule_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        KeepRateSchedule(**kwargs)


def test_schedule_rejects_a_negative_epoch():
    with pytest.raises(ValueError, match="epoch must be a finite number >= 0, got -1"):
        KeepRateSchedule(0.5)(-1)


def test_default_blocks_are_the_papers_for_depth_12():
    assert default_blocks(12) == (3, 6, 9)
    assert default_blocks(6) == (1, 3, 4)
    assert default_blocks(1) == (0,)


# ---- TokenPruner on SmallViT ---------------------------------------------------------------


def test_keep_one_equals_the_unwrapped_model(tiny_vit):
    model = tiny_vit().train()
    for mode in ("drop", "fuse", "random", "none"):
        torch.testing.assert_close(pruner(model, mode, 1.0, attn_keep=1.0)(IMAGES), model(IMAGES))
    torch.testing.assert_close(pruner(model, "tome", 1.0, r=0)(IMAGES), model(IMAGES))


def test_eval_uses_all_tokens_unless_asked(tiny_vit):
    model = tiny_vit()
    wrapped = pruner(model, "drop", 0.5, attn_keep=0.5).eval()
    torch.testing.assert_close(wrapped(IMAGES), model.eval()(IMAGES))
    pruned = pruner(model, "drop", 0.5, prune_in_eval=True, warmup_epochs=5).eval()
    out = pruned(IMAGES)  # at the target rate, although epoch 0 is in the warm-up
    assert pruned.last_tokens == [16, 8, 4, 2] and not torch.allclose(out, model(IMAGES))


@pytest.mark.parametrize(
    ("mode", "kwargs", "tokens"),
    [
        ("drop", {}, [16, 8, 4, 2]),
        ("fuse", {}, [16, 9, 6, 4]),
        ("random", {}, [16, 8, 4, 2]),
        ("drop", {"blocks": [0, 3]}, [16, 8, 8, 8]),
        ("tome", {"r": 2}, [16, 14, 12, 10]),
        ("tome", {"r": [0, 8, 1, 0]}, [16, 16, 8, 7]),
        ("none", {"attn_keep": 0.5}, [16, 16, 16, 16]),
    ],
)
def test_tokens_entering_each_block(tiny_vit, mode, kwargs, tokens):
    wrapped = pruner(tiny_vit(), mode, 0.5, **kwargs)
    assert wrapped.blocks == (tuple(kwargs["blocks"]) if "blocks" in kwargs else (0, 1, 2))
    assert wrapped(IMAGES).shape == (5, 3)
    assert wrapped.last_tokens == tokens


@pytest.mark.parametrize(
    ("mode", "kwargs"),
    [("drop", {}), ("fuse", {}), ("random", {}), ("tome", {"r": 3}), ("drop", {"attn_keep": 0.3})],
)
def test_gradients_reach_every_parameter(tiny_vit, mode, kwargs):
    model = tiny_vit()
    pruner(model, mode, 0.5, **kwargs)(IMAGES).logsumexp(-1).sum().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert missing == []


def test_attention_level_changes_the_output_and_keeps_the_token_counts(tiny_vit):
    model = tiny_vit()
    plain, masked = pruner(model, "drop", 0.5), pruner(model, "drop", 0.5, attn_keep=0.3)
    assert not torch.allclose(plain(IMAGES), masked(IMAGES))
    assert plain.last_tokens == masked.last_tokens


def test_prop_attn_changes_tome(tiny_vit):
    model = tiny_vit()
    on, off = pruner(model, "tome", r=4), pruner(model, "tome", r=4, prop_attn=False)
    assert not torch.allclose(on(IMAGES), off(IMAGES))


def test_the_epoch_drives_the_keep_rates(tiny_vit):
    wrapped = TokenPruner(tiny_vit(), "drop", 0.5, attn_keep=0.25, warmup_epochs=1, decay_epochs=2)
    assert (wrapped.keep_rate, wrapped.attn_keep_rate) == (1.0, 1.0)
    wrapped.train()(IMAGES)
    assert wrapped.last_tokens == [16] * 4  # warm-up: every token
    wrapped.set_epoch(2)
    assert wrapped.keep_rate == pytest.approx(0.75)
    assert wrapped.attn_keep_rate == pytest.approx(0.625)
    wrapped(IMAGES)
    assert wrapped.last_tokens == [16, 12, 9, 7]
    wrapped.set_epoch(3)
    assert wrapped.keep_rate == 0.5
    state = wrapped.state_dict()
    fresh = TokenPruner(tiny_vit(), "drop", 0.5, attn_keep=0.25, warmup_epochs=1, decay_epochs=2)
    fresh.load_state_dict(state)
    assert fresh.epoch == 3.0 and fresh.keep_rate == 0.5


def test_random_drop_depends_on_seed_and_epoch_only(tiny_vit):
    model = tiny_vit()
    a, b, c = (pruner(model, "random", 0.5, seed=s) for s in (0, 0, 1))
    first = a(IMAGES)
    torch.testing.assert_close(first, b(IMAGES))
    assert not torch.allclose(first, c(IMAGES))
    b.set_epoch(1)
    assert not torch.allclose(first, b(IMAGES))
    a.set_epoch(1), b.set_epoch(0), b.set_epoch(1)
    torch.testing.assert_close(a(IMAGES), b(IMAGES))


# ---- errors at wrapping time ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("drop", 0.0), {}, r"keep must be in \(0, 1\], got 0.0"),
        (("drop", 1.2), {}, r"keep must be in \(0, 1\], got 1.2"),
        (("drop", 0.5), {"attn_keep": 0.0}, r"attn_keep must be in \(0, 1\], got 0.0"),
        (("drop", 0.5), {"warmup_epochs": -2}, "warmup_epochs must be an integer >= 0, got -2"),
        (("drop", 0.5), {"blocks": [1, 4]}, r"blocks index 4 is past the model's depth 4"),
        (("drop", 0.5), {"blocks": [-1]}, "blocks index must be an integer >= 0, got -1"),
        (("drop", 0.5), {"blocks": [1, 1]}, r"blocks must be distinct, got \[1, 1\]"),
        (("drop", 0.5), {"blocks": []}, "blocks must be a non-empty sequence"),
        (("shrink", 0.5), {}, r"mode must be one of \['drop', 'fuse', 'random', 'tome', 'none'\]"),
        (("drop", 0.5), {"r": 2}, "r=2 is ToMe's merge count; it needs mode='tome'"),
        (("tome", 0.5), {}, "mode='tome' needs r"),
        (("tome", 0.5), {"r": [1, 2]}, r"r must have one count per block \(4\), got 2"),
        (("tome", 0.5), {"r": 2, "attn_keep": 0.5}, "attn_keep=0.5 combines with mode 'drop'"),
    ],
)
def test_bad_arguments_fail_at_wrapping_time(tiny_vit, args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        TokenPruner(tiny_vit(), *args, **kwargs)
