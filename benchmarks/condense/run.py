"""Coresets against synthetic sets on one model, one data set and one clock.

    PYTHONPATH=. python benchmarks/condense/run.py --config configs/condense/cifar10-cpu.yaml \\
        --out results/condense --data-root ../shared/data/cifar10-jpeg

For every method (``benchmarks/condense/sets.py``), images per class and seed, the set is built
(timed: ``scoring_seconds``) and ``eval.nets`` fresh ConvNets are trained on it with the
papers' protocol (:func:`dynaprune.condense.train_convnet`: SGD 0.01, momentum 0.9, weight
decay 5e-4, batch 256, lr x0.1 at half the epochs, DSA on every batch) and tested. ``full``
trains the same ConvNet on the whole real pool (``full.epochs``): its training seconds are
the reference of ``speedup_with_scoring`` = full's seconds / (the method's training +
scoring seconds). The ``curves`` section reruns a few methods longer and evaluates them at
checkpoints (``accuracy_vs_iterations.png``). Results: ``runs.csv``, ``curves.csv``,
``summary.csv``, ``summary.md``, the figure, ``config.yaml`` and ``environment.json``.
"""

from __future__ import annotations

import argparse
import copy
import csv
import functools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
import yaml

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.condense.sets import METHODS, SetMaker
from benchmarks.environment import collect_environment, write_environment
from benchmarks.grid.config import DEFAULTS
from benchmarks.grid.data import load_data
from benchmarks.grid.loaders import normalize
from benchmarks.grid.train import PRESSURE_WARNING, _cpu_stall_microseconds
from dynaprune import condense as cd

T = TypeVar("T")

# CIFAR-10, ConvNet, test accuracy (%) at 1 / 10 images per class, as published.
PUBLISHED = {
    "random": (14.4, 26.0),
    "herding": (21.5, 31.6),
    "kcenter": (None, None),
    "forgetting": (13.5, 23.3),
    "condense-dc": (28.3, 44.9),
    "condense-dsa": (28.8, 52.1),
    "condense-dm": (26.0, 48.9),
    "condense-cafe": (30.3, 46.3),
    "condense-idm": (45.6, 58.6),
}
RUN_COLUMNS = (
    "method",
    "ipc",
    "seed",
    "net",
    "images",
    "test_acc",
    "train_seconds",
    "scoring_seconds",
    "cpu_pressure",
    "spec",
)


def _evaluate(
    cfg: dict[str, Any],
    x: torch.Tensor,
    y: torch.Tensor,
    ipc: int,
    seed: int,
    test: tuple[torch.Tensor, torch.Tensor],
    net: int,
) -> tuple[float, float]:
    ev = cfg["eval"]
    start = time.perf_counter()
    model = cd.train_convnet(
        x,
        y,
        epochs=ev["epochs"][ipc],
        lr=ev["lr"],
        batch_size=ev["batch_size"],
        seed=1000 * seed + net,
    )
    seconds = time.perf_counter() - start
    return 100 * cd.accuracy(model, *test), seconds


def _append(path: Path, columns: tuple[str, ...], row: dict[str, Any]) -> None:
    new = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        if new:
            writer.writeheader()
        writer.writerow(row)


def load_config(path: Path, data_root: str | None) -> dict[str, Any]:
    """The config at ``path`` with the data defaults filled in and ``data_root`` applied;
    ``seeds`` (a count, or a list of seeds) is checked."""
    cfg = yaml.safe_load(path.read_text())
    cfg["data"] = {**DEFAULTS["data"], **cfg.get("data", {})}
    if data_root:
        cfg["data"]["root"] = data_root
    seeds = cfg.get("seeds")
    if not (
        (isinstance(seeds, int) and seeds >= 0)
        or (isinstance(seeds, list) and all(isinstance(s, int) and s >= 0 for s in seeds))
    ):
        raise ValueError(f"seeds must be a count >= 0 or a list of seeds >= 0, got {seeds!r}")
    return cfg


def seed_list(cfg: dict[str, Any]) -> list[int]:
    """The config's seeds: ``0 .. seeds - 1`` for a count, else the list itself."""
    seeds = cfg["seeds"]
    return list(range(seeds)) if isinstance(seeds, int) else seeds


