"""The runs of one invocation: ``full``, ``full-same-budget``, each policy x keep ratio x seed."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.grid.methods import BASELINES, Method, method

__all__ = ["RunSpec", "build_grid", "make_sampler"]


@dataclass(frozen=True)
class RunSpec:
    """One training run.

    Attributes:
        method: ``full``, ``full-same-budget`` or a policy name.
        keep_ratio: 1.0 for ``full``; for ``full-same-budget``, the keep ratio whose budget it
            matches.
        seed: seeds the model initialisation, the sampler and the augmentation.
        epochs: epochs to start (the last one may be cut short by ``max_steps``).
        max_steps: optimizer steps after which the run stops; None runs all ``epochs``.
    """

    method: str
    keep_ratio: float
    seed: int
    epochs: int
    max_steps: int | None = None

    @property
    def pruned(self) -> bool:
        return self.method not in BASELINES

    @property
    def parsed(self) -> Method:
        """The method, from the registry (:mod:`benchmarks.grid.methods`)."""
        return method(self.method)

    @property
    def label(self) -> str:
        return "full" if self.method == "full" else f"{self.method}@{self.keep_ratio:g}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_sampler(
    spec: RunSpec,
    num_samples: int,
    cfg: dict[str, Any],
    policy_object: Any = None,
    num_classes: int | None = None,
) -> Any:
    """The sampler of a run; baselines use the same class at ``keep_ratio=1.0`` (same code path).

    The method (:mod:`benchmarks.grid.methods`) sets the policy, its keep ratio and phases and
    the momentum. ``policy_object`` replaces the policy named by the method (the static and
    reducible-loss methods pass theirs, built from their scoring run). ``num_classes`` is the
    data set's, for policies that need the chance-level loss (``guarded_ucb``).
    """
    from dynaprune import DynamicPruningSampler

    pruning = cfg["pruning"]
    if not spec.pruned:
        return DynamicPruningSampler(num_samples, keep_ratio=1.0, policy="uniform", seed=spec.seed)
    parsed = spec.parsed
    if parsed.policy is None:  # an in-batch method alone: every sample is loaded, every epoch
        return DynamicPruningSampler(num_samples, keep_ratio=1.0, policy="uniform", seed=spec.seed)
    policy = parsed.make_policy(cfg, num_classes) if policy_object is None else policy_object
    epochs = cfg["train"]["epochs"]
    epoch_keep, _ = parsed.keeps(spec.keep_ratio)
    keep, warmup, anneal = parsed.phases(
        epoch_keep, epochs, pruning["warmup_epochs"], pruning["anneal_epochs"]
    )
    return DynamicPruningSampler(
        num_samples,
        keep_ratio=keep,
        policy=policy,
        seed=spec.seed,
        warmup_epochs=warmup,
        anneal_epochs=anneal,
        total_epochs=epochs,
        momentum=parsed.momentum,
    )


def _budget_spec(keep: float, seed: int, num_samples: int, cfg: dict[str, Any]) -> RunSpec:
    """All data, for exactly as many optimizer steps as a pruned run at ``keep`` takes."""
    train = cfg["train"]
    size, drop_last, epochs = train["batch_size"], train["drop_last"], train["epochs"]
    # the budget of a policy without annealing; annealing methods match it (Method.phases)
    pruned = make_sampler(RunSpec("uniform", keep, seed, epochs), num_samples, cfg)
    budget = pruned.total_steps(batch_size=size, drop_last=drop_last, epochs=epochs)
    full = make_sampler(RunSpec("full", 1.0, seed, 1), num_samples, cfg)
    per_epoch = full.total_steps(batch_size=size, drop_last=drop_last, epochs=1)
    return RunSpec("full-same-budget", keep, seed, math.ceil(budget / per_epoch), budget)


def build_grid(cfg: dict[str, Any], num_samples: int) -> list[RunSpec]:
    """All runs of a validated config, seed by seed, so that a partial result covers whole seeds."""
    epochs = cfg["train"]["epochs"]
    ratios = cfg["pruning"]["keep_ratios"]
    baselines = cfg["benchmark"]["baselines"]
    grid: list[RunSpec] = []
    for seed in cfg["benchmark"]["seeds"]:
        if "full" in baselines:
            grid.append(RunSpec("full", 1.0, seed, epochs))
        if "full-same-budget" in baselines:
            shares = sorted(
                {keep for keep in ratios if keep < 1.0} | set(cfg["benchmark"]["curve"])
            )
            grid += [_budget_spec(keep, seed, num_samples, cfg) for keep in shares]
        grid += [
            RunSpec(policy, keep, seed, epochs)
            for keep in ratios
            for policy in cfg["pruning"]["policies"]
        ]
    return grid
