#!/usr/bin/env bash
# Issue-14 completion grid (session 3): epsilon_greedy, the seed paper's other bandit, clean and
# noisy; the two ran side by side as one-thread processes.
R="python benchmarks/run.py --config configs/cifar10-50k.yaml --data-root ../shared/data/cifar10-jpeg --no-progress --baselines none"
$R --out results/50k-clean-E --policies epsilon_greedy &
$R --out results/50k-noise-E --label-noise 0.2 --policies epsilon_greedy &
wait
