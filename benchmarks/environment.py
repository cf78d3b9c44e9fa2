"""What produced a result: package versions (pip style), device, git revision, command line."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

__all__ = ["PACKAGES", "collect_environment", "write_environment"]

PACKAGES = (
    "dynaprune",
    "torch",
    "torchvision",
    "pytorch-lightning",
    "numpy",
    "scikit-learn",
    "matplotlib",
    "rich",
)


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        if package == "dynaprune":  # imported from a checkout without being installed
            try:
                import dynaprune

                return getattr(dynaprune, "__version__", None)
            except ImportError:
                return None
        return None


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):  # no git, or not a checkout, or no commit yet
        return None
    return done.stdout.strip()


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def collect_environment(device: torch.device) -> dict[str, Any]:
    """Versions, device, threads, git revision and command line of this invocation."""
    status = _git("status", "--porcelain")
    return {
        "versions": {name: _version(name) for name in PACKAGES},
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name(),
        "cpu_count": os.cpu_count(),
        # the kernels torch picked (e.g. AVX2 or AVX512): runs on CPUs that differ here need
        # not draw the same accuracies to the hundredth
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "git_revision": _git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "command": [sys.executable, *sys.argv],
        "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def write_environment(out: Path, env: dict[str, Any]) -> None:
    """Writes ``environment.json`` and a pip-style ``versions.txt``."""
    (out / "environment.json").write_text(json.dumps(env, indent=2) + "\n")
    pins = [
        f"{name}=={version}" for name, version in env["versions"].items() if version is not None
    ]
    (out / "versions.txt").write_text("\n".join(pins) + "\n")
