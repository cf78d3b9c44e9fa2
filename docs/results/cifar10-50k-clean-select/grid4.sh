#!/usr/bin/env bash
# guarded_ucb-robust (the guard's fit on losses winsorised at the 98th percentile, flagged
# samples left to the exploration draw) beside the committed uniform / ucb / full-same-budget
# runs of grid.sh, grid2.sh and grid3.sh, at lr 0.2; scarce data (cifar10-long) at its preset's
# lr 0.1 beside its committed runs. Seed 0 at keep 0.5 ran first as the screen (with
# guarded_ucb-robust-drop), in two one-thread streams on two cores (accuracy only):
#   bash docs/results/cifar10-50k-clean-select/grid4.sh screen-A & bash .../grid4.sh screen-B
#   bash docs/results/cifar10-50k-clean-select/grid4.sh A & bash .../grid4.sh B
set -euo pipefail
cd "$(dirname "$0")/../../.."
R() { python benchmarks/run.py --config configs/cifar10-50k.yaml --data-root ../shared/data/cifar10-jpeg \
        --no-progress --curve "" --lr 0.2 --baselines "" "$@"; }
P=guarded_ucb-robust
SYM=(--label-noise 0.2)
ASYM=(--label-noise 0.4 --label-noise-kind asymmetric)
case "$1" in
  screen-A) R --out results/g26r-clean --keep-ratios 0.5 --seeds 1 --policies $P,$P-drop ;;
  screen-B) R --out results/g26r-sym20 "${SYM[@]}" --keep-ratios 0.5 --seeds 1 --policies $P,$P-drop ;;
  A)
    R --out results/g26r-clean-s12 --keep-ratios 0.5 --seeds 1,2 --policies $P
    R --out results/g26r-asym40 "${ASYM[@]}" --keep-ratios 0.5 --seeds 3 --policies $P
    R --out results/g26r-clean-k03 --keep-ratios 0.3 --seeds 3 --policies $P
    ;;
  B)
    R --out results/g26r-sym20-s12 "${SYM[@]}" --keep-ratios 0.5 --seeds 1,2 --policies $P
    R --out results/g26r-sym20-k03 "${SYM[@]}" --keep-ratios 0.3 --seeds 3 --policies $P
    python benchmarks/run.py --config configs/cifar10-long.yaml --data-root ../shared/data/cifar10-jpeg \
      --no-progress --curve "" --baselines "" --keep-ratios 0.5 --seeds 3 --policies $P \
      --out results/g26r-long
    ;;
esac
