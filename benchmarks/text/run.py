"""SST-2 through the Hugging Face Trainer path: does loss-driven selection pay on text?

From the repository root::

    python benchmarks/text/run.py --out results/sst2 --data-root ../shared/data/sst2 \
        --epochs 3 --keep-ratios 0.5,0.3 --seeds 0,1,2         # the grid (hours on a CPU)
    python benchmarks/text/run.py --out results/sst2-smoke --train-subset 512 \
        --dev-subset 128 --epochs 2 --seeds 0                  # a smoke test, about a minute
    python benchmarks/text/run.py --out results/sst2 --report-only   # rebuild the summary

Every run trains a small BERT-style classifier from a config (:mod:`benchmarks.text.sst2`) with
:class:`~dynaprune.integrations.transformers.PruningTrainer`: ``full`` (all phrases every
epoch), ``full-same-budget`` (all phrases for exactly as many optimizer steps as a pruned run at
that keep ratio: the full-data curve), and each policy at each keep ratio, paired by seed (the
same initialisation and tokenizer). Accuracy is on the 872 dev sentences after every epoch;
training seconds exclude that evaluation, as in the image benchmark (``benchmarks/grid``),
whose files this writes: ``runs.csv`` and ``curves.csv`` (appended run by run, so an
interrupted grid keeps what it finished and continues), ``summary.csv``, ``summary.md``,
``config.json``, ``environment.json`` and ``versions.txt``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    _ROOT = str(Path(__file__).resolve().parents[2])
    if _ROOT not in sys.path:
        sys.path.append(_ROOT)

import torch
from transformers import TrainerCallback

from benchmarks.environment import collect_environment, write_environment
from benchmarks.grid.report import append_run, load_results, summarize, write_summary
from benchmarks.grid.runs import RunSpec
from benchmarks.grid.train import (
    PRESSURE_WARNING,
    EpochRecord,
    RunResult,
    _cpu_stall_microseconds,
)
from benchmarks.text.sst2 import (
    ModelConfig,
    TextSet,
    accuracy,
    build_model,
    collate,
    load_sst2,
)
from dynaprune import DynamicPruningSampler

__all__ = ["METHODS", "build_grid", "main", "parse_args"]

METHODS = ("full", "full-same-budget", "uniform", "ucb", "epsilon_greedy")
POLICIES = ("uniform", "ucb", "epsilon_greedy")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--data-root", type=Path, default=Path("../shared/data/sst2"))
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--keep-ratios", default="0.5,0.3")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup-ratio", type=float, default=0.06)
    p.add_argument("--train-subset", type=int, default=None, help="first N training phrases")
    p.add_argument("--dev-subset", type=int, default=None, help="first N dev sentences")
    p.add_argument("--target-drop", type=float, default=1.0, help="points below full's accuracy")
    p.add_argument("--report-only", action="store_true", help="rebuild the summary only")
    for field, value in asdict(ModelConfig()).items():
        p.add_argument(f"--{field.replace('_', '-')}", type=type(value), default=value)
    args = p.parse_args(argv)
    unknown = set(args.methods.split(",")) - set(METHODS)
    if unknown:
        p.error(f"unknown methods {sorted(unknown)}; choose from {', '.join(METHODS)}")
    return args


def model_config(args: argparse.Namespace) -> ModelConfig:
    return ModelConfig(**{f: getattr(args, f) for f in asdict(ModelConfig())})


def build_grid(args: argparse.Namespace, num_samples: int) -> list[RunSpec]:
    """The runs, seed by seed, so that a partial result covers whole seeds."""
    methods = args.methods.split(",")
    keeps = [float(k) for k in args.keep_ratios.split(",")]
    grid: list[RunSpec] = []
    for seed in (int(s) for s in args.seeds.split(",")):
        if "full" in methods:
            grid.append(RunSpec("full", 1.0, seed, args.epochs))
        for keep in keeps:
            if "full-same-budget" in methods:
                pruned = DynamicPruningSampler(num_samples, keep, seed=seed)
                budget = pruned.total_steps(args.batch_size, epochs=args.epochs)
                per_epoch = math.ceil(num_samples / args.batch_size)
                epochs = math.ceil(budget / per_epoch)
                grid.append(RunSpec("full-same-budget", keep, seed, epochs, budget))
            grid += [RunSpec(p, keep, seed, args.epochs) for p in POLICIES if p in methods]
    return grid


def _done(out: Path) -> set[tuple[str, float, int]]:
    if not (out / "runs.csv").exists():
        return set()
    return {(r.spec.method, r.spec.keep_ratio, r.spec.seed) for r in load_results(out)}


def train_run(spec: RunSpec, train: TextSet, dev: TextSet, args: argparse.Namespace) -> RunResult:
    """One run through PruningTrainer, timed as the image benchmark times its runs."""
    import transformers

    from dynaprune.integrations.transformers import PruningTrainer

    keep = spec.keep_ratio if spec.method in POLICIES else 1.0
    policy = spec.method if spec.method in POLICIES else "uniform"
    sampler = DynamicPruningSampler(len(train), keep, policy, seed=spec.seed)
    model = build_model(model_config(args), train.vocab_size, spec.seed)
    clock = _Clock(spec, sampler, dev)
    trainer_args = transformers.TrainingArguments(
        str(args.out / "trainer"),
        num_train_epochs=spec.epochs,
        max_steps=spec.max_steps or -1,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.lr,
        warmup_steps=args.warmup_ratio,  # a float below 1: a share of the steps
        weight_decay=0.01,
        lr_scheduler_type="linear",
        seed=spec.seed,
        use_cpu=not torch.cuda.is_available(),
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="epoch",
        report_to=[],
        disable_tqdm=True,
    )
    trainer = PruningTrainer(
        model=model,
        args=trainer_args,
        train_dataset=train,
        data_collator=collate,
        sampler=sampler,
        callbacks=[clock],
    )
    start = time.perf_counter()
    trainer.train()
    planned = trainer.state.max_steps
    return clock.result(time.perf_counter() - start, planned, trainer.state.global_step)


class _Clock(TrainerCallback):
    """Per-epoch records of a run; training seconds exclude the dev evaluation."""

    def __init__(self, spec: RunSpec, sampler: DynamicPruningSampler, dev: TextSet) -> None:
        self.spec, self.sampler, self.dev = spec, sampler, dev
        self.curve: list[EpochRecord] = []
        self._start = self._paused = 0.0
        self._stall: float | None = None
        self._epoch = 0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._stall = _cpu_stall_microseconds()
        self._start = time.perf_counter()

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        now = time.perf_counter()
        timings = self.sampler.timings
        self.curve.append(
            EpochRecord(
                self.spec.method,
                self.spec.keep_ratio,
                self.spec.seed,
                self._epoch,
                state.global_step,
                int(self.sampler.stats.count.sum()),
                now - self._start - self._paused,
                timings["select_seconds"] + timings["update_seconds"],
                float("nan"),  # set from Trainer's epoch log, which follows this event
                accuracy(kwargs["model"], self.dev),
            )
        )
        kwargs["model"].train()
        self._epoch += 1
        self._paused += time.perf_counter() - now

    def on_log(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        logs = kwargs.get("logs") or {}
        if "loss" in logs and self.curve:
            self.curve[-1].train_loss = float(logs["loss"])

    def result(self, total_seconds: float, planned: int, steps: int) -> RunResult:
        warnings = []
        if steps != planned:
            warnings.append(f"took {steps} optimizer steps, the LR schedule planned {planned}")
        wall = time.perf_counter() - self._start
        stall, pressure = _cpu_stall_microseconds(), float("nan")
        if stall is not None and self._stall is not None and wall > 0:
            pressure = (stall - self._stall) / (wall * 1e6)
            if pressure > PRESSURE_WARNING:
                warnings.append(f"CPU pressure {pressure:.0%}: other processes skewed the timings")
        return RunResult(
            self.spec,
            self.curve,
            self.curve[-1].train_seconds,
            total_seconds,
            planned,
            warnings,
            pressure,
        )


def write_report(out: Path, args: argparse.Namespace, device: str) -> str:
    results = load_results(out)
    rows = summarize(results, args.target_drop)
    full_acc = next((r["test_acc_mean"] for r in rows if r["method"] == "full"), float("nan"))
    cfg = model_config(args)
    seeds = len({r.spec.seed for r in results})
    header = (
        f"## dynaprune text benchmark `{out.name}`: SST-2 ({len(results)} runs), BERT "
        f"{cfg.layers}x{cfg.hidden_size} from scratch, {args.epochs} epochs, {seeds} seed(s), "
        f"{device}, transformers Trainer (PruningTrainer)"
    )
    return write_summary(out, rows, full_acc - args.target_drop, header)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.report_only:
        print(write_report(args.out, args, device))
        return 0
    import transformers

    transformers.logging.set_verbosity_error()
    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    (args.out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    env = collect_environment(torch.device(device))
    for package in ("transformers", "accelerate", "tokenizers"):
        env["versions"][package] = getattr(__import__(package), "__version__", None)
    write_environment(args.out, env)

    start = time.perf_counter()
    train, dev = load_sst2(args.data_root, model_config(args), args.train_subset, args.dev_subset)
    print(f"data and tokenizer: {len(train)} / {len(dev)} in {time.perf_counter() - start:.1f} s")
    done = _done(args.out)
    for spec in build_grid(args, len(train)):
        if (spec.method, spec.keep_ratio, spec.seed) in done:
            continue
        result = train_run(spec, train, dev, args)
        append_run(args.out, result)
        last = result.curve[-1]
        print(
            f"{spec.label} seed {spec.seed}: {last.test_acc:.2f}% after {last.steps} steps, "
            f"{last.samples} samples, {result.train_seconds:.1f} s"
        )
    print(write_report(args.out, args, device))
    return 0


if __name__ == "__main__":
    sys.exit(main())
