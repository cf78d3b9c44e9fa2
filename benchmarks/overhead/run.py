"""What dynaprune itself costs, against the floor that any shuffled sampler pays.

Everything is measured side by side in one invocation and reported as ratios, since absolute
times drift between runs on shared machines::

    python benchmarks/overhead/run.py --json results/overhead.json
    python benchmarks/overhead/run.py --max-n 1e8 --keep 0.3,0.5,0.7 --end-to-end --json out.json

On a machine shared with other jobs, ``--threads 1`` keeps the parallel passes from stalling
on a busy core (``randperm`` is serial either way).

1. **Selection**, per epoch, for every policy and ``N`` in 1e5, 1e6, 1e7 (1e8 with
   ``--max-n 1e8``): what the sampler pays to choose and order an epoch, ``policy.select`` plus
   the shuffle of the kept indices when the policy leaves it to the sampler, timed through
   ``EpochPlan.create`` as the sampler calls it, against ``torch.randperm(N)``, which
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
import json
import math
import sys
from pathlib import Path
from typing import Any

import torch

if __package__ in (None, ""):  # run as a script: make the repository root importable
    _ROOT = str(Path(__file__).resolve().parents[2])
    if _ROOT not in sys.path:
        sys.path.append(_ROOT)

from benchmarks.environment import collect_environment
from benchmarks.overhead.feedback import bench_end_to_end, bench_update
from benchmarks.overhead.selection import bench_selection
from dynaprune import POLICIES, LossStatistics

__all__ = ["main", "parse_args"]

_SIZES = (100_000, 1_000_000, 10_000_000, 100_000_000)


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
