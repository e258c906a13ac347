#!/usr/bin/env bash
# What the quality checks cost compaction: the same pile
# (../shared/bench/gen_trades.py) compacted with the checks on (the
# default) and off (MDKEEP__DATASETS__TRADES__QUALITY__ENABLED=false),
# alternating, RUNS times each. Prints the median wall time and peak RSS of
# each and the ratio on/off; the goal is at most 1.10 on wall time with
# peak RSS unchanged.
#
# Usage: benches/quality_cost.sh [WORKDIR] [RUNS]   (default /tmp/mdkeep-quality-bench, 5)
#   PILE="--symbols 4 --days 3 --rows-per-flush 20000"  pile options (23 M rows, 1,152 files)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shared="$here/../shared/bench"
work=${1:-/tmp/mdkeep-quality-bench}
runs=${2:-5}
pile_opts=${PILE:---symbols 4 --days 3 --rows-per-flush 20000}
. "$here/benches/timed.sh"
pile "$work" "$pile_opts"
echo "pile: $(find "$work/pile" -name '*.parquet' | wc -l) files"

run() { # label enabled → appends "label wall_s peak_kb" to results.txt
  local root="$work/root-$1"
  rm -rf "$root"; mkdir -p "$root/data/processed"
  cp -r "$work/pile/trades" "$root/data/processed/"
  MDKEEP_ROOT="$root" "$mdkeep" init > /dev/null
  MDKEEP_ROOT="$root" MDKEEP__SCAN__SETTLE_TIME=0s "$mdkeep" scan > /dev/null
  echo "$1 $(MDKEEP_ROOT="$root" MDKEEP__DATASETS__TRADES__QUALITY__ENABLED="$2" timed "$work/$1.out" "$mdkeep" compact --json)" >> "$work/results.txt"
  MDKEEP_ROOT="$root" "$mdkeep" quality --stored --json > "$work/$1.quality.json"
}

: > "$work/results.txt"
for i in $(seq "$runs"); do
  echo "==> run $i/$runs"
  run on true
  run off false
done
"$py" "$shared/verify_compacted.py" "$work/pile" "$work/root-on/data/processed"
"$py" - "$work/results.txt" "$work/on.quality.json" "$work/off.quality.json" <<'PY'
import json, statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = {k: (statistics.median(float(r[1]) for r in rows if r[0] == k),
           statistics.median(int(r[2]) for r in rows if r[0] == k)) for k in ("on", "off")}
for k, (w, m) in med.items():
    print(f"checks {k:3}: median wall {w:.2f} s, median peak RSS {m / 1024:.0f} MB")
on, off = med["on"], med["off"]
print(f"on/off: wall {on[0] / off[0]:.3f}x, peak RSS {on[1] / off[1]:.3f}x")
q = json.load(open(sys.argv[2]))
print(f"checks on: {q['partitions_checked']} partitions checked, {len(q['findings'])} findings "
      f"({', '.join(sorted({f['kind'] for f in q['findings']}))})")
print(f"checks off: {json.load(open(sys.argv[3]))['partitions_checked']} partitions checked")
PY
