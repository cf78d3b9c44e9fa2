"""Data parallelism on CPU: two processes with the gloo backend."""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import run_epoch

from dynaprune import DynamicPruningSampler

WORLD = 2
N, KEEP, EPOCHS, BATCH = 53, 0.5, 4, 5


def fake_losses(idx, epoch):
    """A loss that depends only on the sample and the epoch, whichever rank computes it."""
    return ((idx.float() * 0.618 + epoch * 0.3) % 1.0) * 3.0


def onion_losses(idx, epoch):
    """Like fake_losses, with some NaN losses: those record no correctness."""
    return torch.where((idx + epoch) % 9 == 0, float("nan"), fake_losses(idx, epoch))


def train(sampler, epochs=EPOCHS, loss_fn=fake_losses, indexed=False):
    """Feeds losses and correctness (ignored by the policies that do not read it)."""
    shards = []
    for epoch in range(epochs):
        shards.append(run_epoch(sampler, epoch, loss_fn, BATCH, indexed=indexed))
        sampler.synchronize()
    return shards


# An odd budget of 25 of 53: every epoch pads one rank, or drops a sample with drop_last. With
# period 2 and one warm-up epoch, the subset is trimmed at epoch 1 and swapped at 2 and 4.
ONION_KEEP, ONION_EPOCHS = 0.47, 6
ONION_CASES = {"onion": (False, False), "onion_indexed": (False, True), "onion_drop": (True, False)}


def onion_sampler(**kwargs):
    from dynaprune import OnionPolicy

    policy = OnionPolicy(period=2, swap_fraction=0.2)
    return DynamicPruningSampler(
        N, ONION_KEEP, policy, seed=1, warmup_epochs=1, nonfinite="ignore", **kwargs
    )


CASES = [("ucb", False), ("soft", True), ("epsilon_greedy", False)]


