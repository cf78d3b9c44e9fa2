#!/usr/bin/env bash
# The second half of the grid, after the first parts of grid.sh (clean and 20 % noise, keep 0.5)
# showed the guard failing at the tuned learning rate: 40 % asymmetric noise at keep 0.5 (stream
# A), and guarded_ucb at the previous rate 0.1 on clean and 20 % noise (stream B), paired with
# the committed uniform and ucb runs of docs/results/cifar10-50k and cifar10-50k-noise (ucb again
# on clean labels: whether the library still draws the committed runs' subsets).
#   bash docs/results/cifar10-50k-clean-select/grid2.sh A   # and, at the same time,
#   bash docs/results/cifar10-50k-clean-select/grid2.sh B
set -euo pipefail
cd "$(dirname "$0")/../../.."
R() { python benchmarks/run.py --config configs/cifar10-50k.yaml --data-root ../shared/data/cifar10-jpeg \
        --no-progress --curve "" "$@"; }
if [ "$1" = A ]; then
  R --lr 0.2 --out results/g26-asym40-k05 --label-noise 0.4 --label-noise-kind asymmetric \
    --keep-ratios 0.5 --policies uniform,ucb,guarded_ucb --baselines full-same-budget
else
  R --lr 0.1 --out results/g26-lr01-clean-k05 --keep-ratios 0.5 --policies guarded_ucb,ucb --baselines none
  R --lr 0.1 --out results/g26-lr01-sym20-k05 --label-noise 0.2 --keep-ratios 0.5 --policies guarded_ucb --baselines none
fi
