"""The SST-2 text benchmark's grid and data reading (no training: that is the smoke run's)."""

import pytest

pytest.importorskip("transformers")

from benchmarks.text.run import build_grid, parse_args
from benchmarks.text.sst2 import load_split
from dynaprune import DynamicPruningSampler


def test_the_grid_pairs_seeds_and_matches_budgets(tmp_path):
    args = parse_args(["--out", str(tmp_path), "--seeds", "0,1", "--epochs", "3"])
    grid = build_grid(args, 1000)
    assert len(grid) == 2 * (1 + 2 * 4)  # per seed: full, and per keep the curve and 3 policies
    budget = {(s.keep_ratio, s.seed): s for s in grid if s.method == "full-same-budget"}
    for spec in grid:
        if spec.method in ("uniform", "ucb", "epsilon_greedy"):
            pruned = DynamicPruningSampler(1000, spec.keep_ratio, seed=spec.seed)
            steps = pruned.total_steps(args.batch_size, epochs=3)
            assert budget[(spec.keep_ratio, spec.seed)].max_steps == steps


def test_unknown_methods_are_refused(tmp_path):
    with pytest.raises(SystemExit):
        parse_args(["--out", str(tmp_path), "--methods", "full,ucbb"])


def test_phrases_with_quotes_are_read_whole(tmp_path):
    (tmp_path / "dev.tsv").write_text('label\tcontent\n1\ta "quoted phrase\n0\t" plain\n')
    texts, labels = load_split(tmp_path, "dev")
    assert labels == [1, 0] and texts == ['a "quoted phrase', '" plain']
