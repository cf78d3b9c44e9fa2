import copy

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

pl = pytest.importorskip("pytorch_lightning")

from dynaprune import DynamicPruningSampler  # noqa: E402
from dynaprune.lightning import DynamicPruningCallback, batch_weights  # noqa: E402


class IndexedBlobs(Dataset):
    """Two Gaussian blobs; each item is (index, x, y) so tests can see which samples ran."""

    def __init__(self, n=96):
        g = torch.Generator().manual_seed(0)
        self.y = torch.arange(n) % 2
        self.x = torch.randn(n, 4, generator=g) + self.y[:, None] * 1.5

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return i, self.x[i], self.y[i]


def make_loader(sampler, data=None, batch_size=16):
    data = data or IndexedBlobs()
    return DataLoader(data, batch_size=batch_size, sampler=sampler)


def trainer(tmp_path, **kwargs):
    defaults = dict(
        accelerator="cpu",
        devices=1,
        max_epochs=4,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    callbacks = kwargs.pop("callbacks", [])
    return pl.Trainer(callbacks=[DynamicPruningCallback(), *callbacks], **{**defaults, **kwargs})


def test_fit_prunes_and_feeds_every_sample(tmp_path, tiny_module):
    sampler = DynamicPruningSampler(96, 0.5, "ucb", warmup_epochs=1)
    model = tiny_module()
    trainer(tmp_path).fit(model, make_loader(sampler))
    sizes = [len(idx) for _, idx in model.seen]
    assert sizes == [96, 48, 48, 48]
    assert sampler.stats.count.sum().item() == sum(sizes)
    assert sampler.stats.mean.abs().sum() > 0


def test_logs_once_per_epoch_through_the_loggers(tmp_path, tiny_module):
    from pytorch_lightning.loggers import CSVLogger

    sampler = DynamicPruningSampler(96, 0.25, "soft")
    t = trainer(tmp_path, logger=CSVLogger(tmp_path), max_epochs=2)
    t.fit(tiny_module(soft=True), make_loader(sampler))
    metrics = t.callback_metrics
    assert metrics["dynaprune/kept_fraction"] == pytest.approx(0.25)
    assert metrics["dynaprune/seen_samples"] >= 24
    assert metrics["dynaprune/processed_samples"] == 48
    assert metrics["dynaprune/nonfinite_skipped"] == 0
    for key in ("score_mean", "score_q10", "score_q50", "score_q90"):
        assert torch.isfinite(metrics[f"dynaprune/{key}"])
    rows = (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").read_text()
    assert "dynaprune/kept_fraction" in rows


def test_soft_weights_reach_training_step(tmp_path, tiny_module):
    sampler = DynamicPruningSampler(96, 0.25, "soft")
    weights = []

    class Spy(tiny_module):
        def training_step(self, batch, batch_idx):
            _, x, _ = batch
            weights.append(batch_weights(self, torch.zeros(len(x))))
            return super().training_step(batch, batch_idx)

    trainer(tmp_path, max_epochs=2).fit(Spy(soft=True), make_loader(sampler))
    assert torch.cat(weights).max() > 1


def test_epoch_lengths_follow_warmup_pruning_and_annealing(tmp_path, tiny_module):
    # Without warm-up the first epoch is the short one: Lightning must not cap later epochs.
    sampler = DynamicPruningSampler(96, 0.25, "uniform", anneal_epochs=1, total_epochs=3)
    model = tiny_module()
    trainer(tmp_path, max_epochs=3).fit(model, make_loader(sampler))
    assert [len(idx) for _, idx in model.seen] == [24, 24, 96]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"limit_train_batches": 2}, [32, 32]),
        ({"accumulate_grad_batches": 2}, [48, 48]),
        ({"max_steps": 4}, [48, 16]),
        ({"check_val_every_n_epoch": 2, "limit_val_batches": 1}, [48, 48]),
    ],
)
def test_trainer_options(tmp_path, kwargs, expected, tiny_module):
    sampler = DynamicPruningSampler(96, 0.5, "epsilon_greedy")
    model = tiny_module()
    val = make_loader(None) if "check_val_every_n_epoch" in kwargs else None
    if val is not None:
        model.validation_step = lambda batch, batch_idx: None
    trainer(tmp_path, max_epochs=2, **kwargs).fit(model, make_loader(sampler), val)
    assert [len(idx) for _, idx in model.seen] == expected
    assert sampler.stats.count.sum().item() == sum(expected)


