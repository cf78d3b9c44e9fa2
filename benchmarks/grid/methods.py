"""The method registry: what each method name of the grid trains.

Every base method is one :class:`Entry` of :data:`REGISTRY`: an epoch-level policy of the
library, a static method (a scoring run, then a fixed subset), a reducible-loss method (an
irreducible-loss run, then :class:`dynaprune.ReducibleLossPolicy`) or an in-batch method
(:mod:`dynaprune.inbatch`). A method name is a base method, or one composed of them:

* ``<method>+anneal`` — the method with all data in its last ``E - ceil(0.875 E)`` epochs,
  budget-matched (:meth:`Method.phases`); ``infobatch`` anneals without the suffix, as
  published;
* ``<in-batch>`` alone (``sb``) — all the data loaded, ``keep`` of each batch back-propagated;
* ``<policy>+<in-batch>`` (``ucb+sb``) — each level keeps ``sqrt(keep)``;
* ``<rho method>:il<N>`` (``rho-batch:il3``, ``ucb+rho-batch:il2``, ``rho+anneal:il3``) — its
  irreducible-loss models trained ``N`` epochs instead of the config's ``reducible.epochs``, so
  that IL model lengths compare in one grid.

:func:`method` parses a name into a :class:`Method`, which knows its sampler's policy, keep
ratios, phases and momentum, and which scoring run it needs; adding a method is adding an entry.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dynaprune import UCBPolicy

__all__ = [
    "ANNEAL_DELTA",
    "ANNEAL_SUFFIX",
    "BASELINES",
    "IL_SUFFIX",
    "REGISTRY",
    "STATIC_METHODS",
    "Entry",
    "Method",
    "is_method",
    "method",
    "rank",
    "style",
    "valid_methods",
]

ANNEAL_SUFFIX = "+anneal"
IL_SUFFIX = re.compile(r":il(\d+)$")  # "rho-batch:il3": irreducible-loss models trained 3 epochs
ANNEAL_DELTA = 0.875  # InfoBatch's δ: full data from this share of the epochs on
BASELINES = ("full", "full-same-budget")
KINDS = ("policy", "static", "reducible", "inbatch")


def _ucb_variance(cfg: dict[str, Any], num_classes: int | None) -> Any:
    """UCB scored by mean + variance, the public reimplementation's form of Raju et al."""
    return UCBPolicy(spread="variance")


def _guarded(
    chance_level: bool = True, **settings: Any
) -> Callable[[dict[str, Any], int | None], Any]:
    """A builder of ``GuardedUCBPolicy(**settings)``, given the data set's chance-level loss
    ``log(num_classes)`` unless ``chance_level`` is false (every fit split, as DivideMix does)."""

    def build(cfg: dict[str, Any], num_classes: int | None) -> Any:
        from dynaprune import GuardedUCBPolicy

        return GuardedUCBPolicy(num_classes=num_classes if chance_level else None, **settings)

    return build


def _oracle(cfg: dict[str, Any], num_classes: int | None) -> Any:
    raise ValueError(
        "the oracles are built by the benchmark from the labels it flipped "
        "(benchmarks.grid.oracle), not from the config"
    )


def _onion(cfg: dict[str, Any], num_classes: int | None) -> Any:
    """Swaps every ``ceil(epochs / 10)`` epochs, at most 5 times: the published schedule
    (every 30 of 300 epochs) scaled to the run."""
    from dynaprune import OnionPolicy

    return OnionPolicy(period=math.ceil(cfg["train"]["epochs"] / 10), max_swaps=5)


@dataclass(frozen=True)
class Entry:
    """One base method.

    Attributes:
        kind: ``"policy"``, ``"static"``, ``"reducible"`` or ``"inbatch"``.
        style: colour and line style in the figures.
        anneals: whether it anneals without the ``+anneal`` suffix.
        momentum: the sampler's moving-average momentum.
        recipe: a static method's scoring recipe (:mod:`benchmarks.grid.static_scores`), or an
            in-batch method's rule in :class:`dynaprune.InBatchSelector`.
        irreducible: the form of irreducible losses it needs (``"twofold"``, ``"holdout"``).
        policy: builds the sampler's policy from the config and the data set's number of
            classes (``None`` where unknown); default: the library's policy of the entry's name.
    """

    kind: str
    style: tuple[str | None, str]
    anneals: bool = False
    momentum: float = 0.5  # the sampler's default
    recipe: str | None = None
    irreducible: str | None = None
    policy: Callable[[dict[str, Any], int | None], Any] | None = None


