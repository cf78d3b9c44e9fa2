"""PruningTrainer: the DynamicPruningSampler under Hugging Face ``transformers.Trainer``, with
tiny models built from configs on the CPU."""

import inspect
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from conftest import TokenData, hf_args, hf_sample_losses, tiny_hf_model

from dynaprune import DynamicPruningSampler

transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from accelerate.data_loader import BatchSamplerShard  # noqa: E402
from transformers import Trainer  # noqa: E402

from dynaprune.integrations.sample_losses import sample_losses  # noqa: E402
from dynaprune.integrations.transformers import SAMPLER_STATE_NAME, PruningTrainer  # noqa: E402

transformers.logging.set_verbosity_error()


def make_trainer(tmp_path, data, sampler, model=None, **kwargs):
    trainer_kwargs = {
        k: kwargs.pop(k) for k in ("sample_loss", "index_column", "eval_dataset") if k in kwargs
    }
    return PruningTrainer(
        model=model if model is not None else tiny_hf_model(),
        args=hf_args(tmp_path / "out", **kwargs),
        train_dataset=data,
        sampler=sampler,
        **trainer_kwargs,
    )


# ----------------------------------------------------------------- the hooks it overrides
HOOKS = {
    "_get_train_sampler": ["train_dataset"],
    "get_train_dataloader": [],
    "_set_signature_columns_if_needed": [],
    "get_resumed_dataloader": ["dataloader", "num_batches"],
    "set_initial_training_values": ["args", "dataloader"],
    "_init_training_state": [
        "max_steps", "num_update_steps_per_epoch", "num_train_epochs",
        "resume_from_checkpoint", "trial",
    ],
    "_run_epoch": [
        "model", "epoch", "train_dataloader", "steps_in_epoch", "num_update_steps_per_epoch",
        "trial", "ignore_keys_for_eval", "start_time", "resume_from_checkpoint",
        "epochs_trained", "steps_trained_in_current_epoch",
    ],
    "training_step": ["model", "inputs", "num_items_in_batch"],
    "compute_loss": ["model", "inputs", "return_outputs", "num_items_in_batch"],
    "prediction_step": ["model", "inputs", "prediction_loss_only", "ignore_keys"],
    "_save_checkpoint": ["model", "trial"],
    "train": ["resume_from_checkpoint", "trial", "ignore_keys_for_eval"],
}  # fmt: skip


@pytest.mark.parametrize("hook", HOOKS)
def test_the_trainer_hooks_it_overrides_keep_their_signatures(hook):
    # A change to one of these in transformers must fail here, not silently in training.
    params = list(inspect.signature(getattr(Trainer, hook)).parameters)[1:]
    assert [p for p in params if p != "kwargs"] == HOOKS[hook]


def test_the_attributes_it_relies_on_exist(tmp_path):
    assert Trainer.loss_is_scaled_for_ga is None  # documented: subclasses computing a loss set it
    shard = BatchSamplerShard(torch.utils.data.BatchSampler(range(8), 2, False), 2, 1)
    assert (shard.num_processes, shard.process_index, shard.split_batches) == (2, 1, False)
    assert shard.even_batches
    trainer = make_trainer(tmp_path, TokenData(8), DynamicPruningSampler(8, 0.5))
    trainer._set_signature_columns_if_needed()
    assert "index" in trainer._signature_columns and "junk" not in trainer._signature_columns


# ----------------------------------------------------------------- per-sample losses
def test_sample_losses_reduce_to_the_models_own_loss():
    data = TokenData(6)
    bert = tiny_hf_model()
    out = bert(input_ids=data.x, labels=data.y)
    sums, counts = sample_losses(out.logits, data.y, "sequence")
    assert torch.allclose(sums.mean(), out.loss) and torch.equal(counts, torch.ones(6))

    lm_data = TokenData(6, lm=True)
    gpt = tiny_hf_model("lm")
    out = gpt(input_ids=lm_data.x, labels=lm_data.y)
    sums, counts = sample_losses(out.logits, lm_data.y, "causal_lm")
    assert counts.tolist() == [7, 4, 7, 4, 7, 4]  # shifted; odd samples end in 3 x -100
    assert torch.allclose(sums.sum() / counts.sum(), out.loss)
    items = int(counts.sum())
    out = gpt(input_ids=lm_data.x, labels=lm_data.y, num_items_in_batch=items + 5)
    assert torch.allclose(sums.sum() / (items + 5), out.loss)


@pytest.mark.parametrize("problem", ["regression", "multi_label_classification"])
def test_sample_losses_follow_the_classifiers_problem_type(problem):
    model = tiny_hf_model()
    model.config.problem_type = problem
    x = TokenData(5).x
    labels = torch.rand(5, 2)  # two regression targets, or two labels
    out = model(input_ids=x, labels=labels)
    sums, _ = sample_losses(out.logits, labels, "sequence", problem_type=problem)
    assert torch.allclose(sums.mean(), out.loss)


