"""Every ```python block of README.md and docs/inbatch.md runs as written, on tiny stand-ins for
the user's objects.

Each block runs in a fresh namespace holding what a reader's script has before it: ``torch``, a
``model`` and its optimizer ``opt``, a ``train_set``, ``epochs``, and the quickstart's names
(``F``, ``DataLoader``, ``DynamicPruningSampler``, a ``sampler`` and its ``loader``). Three
blocks need more than ``exec``:

* the Lightning block defines ``training_step`` for the user's LightningModule: the test puts it
  into a tiny module and fits it with the block's own ``trainer`` and ``loader``;
* the distributed block is written for ``torchrun`` with NCCL on GPUs: the test runs it in a
  one-process ``gloo`` group on the CPU, with exactly three textual substitutions ("nccl" ->
  "gloo", ``model.cuda(local_rank)`` -> ``model``, ``device_ids=[local_rank]`` ->
  ``device_ids=None``) and ``LOCAL_RANK=0`` in the environment, so the rest runs as written;
* the checkpoint block runs twice, from scratch and resumed from the file the first run saved;
* the Hugging Face block trains a tiny BERT built from a config with the user's ``args``.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from dynaprune import DynamicPruningSampler

ROOT = Path(__file__).resolve().parents[1]
# the README and the in-batch page it sends users to
PAGES = (ROOT / "README.md", ROOT / "docs" / "inbatch.md")
BLOCKS = [
    block
    for page in PAGES
    for block in re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.DOTALL)
]
N, FEATURES, CLASSES, EPOCHS = 64, 8, 3, 2


def _namespace(**extra: Any) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(N, FEATURES, generator=gen)
    train_set = TensorDataset(x, torch.randint(0, CLASSES, (N,), generator=gen))

    def make_model() -> torch.nn.Module:
        return torch.nn.Linear(FEATURES, CLASSES)

    model = make_model()
    sampler = DynamicPruningSampler(train_set, keep_ratio=0.5, seed=0)
    ns: dict[str, Any] = {
        "torch": torch,
        "F": F,
        "DataLoader": DataLoader,
        "DynamicPruningSampler": DynamicPruningSampler,
        "train_set": train_set,
        "epochs": EPOCHS,
        "model": model,
        "opt": torch.optim.SGD(model.parameters(), lr=0.1),
        "make_model": make_model,
        "score_loader": DataLoader(train_set, batch_size=32),
        "sampler": sampler,
        "loader": DataLoader(train_set, batch_size=256, sampler=sampler),
        "resume_path": None,
    }
    ns.update(extra)
    return ns


def _kind(block: str) -> str:
    if "PruningTrainer" in block:
        return "transformers"
    if "pytorch_lightning.Trainer" in block:
        return "lightning"
    if "init_process_group" in block:
        return "distributed"
    if "def save(" in block:
        return "checkpoint"
    return "plain"


def test_readme_has_the_blocks_this_file_knows() -> None:
    kinds = [_kind(b) for b in BLOCKS]
    assert kinds.count("lightning") == kinds.count("distributed") == 1
    assert kinds.count("checkpoint") == kinds.count("transformers") == 1
    assert len(BLOCKS) >= 7


@pytest.mark.parametrize("number", range(len(BLOCKS)))
def test_readme_block_runs(number: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    block = BLOCKS[number]
    monkeypatch.chdir(tmp_path)  # blocks that save files write them here
    kind = _kind(block)
    if kind == "lightning":
        _run_lightning(block)
    elif kind == "distributed":
        _run_distributed(block, monkeypatch)
    elif kind == "checkpoint":
        _run_checkpoint(block, tmp_path)
    elif kind == "transformers":
        _run_transformers(block, tmp_path)
    else:
        ns = _namespace()
        exec(compile(block, f"README.md block {number}", "exec"), ns)
        sampler = ns["sampler"]
        if "for epoch in range(epochs)" in block:  # the quickstart: every epoch recorded
            assert int(sampler.stats.count.sum()) == EPOCHS * sampler.num_keep
        if "OneCycleLR" in block:
            assert ns["sched"].total_steps == sampler.total_steps(256, epochs=EPOCHS)
        if "InBatchSelector(" in block or "inbatch.rho" in block:  # one epoch, recorded
            assert int(sampler.stats.count.sum()) == sampler.epoch_size(0)


def _run_transformers(block: str, tmp_path: Path) -> None:
    """The Trainer block on a tiny BERT classifier built from a config, with the user's
    ``TrainingArguments`` as ``args`` (2 epochs, CPU, no reports)."""
    transformers = pytest.importorskip("transformers")
    from conftest import TokenData, tiny_hf_model

    train_set = TokenData(32)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"),
        num_train_epochs=EPOCHS,
        per_device_train_batch_size=8,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
    )
    ns = _namespace(train_set=train_set, model=tiny_hf_model(), args=args)
    exec(compile(block, "README.md Trainer block", "exec"), ns)
    sampler = ns["sampler"]
    assert int(sampler.stats.count.sum()) == EPOCHS * sampler.num_keep


def _run_lightning(block: str) -> None:
    pl: Any = pytest.importorskip("pytorch_lightning")
    ns = _namespace()
    exec(compile(block, "README.md Lightning block", "exec"), ns)

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Linear(FEATURES, CLASSES)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

        training_step = ns["training_step"]

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    trainer = ns["trainer"]
    trainer.fit_loop.max_epochs = EPOCHS  # the block's 30 epochs, shortened
    trainer.fit(Module(), ns["loader"])
    sampler = ns["loader"].sampler
    assert int(sampler.stats.count.sum()) == EPOCHS * sampler.num_keep


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_distributed(block: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available")
    subs = {
        '"nccl"': '"gloo"',
        "model.cuda(local_rank)": "model",
        "device_ids=[local_rank]": "device_ids=None",
    }
    for old, new in subs.items():
        assert old in block, old
        block = block.replace(old, new)
    for key, value in {
        "LOCAL_RANK": "0",
        "RANK": "0",
        "WORLD_SIZE": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
    }.items():
        monkeypatch.setenv(key, value)
    ns = _namespace()
    try:
        exec(compile(block, "README.md distributed block", "exec"), ns)
        assert torch.distributed.get_world_size() == 1
        assert (ns["sampler"].num_replicas, ns["sampler"].rank) == (1, 0)
        assert isinstance(ns["model"], torch.nn.parallel.DistributedDataParallel)
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _run_checkpoint(block: str, tmp_path: Path) -> None:
    code = compile(block, "README.md checkpoint block", "exec")
    first = _namespace()
    exec(code, first)
    assert (tmp_path / "last.pt").is_file()
    saved = torch.load(tmp_path / "last.pt", weights_only=False)["sampler"]
    assert saved["epoch"] == EPOCHS - 1
    resumed = _namespace(resume_path="last.pt")
    exec(code, resumed)
    # Resumed at the end of the last epoch: the statistics are the first run's.
    assert torch.equal(resumed["sampler"].stats.count, first["sampler"].stats.count)
    assert torch.equal(resumed["sampler"].stats.mean, first["sampler"].stats.mean)
