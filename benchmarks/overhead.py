"""What dynaprune itself costs, against the floor that any shuffled sampler pays.

Everything is measured side by side in one invocation and reported as ratios, since absolute
times drift between runs on shared machines::

    python benchmarks/overhead.py --json results/overhead.json
    python benchmarks/overhead.py --max-n 1e8 --keep 0.3,0.5,0.7 --end-to-end --json out.json

On a machine shared with other jobs, ``--threads 1`` keeps the parallel passes from stalling
on a busy core (``randperm`` is serial either way).

1. **Selection**, per epoch, for every policy and ``N`` in 1e5, 1e6, 1e7 (1e8 with
   ``--max-n 1e8``): what the sampler pays to choose and order an epoch, ``policy.select`` plus
   the shuffle of the kept indices when the policy leaves it to the sampler (as
   ``DynamicPruningSampler._plan`` does), against ``torch.randperm(N)``, which
   ``RandomSampler`` pays every epoch. Statistics are realistic: every sample seen, random
   means, variances and counts. The hand-off to the DataLoader (``.tolist()``) is excluded on
   both sides in ``selection_vs_randperm``, the stricter comparison, and included on both
   sides in ``selection_vs_randperm_with_handoff``.
2. **Feedback**, per step: ``DynamicPruningSampler.update`` (and ``LossStatistics.update``
   alone) with a batch of losses, against one SGD step (forward, backward, update) of the
   benchmark's ``small_cnn`` on 32x32x3 inputs at the same batch size.
3. **Memory**: statistics bytes per sample, and the selection's transient peak at the
   largest ``N`` (peak resident memory on the CPU, peak allocation on CUDA).
4. **CUDA**, where present: device-to-host syncs per feedback step, counted with
   ``torch.cuda.set_sync_debug_mode``, and everything above on the GPU.
5. **End to end** (``--end-to-end``): a plain training loop over a cached tensor data set
   through ``DataLoader`` + ``DynamicPruningSampler`` at ``keep_ratio`` 0.5 against full
   epochs through ``DataLoader(shuffle=True)``, with a breakdown of where the time goes.

Timings are medians over ``--repeats`` runs, interleaved so that drift hits every contender.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import math
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

if __package__ in (None, ""):  # run as a script: make the repository root importable
    _ROOT = str(Path(__file__).resolve().parents[1])
    if _ROOT not in sys.path:
        sys.path.append(_ROOT)

from benchmarks.environment import collect_environment
from benchmarks.models import build_model
from dynaprune import POLICIES, DynamicPruningSampler, LossStatistics, make_policy

__all__ = ["main", "parse_args"]

_SIZES = (100_000, 1_000_000, 10_000_000, 100_000_000)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(on: torch.device, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``(seconds, fn(*args, **kwargs))``, waiting for the device ``on`` before and after."""
    _sync(on)
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    _sync(on)
    return time.perf_counter() - start, out


def realistic_stats(n: int, device: torch.device, seed: int = 0) -> LossStatistics:
    """Statistics as after a few epochs: every sample seen, skewed losses, random variances."""
    g = torch.Generator().manual_seed(seed)
    stats = LossStatistics(n)
    stats.mean = torch.rand(n, generator=g).pow_(3).mul_(5.0)
    stats.var = torch.rand(n, generator=g).mul_(0.5)
    stats.count = torch.randint(1, 20, (n,), generator=g, dtype=torch.int32)
    stats.seen = torch.full((n,), 5, dtype=torch.int32)
    return stats.to(device)