def test_missing_sampler_is_explained(tmp_path, tiny_module):
    loader = DataLoader(IndexedBlobs(), batch_size=16, shuffle=True)
    with pytest.raises(
        RuntimeError, match="found no DynamicPruningSampler .* sampler=DynamicPruningSampler"
    ):
        trainer(tmp_path).fit(tiny_module(), loader)


def test_missing_sample_losses_is_explained(tmp_path, tiny_module):
    sampler = DynamicPruningSampler(96, 0.5)
    with pytest.raises(
        RuntimeError, match=r"training_step must return its per-sample losses .*\"sample_losses\""
    ):
        trainer(tmp_path).fit(tiny_module(bad="no_losses"), make_loader(sampler))


def test_onion_fit_reads_sample_correct(tmp_path, tiny_module):
    from dynaprune import OnionPolicy

    policy = OnionPolicy(period=2, swap_fraction=0.25)
    sampler = DynamicPruningSampler(96, 0.5, policy, warmup_epochs=1)
    model = tiny_module(correct=True)
    trainer(tmp_path, max_epochs=4).fit(model, make_loader(sampler))
    subsets = [set(idx) for _, idx in model.seen]
    assert [len(s) for s in subsets] == [96, 48, 48, 48]
    # Epoch 2 swaps round(0.25 * 48) = 12 samples; epoch 3 keeps the subset.
    assert [len(subsets[e] - subsets[e - 1]) for e in (2, 3)] == [12, 0]
    # Counters restarted at epoch 2: two epochs of correctness since, on the device.
    assert sampler.stats.correct is not None and sampler.stats.correct.count_nonzero() > 0
    assert sampler.stats.forgetting_counts().isfinite().sum() > 0


def test_missing_sample_correct_is_explained(tmp_path, tiny_module):
    sampler = DynamicPruningSampler(96, 0.5, "onion")
    with pytest.raises(
        RuntimeError,
        match=r'OnionPolicy\(.*\) needs per-sample correctness: .* return "sample_correct"',
    ):
        trainer(tmp_path).fit(tiny_module(), make_loader(sampler))
    assert sampler.stats.count.sum() == 0


def test_sample_correct_that_is_no_tensor_is_explained(tmp_path, tiny_module):
    class Listing(tiny_module):
        def training_step(self, batch, batch_idx):
            out = super().training_step(batch, batch_idx)
            return {**out, "sample_correct": out["sample_correct"].tolist()}

    sampler = DynamicPruningSampler(96, 0.5, "onion")
    with pytest.raises(RuntimeError, match=r'returned "sample_correct" as list; return a bool'):
        trainer(tmp_path).fit(Listing(correct=True), make_loader(sampler))


def test_wrong_length_is_explained(tmp_path, tiny_module):
    sampler = DynamicPruningSampler(96, 0.5)
    with pytest.raises(RuntimeError, match=r"shape \(15,\) for a batch of 16 samples"):
        trainer(tmp_path).fit(tiny_module(bad="short"), make_loader(sampler))


def fit_with_checkpoints(module, tmp_path, max_epochs, ckpt_path=None, **ckpt_kwargs):
    from pytorch_lightning.callbacks import ModelCheckpoint

    sampler = DynamicPruningSampler(96, 0.5, "ucb", seed=3, warmup_epochs=1)
    model = module()
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1, **ckpt_kwargs)
    t = trainer(tmp_path, max_epochs=max_epochs, enable_checkpointing=True, callbacks=[ckpt])
    t.fit(model, make_loader(sampler), ckpt_path=ckpt_path)
    return sampler, model


def test_resume_at_epoch_boundary_equals_uninterrupted(tmp_path, tiny_module):
    full_sampler, full_model = fit_with_checkpoints(tiny_module, tmp_path / "a", 5)
    fit_with_checkpoints(tiny_module, tmp_path / "b", 2, every_n_epochs=1)
    ckpt = tmp_path / "b" / "ckpt" / "epoch=1-step=9.ckpt"
    assert ckpt.exists()
    sampler, model = fit_with_checkpoints(tiny_module, tmp_path / "b", 5, ckpt_path=str(ckpt))
    assert model.seen == full_model.seen[2:]
    for name in ("mean", "var", "count", "seen"):
        assert torch.equal(getattr(sampler.stats, name), getattr(full_sampler.stats, name)), name


