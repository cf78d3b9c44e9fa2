"""Merging per-job results folders (benchmarks.grid.merge) and their paired tables
(benchmarks.grid.paired), on small synthetic folders."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from benchmarks.grid.merge import merge_folders


def job(root: Path, name: str, method: str, seed: int, acc: float, extra: bool = False) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    cfg = {
        "data": {"label_noise": 0.2},
        "model": {"name": "small_cnn"},
        "train": {"lr": 0.2},
        "pruning": {"policies": [method]},
        "benchmark": {"seeds": [seed]},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    (folder / "environment.json").write_text(f'{{"job": "{name}"}}')
    (folder / "versions.txt").write_text(name)
    fields = ["method", "keep_ratio", "seed", "final_acc"] + (["new"] if extra else [])
    with (folder / "runs.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        row = {"method": method, "keep_ratio": "0.5", "seed": str(seed), "final_acc": str(acc)}
        writer.writerow({**row, **({"new": "x"} if extra else {})})
    return folder


def rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "runs.csv").open() as f:
        return list(csv.DictReader(f))


def test_parts_merge_into_one_folder_and_later_parts_replace_the_same_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    a, b = job(tmp_path, "a", "uniform", 0, 60.0), job(tmp_path, "b", "ucb", 1, 61.0)
    assert merge_folders([a, b], out, report=False) == 2
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["pruning"]["policies"] == ["uniform", "ucb"] and cfg["benchmark"]["seeds"] == [0, 1]
    assert (out / "environment.json").read_text() == '{"job": "a"}'
    # a later session: a rerun of uniform seed 0 replaces it, a new method with a new column adds
    c = job(tmp_path, "c", "uniform", 0, 62.5)
    d = job(tmp_path, "d", "oracle-clean", 0, 63.0, extra=True)
    assert merge_folders([c, d], out, report=False) == 3
    merged = {(r["method"], r["seed"]): r for r in rows(out)}
    assert merged[("uniform", "0")]["final_acc"] == "62.5"
    assert merged[("ucb", "1")]["new"] == "" and merged[("oracle-clean", "0")]["new"] == "x"
    assert (out / "environment.json").read_text() == '{"job": "a"}'  # the committed one kept
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["pruning"]["policies"] == ["uniform", "ucb", "oracle-clean"]


def test_parts_of_another_recipe_or_none_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="parts: no folder with a runs.csv"):
        merge_folders([tmp_path / "missing"], tmp_path / "out", report=False)
    a = job(tmp_path, "a", "uniform", 0, 60.0)
    b = job(tmp_path, "b", "ucb", 0, 61.0)
    cfg = yaml.safe_load((b / "config.yaml").read_text())
    cfg["train"]["lr"] = 0.1
    (b / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ValueError, match="has another train section"):
        merge_folders([a, b], tmp_path / "out", report=False)


def test_paired_tables_difference_each_method_with_each_reference_by_seed(tmp_path: Path) -> None:
    from benchmarks.grid.paired import table

    with (tmp_path / "runs.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "keep_ratio", "seed", "final_acc"])
        for seed, (u, r, x) in enumerate([(60, 59, 62), (61, 60, 64), (62, 62, 65)]):
            writer.writerows([["uniform", 0.5, seed, u], ["static-random", 0.5, seed, r]])
            writer.writerow(["static-learned", 0.5, seed, x])
        writer.writerow(["full", 1.0, 0, 70])
    with (tmp_path / "flags.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "keep_ratio", "seed", "auc_loss", "seen_flipped_share"])
        writer.writerows([["static-random", 0.5, 0, 0.9, 0.2], ["static-random", 0.5, 1, 0.8, ""]])
    text = table(tmp_path, ["static-random", "uniform"], title="t")
    rows = {line.split(" | ")[0][2:]: line for line in text.splitlines() if line.startswith("| ")}
    # learned - random: 3, 4, 3 -> +3.33 ± 0.58, 10.0 standard errors; - uniform: 2, 3, 3
    assert "| +3.33 ± 0.58 | +10.0 | +2.67 ± 0.58 |" in rows["static-learned"]
    assert rows["full"].endswith("| 70.00 ± nan |  |  |  |")
    assert "| static-random | 0.5 | 0.850 | 0.200 |" in text
    with pytest.raises(ValueError, match="references: name at least one"):
        table(tmp_path, [])


def test_parts_merge_only_the_named_methods(tmp_path: Path) -> None:
    out = tmp_path / "out"
    a, b = job(tmp_path, "a", "ucb", 0, 60.0), job(tmp_path, "b", "uniform", 1, 61.0)
    assert merge_folders([a, b], out, report=False, methods=["uniform"]) == 1
    assert [(r["method"], r["seed"]) for r in rows(out)] == [("uniform", "1")]
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["pruning"]["policies"] == ["uniform"] and cfg["benchmark"]["seeds"] == [1]
    # into a folder that exists: the filter applies to the parts, the committed rows stay
    c = job(tmp_path, "c", "full", 2, 70.0)
    assert merge_folders([a, c], out, report=False, methods={"full"}) == 2
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["pruning"]["policies"] == ["uniform"] and cfg["benchmark"]["baselines"] == ["full"]
    assert cfg["benchmark"]["seeds"] == [1, 2] and cfg["pruning"]["keep_ratios"] == [0.5]
    for bad, match in (([], "got \\[\\]"), ("uniform", "got 'uniform'"), (["ucbb"], "no part")):
        with pytest.raises(ValueError, match=match):
            merge_folders([a], out, report=False, methods=bad)


def test_a_rerun_replaces_its_run_however_the_numbers_are_written(tmp_path: Path) -> None:
    out = tmp_path / "out"
    merge_folders([job(tmp_path, "a", "uniform", 0, 60.0)], out, report=False)
    b = job(tmp_path, "b", "uniform", 0, 61.0)
    text = (b / "runs.csv").read_text().replace(",0.5,0,", ",0.50,0,")
    (b / "runs.csv").write_text(text)
    assert merge_folders([b], out, report=False) == 1
    assert rows(out)[0]["final_acc"] == "61.0"
