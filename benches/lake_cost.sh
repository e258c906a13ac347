#!/usr/bin/env bash
# What the lake costs compaction (issue 30: its writes take at most 3 % of
# the wall time): `mdkeep compact` on the same gen_trades.py pile with
# `lake.enabled` on and off, RUNS times each (alternating, cold page caches
# when allowed), and the median of each. With the lake on, compaction also
# waits out `lake.reader_grace` once (a wait for readers that listed the old
# names, not a write); `compact --json` reports that wait and the process's
# own time on the lake (`lake.lake_seconds`), so the lake's writes are
# told apart: on - off - the wait. Also prints lake.sqlite's bytes per file.
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
    t=$(timed "$work/lake-cost-$lake.out" "$mdkeep" compact --json)
    echo "$lake $t $(python3 -c 'import json, sys; l = json.load(open(sys.argv[1]))["lake"]; print(l["lake_seconds"], l["reader_grace_wait_seconds"])' "$work/lake-cost-$lake.out")" >> "$work/lake-cost.txt"
  done
  echo "run $i: $(tail -2 "$work/lake-cost.txt" | tr '\n' ' ')"
done
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
col() { awk -v l="$1" -v c="$2" '$1 == l { print $c }' "$work/lake-cost.txt" | median; }
on=$(col true 2); off=$(col false 2); lake_s=$(col true 4); wait_s=$(col true 5)
writes=$(awk '$1 == "true" { print $2 - $5 }' "$work/lake-cost.txt" | median)
files=$(find "$work/lake-cost-true/data/processed" -name '*.parquet' | wc -l)
bytes=$(stat -c %s "$work/lake-cost-true/data/lake.sqlite")
echo
echo "compact, median of $runs: lake on ${on}s, off ${off}s: $(awk -v a="$on" -v b="$off" 'BEGIN { printf "%+.1f %%", (a - b) / b * 100 }') in all"
echo "  of which the reader grace wait ${wait_s}s; on minus the wait ${writes}s: the lake's writes $(awk -v a="$writes" -v b="$off" 'BEGIN { printf "%+.1f %%", (a - b) / b * 100 }') of the wall time"
echo "  the process's own time on the lake (summed over threads): ${lake_s}s ($(awk -v a="$lake_s" -v b="$on" 'BEGIN { printf "%.1f %%", a / b * 100 }') of the wall time)"
echo "lake.sqlite: $bytes bytes for $files live files"
