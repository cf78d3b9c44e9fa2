"""Benchmark configuration: defaults, YAML loading, command-line overrides and validation.

Every check runs before any data is loaded or any model is trained, and every error names the
dotted key and the offending value, e.g. ``pruning.keep_ratios[1] must be in (0, 1], got 1.5``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
import yaml

from benchmarks.grid.factory_names import resolve
from benchmarks.grid.methods import BASELINES

__all__ = [
    "AMP_MODES",
    "BASELINES",
    "DATASETS",
    "DEFAULTS",
    "LOADERS",
    "LOOPS",
    "MODELS",
    "OPTIMIZERS",
    "SCHEDULES",
    "apply_overrides",
    "load_config",
    "validate_config",
]

DATASETS = ("digits", "cifar10", "cifar100", "imagefolder")
MODELS = ("mlp", "tiny_cnn", "small_cnn", "resnet8", "resnet18")
LOADERS = ("dataloader", "device")
LOOPS = ("lightning", "plain")
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "linear", "constant")
AMP_MODES = ("none", "bf16")

DEFAULTS: dict[str, dict[str, Any]] = {
    "data": {
        "dataset": "digits",  # one of DATASETS
        "root": None,  # ImageFolder tree with train/ and test/, or a torchvision root
        "cache_dir": "~/.cache/dynaprune-bench",  # decoded tensors and torchvision downloads
        "image_size": None,  # resize ImageFolder images to this square size when decoding
        "train_subset": None,  # class-stratified subset sizes, fixed across runs and seeds
        "test_subset": None,
        "loader": "dataloader",  # one of LOADERS
        "num_workers": 0,
        "augment": False,  # random crop (pad 4) and horizontal flip
        "streaming": False,  # decode JPEGs per item in the workers (imagefolder only)
        "label_noise": 0.0,  # share of training labels replaced by another class at random
        "label_noise_seed": 0,  # fixes which labels, the same for every run and seed
        # "symmetric": a flipped label becomes any other class; "asymmetric": CIFAR-10's
        # class pairs (data.ASYMMETRIC_PAIRS), each of those classes flipped at label_noise
        "label_noise_kind": "symmetric",
        # your own data: MODULE:FUNCTION returning (train_set, test_set); replaces dataset
        "factory": None,
    },
    # factory: your own model, MODULE:FUNCTION returning a fresh nn.Module; replaces name
    "model": {"name": "tiny_cnn", "channels_last": False, "factory": None},
    "train": {
        "loop": "lightning",
        "device": "auto",  # auto, cpu, cuda or cuda:N
        "threads": None,  # torch.set_num_threads; None leaves torch's default
        "epochs": 20,
        "batch_size": 64,
        "eval_batch_size": 1024,
        "eval_every": 1,  # evaluate after every n-th epoch (and always after the last)
        "drop_last": False,
        "optimizer": "sgd",
        "lr": 0.1,
        "momentum": 0.9,
        "nesterov": True,
        "weight_decay": 5e-4,
        "schedule": "cosine",
        "warmup_fraction": 0.0,  # share of the run's optimizer steps spent warming up the LR
        "label_smoothing": 0.0,
        "loss": None,  # MODULE:FUNCTION (logits, targets) -> per-sample losses; None: cross-entropy
        "amp": "none",
    },
    "pruning": {
        "policies": ["uniform", "epsilon_greedy", "ucb", "soft"],
        "keep_ratios": [0.3, 0.5, 0.7],
        "warmup_epochs": 0,
        "anneal_epochs": 0,
    },
    "reducible": {  # irreducible losses of the rho methods (benchmarks/grid/static_scores.py)
        "model": None,  # a model name (config MODELS); None: the run's own model
        "epochs": 1,  # training epochs of each irreducible-loss model on its half
    },
    "static": {  # scoring recipes of the static-* methods (benchmarks/grid/static_scores.py)
        "epochs": 2,  # training epochs before EL2N, curvature and the herding/k-center proxy
        "runs": 2,  # EL2N runs and GraNd initialisations averaged
        "grand_epochs": 0,  # GraNd at initialisation, as published
        "grand_chunk_size": 256,  # samples per vmap chunk of GraNd's per-sample gradients
        "forgetting_epochs": None,  # None: as many as train.epochs (a whole training run)
        "curvature_directions": 10,
        "class_balanced": True,  # every class keeps its share of the budget
    },
    "benchmark": {
        "baselines": ["full", "full-same-budget"],
        # Extra points of the full-data curve: all data for these shares of the steps of a
        # run (full-same-budget runs), beside those at the keep ratios; methods are compared
        # with the curve at their own time (summary column delta_vs_curve).
        "curve": [],
        "seeds": 3,  # a count (seeds 0..n-1) or an explicit list
        "target_drop": 0.5,  # time to target: full's final accuracy minus this many points
        "warmup_steps": 20,  # untimed steps first, so run one does not pay for start-up
    },
}


def load_config(path: str | Path) -> dict[str, Any]:
    """Reads a YAML config and merges it over :data:`DEFAULTS` (not yet validated).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the file is not a mapping of sections or names an unknown key.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} does not exist")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(
            f"config {str(path)!r} must be a mapping of sections, got {type(raw).__name__}"
        )
    cfg = copy.deepcopy(DEFAULTS)
    cfg["name"] = raw.pop("name", path.stem)
    for section, values in raw.items():
        if section not in DEFAULTS:
            raise ValueError(
                f"unknown config section {section!r}; valid sections: {sorted(DEFAULTS)}"
            )
        if not isinstance(values, dict):
            raise ValueError(f"config section {section!r} must be a mapping, got {values!r}")
        for key, value in values.items():
            if key not in DEFAULTS[section]:
                raise ValueError(
                    f"unknown config key '{section}.{key}'; valid keys: {sorted(DEFAULTS[section])}"
                )
            cfg[section][key] = value
    return cfg