def test_sample_losses_explain_bad_arguments():
    with pytest.raises(ValueError, match="kind must be one of"):
        sample_losses(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), "tokens")
    with pytest.raises(ValueError, match="for token labels use"):
        sample_losses(torch.zeros(2, 4, 3), torch.zeros(2, 4, dtype=torch.long), "sequence")
    with pytest.raises(ValueError, match="need logits"):
        sample_losses(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), "token")


# ----------------------------------------------------------------- training
@pytest.mark.parametrize("indexed", [True, False], ids=["index_column", "by_position"])
def test_each_sample_loss_is_recorded_under_its_index_from_the_training_forward(tmp_path, indexed):
    # learning_rate=0: the model stays as built, so every sample's loss is known beforehand.
    data = TokenData(30, index=indexed)
    model = tiny_hf_model()
    expected = hf_sample_losses(model, data)
    sampler = DynamicPruningSampler(data, 0.5, "ucb", warmup_epochs=1)
    trainer = make_trainer(
        tmp_path,
        data,
        sampler,
        model,
        learning_rate=0.0,
        num_train_epochs=3,
        eval_strategy="steps",
        eval_steps=2,
        eval_dataset=TokenData(6),
    )  # fmt: skip  evaluation's compute_loss calls record nothing
    trainer.train()
    stats = sampler.stats
    assert stats.count.sum().item() == 30 + 15 + 15
    assert torch.allclose(stats.mean, expected, atol=1e-5)

    # The same run fed by a plain loop: the same subsets and counts.
    reference = DynamicPruningSampler(30, 0.5, "ucb", warmup_epochs=1)
    for epoch in range(3):
        reference.set_epoch(epoch)
        order = torch.tensor(list(reference))
        reference.update(expected[order])
    assert torch.equal(stats.count, reference.stats.count)
    assert torch.equal(stats.seen, reference.stats.seen)


def test_max_steps_and_the_schedule_follow_the_pruned_epochs(tmp_path):
    data = TokenData(40)
    # Warm-up, two pruned epochs of 20, one annealing epoch: 10 + 5 + 5 + 10 batches of 4.
    sampler = DynamicPruningSampler(data, 0.5, warmup_epochs=1, anneal_epochs=1, total_epochs=4)
    trainer = make_trainer(
        tmp_path, data, sampler, num_train_epochs=4, gradient_accumulation_steps=2
    )
    result = trainer.train()
    expected = sampler.total_steps(4, epochs=4, accumulate_grad_batches=2)
    assert expected == 5 + 3 + 3 + 5
    assert result.global_step == trainer.state.max_steps == expected
    assert trainer.lr_scheduler.get_last_lr()[0] == 0.0  # the linear decay ended exactly
    assert trainer.state.epoch == 4.0
    assert sampler.stats.count.sum().item() == 40 + 20 + 20 + 40
    kept = [
        h["dynaprune/kept_fraction"]
        for h in trainer.state.log_history
        if "dynaprune/kept_fraction" in h
    ]
    assert kept == [1.0, 0.5, 0.5, 1.0]  # logged once per epoch


def test_max_steps_asks_for_as_many_epochs_as_it_needs(tmp_path):
    data = TokenData(40)
    sampler = DynamicPruningSampler(data, 0.5, warmup_epochs=1)
    trainer = make_trainer(tmp_path, data, sampler, max_steps=14)  # 10 + 5: two epochs
    assert trainer.train().global_step == 14
    assert sampler.epoch == 1 and sampler.stats.count.sum().item() == 40 + 16


def test_set_epoch_several_times_per_epoch_is_harmless(tmp_path):
    data = TokenData(24)
    sampler = DynamicPruningSampler(data, 0.5, "ucb")
    loader = make_trainer(tmp_path, data, sampler).get_train_dataloader()
    loader.set_epoch(0)
    first = [b["index"].tolist() for b in loader]  # Accelerate sets the epoch again here
    for _ in range(3):
        loader.set_epoch(0)
        sampler.set_epoch(0)
    assert [b["index"].tolist() for b in loader] == first


def test_reweighting_policies_weight_the_training_loss(tmp_path):
    data = TokenData(24)
    sampler = DynamicPruningSampler(data, 0.5, "importance")
    trainer = make_trainer(tmp_path, data, sampler, gradient_accumulation_steps=2)
    # Statistics with spread, so that the weights of epoch 1 differ from one.
    sampler.set_epoch(0)
    list(sampler)
    sampler.update(torch.arange(1.0, 13.0) ** 2)
    loader = trainer.get_train_dataloader()
    loader.set_epoch(1)
    batch = next(iter(loader))
    model = trainer.model
    with torch.no_grad():
        losses = torch.nn.functional.cross_entropy(
            model(input_ids=batch["input_ids"]).logits, batch["labels"], reduction="none"
        )
    weights = sampler.batch_weights(losses)
    assert not torch.allclose(weights, torch.ones_like(weights))
    trainer.current_gradient_accumulation_steps = 2
    loss = trainer.training_step(model, batch)
    assert torch.allclose(loss, (weights * losses).mean() / 2)
    assert sampler.stats.count.sum().item() == 12 + 4


