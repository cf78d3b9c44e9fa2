#!/usr/bin/env bash
# SST-2 through PruningTrainer (benchmarks/text/run.py), keep 0.5 (then 0.3 for uniform, ucb and
# full-same-budget: `queue 0.3`), 3 epochs, 3 seeds, one method
# and one seed per job, two one-thread workers taking jobs from a queue (accuracy first; the
# seconds of runs that shared the machine are not compared across methods):
#   bash docs/results/sst2/grid.sh queue > /tmp/q     # the jobs
#   (two workers) while read -r job; do bash docs/results/sst2/grid.sh job $job; done
#   bash docs/results/sst2/grid.sh merge              # into docs/results/sst2, with the report
set -euo pipefail
cd "$(dirname "$0")/../../.."
COMMON=(--data-root ../shared/data/sst2 --epochs 3)
case "$1" in
  queue)
    if [ "${2:-0.5}" = 0.5 ]; then methods="uniform ucb full-same-budget epsilon_greedy"
    else methods="uniform ucb full-same-budget"; fi
    for s in 0 1 2; do for m in $methods; do echo "$s $m ${2:-0.5}"; done; done ;;
  job)
    keep=${4:-0.5}; out=results/sst2/s$2-$3
    [ "$keep" = 0.5 ] || out=results/sst2/k$keep/s$2-$3
    OMP_NUM_THREADS=1 python benchmarks/text/run.py "${COMMON[@]}" --keep-ratios "$keep" \
      --seeds "$2" --methods "$3" --out "$out" ;;
  merge)
    D=docs/results/sst2
    python - <<'PY'
import csv, glob, shutil
D = "docs/results/sst2"
jobs = sorted(glob.glob("results/sst2/s*-*") + glob.glob("results/sst2/k*/s*-*"))
for name in ("runs.csv", "curves.csv"):
    rows, fields = [], None
    for job in jobs:
        r = csv.DictReader(open(f"{job}/{name}"))
        fields = fields or r.fieldnames
        rows += list(r)
    with open(f"{D}/{name}", "w", newline="") as h:
        w = csv.DictWriter(h, fieldnames=fields); w.writeheader(); w.writerows(rows)
for name in ("environment.json", "versions.txt"):
    shutil.copy(f"{jobs[0]}/{name}", f"{D}/{name}")
import json
cfg = json.load(open(f"{jobs[0]}/config.json"))
cfg["out"] = D
cfg["seeds"] = ",".join(sorted({j.rsplit("/s", 1)[1].split("-")[0] for j in jobs}))
cfg["methods"] = ",".join(sorted({j.rsplit("/", 1)[1].split("-", 1)[1] for j in jobs}))
cfg["keep_ratios"] = ",".join(sorted({r["keep_ratio"] for r in csv.DictReader(open(f"{D}/runs.csv"))}))
open(f"{D}/config.json", "w").write(json.dumps(cfg, indent=2) + "\n")
PY
    python benchmarks/text/run.py "${COMMON[@]}" --out "$D" --report-only > /dev/null ;;
esac
