"""What every run shares (model, sampler, loader, optimizer, LR schedule, clock); the plain loop.

Training time excludes evaluation: the clock starts when training starts, and the evaluation after
each epoch is timed and subtracted. Time spent inside dynaprune comes from ``sampler.timings``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmarks.grid.data import DataBundle
from benchmarks.grid.factories import LossFn, UserData, make_loss, user_loader, user_model
from benchmarks.grid.loaders import DeviceLoader, make_dataloader
from benchmarks.grid.models import build_model
from benchmarks.grid.runs import RunSpec, make_sampler
from dynaprune.inbatch import InBatchSelector

__all__ = [
    "EpochRecord",
    "Run",
    "RunClock",
    "RunResult",
    "evaluate",
    "lr_factor",
    "make_optimizer",
    "make_scheduler",
    "prepare_run",
    "train_plain",
]


@dataclass
class EpochRecord:
    """One point of a training curve; times are cumulative seconds since training started."""

    method: str
    keep_ratio: float
    seed: int
    epoch: int
    steps: int
    samples: int
    train_seconds: float
    dynaprune_seconds: float
    train_loss: float
    test_acc: float


@dataclass
class RunResult:
    """Final numbers of one run; accuracies in percent."""

    spec: RunSpec
    curve: list[EpochRecord]
    train_seconds: float
    total_seconds: float
    planned_steps: int
    warnings: list[str] = field(default_factory=list)
    cpu_pressure: float = float("nan")  # share of the run other tasks kept runnable ones waiting
    scoring_seconds: float = 0.0  # a static method's scoring run (in total_seconds too)


@dataclass
class Run:
    """Everything a training loop needs for one :class:`RunSpec`."""

    spec: RunSpec
    model: nn.Module
    sampler: Any
    loader: Any
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    planned_steps: int
    device: torch.device
    amp: bool
    loss_fn: LossFn  # per-sample losses (B,) from (logits, targets)
    channels_last: bool
    drop_last: bool
    selector: InBatchSelector | None = None  # in-batch methods: which rows to back-propagate
    irreducible: torch.Tensor | None = None  # per-sample irreducible losses, on the device


def lr_factor(schedule: str, warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0 - progress if schedule == "linear" else 1.0

    return factor


def make_optimizer(params: Any, train: dict[str, Any]) -> torch.optim.Optimizer:
    """The optimizer of the ``train`` config section (SGD with Nesterov momentum, or AdamW)."""
    if train["optimizer"] == "sgd":
        return torch.optim.SGD(
            params,
            lr=train["lr"],
            momentum=train["momentum"],
            nesterov=train["nesterov"] and train["momentum"] > 0,
            weight_decay=train["weight_decay"],
        )
    return torch.optim.AdamW(params, lr=train["lr"], weight_decay=train["weight_decay"])


def make_scheduler(
    optimizer: torch.optim.Optimizer, train: dict[str, Any], total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """The ``train`` section's LR schedule (warm-up, then the decay) over ``total_steps`` steps."""
    warmup = int(train["warmup_fraction"] * total_steps)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_factor(train["schedule"], warmup, total_steps)
    )


def prepare_run(
    spec: RunSpec,
    cfg: dict[str, Any],
    data: DataBundle | UserData,
    device: torch.device,
    policy_object: Any = None,
    irreducible: torch.Tensor | None = None,
) -> Run:
    """Builds model, sampler, loader, optimizer and a schedule over the run's actual step count.

    ``policy_object``, if given, is the sampler's policy instead of the one the method names.
    An in-batch method loads batches of ``batch_size / keep`` samples (its in-batch keep) and
    back-propagates ``batch_size`` of them, so that it takes as many optimizer steps, of the
    same size, as a pruned run at the same keep ratio; ``irreducible`` feeds its ``rho`` rule.
    """
    train, data_cfg = cfg["train"], cfg["data"]
    # seeds model init and main-process augmentation; the sampler has its own generator
    torch.manual_seed(spec.seed)
    if isinstance(data, UserData):
        model = user_model(cfg).to(device)
    else:
        model = build_model(cfg["model"]["name"], data.image_shape, data.num_classes).to(device)
    channels_last = bool(cfg["model"]["channels_last"])
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    num_classes = getattr(data, "num_classes", None)
    sampler = make_sampler(spec, data.num_train, cfg, policy_object, num_classes)
    size, drop_last = train["batch_size"], train["drop_last"]
    rule = spec.parsed.inbatch_rule if spec.pruned else None
    selector = None
    if rule is not None:
        keep = spec.parsed.keeps(spec.keep_ratio)[1]
        selector = InBatchSelector(rule, keep, seed=spec.seed)
        size = round(size / keep)
    pin = device.type == "cuda"
    if isinstance(data, UserData):
        loader: Any = user_loader(data, data_cfg, sampler, size, drop_last, spec.seed, pin)
    elif data_cfg["loader"] == "device":
        loader = DeviceLoader(
            data, sampler, size, device, data_cfg["augment"], spec.seed, drop_last, channels_last
        )
    else:
        loader = make_dataloader(data, data_cfg, sampler, size, drop_last, spec.seed, pin)
    planned = sampler.total_steps(batch_size=size, drop_last=drop_last, epochs=spec.epochs)
    if spec.max_steps is not None:
        planned = min(planned, spec.max_steps)
    optimizer = make_optimizer(model.parameters(), train)
    scheduler = make_scheduler(optimizer, train, planned)
    return Run(
        spec,
        model,
        sampler,
        loader,
        optimizer,
        scheduler,
        planned,
        device,
        train["amp"] == "bf16",
        make_loss(train),
        channels_last,
        drop_last,
        selector,
        None if irreducible is None else irreducible.to(device),
    )


