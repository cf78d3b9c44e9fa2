#!/usr/bin/env bash
# The grid of "selection that cleans" (docs/selection-study.md#selection-that-cleans), in two
# one-thread streams on two cores (accuracy only). Ran at lr 0.2 (the sweep's best for `full`);
# both streams were stopped after their first part (keep 0.5, clean and 20 % noise), once seed 0
# showed the guard failing at this rate; grid2.sh ran instead of the rest.
#   bash docs/results/cifar10-50k-clean-select/grid.sh A LR   # and, at the same time,
#   bash docs/results/cifar10-50k-clean-select/grid.sh B LR
set -euo pipefail
cd "$(dirname "$0")/../../.."
stream=$1; lr=$2
R() { python benchmarks/run.py --config configs/cifar10-50k.yaml --data-root ../shared/data/cifar10-jpeg \
        --no-progress --curve "" --lr "$lr" "$@"; }
P=uniform,ucb,guarded_ucb
SYM=(--label-noise 0.2)
ASYM=(--label-noise 0.4 --label-noise-kind asymmetric)
if [ "$stream" = A ]; then
  R --out results/g26-clean-k05 --keep-ratios 0.5 --policies $P --baselines full-same-budget
  R --out results/g26-clean-k03 --keep-ratios 0.3 --policies $P --baselines full-same-budget
  R --out results/g26-asym40-k05 "${ASYM[@]}" --keep-ratios 0.5 --policies $P --baselines full-same-budget
  R --out results/g26-clean-full --keep-ratios 0.5 --policies "" --baselines full
else
  R --out results/g26-sym20-k05 "${SYM[@]}" --keep-ratios 0.5 --policies $P --baselines full-same-budget
  R --out results/g26-sym20-k03 "${SYM[@]}" --keep-ratios 0.3 --policies $P --baselines full-same-budget
  R --out results/g26-asym40-k03 "${ASYM[@]}" --keep-ratios 0.3 --policies $P --baselines full-same-budget
  R --out results/g26-sym20-full "${SYM[@]}" --keep-ratios 0.5 --policies "" --baselines full
  R --out results/g26-asym40-full "${ASYM[@]}" --keep-ratios 0.5 --policies "" --baselines full
fi