def epoch_order(
    policy: Any, stats: LossStatistics, num_keep: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(order, weights)`` of one pruned epoch, paid as ``DynamicPruningSampler._plan`` pays."""
    generator = torch.Generator(device=stats.device).manual_seed(seed)
    selection = policy.select(stats, num_keep, generator)
    order, weights = selection.indices, selection.weights
    if not selection.shuffled:
        perm = torch.randperm(order.numel(), generator=generator, device=order.device)
        order = order[perm]
        weights = None if weights is None else weights[perm]
    return order, weights


def _peak_tracker(device: torch.device) -> tuple[Callable[[], None], Callable[[], int | None]]:
    """``(reset, read)``: transient peak memory in bytes of what runs between the two calls."""
    if device.type == "cuda":
        base = [0]

        def reset_cuda() -> None:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            base[0] = torch.cuda.memory_allocated(device)

        def read_cuda() -> int:
            return torch.cuda.max_memory_allocated(device) - base[0]

        return reset_cuda, read_cuda

    def status(field: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) * 1024
        raise OSError(field)

    base_rss = [0]

    def reset_cpu() -> None:
        # Return freed heap memory to the system, so that reused memory counts too.
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        try:
            Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to now
            base_rss[0] = status("VmRSS:")
        except OSError:
            base_rss[0] = -1

    def read_cpu() -> int | None:
        if base_rss[0] < 0:
            return None
        try:
            return status("VmHWM:") - base_rss[0]
        except OSError:
            return None

    return reset_cpu, read_cpu


def _median_sum(a: list[float], b: list[float]) -> float:
    return statistics.median(x + y for x, y in zip(a, b, strict=True))


def bench_selection(
    sizes: list[int], keeps: list[float], repeats: int, device: torch.device
) -> dict[str, Any]:
    """Per-epoch selection of every policy against ``torch.randperm(N)``, as ratios."""
    policies = {name: make_policy(name) for name in POLICIES}
    contenders = [("randperm", None, 1.0)]
    contenders += [(f"{name}@{keep}", name, keep) for name in policies for keep in keeps]
    ratio: dict[str, dict[str, dict[str, float]]] = {}
    ratio_handoff: dict[str, dict[str, dict[str, float]]] = {}
    seconds: dict[str, Any] = {}
    handoff_seconds: dict[str, Any] = {}
    peak: dict[str, float | None] = {}
    syncs: dict[str, int] = {}
    for n in sizes:
        stats = realistic_stats(n, device)
        reps = repeats if n < 50_000_000 else max(1, min(repeats, 3))
        times: dict[str, list[float]] = {label: [] for label, _, _ in contenders}
        handoff: dict[str, list[float]] = {label: [] for label, _, _ in contenders}
        for rep in range(reps + 1):  # the first round warms up and is not counted
            for label, name, keep in contenders:
                if name is None:
                    t, out = _timed(device, torch.randperm, n, device=device)
                else:
                    policy, k = policies[name], round(keep * n)
                    t, (out, _) = _timed(device, epoch_order, policy, stats, k, rep)
                th, _ = _timed(device, out.tolist)
                del out
                if rep:
                    times[label].append(t)
                    handoff[label].append(th)
        base = statistics.median(times["randperm"])
        base_handoff = _median_sum(times["randperm"], handoff["randperm"])
        seconds[str(n)] = {label: statistics.median(v) for label, v in times.items()}
        handoff_seconds[str(n)] = {label: statistics.median(v) for label, v in handoff.items()}
        for label, name, keep in contenders[1:]:
            key = str(keep)
            by_n = ratio.setdefault(key, {}).setdefault(name, {})
            by_n[str(n)] = statistics.median(times[label]) / base
            by_n = ratio_handoff.setdefault(key, {}).setdefault(name, {})
            by_n[str(n)] = _median_sum(times[label], handoff[label]) / base_handoff
        if n == max(sizes):
            reset, read = _peak_tracker(device)
            for name, policy in policies.items():
                reset()
                out, _ = epoch_order(policy, stats, round(0.5 * n), 0)
                transient = read()
                del out
                peak[name] = None if transient is None else transient / n
                if device.type == "cuda":
                    syncs[name] = _count_syncs(epoch_order, policy, stats, round(0.5 * n), 0)
        stats = None  # freed before the next size is built
    main_keep = "0.5" if "0.5" in ratio else next(iter(ratio))
    return {
        "selection_vs_randperm": ratio[main_keep],
        "selection_vs_randperm_by_keep": ratio,
        "selection_vs_randperm_with_handoff": ratio_handoff[main_keep],
        "selection_seconds": seconds,
        "handoff_seconds": handoff_seconds,
        "selection_peak_bytes_per_sample": {"n": max(sizes), **peak},
    } | ({"selection_syncs_per_epoch": syncs} if syncs else {})


def _small_cnn_step(batch: int, device: torch.device) -> Callable[[], None]:
    model = build_model("small_cnn", (3, 32, 32), 10).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def bench_update(
    n: int, batch: int, steps: int, repeats: int, device: torch.device
) -> dict[str, Any]:
    """Per-step feedback against one training step, both as medians per call."""
    sampler = DynamicPruningSampler(n, 0.5, "ucb", device=device)
    stats = LossStatistics(n, device=device)
    g = torch.Generator().manual_seed(0)
    losses = [torch.rand(batch, generator=g).to(device).requires_grad_() for _ in range(steps)]
    order = torch.randperm(n, generator=g).to(device)
    step = _small_cnn_step(batch, device)
    times: dict[str, list[float]] = {"sampler": [], "stats": [], "step": []}
    left = 0  # samples of the sampler's current epoch not yet fed back
    for rep in range(repeats + 1):  # the first round warms up and is not counted
        counted = times if rep else {key: [] for key in times}
        for _ in range(2):
            counted["step"].append(_timed(device, step)[0])
        _sync(device)
        for i, loss in enumerate(losses):
            if left < batch:  # plan a fresh epoch, untimed
                sampler.set_epoch(sampler.epoch + 1)
                left = len(sampler)
                iter(sampler)
            left -= batch
            start = time.perf_counter()
            sampler.update(loss)
            counted["sampler"].append(time.perf_counter() - start)
            idx = order[(i * batch) % (n - batch) :][:batch]
            start = time.perf_counter()
            stats.update(idx, loss, 0)
            counted["stats"].append(time.perf_counter() - start)
    med = {key: statistics.median(value) for key, value in times.items()}
    result = {
        "update_fraction_of_step": med["sampler"] / med["step"],
        "stats_update_fraction_of_step": med["stats"] / med["step"],
        "update_seconds": med["sampler"],
        "stats_update_seconds": med["stats"],
        "step_seconds": med["step"],
        "update_num_samples": n,
        "batch_size": batch,
    }
    if device.type == "cuda":
        result["syncs_per_step"] = count_syncs(sampler, losses)
    return result


def _count_syncs(fn: Callable[..., Any], *args: Any) -> int:
    """Device-to-host syncs during ``fn(*args)``, as flagged by ``set_sync_debug_mode``."""
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn(*args)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def count_syncs(sampler: DynamicPruningSampler, losses: list[torch.Tensor]) -> int:
    """Device-to-host syncs per feedback step (``sampler.update``), rounded up."""
    sampler.set_epoch(sampler.epoch + 1)
    steps = min(len(losses), len(sampler) // losses[0].numel())
    iter(sampler)

    def feedback() -> None:
        for loss in losses[:steps]:
            sampler.update(loss)

    return -(-_count_syncs(feedback) // steps)


def bench_end_to_end(
    n: int, epochs: int, batch: int, policy: str, device: torch.device
) -> dict[str, Any]:
    """Full epochs through ``DataLoader(shuffle=True)`` against pruned ones through
    ``DataLoader(sampler=DynamicPruningSampler(keep_ratio=0.5))``, alternating, and where the
    pruned epochs spend more than half the full ones' time."""
    from torch.utils.data import DataLoader, TensorDataset

    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,)))
    sampler = DynamicPruningSampler(n, 0.5, policy, seed=0)
    loaders = {
        "full": DataLoader(data, batch_size=batch, shuffle=True, generator=g),
        "pruned": DataLoader(data, batch_size=batch, sampler=sampler),
    }
    models = {name: build_model("small_cnn", (3, 32, 32), 10).to(device) for name in loaders}
    opts = {
        name: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for name, m in models.items()
    }
    parts = {name: dict.fromkeys(("total", "data", "compute"), 0.0) for name in loaders}
    parts["pruned"] |= {"select": 0.0, "update": 0.0}
    for epoch in range(epochs + 1):  # epoch 0 warms up and is not counted
        sampler.set_epoch(epoch)
        for name, loader in loaders.items():
            model, opt = models[name], opts[name]
            t = dict.fromkeys(("total", "data", "compute"), 0.0)
            timings = dict(sampler.timings)
            _sync(device)
            start = tick = time.perf_counter()
            for x, y in loader:  # selection happens in the first batch's "data"
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                now = time.perf_counter()
                t["data"] += now - tick
                losses = F.cross_entropy(model(x), y, reduction="none")
                loss = sampler.update(losses) if name == "pruned" else losses.mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                _sync(device)
                tick = time.perf_counter()
                t["compute"] += tick - now  # feedback (sampler.update) included
            t["total"] = time.perf_counter() - start
            if name == "pruned":
                t["select"] = sampler.timings["select_seconds"] - timings["select_seconds"]
                t["update"] = sampler.timings["update_seconds"] - timings["update_seconds"]
            if epoch:
                for key, value in t.items():
                    parts[name][key] += value
    share = sampler.num_keep / n
    full, pruned = parts["full"], parts["pruned"]
    excess = {key: pruned[key] - share * full[key] for key in ("total", "data", "compute")}
    excess["loop"] = excess["total"] - excess["data"] - excess["compute"]
    return {
        "speedup": full["total"] / pruned["total"],
        "ideal_speedup": 1 / share,
        "epochs": epochs,
        "num_samples": n,
        "batch_size": batch,
        "policy": policy,
        "full_seconds": full,
        "pruned_seconds": pruned,
        # pruned time beyond keep_ratio x full, by where it is spent
        "excess_seconds": excess,
    }