def test_a_causal_lm_loss_is_the_models_own_with_num_items_in_batch(tmp_path):
    data = TokenData(16, lm=True)
    sampler = DynamicPruningSampler(data, 1.0)
    trainer = make_trainer(tmp_path, data, sampler, model=tiny_hf_model("lm"))
    loader = trainer.get_train_dataloader()
    batch = next(iter(loader))
    items = torch.tensor(40)  # as Trainer counts over the whole accumulated batch
    model = trainer.model
    theirs = Trainer.training_step(trainer, model, dict(batch), items)
    ours = trainer.training_step(model, dict(batch), items)
    assert torch.allclose(ours, theirs)
    trained = sampler.stats.count.nonzero().view(-1)
    assert trained.tolist() == sorted(batch["index"].tolist())
    expected = hf_sample_losses(model, data)[trained]
    assert torch.allclose(sampler.stats.mean[trained], expected, atol=1e-5)


def test_a_causal_lm_trains_through_trainer(tmp_path):
    data = TokenData(16, lm=True)
    sampler = DynamicPruningSampler(data, 0.5, "epsilon_greedy", warmup_epochs=1)
    trainer = make_trainer(
        tmp_path, data, sampler, model=tiny_hf_model("lm"), gradient_accumulation_steps=2
    )
    assert trainer.train().global_step == sampler.total_steps(
        4, epochs=3, accumulate_grad_batches=2
    )
    assert sampler.stats.count.sum().item() == 16 + 8 + 8


def test_the_index_column_survives_and_never_reaches_the_model(tmp_path):
    data = TokenData(12)
    trainer = make_trainer(tmp_path, data, DynamicPruningSampler(data, 0.5))
    batch = next(iter(trainer.get_train_dataloader()))
    assert set(batch) == {"input_ids", "labels", "index"}  # "junk" removed, "index" kept
    trainer.eval_dataset = data
    assert "eval_loss" in trainer.evaluate()  # prediction_step drops the index


def test_wrong_indices_are_refused(tmp_path):
    class Shifted(TokenData):
        def __getitem__(self, i):
            return {**super().__getitem__(i), "index": (i + 1) % len(self)}

    data = Shifted(12)
    trainer = make_trainer(tmp_path, data, DynamicPruningSampler(data, 0.5, seed=3))
    with pytest.raises(ValueError, match="subset"):
        trainer.train()


# ----------------------------------------------------------------- checkpoints
def _run(tmp_path, resume=None, **kwargs):
    data = TokenData(20)
    sampler = DynamicPruningSampler(data, 0.5, "ucb", warmup_epochs=1)
    trainer = make_trainer(
        tmp_path, data, sampler, num_train_epochs=3, save_strategy="steps", save_steps=1,
        gradient_accumulation_steps=2, **kwargs,
    )  # fmt: skip
    trainer.train(resume_from_checkpoint=resume)
    return sampler, trainer


@pytest.mark.parametrize("step", [2, 3, 4], ids=["mid_warmup", "epoch_end", "mid_pruned"])
def test_resuming_from_trainers_checkpoint_restores_the_sampler_exactly(tmp_path, step):
    # 20 samples, batches of 4, two per step: 3 steps in the warm-up epoch, 2 in each pruned one.
    full, _ = _run(tmp_path)
    checkpoint = tmp_path / "out" / f"checkpoint-{step}"
    assert (checkpoint / SAMPLER_STATE_NAME).is_file()
    saved = torch.load(checkpoint / SAMPLER_STATE_NAME)
    resumed, trainer = _run(tmp_path, resume=str(checkpoint))
    assert trainer.state.global_step == 7
    for name in ("count", "seen"):
        assert torch.equal(getattr(resumed.stats, name), getattr(full.stats, name)), name
    for name in ("mean", "var"):
        assert torch.allclose(getattr(resumed.stats, name), getattr(full.stats, name)), name
    assert saved["stats"]["count"].sum().item() == {2: 16, 3: 20, 4: 28}[step]


def test_resuming_from_a_checkpoint_without_sampler_state_is_refused(tmp_path):
    (tmp_path / "plain").mkdir()
    data = TokenData(8)
    trainer = make_trainer(tmp_path, data, DynamicPruningSampler(data, 0.5))
    with pytest.raises(ValueError, match="not saved by a PruningTrainer"):
        trainer.train(resume_from_checkpoint=str(tmp_path / "plain"))


