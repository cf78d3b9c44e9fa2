#!/usr/bin/env bash
# The token-pruning accuracy grid (issue 23 §2) sized for a 2-core CPU session: "vit-mini"
# (ViT-Lite's 6 blocks, patch 4, 64 patch tokens, at width 96), 5,000 training images (the
# benchmark's class-stratified subset), 10 epochs, a class-stratified 5,000 of the test images,
# seeds 0-2. Every token method at keep 0.7; drop and fuse (the two the goals judge) also at
# 0.5; the unpruned ViT for 10 epochs (`full`) and for 5 and 7 (`full-short`, the
# equal-wall-clock curve). One method
# and seed per job, two one-thread workers taking jobs from one queue; train_seconds are
# comparable within the grid (every run had one other one-thread job beside it), not
# machine-alone throughput (docs/results/vit-cifar10-throughput has that):
#   bash grid.sh queue | xargs -P 2 -L 1 bash grid.sh job
#   bash grid.sh merge          # results/vit-acc/* -> this folder, with the report
set -euo pipefail
cd "$(dirname "$0")/../../.."
HERE=docs/results/vit-cifar10-accuracy
export OMP_NUM_THREADS=1  # one thread per job (benchmarks/vit/run.py uses torch's default)
if [ "${1:-}" = queue ]; then
  for s in 0 1 2; do
    echo "full $s 0.7"; echo "full-short $s 0.7"
    for m in drop fuse; do echo "$m $s 0.7,0.5"; done
    for m in random tome attention all-three; do echo "$m $s 0.7"; done
  done
  exit 0
fi
if [ "${1:-}" = merge ]; then
  python -m benchmarks.vit.merge $HERE results/vit-acc/*
  exit 0
fi
[ "${1:-}" = job ] || { echo "usage: grid.sh queue | job METHOD SEED KEEPS | merge" >&2; exit 2; }
method=$2; seed=$3; keeps=$4
out=results/vit-acc/$method-s$seed
python benchmarks/vit/run.py --out "$out" --data-root ../shared/data/cifar10-jpeg \
  --model vit-mini --train-subset 5000 --test-subset 5000 --epochs 10 --curve 0.5 0.7 \
  --methods "$method" --seeds "$seed" --keeps ${keeps//,/ }