REGISTRY: dict[str, Entry] = {
    "uniform": Entry("policy", ("C0", "-")),
    "epsilon_greedy": Entry("policy", ("C1", "-")),
    "ucb": Entry("policy", ("C2", "-")),
    "ucb-var": Entry("policy", ("yellowgreen", "-"), policy=_ucb_variance),
    "guarded_ucb": Entry("policy", ("forestgreen", "-"), policy=_guarded()),
    "guarded_ucb-split": Entry(
        "policy", ("darkseagreen", "-"), policy=_guarded(chance_level=False)
    ),
    "guarded_ucb-explore": Entry("policy", ("limegreen", "-"), policy=_guarded(flagged="explore")),
    "guarded_ucb-robust": Entry(
        "policy", ("darkgreen", "-"), policy=_guarded(flagged="explore", tail=0.98)
    ),
    "guarded_ucb-robust-drop": Entry("policy", ("olive", "-"), policy=_guarded(tail=0.98)),
    "guarded_ucb-clean": Entry(
        "policy", ("teal", "-"), policy=_guarded(tail=0.98, unflagged="uniform")
    ),
    # ceilings, not methods (benchmarks.grid.oracle): uniform over the samples whose labels the
    # benchmark did not flip; uniform after excluding the flipped share of highest losses
    "oracle-clean": Entry("policy", ("gold", "-"), policy=_oracle),
    "oracle-rate": Entry("policy", ("goldenrod", "-"), policy=_oracle),
    "moderate": Entry("policy", ("purple", "-")),
    "soft": Entry("policy", ("C3", "-")),
    # InfoBatch's published rule: score = last loss (momentum 0), full data at the end
    "infobatch": Entry("policy", ("C4", "-"), anneals=True, momentum=0.0),
    "pool_top": Entry("policy", ("C5", "-")),
    "importance": Entry("policy", ("C6", "-")),
    "onion": Entry("policy", ("magenta", "-"), policy=_onion),
    # static methods dash-dotted
    "static-forgetting": Entry("static", ("C8", "-."), recipe="forgetting"),
    "static-el2n": Entry("static", ("C9", "-."), recipe="el2n"),
    "static-grand": Entry("static", ("saddlebrown", "-."), recipe="grand"),
    "static-herding": Entry("static", ("navy", "-."), recipe="herding"),
    "static-kcenter": Entry("static", ("teal", "-."), recipe="kcenter"),
    "static-curvature": Entry("static", ("crimson", "-."), recipe="curvature"),
    "static-learned": Entry("static", ("darkviolet", "-."), recipe="learned"),
    "static-learned-linear": Entry("static", ("orchid", "-."), recipe="learned-linear"),
    "static-random": Entry("static", ("dimgray", "-."), recipe="random"),
    # the linear selector over one of its indicators alone (benchmarks.grid.learned_scores)
    "static-alone-loss_mean": Entry("static", ("plum", ":"), recipe="alone-loss_mean"),
    "static-alone-loss_spread": Entry("static", ("thistle", ":"), recipe="alone-loss_spread"),
    "static-alone-forgetting": Entry("static", ("mediumpurple", ":"), recipe="alone-forgetting"),
    "static-alone-el2n": Entry("static", ("rebeccapurple", ":"), recipe="alone-el2n"),
    "static-alone-margin": Entry("static", ("indigo", ":"), recipe="alone-margin"),
    "rho": Entry("reducible", ("olive", "-"), irreducible="twofold"),
    "rho-holdout": Entry("reducible", ("darkkhaki", "-"), irreducible="holdout"),
    # in-batch methods dotted
    "sb": Entry("inbatch", ("darkorange", ":"), recipe="selective_backprop"),
    "rho-batch": Entry("inbatch", ("darkgreen", ":"), recipe="rho", irreducible="twofold"),
    "uniform-batch": Entry("inbatch", ("steelblue", ":"), recipe="uniform"),
}

