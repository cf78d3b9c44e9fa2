#!/usr/bin/env bash
# The learned selector's grid (issue 24 §2) on the 8,000-image preset where the static scores
# were measured (configs/cifar10-cpu.yaml: small CNN, 16 epochs, lr 0.1), clean and with 20 %
# symmetric label noise, keep 0.3 and 0.5, seeds 0-2. One method and seed per job (both keep
# ratios share its scoring run; the test set is evaluated after the last epoch only);
# one-thread workers take jobs from a queue (accuracy only):
#   bash grid.sh queue | xargs -P 2 -L 1 bash grid.sh job   # every job, seed by seed
#   bash grid.sh merge                    # results/l24/* -> clean/, noise20/, with the reports
# Jobs: SET METHOD SEED [KEEPS], SET one of clean, noise20, clean50k, noise50k, KEEPS default 0.3,0.5 (results in
# results/l24/SET-METHOD-sSEED, or SET-METHOD-sSEED-kKEEPS when KEEPS is given).
# The whole 50k set (configs/cifar10-50k.yaml at lr 0.2, the preset and learning rate of
# docs/clean-selection.md, whose uniform runs at keep 0.3 and 0.5 this grid pairs with): sets
# clean50k and noise50k, queued by `bash grid.sh queue50k`, merged by `bash grid.sh merge50k`
# into 50k-clean/ and 50k-noise20/ with uniform's rows from
# docs/results/cifar10-50k-clean-select/rerun (the same command, run on the same machine).
set -euo pipefail
cd "$(dirname "$0")/../../.."
# the comparison first, then each of the selector's indicators alone
METHODS="uniform static-random static-herding static-learned static-learned-linear"
ALONE="static-alone-loss_mean static-alone-loss_spread static-alone-forgetting static-alone-el2n
static-alone-margin"
if [ "${1:-}" = queue ]; then
  for s in 0 1 2; do for set in noise20 clean; do for m in $METHODS; do
    echo "$set $m $s"; done; done; done
  # uniform at keep 0.7: about the time of a static method at 0.5 with its scoring run
  for s in 0 1 2; do for set in noise20 clean; do echo "$set uniform $s 0.7"; done; done
  for s in 0 1 2; do for set in noise20 clean; do for m in $ALONE; do
    echo "$set $m $s 0.5"; done; done; done  # at keep 0.5 only, to fit the session
  exit 0
fi
if [ "${1:-}" = queue50k ]; then
  for s in 0 1 2; do for set in noise50k clean50k; do
    for m in static-learned-linear static-random static-herding; do
      echo "$set $m $s"; done; done; done
  for s in 0 1 2; do for set in noise50k clean50k; do echo "$set uniform $s 0.7"; done; done
  # the attention selector, under noise only (what fitted the session)
  for s in 0 1 2; do echo "noise50k static-learned $s"; done
  exit 0
fi
if [ "${1:-}" = merge50k ]; then
  rerun=docs/results/cifar10-50k-clean-select/rerun
  for pair in clean:clean noise20:sym20; do
    set=${pair%:*}; preset=${pair#*:}; out=docs/results/cifar10-learned/50k-$set
    python -m benchmarks.grid.merge --methods uniform $out $rerun/$preset-k0.3 $rerun/$preset-k0.5
    python -m benchmarks.grid.merge $out results/l24/${set%20}50k-*
  done
  exit 0
fi
if [ "${1:-}" = merge ]; then
  for set in clean noise20; do
    python -m benchmarks.grid.merge docs/results/cifar10-learned/$set results/l24/$set-*
  done
  exit 0
fi
[ "${1:-}" = job ] || { echo "usage: grid.sh queue | queue50k | job SET METHOD SEED [KEEPS] | merge | merge50k" >&2; exit 2; }
set=$2; method=$3; seed=$4; keeps=${5:-0.3,0.5}
out=results/l24/$set-$method-s$seed${5:+-k$5}
[ -f "$out/runs.csv" ] && exit 0  # done already
rm -rf "$out"
config=configs/cifar10-cpu.yaml; extra=(--eval-every 16)
case $set in
  clean) ;;
  noise20) extra+=(--label-noise 0.2) ;;
  # the 50k preset evaluates after its last epoch (its eval_every), as the uniform runs paired with
  clean50k) config=configs/cifar10-50k.yaml; extra=(--lr 0.2) ;;
  noise50k) config=configs/cifar10-50k.yaml; extra=(--lr 0.2 --label-noise 0.2) ;;
  *) echo "unknown set $set" >&2; exit 2 ;;
esac
python benchmarks/run.py --config $config --data-root ../shared/data/cifar10-jpeg \
  --no-progress --curve "" --baselines "" "${extra[@]}" --keep-ratios "$keeps" \
  --seeds "$seed," \
  --policies "$method" --out "$out"
