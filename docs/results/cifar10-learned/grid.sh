#!/usr/bin/env bash
# The learned selector's grid (issue 24 §2) on the 8,000-image preset where the static scores
# were measured (configs/cifar10-cpu.yaml: small CNN, 16 epochs, lr 0.1), clean and with 20 %
# symmetric label noise, keep 0.3 and 0.5, seeds 0-2. One method and seed per job (both keep
# ratios share its scoring run; the test set is evaluated after the last epoch only);
# one-thread workers take jobs from a queue (accuracy only):
#   bash grid.sh queue > /tmp/q          # every job, seed by seed
#   (each worker) while read -r job; do bash grid.sh job $job; done < /tmp/q
#   bash grid.sh merge                    # results/l24/* -> clean/, noise20/, with the reports
# Jobs: SET METHOD SEED [KEEPS], SET one of clean, noise20, KEEPS default 0.3,0.5 (results in
# results/l24/SET-METHOD-sSEED, or SET-METHOD-sSEED-kKEEPS when KEEPS is given).
set -euo pipefail
cd "$(dirname "$0")/../../.."
# the comparison first, then each of the selector's indicators alone
METHODS="uniform static-random static-herding static-learned static-learned-linear"
ALONE="static-alone-loss_mean static-alone-loss_spread static-alone-forgetting static-alone-el2n
static-alone-margin"
if [ "$1" = queue ]; then
  for s in 0 1 2; do for set in noise20 clean; do for m in $METHODS; do
    echo "$set $m $s"; done; done; done
  # uniform at keep 0.7: about the time of a static method at 0.5 with its scoring run
  for s in 0 1 2; do for set in noise20 clean; do echo "$set uniform $s 0.7"; done; done
  for s in 0 1 2; do for set in noise20 clean; do for m in $ALONE; do
    echo "$set $m $s 0.5"; done; done; done  # at keep 0.5 only, to fit the session
  exit 0
fi
if [ "$1" = merge ]; then
  for set in clean noise20; do
    python -m benchmarks.grid.merge docs/results/cifar10-learned/$set results/l24/$set-*
  done
  exit 0
fi
[ "$1" = job ] || { echo "usage: grid.sh queue | job SET METHOD SEED [KEEPS] | merge" >&2; exit 2; }
set=$2; method=$3; seed=$4; keeps=${5:-0.3,0.5}
out=results/l24/$set-$method-s$seed${5:+-k$5}
[ -f "$out/runs.csv" ] && exit 0  # done already
rm -rf "$out"
case $set in
  clean) extra=() ;;
  noise20) extra=(--label-noise 0.2) ;;
  *) echo "unknown set $set" >&2; exit 2 ;;
esac
python benchmarks/run.py --config configs/cifar10-cpu.yaml --data-root ../shared/data/cifar10-jpeg \
  --no-progress --curve "" --baselines "" --eval-every 16 "${extra[@]}" --keep-ratios "$keeps" \
  --seeds "$seed," \
  --policies "$method" --out "$out"
