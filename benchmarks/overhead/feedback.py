"""Feedback per step (``sampler.update``) against a training step, and a timed training loop
end to end: pruned epochs through the sampler against full epochs through ``shuffle=True``."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from benchmarks.grid.models import build_model
from benchmarks.overhead.timing import count_syncs as _count_syncs
from benchmarks.overhead.timing import sync, timed
from dynaprune import DynamicPruningSampler, LossStatistics

__all__ = ["bench_end_to_end", "bench_update", "count_syncs"]


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
            counted["step"].append(timed(device, step)[0])
        sync(device)
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
            sync(device)
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
                sync(device)
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