def _size(n: int) -> str:
    power = round(math.log10(n))
    return f"1e{power}" if 10**power == n else str(n)


def print_report(result: dict[str, Any]) -> None:
    """The results as Markdown tables and lines, ready for the README."""
    env = result["environment"]
    by_keep = result["selection_vs_randperm_by_keep"]
    sizes = sorted({int(n) for by_p in by_keep.values() for by_n in by_p.values() for n in by_n})
    print(
        f"\nSelection per epoch / torch.randperm(N): {env['device_name']}, "
        f"{env['torch_threads']} threads, torch {env['versions']['torch']}, median of "
        f"{result['config']['repeats']}"
    )
    print("| policy | keep | " + " | ".join(f"N = {_size(n)}" for n in sizes) + " |")
    print("|---|---|" + "---:|" * len(sizes))
    for name in POLICIES:
        for keep, by_policy in by_keep.items():
            by_n = by_policy[name]
            cells = (f"{by_n[str(n)]:.2f}x" if str(n) in by_n else "-" for n in sizes)
            print(f"| {name} | {keep} | " + " | ".join(cells) + " |")
    base = result["selection_seconds"]
    print(
        "| `randperm(N)` | | "
        + " | ".join(f"{base[str(n)]['randperm'] * 1e3:.1f} ms" for n in sizes)
        + " |"
    )
    handoff = result["selection_vs_randperm_with_handoff"]
    print(
        "With the .tolist() hand-off on both sides (keep 0.5): "
        + ", ".join(f"{name} {by_n[str(sizes[-1])]:.2f}x" for name, by_n in handoff.items())
        + f" at N = {_size(sizes[-1])}"
    )
    print(
        f"\nFeedback per step: {result['update_seconds'] * 1e6:.0f} us "
        f"(LossStatistics.update {result['stats_update_seconds'] * 1e6:.0f} us) vs a small_cnn "
        f"step at batch {result['batch_size']}: {result['step_seconds'] * 1e3:.1f} ms -> "
        f"{result['update_fraction_of_step']:.3%}"
    )
    print(f"Statistics: {result['bytes_per_sample']} bytes per sample")
    peak = result["selection_peak_bytes_per_sample"]
    print(
        f"Selection transient peak at N = {_size(peak['n'])}: "
        + ", ".join(f"{k} {v:.0f} B/sample" for k, v in peak.items() if k != "n" and v is not None)
    )
    if "syncs_per_step" in result:
        print(f"Device-to-host syncs per feedback step: {result['syncs_per_step']}")
    if "selection_syncs_per_epoch" in result:
        print(
            f"Device-to-host syncs per selection (per epoch): {result['selection_syncs_per_epoch']}"
        )
    if "end_to_end" in result:
        e2e = result["end_to_end"]
        full, pruned, excess = e2e["full_seconds"], e2e["pruned_seconds"], e2e["excess_seconds"]
        print(
            f"End to end ({e2e['policy']}, keep 0.5, {e2e['epochs']} epochs of "
            f"{e2e['num_samples']} samples, batch {e2e['batch_size']}): full "
            f"{full['total']:.2f} s, pruned {pruned['total']:.2f} s, speedup "
            f"{e2e['speedup']:.3f}x of {e2e['ideal_speedup']:.1f}x"
        )
        print(
            f"  pruned beyond half of full: {excess['total']:+.3f} s = data "
            f"{excess['data']:+.3f} s (selection {pruned['select']:.3f} s) + compute "
            f"{excess['compute']:+.3f} s (feedback {pruned['update']:.3f} s) + loop "
            f"{excess['loop']:+.3f} s"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-n", type=float, default=1e7, help="largest N (1e8 to add it)")
    parser.add_argument(
        "--sizes",
        type=lambda s: [int(float(v)) for v in s.split(",")],
        default=None,
        help="comma-separated N to measure instead of the powers of ten up to --max-n",
    )
    parser.add_argument(
        "--keep",
        type=lambda s: [float(v) for v in s.split(",")],
        default=[0.5],
        help="comma-separated keep ratios (0.5 is the headline)",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--update-samples", type=int, default=50_000, help="N of the feedback test")
    parser.add_argument("--update-steps", type=int, default=200, help="feedback calls per repeat")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--end-to-end", action="store_true", help="also time a training loop")
    parser.add_argument("--e2e-samples", type=int, default=12_800)
    parser.add_argument("--e2e-epochs", type=int, default=3)
    parser.add_argument("--e2e-policy", default="ucb", choices=POLICIES)
    parser.add_argument("--json", type=Path, default=None, help="where to write the results")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    device = torch.device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    sizes = args.sizes or [n for n in _SIZES if n <= args.max_n]
    result: dict[str, Any] = {"device": str(device), "config": vars(args) | {"sizes": sizes}}
    result["environment"] = collect_environment(device)
    result |= bench_selection(sizes, args.keep, args.repeats, device)
    result |= bench_update(
        args.update_samples, args.batch_size, args.update_steps, args.repeats, device
    )
    result["bytes_per_sample"] = LossStatistics(1).bytes_per_sample
    if args.end_to_end:
        result["end_to_end"] = bench_end_to_end(
            args.e2e_samples, args.e2e_epochs, args.batch_size, args.e2e_policy, device
        )
    print_report(result)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return result


if __name__ == "__main__":
    main()
