#!/usr/bin/env bash
# Copy the parts of the clean-selection study from results/ into this folder and rebuild the
# reports; the lr-0.1 folders take keep 0.5's uniform, ucb and full-same-budget runs from the
# committed cifar10-50k(-noise) results, beside the new guarded_ucb runs.
set -euo pipefail
cd "$(dirname "$0")/../../.."
D=docs/results/cifar10-50k-clean-select
copy() {  # copy SRC DEST [raw]: raw keeps the runs without rebuilding the report
  rm -rf "$2"; mkdir -p "$2"
  cp "$1"/{config.yaml,environment.json,versions.txt,runs.csv,curves.csv} "$2/"
  if [ -f "$1/flags.csv" ]; then cp "$1/flags.csv" "$2/"; fi
  if [ "${3:-}" != raw ]; then python benchmarks/run.py --report-only --out "$2" > /dev/null; fi
}
copy results/g26-clean-k05 $D/clean
copy results/g26-sym20-k05 $D/sym20
copy results/g26-asym40-k05 $D/asym40
copy results/g26-clean-k03 $D/clean-k03
copy results/g26-sym20-k03 $D/sym20-k03
for lr in 0.05 0.2 0.4; do copy results/lr-clean-$lr $D/lr-sweep/clean-$lr; done
copy results/lr-sym20-0.2 $D/lr-sweep/sym20-0.2
for lr in 0.1 0.2; do copy results/lr-asym40-$lr $D/lr-sweep/asym40-$lr; done
for p in pilot-clean pilot-sym20 pilotB-clean pilotB-sym20 pilotB-sym20-drop pilotC-clean; do
  copy results/$p $D/screen/$p raw  # method names of the code at the time (screen/README.md)
done
for kind in clean sym20; do
  src=docs/results/cifar10-50k; [ $kind = sym20 ] && src=docs/results/cifar10-50k-noise
  copy results/g26-lr01-$kind-k05 $D/lr01-$kind
  python - "$src" "$D/lr01-$kind" <<'PY'
import csv, sys
src, out = sys.argv[1], sys.argv[2]
for name in ("runs.csv", "curves.csv"):
    new = list(csv.DictReader(open(f"{out}/{name}")))
    have = {r["method"] for r in new}
    old = [r for r in csv.DictReader(open(f"{src}/{name}"))
           if r["keep_ratio"] == "0.5" and r["method"] in ("uniform", "ucb", "full-same-budget")
           and r["method"] not in have]
    with open(f"{out}/{name}", "w", newline="") as h:
        w = csv.DictWriter(h, fieldnames=list(new[0]))
        w.writeheader(); w.writerows(old + new)
PY
  python benchmarks/run.py --report-only --out $D/lr01-$kind > /dev/null
done
