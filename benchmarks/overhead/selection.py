"""Selection per epoch: every policy's planning cost against ``torch.randperm(N)``.

What the sampler pays to choose and order a pruned epoch is timed through the library itself
(:meth:`dynaprune.core.plan.EpochPlan.create`), on realistic statistics.
"""

from __future__ import annotations

import statistics
from typing import Any

import torch

from benchmarks.overhead.timing import count_syncs, median_sum, peak_tracker, timed
from dynaprune import POLICIES, LossStatistics, PruningPolicy, make_policy
from dynaprune.core.plan import EpochPlan, Sharding

__all__ = ["bench_selection", "epoch_order", "realistic_stats"]


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
    policy: PruningPolicy, stats: LossStatistics, num_keep: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(order, weights)`` of one pruned epoch, planned as the sampler plans it."""
    generator = torch.Generator(device=stats.device).manual_seed(seed)
    plan = EpochPlan.create(
        0, stats=stats, policy=policy, num_keep=num_keep, generator=generator, sharding=Sharding()
    )
    return plan.order, plan.weights


def bench_selection(
    sizes: list[int], keeps: list[float], repeats: int, device: torch.device
) -> dict[str, Any]:
    """Per-epoch selection of every policy against ``torch.randperm(N)``, as ratios."""
    policies = {name: make_policy(name) for name in POLICIES}
    contenders: list[tuple[str, str | None, float]] = [("randperm", None, 1.0)]
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
                    t, out = timed(device, torch.randperm, n, device=device)
                else:
                    policy, k = policies[name], round(keep * n)
                    t, (out, _) = timed(device, epoch_order, policy, stats, k, rep)
                th, _ = timed(device, out.tolist)
                del out
                if rep:
                    times[label].append(t)
                    handoff[label].append(th)
        base = statistics.median(times["randperm"])
        base_handoff = median_sum(times["randperm"], handoff["randperm"])
        seconds[str(n)] = {label: statistics.median(v) for label, v in times.items()}
        handoff_seconds[str(n)] = {label: statistics.median(v) for label, v in handoff.items()}
        for label, name, keep in contenders[1:]:
            assert name is not None  # only the baseline has none
            key = str(keep)
            by_n = ratio.setdefault(key, {}).setdefault(name, {})
            by_n[str(n)] = statistics.median(times[label]) / base
            by_n = ratio_handoff.setdefault(key, {}).setdefault(name, {})
            by_n[str(n)] = median_sum(times[label], handoff[label]) / base_handoff
        if n == max(sizes):
            reset, read = peak_tracker(device)
            for name, policy in policies.items():
                reset()
                out, _ = epoch_order(policy, stats, round(0.5 * n), 0)
                transient = read()
                del out
                peak[name] = None if transient is None else transient / n
                if device.type == "cuda":
                    syncs[name] = count_syncs(epoch_order, policy, stats, round(0.5 * n), 0)
        del stats  # freed before the next size is built
    main_keep = "0.5" if "0.5" in ratio else next(iter(ratio))
    return {
        "selection_vs_randperm": ratio[main_keep],
        "selection_vs_randperm_by_keep": ratio,
        "selection_vs_randperm_with_handoff": ratio_handoff[main_keep],
        "selection_seconds": seconds,
        "handoff_seconds": handoff_seconds,
        "selection_peak_bytes_per_sample": {"n": max(sizes), **peak},
    } | ({"selection_syncs_per_epoch": syncs} if syncs else {})