STATIC_METHODS = tuple(name for name, e in REGISTRY.items() if e.kind == "static")
_BASELINE_STYLE = {"full": ("black", "--"), "full-same-budget": ("grey", "--")}
# summary and figure order: the baselines, the policies, the static methods; then the others
_ORDER = (*BASELINES, *(n for n, e in REGISTRY.items() if e.kind in ("policy", "static")))


@dataclass(frozen=True)
class Method:
    """A parsed method name.

    Attributes:
        name: the method as written, e.g. ``"ucb+sb"``.
        base: ``name`` without the ``+anneal`` and ``:il<N>`` suffixes: the key of its style
            and rank.
        policy: the epoch-level base method, or ``None`` for an in-batch method alone.
        inbatch: the in-batch base method, or ``None``.
        anneals: whether it trains on all data in its last epochs (budget-matched).
        il_epochs: the ``:il<N>`` suffix's ``N``, or ``None`` without the suffix.
    """

    name: str
    base: str
    policy: str | None
    inbatch: str | None
    anneals: bool
    il_epochs: int | None = None

    @property
    def anneal_suffix(self) -> bool:
        """Whether it anneals only by its ``+anneal`` suffix (its base method does not)."""
        entry = REGISTRY.get(self.base)  # None for a composed method, e.g. "ucb+sb"
        by_base = entry is not None and entry.anneals
        return IL_SUFFIX.sub("", self.name).endswith(ANNEAL_SUFFIX) and not by_base

    @property
    def static(self) -> str | None:
        """The static method whose scores it trains on, or ``None``."""
        return self.policy if self._kind(self.policy) == "static" else None

    @property
    def reducible(self) -> bool:
        """Whether its epoch-level policy is the reducible-loss policy."""
        return self._kind(self.policy) == "reducible"

    @property
    def irreducible(self) -> str | None:
        """The form of irreducible losses it needs (``"twofold"``, ``"holdout"``), or ``None``."""
        for part in (self.policy, self.inbatch):
            if part is not None and REGISTRY[part].irreducible is not None:
                return REGISTRY[part].irreducible
        return None

    @property
    def scored(self) -> bool:
        """Whether it needs a scoring run (static scores or irreducible losses)."""
        return self.static is not None or self.irreducible is not None

    @property
    def inbatch_rule(self) -> str | None:
        """The :class:`dynaprune.InBatchSelector` rule of its in-batch method, or ``None``."""
        return None if self.inbatch is None else REGISTRY[self.inbatch].recipe

    def irreducible_epochs(self, default: int) -> int:
        """Training epochs of its irreducible-loss models: the ``:il<N>`` suffix's ``N``, else
        ``default`` (the config's ``reducible.epochs``)."""
        return default if self.il_epochs is None else self.il_epochs

    @property
    def momentum(self) -> float:
        return 0.5 if self.policy is None else REGISTRY[self.policy].momentum

    def make_policy(self, cfg: dict[str, Any], num_classes: int | None = None) -> Any:
        """The sampler's policy: a name, or an object built from the config (and the data
        set's number of classes, where known)."""
        assert self.policy is not None
        build = REGISTRY[self.policy].policy
        return self.policy if build is None else build(cfg, num_classes)

    def keeps(self, keep_ratio: float) -> tuple[float, float]:
        """``(epoch-level keep, in-batch keep)`` whose product is ``keep_ratio``.

        An in-batch method alone loads all the data and back-propagates ``keep_ratio`` of each
        batch; combined with an epoch-level policy, each level keeps ``sqrt(keep_ratio)``.
        Either way the run back-propagates the budget of every other method at that keep ratio.
        """
        if self.inbatch is None:
            return keep_ratio, 1.0
        if self.policy is None:
            return 1.0, keep_ratio
        return math.sqrt(keep_ratio), math.sqrt(keep_ratio)

    def phases(
        self, keep_ratio: float, epochs: int, warmup: int, anneal: int
    ) -> tuple[float, int, int]:
        """``(keep ratio of a pruned epoch, warm-up epochs, annealing epochs)``.

        A method that anneals trains on all the data in its last
        ``epochs - ceil(0.875 * epochs)`` epochs, and prunes the other epochs harder so that
        the whole run processes the same number of samples as every other method at
        ``keep_ratio``: the comparison stays at equal cost.
        """
        if not self.anneals:
            return keep_ratio, warmup, anneal
        anneal = max(anneal, epochs - math.ceil(ANNEAL_DELTA * epochs))
        pruned = epochs - warmup - anneal
        per_epoch = (keep_ratio * epochs - warmup - anneal) / pruned if pruned > 0 else 0.0
        if not 0.0 < per_epoch <= 1.0:
            raise ValueError(
                f"method {self.name!r} at keep ratio {keep_ratio:g}: {warmup} warm-up and "
                f"{anneal} annealing epochs of {epochs} already exceed the budget"
            )
        return per_epoch, warmup, anneal

    @staticmethod
    def _kind(name: str | None) -> str | None:
        return None if name is None else REGISTRY[name].kind