def load_pool(cfg: dict[str, Any]) -> tuple[Any, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """``(data, normalised train images, (normalised test images, test labels))``."""
    data = load_data(cfg["data"])
    x = normalize(data.train_x, data.mean, data.std)
    return data, x, (normalize(data.test_x, data.mean, data.std), data.test_y)


def measure(work: Callable[[], T]) -> tuple[T, float, float]:
    """``(work(), seconds, cpu_pressure)``: the share of those seconds this process waited for
    a CPU (NaN where the kernel does not report it)."""
    stall = _cpu_stall_microseconds()
    start = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - start
    after = _cpu_stall_microseconds()
    pressure = (
        (after - stall) / 1e6 / seconds if stall is not None and after is not None else float("nan")
    )
    return result, seconds, pressure


def _spec(cfg: dict[str, Any], method: str, ipc: int) -> str:
    if method.startswith("condense-"):
        args = cfg["condense"][method].get(ipc, {})
        return " ".join(f"{k}={v}" for k, v in args.items()) or "published"
    if method in ("herding", "kcenter", "forgetting"):
        return f"proxy {cfg['static']['proxy_epochs']} epochs"
    return ""


def run(cfg: dict[str, Any], out: Path) -> None:
    torch.set_num_threads(cfg["threads"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    write_environment(out, collect_environment(torch.device("cpu")))
    data, x, test = load_pool(cfg)
    print(f"pool {len(x)} train / {len(test[1])} test images", flush=True)
    maker = SetMaker(cfg, x, data.train_y, data.num_classes)

    def record(method: str, ipc: int, seed: int, sx: Any, sy: Any, seconds: float) -> None:
        for net in range(cfg["eval"]["nets"]):
            (acc, train_s), _, pressure = measure(
                functools.partial(_evaluate, cfg, sx, sy, ipc, seed, test, net)
            )
            _append(
                out / "runs.csv",
                RUN_COLUMNS,
                {
                    "method": method,
                    "ipc": ipc,
                    "seed": seed,
                    "net": net,
                    "images": len(sy),
                    "test_acc": round(acc, 2),
                    "train_seconds": round(train_s, 2),
                    "scoring_seconds": round(seconds, 2),
                    "cpu_pressure": round(pressure, 3),
                    "spec": _spec(cfg, method, ipc),
                },
            )
            print(
                f"{method:<14} ipc {ipc:>2} seed {seed} net {net}: {acc:5.2f}%  set "
                f"{seconds:6.1f}s  train {train_s:5.1f}s",
                flush=True,
            )

    if cfg["full"]["epochs"]:
        start = time.perf_counter()
        model = cd.train_convnet(
            x,
            data.train_y,
            epochs=cfg["full"]["epochs"],
            lr=cfg["eval"]["lr"],
            batch_size=cfg["eval"]["batch_size"],
        )
        seconds = time.perf_counter() - start
        acc = 100 * cd.accuracy(model, *test)
        _append(
            out / "runs.csv",
            RUN_COLUMNS,
            {
                "method": "full",
                "ipc": 0,
                "seed": 0,
                "net": 0,
                "images": len(x),
                "test_acc": round(acc, 2),
                "train_seconds": round(seconds, 2),
                "scoring_seconds": 0,
                "cpu_pressure": float("nan"),
                "spec": f"{cfg['full']['epochs']} epochs",
            },
        )
        print(f"full: {acc:5.2f}% in {seconds:.1f}s", flush=True)
    for ipc in cfg["ipc"]:
        for seed in seed_list(cfg):
            for method in cfg["methods"]:
                sx, sy, seconds = maker.make(method, ipc, seed)
                record(method, ipc, seed, sx, sy, seconds)
    _curves(cfg, maker, test, out)
    write_summary(out)


def _curves(cfg: dict[str, Any], maker: SetMaker, test: Any, out: Path) -> None:
    curves = cfg["curves"]
    for method, spec in curves["methods"].items():
        checkpoints = set(spec["checkpoints"])
        run_cfg = copy.deepcopy(cfg)
        run_cfg["condense"][method] = {curves["ipc"]: spec["args"]}
        clock = {"seconds": 0.0, "last": time.perf_counter()}

        def callback(
            done: int,
            sx: torch.Tensor,
            sy: torch.Tensor,
            method: str = method,
            clock: dict[str, float] = clock,
            checkpoints: set[int] = checkpoints,
        ) -> None:
            clock["seconds"] += time.perf_counter() - clock["last"]
            if done in checkpoints:
                acc, _ = _evaluate(cfg, sx, sy, curves["ipc"], curves["seed"], test, 0)
                _append(
                    out / "curves.csv",
                    ("method", "ipc", "iteration", "seconds", "test_acc"),
                    {
                        "method": method,
                        "ipc": curves["ipc"],
                        "iteration": done,
                        "seconds": round(clock["seconds"], 1),
                        "test_acc": round(acc, 2),
                    },
                )
                print(f"curve {method} it {done}: {acc:5.2f}%", flush=True)
            clock["last"] = time.perf_counter()

        SetMaker(run_cfg, maker.x, maker.y, maker.num_classes).make(
            method, curves["ipc"], curves["seed"], callback
        )


def write_summary(out: Path) -> str:
    """``summary.csv`` / ``summary.md`` from ``runs.csv``, the figure from ``curves.csv``."""
    with (out / "runs.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    full = [float(r["train_seconds"]) for r in rows if r["method"] == "full"]
    full_s = statistics.fmean(full) if full else float("nan")
    groups: dict[tuple[str, int], list[dict[str, str]]] = {}
    for r in rows:
        groups.setdefault((r["method"], int(r["ipc"])), []).append(r)
    order = ["full", *METHODS]
    summary: list[dict[str, Any]] = []
    for (method, ipc), runs in sorted(
        groups.items(),
        key=lambda kv: (kv[0][1], order.index(kv[0][0]) if kv[0][0] in order else len(order)),
    ):
        accs = [float(r["test_acc"]) for r in runs]
        train = statistics.fmean(float(r["train_seconds"]) for r in runs)
        scoring = statistics.fmean(float(r["scoring_seconds"]) for r in runs)
        published = PUBLISHED.get(method, (None, None))
        pub = published[0] if ipc == 1 else published[1] if ipc == 10 else None
        pressure = [float(r["cpu_pressure"]) for r in runs if r["cpu_pressure"] != "nan"]
        summary.append(
            {
                "method": method,
                "ipc": ipc,
                "images": runs[0]["images"],
                "runs": len(runs),
                "test_acc_mean": statistics.fmean(accs),
                "test_acc_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                "published": "" if pub is None else pub,
                "train_seconds_mean": train,
                "scoring_seconds_mean": scoring,
                "speedup_with_scoring": full_s / (train + scoring),
                "cpu_pressure_mean": statistics.fmean(pressure) if pressure else float("nan"),
                "spec": runs[0]["spec"],
            }
        )
    with (out / "summary.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(summary[0]))
        writer.writeheader()
        writer.writerows(summary)
    lines = [
        "| method | ipc | images | test acc (%) | published (%) | set (s) "
        "| train (s) | speedup with scoring | spec |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for s in summary:
        lines.append(
            f"| {s['method']} | {s['ipc']} | {s['images']} | {s['test_acc_mean']:.2f} ± "
            f"{s['test_acc_std']:.2f} (n={s['runs']}) | {s['published']} "
            f"| {s['scoring_seconds_mean']:.1f} | {s['train_seconds_mean']:.1f} "
            f"| {s['speedup_with_scoring']:.2f}x | {s['spec']} |"
        )
    busy = [s for s in summary if s["cpu_pressure_mean"] > PRESSURE_WARNING]
    if busy:
        lines += [
            "",
            f"**Warning:** {len(busy)} of {len(summary)} rows ran while other processes "
            f"competed for the CPU (mean `cpu_pressure` above {PRESSURE_WARNING:.0%}): "
            "the seconds are noisy.",
        ]
    markdown = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(markdown)
    _figure(out)
    print(markdown)
    return markdown


def _figure(out: Path) -> None:
    path = out / "curves.csv"
    if not path.exists():
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with path.open() as handle:
        points = list(csv.DictReader(handle))
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for method in sorted({p["method"] for p in points}):
        mine = [p for p in points if p["method"] == method]
        ax.plot(
            [int(p["iteration"]) for p in mine],
            [float(p["test_acc"]) for p in mine],
            marker="o",
            label=f"{method} (ipc {mine[0]['ipc']})",
        )
    ax.set_xlabel("condensation iterations")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("accuracy vs iterations (reduced spec, 1 seed, 1 eval net)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_iterations.png", dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    if args.report_only:
        write_summary(args.out)
        return
    if args.config is None:
        parser.error("--config is required (unless --report-only)")
    cfg = load_config(args.config, args.data_root)
    unknown = [m for m in cfg["methods"] if m not in METHODS]
    if unknown:
        raise ValueError(f"methods must be among {list(METHODS)}, got {unknown[0]!r}")
    if (args.out / "runs.csv").exists():
        raise FileExistsError(f"--out {str(args.out)!r} already holds runs.csv")
    run(cfg, args.out)


if __name__ == "__main__":
    main()
