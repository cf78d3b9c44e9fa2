"""Runs the grid of one validated config and writes the results folder."""

from __future__ import annotations

import gc
import json
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from benchmarks.environment import collect_environment, write_environment
from benchmarks.grid.data import DataBundle, load_data
from benchmarks.grid.factories import UserData, load_user_data
from benchmarks.grid.figures import plot
from benchmarks.grid.flags import append_flags, flag_quality
from benchmarks.grid.loaders import normalize
from benchmarks.grid.methods import BASELINES
from benchmarks.grid.methods import method as parse
from benchmarks.grid.oracle import ORACLES, oracle_policy
from benchmarks.grid.report import append_run, load_results, summarize, write_summary
from benchmarks.grid.runs import RunSpec, build_grid
from benchmarks.grid.static_scores import StaticScorer
from benchmarks.grid.train import (
    PRESSURE_WARNING,
    EpochRecord,
    RunClock,
    RunResult,
    prepare_run,
    train_plain,
)

__all__ = ["OUTPUT_FILES", "report_only", "resolve_device", "run_benchmark", "write_report"]

OUTPUT_FILES = (
    "config.yaml",
    "environment.json",
    "versions.txt",
    "curves.csv",
    "runs.csv",
    "summary.csv",
    "summary.md",
    "accuracy_vs_time.png",
    "accuracy_vs_keep.png",
    "delta_vs_budget.png",
    "accuracy_vs_cost.png",
)


def resolve_device(name: str) -> torch.device:
    """``auto`` is the GPU when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _prepare_out(out: Path, overwrite: bool) -> None:
    existing = [name for name in OUTPUT_FILES if (out / name).exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"--out {str(out)!r} already holds results ({existing[0]}); "
            "choose another folder or pass --overwrite"
        )
    out.mkdir(parents=True, exist_ok=True)
    for name in existing:
        (out / name).unlink()


def _warm_up(
    cfg: dict[str, Any], data: Any, device: torch.device, test: Any, train_fn: Any
) -> None:
    """Trains a few untimed steps through the same loop before the grid.

    Kernel selection, allocator growth and lazy imports would otherwise be charged to whichever
    run comes first, which is ``full``.
    """
    spec = RunSpec(
        "full", 1.0, cfg["benchmark"]["seeds"][0], 1, max_steps=cfg["benchmark"]["warmup_steps"]
    )
    run = prepare_run(spec, cfg, data, device)
    train_fn(run, RunClock(run, test, cfg["train"]["eval_batch_size"]))


def run_benchmark(
    cfg: dict[str, Any], out: Path, *, progress: bool = True, overwrite: bool = False
) -> list[dict[str, Any]]:
    """Trains every run of ``cfg`` and writes curves, summary, figures and environment into ``out``.

    Returns:
        The summary rows (see :data:`benchmarks.grid.report.SUMMARY_COLUMNS`).
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    _prepare_out(out, overwrite)
    train = cfg["train"]
    if train["threads"] is not None:
        torch.set_num_threads(train["threads"])
    device = resolve_device(train["device"])
    (out / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    write_environment(out, collect_environment(device))

    console = Console(stderr=True, quiet=not progress, soft_wrap=True)
    started = time.perf_counter()
    data: DataBundle | UserData
    if cfg["data"]["factory"] is not None:
        data = load_user_data(cfg["data"])
        test = (data.test_x.to(device), data.test_y.to(device))
        shape = tuple(data.test_x.shape[1:])
    else:
        data = load_data(cfg["data"])
        test = (normalize(data.test_x.to(device), data.mean, data.std), data.test_y.to(device))
        shape = tuple(data.image_shape)
    console.log(
        f"{_data_name(cfg)}: {data.num_train} train / {len(data.test_y)} test samples "
        f"{shape}, loaded in {time.perf_counter() - started:.1f} s, device {device}"
    )
    grid = build_grid(cfg, data.num_train)
    if train["loop"] == "lightning":
        from benchmarks.grid.lightning_loop import train_lightning as train_fn
    else:
        train_fn = train_plain

    if cfg["benchmark"]["warmup_steps"] > 0:
        _warm_up(cfg, data, device, test, train_fn)
        console.log(f"warmed up for {cfg['benchmark']['warmup_steps']} untimed steps")

    scorer = None
    if any(_needs_scoring(spec.method) for spec in grid):
        assert isinstance(data, DataBundle)  # validated: scored methods need built-in data
        scorer = StaticScorer(cfg, data, device)
    results: list[RunResult] = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, disable=not progress) as bar:
        runs_task = bar.add_task("runs", total=len(grid), info="")
        for spec in grid:
            epoch_task = bar.add_task(
                f"  {spec.label} seed {spec.seed}", total=spec.epochs, info=""
            )

            def on_epoch(record: EpochRecord, task: Any = epoch_task) -> None:
                bar.update(
                    task,
                    completed=record.epoch + 1,
                    info=f"acc {record.test_acc:5.2f}%  train {record.train_seconds:6.1f}s",
                )

            policy, scoring = _static_policy(spec, scorer, data, console)
            if spec.pruned and spec.parsed.policy in ORACLES:
                policy = oracle_policy(spec.parsed.policy, getattr(data, "flipped", None))
            irreducible = None
            if spec.pruned and spec.parsed.irreducible is not None:
                policy, irreducible, scoring = _reducible(spec, scorer, console)
            run_start = time.perf_counter()
            run = prepare_run(spec, cfg, data, device, policy, irreducible)
            clock = RunClock(run, test, train["eval_batch_size"], on_epoch, train["eval_every"])
            train_fn(run, clock)
            result = clock.result(time.perf_counter() - run_start + scoring, scoring)
            flipped = getattr(data, "flipped", None)
            if spec.pruned and flipped is not None:  # how well the statistics see the noise
                append_flags(out, spec, flag_quality(run.sampler, flipped))
            del run, clock  # frees the data copies and stops persistent workers before the next run
            gc.collect()
            append_run(out, result)
            results.append(result)
            bar.remove_task(epoch_task)
            bar.update(runs_task, advance=1)
            last = result.curve[-1]
            console.log(
                f"{spec.label:<24} seed {spec.seed}: acc {last.test_acc:6.2f}%  train "
                f"{result.train_seconds:7.1f}s  samples {last.samples:>9,}"
                + (f"  [yellow]{'; '.join(result.warnings)}" if result.warnings else ""),
                markup=True,
            )

    rows = write_report(out, cfg, results, str(device), echo=progress)
    console.log(f"results in {out} ({time.perf_counter() - started:.0f} s in all)")
    return rows


