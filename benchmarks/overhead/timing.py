"""Timing helpers for the benchmarks: device waits, timed calls, peak memory, sync counts."""

from __future__ import annotations

import contextlib
import ctypes
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

__all__ = ["count_syncs", "median_sum", "peak_tracker", "sync", "timed"]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(on: torch.device, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``(seconds, fn(*args, **kwargs))``, waiting for the device ``on`` before and after."""
    sync(on)
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    sync(on)
    return time.perf_counter() - start, out


def peak_tracker(device: torch.device) -> tuple[Callable[[], None], Callable[[], int | None]]:
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


def median_sum(a: list[float], b: list[float]) -> float:
    return statistics.median(x + y for x, y in zip(a, b, strict=True))


def count_syncs(fn: Callable[..., Any], *args: Any) -> int:
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
