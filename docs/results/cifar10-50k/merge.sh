#!/usr/bin/env bash
# Merge the parts of the cifar10-50k study into docs/results and rebuild the reports.
set -euo pipefail
merge() {  # merge OUT PART...
  out=$1; shift
  rm -rf "$out"; mkdir -p "$out/parts"
  cp "$1"/{config.yaml,environment.json,versions.txt} "$out/"
  for f in runs.csv curves.csv; do
    head -1 "$1/$f" > "$out/$f"
    for p in "$@"; do [ -f "$p/$f" ] && tail -n +2 "$p/$f" >> "$out/$f"; done
  done
  for p in "$@"; do
    [ -f "$p/runs.csv" ] || continue
    name=$(basename "$p"); mkdir -p "$out/parts/$name"
    cp "$p"/{config.yaml,runs.csv} "$out/parts/$name/"
  done
  python benchmarks/run.py --report-only --out "$out" > /dev/null
  python benchmarks/equal_time.py --results "$out" --timing docs/results/cifar10-50k-timing > /dev/null
}
# The timing run alone (results/50k-timing); full, uniform@0.3 and ucb@0.3 timed again alone
# (results/50k-timing2: the first run's uniform and ucb shared the CPU with another job).
rm -rf docs/results/cifar10-50k-timing; cp -r results/50k-timing docs/results/cifar10-50k-timing
# results/50k-timing3: epsilon_greedy and ucb-var, added later, timed alone the same way.
mkdir -p docs/results/cifar10-50k-timing/parts
cp -r results/50k-timing2 docs/results/cifar10-50k-timing/parts/retimed
cp -r results/50k-timing3 docs/results/cifar10-50k-timing/parts/added
for part in 50k-timing2 50k-timing3; do
for f in runs.csv curves.csv; do
  python - "$f" "$part" <<'PY'
import csv, sys
f, part = sys.argv[1], sys.argv[2]
base = "docs/results/cifar10-50k-timing/"
old = list(csv.DictReader(open(base + f)))
new = list(csv.DictReader(open(f"results/{part}/" + f)))
again = {(r["method"], r["keep_ratio"]) for r in new}
rows = [r for r in old if (r["method"], r["keep_ratio"]) not in again] + new
with open(base + f, "w", newline="") as h:
    w = csv.DictWriter(h, fieldnames=list(old[0]))
    w.writeheader(); w.writerows(rows)
PY
done
done
python benchmarks/run.py --report-only --out docs/results/cifar10-50k-timing > /dev/null
merge docs/results/cifar10-50k results/50k-clean-A results/50k-clean-A2 results/50k-clean-A3 results/50k-clean-B results/50k-clean-B2 results/50k-clean-B3 results/50k-clean-B4 results/50k-clean-B5 results/50k-clean-E results/50k-clean-V
merge docs/results/cifar10-50k-noise results/50k-noise-A results/50k-noise-B results/50k-noise-B2 results/50k-noise-B3 results/50k-noise-C results/50k-noise-D results/50k-noise-B4 results/50k-noise-B5 results/50k-noise-B6 results/50k-noise-B7 results/50k-noise-E results/50k-noise-V
# the 10-epoch check of the keep-0.5 winners (no full-data curve: paired against uniform and
# full-same-budget only, so no equal-time table)
merge10() {
  out=docs/results/cifar10-50k-long10; rm -rf "$out"; mkdir -p "$out/parts"
  cp results/50k-long10-A/{config.yaml,environment.json,versions.txt} "$out/"
  for f in runs.csv curves.csv; do
    head -1 results/50k-long10-A/$f > "$out/$f"
    for p in results/50k-long10-A results/50k-long10-B results/50k-long10-C; do tail -n +2 $p/$f >> "$out/$f"; done
  done
  for p in results/50k-long10-A results/50k-long10-B results/50k-long10-C; do
    mkdir -p "$out/parts/$(basename $p)"; cp $p/{config.yaml,runs.csv} "$out/parts/$(basename $p)/"
  done
  python benchmarks/run.py --report-only --out "$out" > /dev/null
}
merge10
cp results/il-quality-noise.log docs/results/cifar10-50k-noise/il_quality.txt
cp results/merge.sh results/extra14.sh results/long10.sh results/after10.sh results/extra14-eg.sh results/cifar10-50k-seeds12.yaml results/cifar10-50k-seed1.yaml results/cifar10-50k-seed2.yaml docs/results/cifar10-50k/
