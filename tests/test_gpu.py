"""CUDA checks: statistics on the device and no host sync in the per-step feedback."""

import pytest
import torch
import torch.nn.functional as F

from dynaprune import POLICIES, DynamicPruningSampler

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


@pytest.mark.parametrize("policy", POLICIES)
def test_plain_loop_feedback_does_not_sync(policy):
    model = torch.nn.Linear(8, 3).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(512, 8, device="cuda")
    y = torch.randint(0, 3, (512,), device="cuda")
    sampler = DynamicPruningSampler(512, 0.5, policy, device="cuda")
    for epoch in range(3):
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler), device="cuda")
        for start in range(0, len(order), 64):
            idx = order[start : start + 64]
            logits = model(x[idx])
            losses = F.cross_entropy(logits, y[idx], reduction="none")
            correct = logits.argmax(1) == y[idx]
            torch.cuda.set_sync_debug_mode("error")
            try:
                loss = sampler.update(losses, correct=correct)
                loss_indexed = sampler.batch_weights(losses, indices=idx)
            finally:
                torch.cuda.set_sync_debug_mode("default")
            loss.backward()
            opt.step()
            opt.zero_grad()
            assert loss_indexed.device.type == "cuda"
    for name in ("mean", "var", "count", "seen"):
        assert getattr(sampler.stats, name).device.type == "cuda"
    assert sampler.stats.count.sum().item() == 512 + 2 * 256


def test_lightning_callback_feedback_does_not_sync(tmp_path, tiny_module):
    pl = pytest.importorskip("pytorch_lightning")
    from torch.utils.data import DataLoader, TensorDataset

    from dynaprune.lightning import DynamicPruningCallback

    class NoSyncCallback(DynamicPruningCallback):
        def on_train_batch_end(self, *args, **kwargs):
            torch.cuda.set_sync_debug_mode("error")
            try:
                super().on_train_batch_end(*args, **kwargs)
            finally:
                torch.cuda.set_sync_debug_mode("default")

    data = TensorDataset(torch.randn(256, 8), torch.randint(0, 3, (256,)))
    sampler = DynamicPruningSampler(data, 0.5, "ucb")
    trainer = pl.Trainer(
        accelerator="gpu",
        devices=1,
        max_epochs=2,
        callbacks=[NoSyncCallback()],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
    )
    loader = DataLoader(data, batch_size=32, sampler=sampler)
    trainer.fit(tiny_module(features=8, classes=3), loader)
    assert sampler.stats.mean.device.type == "cuda"
    assert sampler.stats.count.sum().item() == 2 * 128


@pytest.mark.parametrize("rule", ["selective_backprop", "rho", "uniform"])
def test_inbatch_selection_and_feedback_do_not_sync(rule):
    """In-batch selection on CUDA: the no-grad losses of the whole batch go to the sampler,
    the selector picks the rows, and neither reads a value back to the host."""
    from dynaprune.inbatch import InBatchSelector

    model = torch.nn.Linear(8, 3).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(512, 8, device="cuda")
    y = torch.randint(0, 3, (512,), device="cuda")
    irreducible = torch.rand(512, device="cuda")
    sampler = DynamicPruningSampler(512, 1.0, "ucb", device="cuda")
    selector = InBatchSelector(rule, keep=0.25)
    sampler.set_epoch(0)
    order = torch.tensor(list(sampler), device="cuda")
    for start in range(0, len(order), 64):
        idx = order[start : start + 64]
        with torch.no_grad():
            losses = F.cross_entropy(model(x[idx]), y[idx], reduction="none")
        torch.cuda.set_sync_debug_mode("error")
        try:
            il = irreducible[sampler.batch_indices(64)] if rule == "rho" else None
            sampler.update(losses)
            rows = selector.select(losses, il)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        assert rows.device.type == "cuda" and rows.numel() == 16
        F.cross_entropy(model(x[idx][rows]), y[idx][rows]).backward()
        opt.step()
        opt.zero_grad()
    assert sampler.stats.count.sum().item() == 512


def test_indexed_update_outside_the_epoch_does_not_sync_and_raises_at_the_boundary():
    sampler = DynamicPruningSampler(64, 0.5, "ucb", device="cuda")
    order = torch.tensor(list(sampler), device="cuda")
    outside = torch.tensor(sorted(set(range(64)) - set(order.tolist()))[:2], device="cuda")
    torch.cuda.set_sync_debug_mode("error")
    try:
        sampler.update(torch.ones(4, device="cuda"), indices=order[:4])
        sampler.update(torch.ones(2, device="cuda"), indices=outside)  # counted, not recorded
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert sampler.stats.count.sum().item() == 4
    sampler.set_epoch(1)
    with pytest.raises(ValueError, match="named 2 samples not in epoch 0's subset"):
        list(sampler)