def _worker(rank, path):
    """Everything the plain-loop tests check, in one spawn (starting processes is slow)."""
    dist.init_process_group("gloo", init_method=f"file://{path}/rdzv", rank=rank, world_size=WORLD)
    try:
        results = {}
        for policy, drop_last in CASES:
            sampler = DynamicPruningSampler(
                N, KEEP, policy, seed=1, warmup_epochs=1, drop_last=drop_last
            )
            assert (sampler.num_replicas, sampler.rank) == (WORLD, rank)
            shards = train(sampler)
            results[policy] = {"shards": shards, "stats": sampler.stats.state_dict()}
        for case, (drop_last, indexed) in ONION_CASES.items():
            sampler = onion_sampler(drop_last=drop_last)
            shards = train(sampler, ONION_EPOCHS, onion_losses, indexed)
            results[case] = {"shards": shards, "stats": sampler.stats.state_dict()}

        sampler = DynamicPruningSampler(10, 1.0)
        list(sampler)
        sampler.update(torch.tensor([float("nan")] * (rank + 1)))
        sampler.synchronize()
        sampler.synchronize()  # nothing new: no second merge, no double count
        results["nonfinite"] = sampler.summary()["nonfinite_skipped"]

        # A data-parallel group smaller than the world must be named, not silently summed.
        mismatched = DynamicPruningSampler(10, 1.0, num_replicas=3, rank=rank)
        list(mismatched)
        mismatched.update(torch.ones(len(mismatched)))
        try:
            mismatched.synchronize()
        except ValueError as error:
            results["mismatch"] = str(error)
        torch.save(results, f"{path}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def plain_results(tmp_path_factory):
    path = tmp_path_factory.mktemp("gloo")
    mp.spawn(_worker, args=(str(path),), nprocs=WORLD, join=True)
    return [torch.load(path / f"rank{r}.pt") for r in range(WORLD)]


@pytest.mark.parametrize(("policy", "drop_last"), CASES)
def test_ranks_agree_and_match_a_single_process(plain_results, policy, drop_last):
    results = [r[policy] for r in plain_results]
    # One process, same seed and losses: the reference subsets and statistics.
    single = DynamicPruningSampler(N, KEEP, policy, seed=1, warmup_epochs=1)
    reference = train(single)

    for epoch in range(EPOCHS):
        shards = [r["shards"][epoch] for r in results]
        flat = shards[0] + shards[1]
        assert len(shards[0]) == len(shards[1])
        if drop_last:  # dropped samples go unrecorded, so only the first epoch matches
            assert len(set(flat)) == len(flat) == len(reference[epoch]) // WORLD * WORLD
            continue
        assert set(flat) == set(reference[epoch])  # disjoint shards of one global subset
        # Interleaving the shards gives back the global order.
        interleaved = [i for pair in zip(*shards, strict=False) for i in pair]
        assert interleaved[: len(reference[epoch])] == reference[epoch]
    for name in ("mean", "var", "count", "seen"):
        a, b = (r["stats"][name] for r in results)
        assert torch.equal(a, b), f"{name} differs across ranks"
        if not drop_last:
            assert torch.equal(a, single.stats.state_dict()[name]), f"{name} differs from 1 process"


@pytest.mark.parametrize("case", ONION_CASES)
def test_correctness_merges_bit_equal_and_matches_a_single_process(plain_results, case):
    drop_last, _ = ONION_CASES[case]
    results = [r[case] for r in plain_results]
    single = onion_sampler()
    reference = train(single, ONION_EPOCHS, onion_losses)
    expected = single.stats.state_dict()
    subsets = [set(order) for order in reference]
    # The run swaps: 5 of the 25 samples at epochs 2 and 4, none at 3 and 5.
    assert [len(subsets[e] - subsets[e - 1]) for e in range(2, 6)] == [5, 0, 5, 0]
    assert expected["correct"].count_nonzero() > 0  # the comparison is not vacuous
    for name in ("mean", "var", "count", "seen", "correct"):
        a, b = (r["stats"][name] for r in results)
        assert torch.equal(a, b), f"{name} differs across ranks"
        if not drop_last:
            assert torch.equal(a, expected[name]), f"{name} differs from 1 process"
    for epoch in range(ONION_EPOCHS):
        flat = results[0]["shards"][epoch] + results[1]["shards"][epoch]
        if drop_last:  # 24 of 25 trained: the subset is filled up, then swapped
            assert len(set(flat)) == len(flat) == len(reference[epoch]) // WORLD * WORLD
        else:
            assert set(flat) == subsets[epoch]


def test_nonfinite_counts_are_summed_once_and_known_on_every_rank(plain_results):
    # Every rank sees the total, so nonfinite="raise" raises on all of them alike.
    assert plain_results[0]["nonfinite"] == 3
    assert plain_results[1]["nonfinite"] == 3


def test_replicas_differing_from_the_group_are_refused(plain_results):
    for result in plain_results:
        assert "num_replicas=3 but the process group has 2 ranks" in result["mismatch"]


pl = pytest.importorskip("pytorch_lightning")


def _fit(tmp_path, module, **trainer_kwargs):
    from torch.utils.data import DataLoader, TensorDataset

    from dynaprune.lightning import DynamicPruningCallback

    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(64, 4, generator=g), torch.arange(64) % 2)
    sampler = DynamicPruningSampler(data, 0.5, "ucb", warmup_epochs=1)
    # Mid-epoch checkpoints: every rank merges its statistics while Lightning saves.
    ckpt = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=3)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=WORLD,
        strategy="ddp_spawn",
        max_epochs=3,
        callbacks=[DynamicPruningCallback(), ckpt],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        **trainer_kwargs,
    )
    trainer.fit(module(out=str(tmp_path)), DataLoader(data, batch_size=8, sampler=sampler))


def test_lightning_ddp_spawn_fit_prunes_with_identical_statistics(tmp_path, tiny_module):
    _fit(tmp_path, tiny_module, use_distributed_sampler=False)
    stats = [torch.load(tmp_path / f"lit{r}.pt") for r in range(WORLD)]
    for name in ("mean", "var", "count", "seen"):
        assert torch.equal(stats[0][name], stats[1][name]), name
    # One full warm-up epoch, then two epochs of 32 of the 64 samples.
    assert stats[0]["count"].sum().item() == 64 + 2 * 32
    saved = torch.load(next((tmp_path / "ckpt").glob("*.ckpt")), weights_only=False)
    (state,) = (v for k, v in saved["callbacks"].items() if "DynamicPruningCallback" in k)
    assert state["sampler"]["num_samples"] == 64


def test_lightning_sampler_replacement_is_explained():
    # What Lightning does to a non-distributed sampler when use_distributed_sampler=True.
    from types import SimpleNamespace

    from lightning_fabric.utilities.distributed import DistributedSamplerWrapper
    from torch.utils.data import DataLoader

    from dynaprune.lightning import DynamicPruningCallback

    ours = DynamicPruningSampler(64, 0.5)
    wrapped = DistributedSamplerWrapper(ours, num_replicas=WORLD, rank=0)
    loader = DataLoader(list(range(64)), batch_size=8, sampler=wrapped)
    trainer = SimpleNamespace(train_dataloader=loader)
    module = SimpleNamespace(device=torch.device("cpu"))
    with pytest.raises(RuntimeError, match=r"pass Trainer\(use_distributed_sampler=False\)"):
        DynamicPruningCallback()._attach(trainer, module)
