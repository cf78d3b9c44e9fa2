#!/usr/bin/env bash
# Issue-14 completion grid (session 3): the missing seeds and ucb under noise.
set -x
D="--data-root ../shared/data/cifar10-jpeg --no-progress"
R="python benchmarks/run.py --config configs/cifar10-50k.yaml $D"
S="python benchmarks/run.py --config results/cifar10-50k-seeds12.yaml $D --baselines none"
S1="python benchmarks/run.py --config results/cifar10-50k-seed1.yaml $D --baselines none"
S2="python benchmarks/run.py --config results/cifar10-50k-seed2.yaml $D --baselines none"
case $1 in
clean)
  $S --out results/50k-clean-B4 --policies sb,ucb+sb --keep-ratios 0.3
  $S --out results/50k-clean-B5 --policies rho-batch --keep-ratios 0.3,0.5
  ;;
noise)
  $R --out results/50k-noise-D --label-noise 0.2 --policies ucb --baselines none
  $S --out results/50k-noise-B4 --label-noise 0.2 --policies sb --keep-ratios 0.3
  $S2 --out results/50k-noise-B5 --label-noise 0.2 --policies rho,rho-holdout --keep-ratios 0.3,0.5
  $S1 --out results/50k-noise-B6 --label-noise 0.2 --policies rho-holdout --keep-ratios 0.5
  $S --out results/50k-noise-B7 --label-noise 0.2 --policies rho-batch --keep-ratios 0.3,0.5
  ;;
esac
