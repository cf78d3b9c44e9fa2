#!/usr/bin/env bash
# Issue-15 completion (session 3): seeds 1 and 2 of the committed spec, the curves, and DC/DSA at
# 20 iterations at ipc 10 (3 seeds).
set -x
C="env PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/condense_run.py --data-root ../shared/data/cifar10-jpeg"
case $1 in
a) $C --config results/condense/seed1.yaml --out results/condense/seed1 ;;
b) $C --config results/condense/seed2.yaml --out results/condense/seed2
   $C --config results/condense/curves.yaml --out results/condense/curves
   $C --config results/condense/gm20.yaml --out results/condense/gm20 ;;
esac
