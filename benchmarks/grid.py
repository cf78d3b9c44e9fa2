"""The runs of one invocation: ``full``, ``full-same-budget``, each policy x keep ratio x seed."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "INBATCH_RULES",
    "REDUCIBLE_POLICIES",
    "RunSpec",
    "build_grid",
    "inbatch_keep",
    "inbatch_rule",
    "irreducible_epochs",
    "irreducible_form",
    "make_sampler",
    "method_phases",
    "split_method",
]


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
        return self.method not in ("full", "full-same-budget")

    @property
    def label(self) -> str:
        return "full" if self.method == "full" else f"{self.method}@{self.keep_ratio:g}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


ANNEAL_SUFFIX = "+anneal"
ANNEAL_DELTA = 0.875  # InfoBatch's δ: full data from this share of the epochs on


# In-batch methods: the rule (dynaprune.inbatch) each name selects with. Alone (``sb``), it runs
# over all the data; after an epoch-level policy (``ucb+sb``), over that policy's subset.
INBATCH_RULES = {"sb": "selective_backprop", "rho-batch": "rho", "uniform-batch": "uniform"}
# Epoch-level reducible-loss methods and the form of their irreducible losses.
REDUCIBLE_POLICIES = {"rho": "twofold", "rho-holdout": "holdout"}


IL_SUFFIX = re.compile(r":il(\d+)$")  # "rho-batch:il3": irreducible-loss models trained 3 epochs


def irreducible_epochs(method: str, default: int) -> int:
    """Training epochs of a rho method's irreducible-loss models: the ``:il<N>`` suffix's N,
    else ``default`` (the config's ``reducible.epochs``)."""
    match = IL_SUFFIX.search(method)
    return int(match.group(1)) if match else default


def split_method(method: str) -> tuple[str, bool]:
    """``"pool_top+anneal"`` -> ``("pool_top", True)``: the policy and whether it anneals (an
    irreducible-loss suffix ``:il<N>`` is dropped)."""
    method = IL_SUFFIX.sub("", method)
    if method.endswith(ANNEAL_SUFFIX):
        return method[: -len(ANNEAL_SUFFIX)], True
    return method, method == "infobatch"  # InfoBatch's published rule anneals


def inbatch_rule(method: str) -> tuple[str | None, str | None]:
    """``(epoch-level policy or None, in-batch method or None)``: ``"ucb+sb"`` ->
    ``("ucb", "sb")``, ``"sb"`` -> ``(None, "sb")``, ``"ucb"`` -> ``("ucb", None)``."""
    name, _ = split_method(method)
    if name in INBATCH_RULES:
        return None, name
    policy, _, rule = name.rpartition("+")
    if policy and rule in INBATCH_RULES:
        return policy, rule
    return name, None


def inbatch_keep(method: str, keep_ratio: float) -> tuple[float, float]:
    """``(epoch-level keep, in-batch keep)`` whose product is ``keep_ratio``.

    An in-batch method alone loads all the data and back-propagates ``keep_ratio`` of each
    batch; combined with an epoch-level policy, each level keeps ``sqrt(keep_ratio)``. Either
    way the run back-propagates the budget of every other method at that keep ratio.
    """
    policy, rule = inbatch_rule(method)
    if rule is None:
        return keep_ratio, 1.0
    if policy is None:
        return 1.0, keep_ratio
    return math.sqrt(keep_ratio), math.sqrt(keep_ratio)


def irreducible_form(method: str) -> str | None:
    """The irreducible-loss form a method needs (``"twofold"``/``"holdout"``), or None."""
    policy, rule = inbatch_rule(method)
    if policy in REDUCIBLE_POLICIES:
        return REDUCIBLE_POLICIES[policy]
    return "twofold" if rule == "rho-batch" else None


def method_phases(
    method: str, keep_ratio: float, epochs: int, warmup: int, anneal: int
) -> tuple[float, int, int]:
    """``(keep ratio of a pruned epoch, warm-up epochs, annealing epochs)`` of a method.

    A method that anneals (``infobatch``, or any policy with the ``+anneal`` suffix) trains on
    all the data in its last ``epochs - ceil(0.875 * epochs)`` epochs, and prunes the other
    epochs harder so that the whole run processes the same number of samples as every other
    method at ``keep_ratio``: the comparison stays at equal cost.
    """
    _, anneals = split_method(method)
    if not anneals:
        return keep_ratio, warmup, anneal
    anneal = max(anneal, epochs - math.ceil(ANNEAL_DELTA * epochs))
    pruned = epochs - warmup - anneal
    per_epoch = (keep_ratio * epochs - warmup - anneal) / pruned if pruned > 0 else 0.0
    if not 0.0 < per_epoch <= 1.0:
        raise ValueError(
            f"method {method!r} at keep ratio {keep_ratio:g}: {warmup} warm-up and {anneal} "
            f"annealing epochs of {epochs} already exceed the budget"
        )
    return per_epoch, warmup, anneal


def make_sampler(
    spec: RunSpec, num_samples: int, cfg: dict[str, Any], policy_object: Any = None
) -> Any:
    """The sampler of a run; baselines use the same class at ``keep_ratio=1.0`` (same code path).

    ``infobatch`` scores by the last loss (``momentum=0``), as published. ``onion`` swaps every
    ``ceil(epochs / 10)`` epochs, at most 5 times: the published schedule (every 30 of 300
    epochs) scaled to the run. ``policy_object`` replaces the policy named by the method (the
    static methods pass their :class:`dynaprune.StaticPolicy`).
    """
    from dynaprune import DynamicPruningSampler

    pruning = cfg["pruning"]
    if not spec.pruned:
        return DynamicPruningSampler(num_samples, keep_ratio=1.0, policy="uniform", seed=spec.seed)
    name, _ = inbatch_rule(spec.method)
    if name is None:  # an in-batch method alone: every sample is loaded, every epoch
        return DynamicPruningSampler(num_samples, keep_ratio=1.0, policy="uniform", seed=spec.seed)
    policy: Any = name if policy_object is None else policy_object
    if name == "onion" and policy_object is None:
        from dynaprune import OnionPolicy

        policy = OnionPolicy(period=math.ceil(cfg["train"]["epochs"] / 10), max_swaps=5)
    epochs = cfg["train"]["epochs"]
    epoch_keep, _ = inbatch_keep(spec.method, spec.keep_ratio)
    keep, warmup, anneal = method_phases(
        spec.method, epoch_keep, epochs, pruning["warmup_epochs"], pruning["anneal_epochs"]
    )
    return DynamicPruningSampler(
        num_samples,
        keep_ratio=keep,
        policy=policy,
        seed=spec.seed,
        warmup_epochs=warmup,
        anneal_epochs=anneal,
        total_epochs=epochs,
        momentum=0.0 if name == "infobatch" else 0.5,  # 0.5: the sampler's default
    )


def _budget_spec(keep: float, seed: int, num_samples: int, cfg: dict[str, Any]) -> RunSpec:
    """All data, for exactly as many optimizer steps as a pruned run at ``keep`` takes."""
    train = cfg["train"]
    size, drop_last, epochs = train["batch_size"], train["drop_last"], train["epochs"]
    # the budget of a policy without annealing; annealing methods match it (method_phases)
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
