#!/usr/bin/env bash
# What the colder tiers save and what a move costs: one pile of trades,
# compacted into hot (zstd 3), then moved to warm (zstd 9) and on to cold
# (zstd 19). For each level: bytes, bytes per row, ratio against the
# uncompressed data (the footers' uncompressed sizes, read by pyarrow) and
# against hot; and for each move: wall time, seconds per GB moved and peak
# RSS (/usr/bin/time -v). Release build.
#
# Usage: benches/tier_levels.sh [WORKDIR]   (default /tmp/mdkeep-tier-bench)
#   PILE="--symbols 4 --days 8 --flushes-per-hour 4 --rows-per-flush 5000"  (mdkeep gen options)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/mdkeep-tier-bench}
pile_opts=${PILE:---symbols 4 --days 8 --flushes-per-hour 4 --rows-per-flush 5000}
py="$here/.venv/bin/python"
[ -x "$py" ] || { python3 -m venv "$here/.venv"; "$py" -m pip install -q -r "$here/tests/requirements.txt"; }
. "$here/benches/timed.sh"
(cd "$here" && cargo build --release -q)
mdkeep="$here/target/release/mdkeep"

root="$work/root"
rm -rf "$work"; mkdir -p "$root"
export MDKEEP_ROOT="$root" MDKEEP__SCAN__SETTLE_TIME=0s
# Everything but the newest day goes warm, then cold; nothing is dropped.
export MDKEEP__DATASETS__TRADES__TIER_AFTER__WARM=12h MDKEEP__DATASETS__TRADES__TIER_AFTER__COLD=1000d
"$mdkeep" init > /dev/null
echo "==> mdkeep gen $pile_opts --start 2024-01-01"
"$mdkeep" gen $pile_opts --start 2024-01-01 > /dev/null
"$mdkeep" scan > /dev/null
"$mdkeep" compact > /dev/null

# bytes, rows and uncompressed bytes of the trades under a root, without the newest day.
measure_root() {
  "$py" - "$1" <<'PY'
import glob, os, sys
import pyarrow.parquet as pq
files = sorted(glob.glob(sys.argv[1] + "/trades/**/*.parquet", recursive=True))
last = max((f.split("date=")[1][:10] for f in files), default="")
b = r = u = 0
for f in files:
    if f.split("date=")[1][:10] == last and "/processed/" in f:
        continue
    md = pq.ParquetFile(f).metadata
    b += os.path.getsize(f)
    r += md.num_rows
    u += sum(md.row_group(i).total_byte_size for i in range(md.num_row_groups))
print(b, r, u)
PY
}

move() { # name → "wall_s peak_kb"
  timed "$work/$1.json" "$mdkeep" tier --json
}

read -r hot_b rows raw_b < <(measure_root "$root/data/processed")
echo "==> hot → warm"
read -r w_wall w_rss < <(move warm)
read -r warm_b _ _ < <(measure_root "$root/data/warm")
echo "==> warm → cold"
export MDKEEP__DATASETS__TRADES__TIER_AFTER__COLD=12h
read -r c_wall c_rss < <(move cold)
read -r cold_b _ _ < <(measure_root "$root/data/cold")

echo
echo "$rows rows moved; uncompressed $(( raw_b / 1048576 )) MiB"
printf "%-6s %5s %12s %9s %12s %10s\n" tier zstd "bytes" "B/row" "vs raw" "vs hot"
for t in "hot 3 $hot_b" "warm 9 $warm_b" "cold 19 $cold_b"; do
  set -- $t
  awk -v n="$1" -v l="$2" -v b="$3" -v r="$rows" -v raw="$raw_b" -v hot="$hot_b" \
    'BEGIN { printf "%-6s %5s %12d %9.2f %11.2fx %9.1f%%\n", n, l, b, b/r, raw/b, 100*b/hot }'
done
echo
printf "%-12s %8s %10s %12s\n" move "wall(s)" "s/GB in" "peak RSS(MB)"
awk -v w="$w_wall" -v b="$hot_b" -v r="$w_rss" 'BEGIN { printf "%-12s %8.1f %10.1f %12.0f\n", "hot→warm", w, w/(b/1e9), r/1024 }'
awk -v w="$c_wall" -v b="$warm_b" -v r="$c_rss" 'BEGIN { printf "%-12s %8.1f %10.1f %12.0f\n", "warm→cold", w, w/(b/1e9), r/1024 }'
awk -v w="$w_wall" -v raw="$raw_b" 'BEGIN { printf "hot→warm per GB of uncompressed rows: %.1f s\n", w/(raw/1e9) }'
awk -v w="$c_wall" -v raw="$raw_b" 'BEGIN { printf "warm→cold per GB of uncompressed rows: %.1f s\n", w/(raw/1e9) }'