def apply_overrides(cfg: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Returns a copy of ``cfg`` with dotted ``overrides`` (``{"train.epochs": 3}``) applied."""
    cfg = copy.deepcopy(cfg)
    for dotted, value in overrides.items():
        section, key = dotted.split(".", 1)
        if section not in DEFAULTS or key not in DEFAULTS[section]:
            raise ValueError(f"unknown config key {dotted!r}")
        cfg[section][key] = value
    return cfg


def _fail(key: str, value: Any, requirement: str) -> ValueError:
    return ValueError(f"{key} must be {requirement}, got {value!r}")


def _int(cfg: dict[str, Any], dotted: str, minimum: int) -> None:
    section, key = dotted.split(".")
    value = cfg[section][key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(dotted, value, f"an integer >= {minimum}")


def _number(
    cfg: dict[str, Any], dotted: str, low: float, high: float, *, open_low: bool = False
) -> None:
    section, key = dotted.split(".")
    value = cfg[section][key]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not (value > low if open_low else value >= low) or value > high:
        raise _fail(dotted, value, f"a number in {'(' if open_low else '['}{low}, {high}]")


def _choice(cfg: dict[str, Any], dotted: str, choices: tuple[str, ...]) -> None:
    section, key = dotted.split(".")
    value = cfg[section][key]
    if value not in choices:
        raise ValueError(f"unknown {dotted} {value!r}; valid choices: {list(choices)}")


def validate_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """Checks every value of a merged config and returns it with normalised seeds and paths.

    Raises:
        ValueError: naming the key and the value, e.g. an unknown policy, a keep ratio outside
            (0, 1], a missing data root, an unknown dataset or model.
    """
    from benchmarks.grid.methods import is_method, method, valid_methods
    from benchmarks.grid.oracle import ORACLES

    data, train, pruning, bench = cfg["data"], cfg["train"], cfg["pruning"], cfg["benchmark"]
    own_data = _validate_factories(cfg)
    if not own_data:
        _choice(cfg, "data.dataset", DATASETS)
    if cfg["model"]["factory"] is None:
        _choice(cfg, "model.name", MODELS)
    _choice(cfg, "data.loader", LOADERS)
    _choice(cfg, "train.loop", LOOPS)
    _choice(cfg, "train.optimizer", OPTIMIZERS)
    _choice(cfg, "train.schedule", SCHEDULES)
    _choice(cfg, "train.amp", AMP_MODES)
    if not own_data:
        _validate_data(data)
    _validate_device(train["device"])
    _int(cfg, "data.num_workers", 0)
    _int(cfg, "data.label_noise_seed", 0)
    for key in ("train.epochs", "train.batch_size", "train.eval_batch_size", "train.eval_every"):
        _int(cfg, key, 1)
    if train["threads"] is not None:
        _int(cfg, "train.threads", 1)
    _number(cfg, "train.lr", 0.0, float("inf"), open_low=True)
    _number(cfg, "train.momentum", 0.0, 1.0)
    _number(cfg, "train.weight_decay", 0.0, float("inf"))
    _number(cfg, "train.warmup_fraction", 0.0, 1.0)
    _number(cfg, "train.label_smoothing", 0.0, 1.0)
    _number(cfg, "benchmark.target_drop", 0.0, 100.0)
    _int(cfg, "benchmark.warmup_steps", 0)

    policies = pruning["policies"]
    if not isinstance(policies, list):
        raise _fail("pruning.policies", policies, "a list")
    for i, policy in enumerate(policies):
        if not is_method(policy):
            raise ValueError(
                f"unknown policy {policy!r} in pruning.policies[{i}]; {valid_methods()}"
            )
        try:
            parsed = method(policy)
        except ValueError as error:  # a known method with a suffix it does not take
            raise ValueError(f"pruning.policies[{i}] {error}") from None
        if parsed.scored and own_data:
            raise ValueError(
                f"pruning.policies[{i}] {policy!r} needs a built-in data set (its scoring run "
                "reads the decoded train split): it is not available with data.factory"
            )
        if parsed.policy in ORACLES and not data["label_noise"]:
            raise ValueError(
                f"pruning.policies[{i}] {policy!r} draws from the labels the benchmark did not "
                f"flip: data.label_noise must be > 0, got {data['label_noise']!r}"
            )
        if parsed.scored and data["streaming"]:
            raise ValueError(
                f"pruning.policies[{i}] {policy!r} needs the train split in memory: "
                "data.streaming must be false"
            )
    ratios = pruning["keep_ratios"]
    if not isinstance(ratios, list) or not ratios:
        raise _fail("pruning.keep_ratios", ratios, "a non-empty list")
    for i, ratio in enumerate(ratios):
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 < ratio <= 1.0:
            raise _fail(f"pruning.keep_ratios[{i}]", ratio, "in (0, 1]")
    pruning["keep_ratios"] = [float(r) for r in ratios]
    _int(cfg, "pruning.warmup_epochs", 0)
    _int(cfg, "pruning.anneal_epochs", 0)
    if pruning["warmup_epochs"] + pruning["anneal_epochs"] >= train["epochs"]:
        raise ValueError(
            f"pruning.warmup_epochs ({pruning['warmup_epochs']}) + pruning.anneal_epochs "
            f"({pruning['anneal_epochs']}) must be smaller than train.epochs ({train['epochs']}), "
            "otherwise no epoch is pruned"
        )
    warmup, anneal = pruning["warmup_epochs"], pruning["anneal_epochs"]
    for policy in policies:  # an annealing method must fit its phases into the budget
        parsed = method(policy)
        for keep in pruning["keep_ratios"]:
            parsed.phases(parsed.keeps(keep)[0], train["epochs"], warmup, anneal)

    baselines = bench["baselines"]
    if not isinstance(baselines, list):
        raise _fail("benchmark.baselines", baselines, "a list")
    for i, name in enumerate(baselines):
        if name not in BASELINES:
            raise ValueError(
                f"unknown baseline {name!r} in benchmark.baselines[{i}]; valid: {list(BASELINES)}"
            )
    curve = bench["curve"]
    if not isinstance(curve, list):
        raise _fail("benchmark.curve", curve, "a list of fractions in (0, 1)")
    for i, share in enumerate(curve):
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share < 1:
            raise _fail(f"benchmark.curve[{i}]", share, "in (0, 1)")
    bench["curve"] = [float(share) for share in curve]
    bench["seeds"] = _seed_list(bench["seeds"])
    _validate_static(cfg)
    _int(cfg, "reducible.epochs", 1)
    if cfg["reducible"]["model"] is not None:
        _choice(cfg, "reducible.model", MODELS)
    return cfg


def _validate_factories(cfg: dict[str, Any]) -> bool:
    """Checks the user's factories (each must import); returns whether the data is the user's."""
    for dotted in ("data.factory", "model.factory", "train.loss"):
        section, key = dotted.split(".")
        if cfg[section][key] is not None:
            resolve(cfg[section][key], dotted)
    data = cfg["data"]
    if data["factory"] is None:
        return False
    if data["factory"] is not None and cfg["model"]["factory"] is None:
        raise ValueError("data.factory needs a model.factory too (pass --model-factory)")
    if data["loader"] != "dataloader":
        raise _fail("data.loader", data["loader"], "'dataloader' with data.factory")
    for key, unused in (("root", None), ("train_subset", None), ("test_subset", None)):
        if data[key] is not unused:
            raise _fail(f"data.{key}", data[key], "null with data.factory")
    if data["label_noise"] != 0.0 or data["streaming"] or data["augment"]:
        raise ValueError(
            "data.label_noise, data.streaming and data.augment apply to the built-in data sets, "
            "not to data.factory's: set them to 0, false and false"
        )
    _int(cfg, "data.num_workers", 0)
    return True


def _validate_static(cfg: dict[str, Any]) -> None:
    static = cfg["static"]
    for key, minimum in (("epochs", 0), ("runs", 1), ("grand_epochs", 0)):
        _int(cfg, f"static.{key}", minimum)
    for key in ("grand_chunk_size", "forgetting_epochs"):
        if static[key] is not None:
            _int(cfg, f"static.{key}", 1)
    _int(cfg, "static.curvature_directions", 1)
    if not isinstance(static["class_balanced"], bool):
        raise _fail("static.class_balanced", static["class_balanced"], "true or false")


def _seed_list(seeds: Any) -> list[int]:
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise _fail(
                "benchmark.seeds", seeds, "a positive count or a non-empty list of integers"
            )
        return list(range(seeds))
    if (
        isinstance(seeds, list)
        and seeds
        and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    ):
        if len(set(seeds)) != len(seeds):
            raise _fail("benchmark.seeds", seeds, "a list without repeats")
        return list(seeds)
    raise _fail("benchmark.seeds", seeds, "a positive count or a non-empty list of integers")


def _validate_data(data: dict[str, Any]) -> None:
    root = data["root"]
    if data["dataset"] == "imagefolder" and root is None:
        raise ValueError("data.root is required for data.dataset 'imagefolder' (pass --data-root)")
    if root is not None:
        path = Path(root).expanduser()
        if not path.is_dir():
            raise ValueError(f"data.root {str(root)!r} does not exist or is not a directory")
        if data["dataset"] == "imagefolder" and not all(
            (path / split).is_dir() for split in ("train", "test")
        ):
            raise ValueError(f"data.root {str(root)!r} must hold train/ and test/ class folders")
        data["root"] = str(path.resolve())
    if data["dataset"] == "digits" and root is not None:
        raise ValueError(
            "data.root must be null for data.dataset 'digits' (it ships with scikit-learn), "
            f"got {root!r}"
        )
    noise = data["label_noise"]
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0.0 <= noise < 1.0:
        raise _fail("data.label_noise", noise, "a number in [0, 1)")
    if data["label_noise_kind"] not in ("symmetric", "asymmetric"):
        raise _fail("data.label_noise_kind", data["label_noise_kind"], "symmetric or asymmetric")
    for key in ("train_subset", "test_subset", "image_size"):
        value = data[key]
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise _fail(f"data.{key}", value, "null or a positive integer")
    if data["streaming"] and (data["dataset"] != "imagefolder" or data["loader"] != "dataloader"):
        raise ValueError(
            f"data.streaming=True needs data.dataset 'imagefolder' and data.loader 'dataloader', "
            f"got {data['dataset']!r} and {data['loader']!r}"
        )
    if data["streaming"] and data["label_noise"] > 0:
        raise _fail("data.label_noise", data["label_noise"], "0 when data.streaming is true")
    if data["streaming"] and data["train_subset"] is not None:
        raise _fail("data.train_subset", data["train_subset"], "null when data.streaming is true")


def _validate_device(device: Any) -> None:
    if device == "auto" or device == "cpu":
        return
    if not isinstance(device, str) or not device.startswith("cuda"):
        raise ValueError(f"train.device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    try:
        torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"train.device {device!r} is not a valid device: {err}") from None
    if not torch.cuda.is_available():
        raise ValueError(
            f"train.device {device!r} requested but CUDA is not available on this machine"
        )