def _static_policy(
    spec: RunSpec, scorer: StaticScorer | None, data: Any, console: Any
) -> tuple[Any, float]:
    """A static method's policy over its scores and the scoring seconds; ``(None, 0)`` else."""
    name = spec.parsed.static if spec.pruned else None
    if scorer is None or name is None:
        return None, 0.0
    from dynaprune import StaticPolicy

    fresh = not scorer.cached(name, spec.seed)
    scores, seconds = scorer.scores(name, spec.seed)
    if fresh:
        console.log(f"{name} seed {spec.seed}: scored in {seconds:.1f} s")
    balanced = scorer.cfg["static"]["class_balanced"]
    policy = StaticPolicy(scores, labels=data.train_y, class_balanced=balanced, seed=spec.seed)
    return policy, seconds


def _needs_scoring(method: str) -> bool:
    return method not in BASELINES and parse(method).scored


def _reducible(
    spec: RunSpec, scorer: StaticScorer | None, console: Any
) -> tuple[Any, torch.Tensor | None, float]:
    """A rho method's ``(epoch-level policy or None, irreducible losses for its in-batch rule or
    None, scoring seconds)``; the irreducible losses are computed once per form and seed."""
    from dynaprune.reducible import ReducibleLossPolicy

    parsed = spec.parsed
    form = parsed.irreducible
    assert scorer is not None and form is not None
    epochs = parsed.irreducible_epochs(scorer.cfg["reducible"]["epochs"])
    fresh = not scorer.cached(scorer.irreducible_key(form, epochs), spec.seed)
    losses, seconds = scorer.irreducible(form, spec.seed, epochs)
    if fresh:
        console.log(
            f"irreducible losses ({form}, {epochs} epochs) seed {spec.seed}: {seconds:.1f} s"
        )
    if not parsed.reducible:  # an in-batch rho after another (or no) policy
        return None, losses, seconds
    # the holdout form trains the target on the half its model did not see: the odd indices
    odd = torch.arange(losses.numel()).remainder(2) == 1 if form == "holdout" else None
    rule = parsed.inbatch
    return ReducibleLossPolicy(losses, candidates=odd), (losses if rule else None), seconds


def write_report(
    out: Path, cfg: dict[str, Any], results: list[RunResult], device: str, echo: bool = False
) -> list[dict[str, Any]]:
    """Writes ``summary.csv``, ``summary.md`` and the figures; returns the summary rows."""
    train, drop = cfg["train"], cfg["benchmark"]["target_drop"]
    rows = summarize(results, drop)
    full_acc = next((r["test_acc_mean"] for r in rows if r["method"] == "full"), float("nan"))
    header = (
        f"## dynaprune benchmark `{cfg['name']}`: {_data_name(cfg)}, "
        f"{_model_name(cfg)}, {train['epochs']} epochs, {len(cfg['benchmark']['seeds'])} "
        f"seed(s), {device}, {train['loop']} loop, {cfg['data']['loader']} loader"
    )
    busy = sum(r.cpu_pressure > PRESSURE_WARNING for r in results)
    notes = (
        f"\n**Warning:** {busy} of {len(results)} runs waited for a CPU more than "
        f"{PRESSURE_WARNING:.0%} of the time (`cpu_pressure` in runs.csv): other processes "
        "competed for the machine, so the timings above are unreliable.",
    )
    markdown = write_summary(out, rows, full_acc - drop, header, notes if busy else ())
    plot(out, results, rows)
    if echo:
        print(markdown)
    return rows


def _data_name(cfg: dict[str, Any]) -> str:
    factory = cfg["data"].get("factory")  # absent from configs saved before factories
    return str(cfg["data"]["dataset"] if factory is None else factory)


def _model_name(cfg: dict[str, Any]) -> str:
    factory = cfg["model"].get("factory")
    return str(cfg["model"]["name"] if factory is None else factory)


def report_only(out: Path) -> list[dict[str, Any]]:
    """Rebuilds summary and figures from the runs already in ``out`` (e.g. an interrupted grid)."""
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    device = json.loads((out / "environment.json").read_text())["device"]
    return write_report(out, cfg, load_results(out), device, echo=True)