@functools.cache
def method(name: str) -> Method:
    """Parse a method name of ``pruning.policies``.

    Raises:
        ValueError: for a name that is no registered method nor a composition of them,
            listing the valid ones; for the suffix ``:il<N>`` on a method that trains no
            irreducible-loss model, or with ``N < 1``.
    """
    parsed = _parse(name)
    if parsed is None:
        raise ValueError(f"unknown policy {name!r}; {valid_methods()}")
    if parsed.il_epochs is not None and (parsed.irreducible is None or parsed.il_epochs < 1):
        raise ValueError(
            f"{name!r}: only the rho methods take the suffix ':il<N>' (irreducible-loss models "
            "trained N >= 1 epochs)"
        )
    return parsed


def is_method(name: object) -> bool:
    """Whether ``name`` is a registered method or a composition of them, its suffixes aside
    (:func:`method` may still refuse how they are used)."""
    return _parse(name) is not None


def _parse(name: object) -> Method | None:
    if not isinstance(name, str):
        return None
    suffix = IL_SUFFIX.search(name)
    rest = name if suffix is None else name[: suffix.start()]
    base = rest[: -len(ANNEAL_SUFFIX)] if rest.endswith(ANNEAL_SUFFIX) else rest
    anneals = base != rest or (base in REGISTRY and REGISTRY[base].anneals)
    policy: str | None = base
    inbatch = None
    if _kind(base) == "inbatch":
        policy, inbatch = None, base
    else:
        head, _, tail = base.rpartition("+")
        if head and _kind(tail) == "inbatch":
            policy, inbatch = head, tail
    if policy is not None and _kind(policy) not in ("policy", "static", "reducible"):
        return None
    il_epochs = None if suffix is None else int(suffix[1])
    return Method(name, base, policy, inbatch, anneals, il_epochs)


def _kind(name: str) -> str | None:
    entry = REGISTRY.get(name)
    return None if entry is None else entry.kind


def valid_methods() -> str:
    """The valid method names, for error messages."""
    names = {kind: [n for n, e in REGISTRY.items() if e.kind == kind] for kind in KINDS}
    return (
        f"valid policies: {names['policy']}, the static methods {names['static']} and the "
        f"reducible-loss methods {names['reducible']}, each optionally with the suffix "
        f"{ANNEAL_SUFFIX!r}; the in-batch methods {names['inbatch']}, alone or after a policy "
        "(e.g. 'ucb+sb')"
    )


def style(name: str) -> tuple[str | None, str]:
    """Colour and line style of a baseline or base method in the figures."""
    if name in _BASELINE_STYLE:
        return _BASELINE_STYLE[name]
    entry = REGISTRY.get(name)
    return (None, "-") if entry is None else entry.style


def rank(name: str) -> int:
    """Position in the summary and the figures: baselines, policies, static methods, others."""
    return _ORDER.index(name) if name in _ORDER else len(_ORDER)
