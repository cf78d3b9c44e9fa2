#!/usr/bin/env bash
# After long10: ucb-var under noise (3 seeds, both keeps) beside epsilon_greedy at 10 epochs.
while pgrep -f "results/long10.sh" > /dev/null; do sleep 20; done
cd /work/wt16
R="python benchmarks/run.py --config configs/cifar10-50k.yaml --data-root /work/shared/data/cifar10-jpeg --no-progress --baselines none"
$R --out /work/main/results/50k-noise-V --label-noise 0.2 --policies ucb-var &
$R --out /work/main/results/50k-long10-C --epochs 10 --keep-ratios 0.5 --curve '' --policies epsilon_greedy &
wait
