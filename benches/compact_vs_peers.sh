#!/usr/bin/env bash
# Side-by-side: mdkeep compact vs DuckDB, polars and pyarrow doing the same
# compaction (../shared/bench/peer_compact.py) on one pile from
# ../shared/bench/gen_trades.py. Wall time and peak RSS from /usr/bin/time -v;
# every output checked with ../shared/bench/verify_compacted.py.
#
# Usage: benches/compact_vs_peers.sh [WORKDIR]   (default /tmp/mdkeep-bench)
#   PILE="--symbols 4 --days 3 --rows-per-flush 20000"  pile options (23 M rows, 1,152 files)
#   PEERS="duckdb polars pyarrow"                        peers to run
#   SCALE=10   also run mdkeep alone on a 10x pile (mdkeep gen) to show flat RSS
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shared="$here/../shared/bench"
work=${1:-/tmp/mdkeep-bench}
pile_opts=${PILE:---symbols 4 --days 3 --rows-per-flush 20000}
peers=${PEERS-duckdb polars pyarrow}
. "$here/benches/timed.sh"
pile "$work" "$pile_opts"
rows=$("$py" -c "import pyarrow.dataset as d,sys; print(d.dataset(sys.argv[1]).count_rows())" "$work/pile/trades")
files=$(find "$work/pile" -name '*.parquet' | wc -l)
echo "pile: $files files, $rows rows"

measure() { # name, command...  → appends "name wall_s peak_kb" to results.txt
  local name=$1; shift
  echo "$name $(timed "$work/$name.out" "$@")" >> "$work/results.txt"
}

: > "$work/results.txt"
for peer in $peers; do
  rm -rf "$work/out-$peer"
  echo "==> $peer"
  measure "$peer" "$py" "$shared/peer_compact.py" "$peer" "$work/pile" "$work/out-$peer"
  "$py" "$shared/verify_compacted.py" "$work/pile" "$work/out-$peer"
done

echo "==> mdkeep"
root="$work/mdkeep-root"
rm -rf "$root"; mkdir -p "$root/data/processed"
cp -r "$work/pile/trades" "$root/data/processed/"
export MDKEEP_ROOT="$root" MDKEEP__SCAN__SETTLE_TIME=0s
"$mdkeep" init > /dev/null
measure mdkeep-scan "$mdkeep" scan
measure mdkeep "$mdkeep" compact --json
"$py" "$shared/verify_compacted.py" "$work/pile" "$root/data/processed"
cat "$work/mdkeep.out"

if [ "${SCALE:-}" = 10 ]; then
  echo "==> mdkeep alone on a 10x pile (8 symbols x 15 days, mdkeep gen)"
  big="$work/mdkeep-10x"
  rm -rf "$big"; mkdir -p "$big"
  MDKEEP_ROOT="$big" "$mdkeep" init > /dev/null
  MDKEEP_ROOT="$big" "$mdkeep" gen --symbols 8 --days 15 --rows-per-flush 20000 --start 2024-01-01
  MDKEEP_ROOT="$big" "$mdkeep" scan > /dev/null
  MDKEEP_ROOT="$big" measure mdkeep-10x "$mdkeep" compact --json
  cat "$work/mdkeep-10x.out"
fi

echo
echo "engine        wall(s)   peak RSS(MB)"
awk '{ printf "%-12s %8.1f %12.0f\n", $1, $2, $3/1024 }' "$work/results.txt"
best=$(grep -v mdkeep "$work/results.txt" | sort -k2 -n | head -1 || true)
if [ -n "$best" ]; then
  awk -v b="$best" 'BEGIN { split(b, p, " ") } $1=="mdkeep" { printf "mdkeep vs best peer (%s): wall %.2fx, ", p[1], $2/p[2] }' "$work/results.txt"
  bestrss=$(grep -v mdkeep "$work/results.txt" | sort -k3 -n | head -1)
  awk -v b="$bestrss" 'BEGIN { split(b, p, " ") } $1=="mdkeep" { printf "peak RSS %.2fx (vs %s)\n", $3/p[3], p[1] }' "$work/results.txt"
fi
