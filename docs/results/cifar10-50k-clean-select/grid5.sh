#!/usr/bin/env bash
# The guarded_ucb variants' grid, with uniform and ucb rerun beside them on the same machine
# (runs of grid.sh-grid3.sh did not reproduce to the hundredth on this session's CPU: ucb seed 0,
# clean, 73.54 % here against 74.08 % committed). One method, one seed per job; two one-thread
# workers take jobs from a queue (accuracy only):
#   bash grid5.sh queue X > /tmp/q     # X: the candidate, e.g. guarded_ucb-robust
#   (two workers) while read -r job; do bash grid5.sh job $job; done
# Before the queue, the same runs as single commands (split into results/g5 per job afterwards):
# the seed-0 screen, `run.py --config configs/cifar10-50k.yaml --lr 0.2 --keep-ratios 0.5
# --baselines "" --seeds 1 --policies guarded_ucb-robust,guarded_ucb-robust-drop [--label-noise
# 0.2]` and `--policies guarded_ucb-clean --label-noise 0.2`; then `--seeds 1,2 --policies
# guarded_ucb-robust` (clean) and `--seeds 1 --policies ucb` (clean).
# Jobs: PRESET METHOD SEED [KEEP]; PRESET one of clean, sym20, asym40 (cifar10-50k, lr 0.2),
# r8clean, r8sym20 (the same with the CIFAR ResNet-8, the second architecture) or long
# (cifar10-long, its preset's lr 0.1). Results in results/g5/PRESET-kKEEP-METHOD-sSEED.
set -euo pipefail
cd "$(dirname "$0")/../../.."
if [ "$1" = queue ]; then
  X=$2
  for s in 0 1 2; do for m in uniform ucb $X; do
    for p in clean sym20; do echo "$p $m $s 0.5"; done; done; done
  for s in 0 1 2; do for m in uniform ucb $X; do echo "asym40 $m $s 0.5"; done; done
  for s in 0 1 2; do for m in uniform $X; do echo "long $m $s 0.5"; done; done
  for s in 0 1 2; do for m in uniform ucb $X; do
    for p in clean sym20; do echo "$p $m $s 0.3"; done; done; done
  exit 0
fi
[ "$1" = job ] || { echo "usage: grid5.sh queue X | job PRESET METHOD SEED KEEP" >&2; exit 2; }
preset=$2; method=$3; seed=$4; keep=${5:-0.5}
out=results/g5/$preset-k$keep-$method-s$seed
[ -f "$out/runs.csv" ] && exit 0  # done already
rm -rf "$out"
case $preset in
  clean) extra=() ;;
  sym20) extra=(--label-noise 0.2) ;;
  asym40) extra=(--label-noise 0.4 --label-noise-kind asymmetric) ;;
  long) extra=() ;;
  r8clean) extra=(--model resnet8) ;;
  r8sym20) extra=(--model resnet8 --label-noise 0.2) ;;
  *) echo "unknown preset $preset" >&2; exit 2 ;;
esac
config=configs/cifar10-50k.yaml; lr=(--lr 0.2)
if [ "$preset" = long ]; then config=configs/cifar10-long.yaml; lr=(); fi
python benchmarks/run.py --config $config --data-root ../shared/data/cifar10-jpeg --no-progress \
  --curve "" --baselines "" "${lr[@]}" "${extra[@]}" --keep-ratios "$keep" --seeds "$seed," \
  --policies "$method" --out "$out"
