#!/usr/bin/env bash
# keep 0.3 at lr 0.2, clean (stream A) and 20 % symmetric noise (stream B), after grid2.sh.
#   bash docs/results/cifar10-50k-clean-select/grid3.sh A & bash docs/results/cifar10-50k-clean-select/grid3.sh B
set -euo pipefail
cd "$(dirname "$0")/../../.."
R() { python benchmarks/run.py --config configs/cifar10-50k.yaml --data-root ../shared/data/cifar10-jpeg \
        --no-progress --curve "" --lr 0.2 --keep-ratios 0.3 --policies uniform,ucb,guarded_ucb \
        --baselines full-same-budget "$@"; }
if [ "$1" = A ]; then R --out results/g26-clean-k03; else R --label-noise 0.2 --out results/g26-sym20-k03; fi
