"""Policies by name: :data:`POLICIES`, :func:`make_policy` and the sampler's ``policy`` argument."""

from __future__ import annotations

from typing import Any

from dynaprune.policies.base import PruningPolicy
from dynaprune.policies.guarded import GuardedUCBPolicy, ModeratePolicy
from dynaprune.policies.loss import EpsilonGreedyPolicy, SoftPolicy, UCBPolicy, UniformPolicy
from dynaprune.policies.onion import OnionPolicy
from dynaprune.policies.sampled import ImportancePolicy, InfoBatchPolicy, PoolTopPolicy

__all__ = ["POLICIES", "make_policy", "resolve_policy"]

POLICIES: tuple[str, ...] = (
    "uniform",
    "epsilon_greedy",
    "ucb",
    "guarded_ucb",
    "moderate",
    "soft",
    "infobatch",
    "pool_top",
    "importance",
    "onion",
)
_CLASSES: dict[str, type[PruningPolicy]] = {
    "uniform": UniformPolicy,
    "epsilon_greedy": EpsilonGreedyPolicy,
    "ucb": UCBPolicy,
    "guarded_ucb": GuardedUCBPolicy,
    "moderate": ModeratePolicy,
    "soft": SoftPolicy,
    "infobatch": InfoBatchPolicy,
    "pool_top": PoolTopPolicy,
    "importance": ImportancePolicy,
    "onion": OnionPolicy,
}


def make_policy(policy: str | PruningPolicy) -> PruningPolicy:
    """Return ``policy`` itself if it is a :class:`PruningPolicy`, else the named one's default.

    Raises:
        ValueError: for an unknown name, listing the valid ones.
        TypeError: for anything that is neither a name nor a policy.
    """
    if isinstance(policy, PruningPolicy):
        return policy
    if isinstance(policy, str):
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {list(POLICIES)}, got {policy!r}")
        return _CLASSES[policy]()
    raise TypeError(
        f"policy must be a name in {list(POLICIES)} or a PruningPolicy, got {type(policy).__name__}"
    )


def resolve_policy(policy: Any) -> PruningPolicy:
    """A policy object from a name or an instance; a class is refused with a hint."""
    if isinstance(policy, type) and issubclass(policy, PruningPolicy):
        raise TypeError(
            f"policy must be a PruningPolicy instance or a name, got the class "
            f"{policy.__name__}; pass {policy.__name__}()"
        )
    return make_policy(policy)