def autocast(run: Run) -> Any:
    return torch.autocast(run.device.type, dtype=torch.bfloat16) if run.amp else nullcontext()


@torch.no_grad()
def evaluate(run: Run, test_x: torch.Tensor, test_y: torch.Tensor, batch_size: int) -> float:
    """Top-1 accuracy (%) on normalised, device-resident test tensors; restores train mode."""
    run.model.eval()
    correct = torch.zeros((), dtype=torch.long, device=run.device)
    with autocast(run):
        for x, y in zip(test_x.split(batch_size), test_y.split(batch_size), strict=True):
            if run.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            correct += (run.model(x).argmax(1) == y).sum()
    run.model.train()
    return 100.0 * correct.item() / len(test_y)


PRESSURE_WARNING = 0.2  # a DataLoader worker on a 2-core machine alone causes ~15%


def _cpu_stall_microseconds() -> float | None:
    """Linux pressure stall information: total time some runnable task waited for a CPU."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        return float(line.rsplit("total=", 1)[1])
    except (OSError, IndexError, ValueError):
        return None


class RunClock:
    """Times training (evaluation excluded) and records one :class:`EpochRecord` per epoch.

    Both loops call :meth:`start` once, :meth:`batch` after every optimizer step and
    :meth:`end_epoch` after every epoch; ``on_epoch`` receives each record (for live progress).
    """

    def __init__(
        self,
        run: Run,
        test: tuple[torch.Tensor, torch.Tensor],
        eval_batch_size: int,
        on_epoch: Callable[[EpochRecord], None] | None = None,
        eval_every: int = 1,
    ) -> None:
        self.run, self.test, self.eval_batch_size, self.on_epoch = (
            run,
            test,
            eval_batch_size,
            on_epoch,
        )
        self.eval_every = eval_every
        self.curve: list[EpochRecord] = []
        self.warnings: list[str] = []
        self.steps = self.samples = self._epoch_samples = 0
        self._loss_sum = torch.zeros((), device=run.device)
        self._start = self._eval_seconds = 0.0
        self._dynaprune_start = 0.0
        self._stall_start: float | None = None

    def _sync(self) -> None:
        if self.run.device.type == "cuda":
            torch.cuda.synchronize(self.run.device)

    def dynaprune_seconds(self) -> float:
        timings = getattr(self.run.sampler, "timings", None)
        return sum(timings.values()) if timings else float("nan")

    def start(self) -> None:
        self._sync()
        self._dynaprune_start = self.dynaprune_seconds()
        self._stall_start = _cpu_stall_microseconds()
        self._start = time.perf_counter()

    def train_seconds(self) -> float:
        return time.perf_counter() - self._start - self._eval_seconds

    def batch(self, sample_losses: torch.Tensor) -> None:
        self.steps += 1
        self._epoch_samples += sample_losses.shape[0]
        self._loss_sum += sample_losses.detach().float().sum()

    def end_epoch(self, epoch: int) -> EpochRecord:
        self._sync()
        train_seconds = self.train_seconds()
        eval_start = time.perf_counter()
        expected = self.run.sampler.epoch_length(epoch)
        cut_short = self.run.spec.max_steps is not None and self.steps >= self.run.spec.max_steps
        last = cut_short or epoch == self.run.spec.epochs - 1
        acc = float("nan")  # not evaluated after this epoch
        if last or (epoch + 1) % self.eval_every == 0:
            acc = evaluate(self.run, *self.test, self.eval_batch_size)
        if self._epoch_samples != expected and not cut_short and not self.run.drop_last:
            self.warnings.append(
                f"epoch {epoch}: trained on {self._epoch_samples} samples, "
                f"the sampler planned {expected}"
            )
        self.samples += self._epoch_samples
        record = EpochRecord(
            self.run.spec.method,
            self.run.spec.keep_ratio,
            self.run.spec.seed,
            epoch,
            self.steps,
            self.samples,
            train_seconds,
            self.dynaprune_seconds() - self._dynaprune_start,
            self._loss_sum.item() / max(1, self._epoch_samples),
            acc,
        )
        self._epoch_samples = 0
        self._loss_sum.zero_()
        self.curve.append(record)
        self._eval_seconds += time.perf_counter() - eval_start
        if self.on_epoch is not None:
            self.on_epoch(record)
        return record

    def result(self, total_seconds: float, scoring_seconds: float = 0.0) -> RunResult:
        if self.steps != self.run.planned_steps:
            self.warnings.append(
                f"took {self.steps} optimizer steps, "
                f"the LR schedule planned {self.run.planned_steps}"
            )
        train_seconds = self.curve[-1].train_seconds if self.curve else float("nan")
        stall_end, wall = _cpu_stall_microseconds(), time.perf_counter() - self._start
        pressure = float("nan")
        if stall_end is not None and self._stall_start is not None and wall > 0:
            pressure = (stall_end - self._stall_start) / (wall * 1e6)
            if pressure > PRESSURE_WARNING:
                self.warnings.append(
                    f"CPU pressure {pressure:.0%}: runnable tasks waited for a CPU, so other "
                    "processes (or too many threads) skewed this run's timings"
                )
        return RunResult(
            self.run.spec,
            self.curve,
            train_seconds,
            total_seconds,
            self.run.planned_steps,
            self.warnings,
            pressure,
            scoring_seconds,
        )


def inbatch_step(
    run: Run, x: torch.Tensor, y: torch.Tensor, *, record: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One in-batch step (``dynaprune.inbatch``): ``(loss, losses, correct)``.

    A forward pass without gradients (in train mode, as Composer's selective backprop) gives
    every sample of the batch a fresh loss; with ``record`` all of them go to the sampler's
    statistics (the Lightning callback records them itself). The selector picks the rows, and
    only those are forwarded again and back-propagated, with the sampler's loss weights.
    """
    assert run.selector is not None
    with torch.no_grad(), autocast(run):
        logits = run.model(x)
        losses = run.loss_fn(logits, y)
    losses, correct = losses.float(), logits.argmax(1) == y
    il = None
    if run.irreducible is not None:
        il = run.irreducible[run.sampler.batch_indices(losses.shape[0])]
    weights = run.sampler.batch_weights(losses)
    if record:
        needs_correct = run.sampler.policy.needs_correctness
        run.sampler.update(losses, correct=correct if needs_correct else None)
    rows = run.selector.select(losses, il)
    if rows is None:  # an ordinary step on the whole batch
        rows = torch.arange(losses.shape[0], device=losses.device)
    with autocast(run):
        chosen = run.loss_fn(run.model(x[rows]), y[rows])
    return (chosen * weights[rows].to(chosen.dtype)).mean(), losses, correct


def train_plain(run: Run, clock: RunClock) -> None:
    """The plain PyTorch loop: ``set_epoch``, then per batch ``loss = sampler.update(losses)``."""
    run.model.train()
    needs_correct = run.sampler.policy.needs_correctness
    clock.start()
    for epoch in range(run.spec.epochs):
        run.sampler.set_epoch(epoch)
        for x, y in run.loader:
            x = x.to(run.device, non_blocking=True)
            y = y.to(run.device, non_blocking=True)
            if run.channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            if run.selector is not None:
                loss, losses, _ = inbatch_step(run, x, y)
            else:
                with autocast(run):
                    logits = run.model(x)
                    losses = run.loss_fn(logits, y)
                if needs_correct:  # onion counts forgetting events from the batch's predictions
                    loss = run.sampler.update(losses, correct=logits.detach().argmax(1) == y)
                else:
                    loss = run.sampler.update(losses)
            run.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            run.optimizer.step()
            run.scheduler.step()
            clock.batch(losses)
            if clock.steps == run.spec.max_steps:
                break
        clock.end_epoch(epoch)
        if clock.steps == run.spec.max_steps:
            break
