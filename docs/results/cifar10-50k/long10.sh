#!/usr/bin/env bash
# Does ucb's keep-0.5 win on the 50k preset hold for a run twice as long (10 epochs)?
# Two one-thread processes side by side (accuracy only), from the package layout with ucb-var.
R="python benchmarks/run.py --config configs/cifar10-50k.yaml --data-root /work/shared/data/cifar10-jpeg --no-progress --epochs 10 --keep-ratios 0.5 --curve ''"
eval $R --out /work/main/results/50k-long10-A --policies uniform --baselines full-same-budget &
eval $R --out /work/main/results/50k-long10-B --policies ucb,ucb-var --baselines none &
wait
