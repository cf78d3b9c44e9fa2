"""The sampler in a plain loop under Hugging Face Accelerate: one process and two (gloo)."""

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from dynaprune import DynamicPruningSampler

accelerate = pytest.importorskip("accelerate")

from accelerate.data_loader import prepare_data_loader  # noqa: E402

from dynaprune.integrations.accelerate import find_sampler, prepare_loader, unshard  # noqa: E402

N, KEEP, BATCH, EPOCHS = 27, 0.5, 4, 3


class Indexed(Dataset):
    """``(index, features, label)`` per sample."""

    def __init__(self, n=N):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 4, generator=g)
        self.y = (self.x[:, 0] > 0).long()

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return i, self.x[i], self.y[i]


def _batches(loader):
    return [idx.tolist() for idx, _, _ in loader]


@pytest.mark.parametrize("rank", [0, 1])
def test_unshard_passes_the_samplers_own_shard_through(rank):
    data = Indexed()
    sampler = DynamicPruningSampler(data, KEEP, "ucb", num_replicas=2, rank=rank)
    sampler.set_epoch(0)
    own = list(sampler)  # 7 samples: batches of 4 and 3
    loader = DataLoader(data, batch_size=BATCH, sampler=sampler)
    prepared = prepare_data_loader(loader, num_processes=2, process_index=rank, put_on_device=False)
    # Accelerate's wrapper shards the rank's shard again, and fills batches up to full size.
    assert [i for batch in _batches(prepared) for i in batch] != own
    assert find_sampler(prepared) is sampler
    prepared.set_epoch(0)
    assert _batches(unshard(prepared)) == [own[:4], own[4:]]


def test_unshard_refuses_what_would_not_train_the_ranks_own_shards():
    data = Indexed()
    sampler = DynamicPruningSampler(data, KEEP, num_replicas=2, rank=0)
    loader = DataLoader(data, batch_size=BATCH, sampler=sampler)
    split = prepare_data_loader(loader, num_processes=2, process_index=0, split_batches=True)
    with pytest.raises(ValueError, match="split_batches=False"):
        unshard(split)
    dispatched = prepare_data_loader(
        loader, num_processes=2, process_index=0, put_on_device=True, dispatch_batches=True
    )
    with pytest.raises(ValueError, match="dispatch_batches=False"):
        unshard(dispatched)
    with pytest.raises(ValueError, match="found no DynamicPruningSampler"):
        unshard(DataLoader(data, batch_size=BATCH))


def quickstart(accelerator, data, epochs=EPOCHS, sampler=None, start=0):
    """The documented loop (README, "Hugging Face Accelerate"), with learning rate 0 so that
    each sample's loss is known; returns the sample indices trained per epoch."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    sampler = sampler or DynamicPruningSampler(data, KEEP, "ucb", warmup_epochs=1)
    model, opt = accelerator.prepare(model, opt)
    loader = prepare_loader(accelerator, DataLoader(data, batch_size=BATCH, sampler=sampler))
    seen = []
    for epoch in range(start, epochs):
        loader.set_epoch(epoch)
        seen.append([])
        for idx, x, y in loader:
            loss = sampler.update(F.cross_entropy(model(x), y, reduction="none"))
            accelerator.backward(loss)
            opt.step()
            opt.zero_grad()
            seen[-1] += idx.tolist()
    return sampler, seen


def reference(data):
    """The same run in a plain single-process loop."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    with torch.no_grad():
        losses = F.cross_entropy(model(data.x), data.y, reduction="none")
    sampler = DynamicPruningSampler(data, KEEP, "ucb", warmup_epochs=1)
    orders = []
    for epoch in range(EPOCHS):
        sampler.set_epoch(epoch)
        orders.append(list(sampler))
        sampler.update(losses[orders[-1]])
    return sampler, orders, losses


def test_one_process_quickstart_matches_a_plain_loop(tmp_path):
    accelerator = accelerate.Accelerator(cpu=True)
    data = Indexed()
    sampler, seen = quickstart(accelerator, data)
    expected, orders, losses = reference(data)
    assert seen == orders
    for name in ("count", "seen"):
        assert torch.equal(getattr(sampler.stats, name), getattr(expected.stats, name))
    assert torch.allclose(sampler.stats.mean, losses)


def test_accelerate_checkpoints_hold_the_sampler(tmp_path):
    accelerator = accelerate.Accelerator(cpu=True)
    data = Indexed()
    sampler, _ = quickstart(accelerator, data, epochs=2)
    accelerator.register_for_checkpointing(sampler)
    accelerator.save_state(str(tmp_path / "state"))

    restored = DynamicPruningSampler(data, KEEP, "ucb", warmup_epochs=1)
    fresh = accelerate.Accelerator(cpu=True)
    fresh.register_for_checkpointing(restored)
    fresh.load_state(str(tmp_path / "state"))
    assert restored.epoch == 1
    assert torch.equal(restored.stats.mean, sampler.stats.mean)
    # Continued from the checkpoint, the run ends as the uninterrupted one.
    _, seen = quickstart(fresh, data, sampler=restored, start=2)
    _, orders, _ = reference(data)
    assert seen == orders[2:]


WORLD = 2


def _worker(rank, path, port):
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )  # fmt: skip
    accelerator = accelerate.Accelerator(cpu=True)
    assert accelerator.num_processes == WORLD
    sampler, seen = quickstart(accelerator, Indexed())
    assert (sampler.num_replicas, sampler.rank) == (WORLD, rank)
    sampler.synchronize()  # the last epoch's losses, merged as planning the next would
    torch.save({"stats": sampler.stats.state_dict(), "seen": seen}, f"{path}/rank{rank}.pt")
    accelerator.end_training()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # two processes importing accelerate
def test_two_gloo_processes_train_disjoint_shards_with_identical_statistics(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path), _free_port()), nprocs=WORLD, join=True)
    results = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    expected, orders, losses = reference(Indexed())
    for epoch in range(EPOCHS):
        shards = [r["seen"][epoch] for r in results]
        assert len(shards[0]) == len(shards[1])  # padded to equal length, as DistributedSampler
        # Interleaving the shards gives back the global order: each sample once, none skipped.
        interleaved = [i for pair in zip(*shards, strict=False) for i in pair]
        assert interleaved[: len(orders[epoch])] == orders[epoch]
    for name in ("mean", "var", "count", "seen"):
        a, b = (r["stats"][name] for r in results)
        assert torch.equal(a, b), f"{name} differs across ranks"
    stats = results[0]["stats"]
    assert torch.equal(stats["count"], expected.stats.count)
    assert torch.allclose(stats["mean"], losses)