# ----------------------------------------------------------------- arguments
def test_bad_arguments_are_explained(tmp_path):
    data = TokenData(8)
    sampler = DynamicPruningSampler(data, 0.5)
    with pytest.raises(TypeError, match="must be a DynamicPruningSampler"):
        make_trainer(tmp_path, data, None)
    with pytest.raises(TypeError, match="index_column must be a str or None, got 3"):
        make_trainer(tmp_path, data, sampler, index_column=3)
    with pytest.raises(ValueError, match="sample_loss must be"):
        make_trainer(tmp_path, data, sampler, sample_loss="tokens")
    with pytest.raises(ValueError, match="covers 10 samples but train_dataset has 8"):
        make_trainer(tmp_path, data, DynamicPruningSampler(10, 0.5))
    with pytest.raises(ValueError, match="needs per-sample correctness"):
        make_trainer(tmp_path, data, DynamicPruningSampler(8, 0.5, "onion"), sample_loss="token")
    with pytest.raises(ValueError, match="train_sampling_strategy"):
        make_trainer(tmp_path, data, sampler, train_sampling_strategy="group_by_length")
    built_for_4 = DynamicPruningSampler(data, 0.5, anneal_epochs=1, total_epochs=4)
    with pytest.raises(ValueError, match="total_epochs=4 but num_train_epochs=3"):
        make_trainer(tmp_path, data, built_for_4).train()
    with pytest.raises(ValueError, match="whole number of epochs"):
        make_trainer(tmp_path, data, sampler, num_train_epochs=1.5).train()


# ----------------------------------------------------------------- two processes
WORLD = 2


def _worker(rank, path, port):
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )  # fmt: skip
    transformers.logging.set_verbosity_error()
    data = TokenData(30)
    model = tiny_hf_model()
    sampler = DynamicPruningSampler(data, 0.5, "ucb", warmup_epochs=1)
    trainer = PruningTrainer(
        model=model,
        args=hf_args(path, learning_rate=0.0, ddp_backend="gloo", num_train_epochs=3),
        train_dataset=data,
        sampler=sampler,
        index_column=None if rank == 1 else "index",  # both ways of matching, one per rank
    )
    assert (sampler.num_replicas, sampler.rank) == (WORLD, rank)
    trainer.train()
    torch.save(
        {"stats": sampler.stats.state_dict(), "steps": trainer.state.global_step},
        f"{path}/rank{rank}.pt",
    )


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # two processes importing transformers: about a minute on 2 busy cores
def test_two_gloo_processes_record_every_loss_under_its_index(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path), _free_port()), nprocs=WORLD, join=True)
    results = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    data = TokenData(30)
    expected = hf_sample_losses(tiny_hf_model(), data)
    reference = DynamicPruningSampler(30, 0.5, "ucb", warmup_epochs=1)
    for epoch in range(3):
        reference.set_epoch(epoch)
        reference.update(expected[torch.tensor(list(reference))])
    # Each rank: 15 samples of the warm-up epoch (4 batches), then 8 of the 15 pruned (2).
    assert results[0]["steps"] == results[1]["steps"] == 4 + 2 + 2
    for name in ("mean", "var", "count", "seen"):
        a, b = (r["stats"][name] for r in results)
        assert torch.equal(a, b), f"{name} differs across ranks"
    stats = results[0]["stats"]
    assert torch.equal(stats["count"], reference.stats.count)
    assert torch.equal(stats["seen"], reference.stats.seen)
    assert torch.allclose(stats["mean"], expected, atol=1e-5)


def test_ignore_data_skip_cannot_resume_in_the_middle_of_an_epoch(tmp_path):
    _run(tmp_path)
    middle = str(tmp_path / "out" / "checkpoint-4")  # mid pruned epoch
    with pytest.raises(ValueError, match="ignore_data_skip=True cannot resume in the middle"):
        _run(tmp_path, resume=middle, ignore_data_skip=True)
    end_of_epoch = str(tmp_path / "out" / "checkpoint-3")
    _, trainer = _run(tmp_path, resume=end_of_epoch, ignore_data_skip=True)
    assert trainer.state.global_step == 7  # at an epoch's end there is nothing to skip


def test_correctness_needs_single_label_classification_labels(tmp_path):
    data = TokenData(8)
    data.y = torch.nn.functional.one_hot(data.y, 2).float()  # multi-label targets
    onion = DynamicPruningSampler(8, 0.5, "onion", warmup_epochs=0)
    trainer = make_trainer(tmp_path, data, onion, sample_loss="sequence")
    with pytest.raises(ValueError, match=r"single-label classification only; got labels of shape"):
        trainer.train()
