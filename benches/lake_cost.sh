#!/usr/bin/env bash
# What the lake costs compaction (issue 30: at most 3 % of its wall time):
# `mdkeep compact` on the same gen_trades.py pile with `lake.enabled` on and
# off, RUNS times each (alternating, cold page caches when allowed), and the
# median of each. Also prints lake.sqlite's bytes per live file.
#
# Usage: benches/lake_cost.sh [WORKDIR]   (default /tmp/mdkeep-bench)
#   PILE="--symbols 4 --days 3 --rows-per-flush 20000"  the compact bench's pile
#   RUNS=5
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/mdkeep-bench}
runs=${RUNS:-5}
. "$here/benches/timed.sh"
pile "$work" "${PILE:---symbols 4 --days 3 --rows-per-flush 20000}"
export MDKEEP__SCAN__SETTLE_TIME=0s
: > "$work/lake-cost.txt"
for i in $(seq "$runs"); do
  for lake in true false; do
    root="$work/lake-cost-$lake"
    fresh_root "$root"
    export MDKEEP_ROOT="$root" MDKEEP__LAKE__ENABLED=$lake
    "$mdkeep" init > /dev/null
    "$mdkeep" scan > /dev/null
    echo "$lake $(timed "$work/lake-cost-$lake.out" "$mdkeep" compact --json)" >> "$work/lake-cost.txt"
  done
  echo "run $i: $(tail -2 "$work/lake-cost.txt" | tr '\n' ' ')"
done
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
on=$(awk '$1 == "true" { print $2 }' "$work/lake-cost.txt" | median)
off=$(awk '$1 == "false" { print $2 }' "$work/lake-cost.txt" | median)
files=$(find "$work/lake-cost-true/data/processed" -name '*.parquet' | wc -l)
bytes=$(stat -c %s "$work/lake-cost-true/data/lake.sqlite")
echo
echo "compact, median of $runs: lake on ${on}s, off ${off}s: the lake costs $(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.1f %%", (a - b) / b * 100 }')"
echo "lake.sqlite: $bytes bytes for $files live files"