def test_resume_mid_epoch_loses_and_repeats_nothing(tmp_path, tiny_module):
    full_sampler, full_model = fit_with_checkpoints(tiny_module, tmp_path / "a", 3)
    # Epoch 0 has 6 batches, epoch 1 has 3: step 7 is mid-way through epoch 1.
    fit_with_checkpoints(tiny_module, tmp_path / "b", 3, every_n_train_steps=7)
    ckpt = next((tmp_path / "b" / "ckpt").glob("*step=7.ckpt"))
    sampler, model = fit_with_checkpoints(tiny_module, tmp_path / "b", 3, ckpt_path=str(ckpt))
    epoch1 = dict(full_model.seen)[1]
    resumed = dict(model.seen)
    assert resumed[1] == epoch1[16:]  # the rest of epoch 1, after its first batch
    assert resumed[2] == dict(full_model.seen)[2]
    for name in ("mean", "var", "count", "seen"):
        assert torch.equal(getattr(sampler.stats, name), getattr(full_sampler.stats, name)), name


def test_state_key_lets_two_instances_coexist():
    a, b = DynamicPruningCallback(), DynamicPruningCallback(name="second")
    assert a.state_key != b.state_key
    assert copy.deepcopy(a).state_key == a.state_key


def test_old_checkpoint_without_sampler_state_loads():
    callback = DynamicPruningCallback()
    callback.load_state_dict({})
    assert callback.state_dict() == {}


def test_unified_lightning_namespace(tmp_path):
    L = pytest.importorskip("lightning.pytorch")

    class UnifiedModel(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(4, 2)

        def training_step(self, batch, batch_idx):
            _, x, y = batch
            losses = F.cross_entropy(self.net(x), y, reduction="none")
            return {"loss": losses.mean(), "sample_losses": losses}

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    sampler = DynamicPruningSampler(96, 0.5, "soft")
    t = L.Trainer(
        accelerator="cpu",
        max_epochs=2,
        callbacks=[DynamicPruningCallback()],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    t.fit(UnifiedModel(), make_loader(sampler))
    assert sampler.stats.count.sum().item() == 2 * 48


def _resume_mid_epoch(tmp_path, loader_class, module):
    """Fit 3 epochs with a checkpoint at step 7 (mid-way through epoch 1), then resume from it;
    return the resumed run's sampler and the warnings the resume raised."""
    import warnings

    from pytorch_lightning.callbacks import ModelCheckpoint

    def fit(out, ckpt_path=None, **ckpt_kwargs):
        sampler = DynamicPruningSampler(96, 0.5, "ucb", seed=3, warmup_epochs=1)
        ckpt = ModelCheckpoint(dirpath=out / "ckpt", save_top_k=-1, **ckpt_kwargs)
        t = trainer(out, max_epochs=3, enable_checkpointing=True, callbacks=[ckpt])
        loader = loader_class(IndexedBlobs(), batch_size=16, sampler=sampler)
        t.fit(module(), loader, ckpt_path=ckpt_path)
        return sampler

    fit(tmp_path, every_n_train_steps=7)
    ckpt = next((tmp_path / "ckpt").glob("*step=7.ckpt"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sampler = fit(tmp_path / "resumed", ckpt_path=str(ckpt))
    return sampler, [str(w.message) for w in caught]


def test_resumable_data_loader_declares_the_mid_epoch_resume_to_lightning(tmp_path, tiny_module):
    from dynaprune.lightning import ResumableDataLoader

    plain, plain_warnings = _resume_mid_epoch(tmp_path / "plain", DataLoader, tiny_module)
    ours, our_warnings = _resume_mid_epoch(tmp_path / "ours", ResumableDataLoader, tiny_module)
    # Lightning warns about a plain DataLoader (if this fails, Lightning changed its check) ...
    assert any("not resumable" in w for w in plain_warnings)
    # ... and not about one that implements state_dict / load_state_dict
    assert not any("not resumable" in w for w in our_warnings)
    # both resume exactly the same: the position is the sampler's
    for name in ("mean", "var", "count", "seen"):
        assert torch.equal(getattr(plain.stats, name), getattr(ours.stats, name)), name
    assert int(ours.stats.count.sum()) == 96 + 2 * 48
