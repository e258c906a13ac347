#!/usr/bin/env bash
# `mdkeep coverage --json` on a ~10,000-file catalog (8 symbols x 13 days x
# 96 flushes from `mdkeep gen`), every file in the coverage index (one
# `mdkeep report` fills it). Prints the median and p90 wall time of N calls
# (the goal: under 100 ms), and proves no Parquet file is opened: strace
# counts the `.parquet` opens of one call (0), and the answer is the same
# with the data folder moved away.
#
# Usage: benches/coverage_scale.sh [WORKDIR] [CALLS]   (default /tmp/mdkeep-coverage-bench, 20)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/mdkeep-coverage-bench}
calls=${2:-20}
bin=${MDKEEP:-$here/target/release/mdkeep}
(cd "$here" && cargo build --release -q)
root="$work/root"
rm -rf "$root"; mkdir -p "$root"
export MDKEEP_ROOT="$root" MDKEEP__SCAN__SETTLE_TIME=0s
"$bin" init > /dev/null
"$bin" gen --symbols 8 --days 13 --flushes-per-hour 4 --rows-per-flush 20 --start 2024-01-01 > /dev/null
"$bin" scan > /dev/null
echo "catalog: $(find "$root/data/processed" -name '*.parquet' | wc -l) files"
"$bin" report --format json > /dev/null   # reads each file's time column once: the index
"$bin" coverage --json > "$work/with-data.json"
python3 - "$bin" "$calls" "$work/with-data.json" <<'PY'
import json, statistics, subprocess, sys, time
b, n = sys.argv[1], int(sys.argv[2])
ms = []
for _ in range(n):
    t = time.perf_counter()
    subprocess.run([b, "coverage", "--json"], check=True, stdout=subprocess.DEVNULL)
    ms.append((time.perf_counter() - t) * 1e3)
ms.sort()
c = json.load(open(sys.argv[3]))
print(f"coverage --json: median {statistics.median(ms):.1f} ms, p90 {ms[int(n * 0.9)]:.1f} ms over {n} calls "
      f"(whole process); {len(c)} series, {sum(s['files'] for s in c)} files, "
      f"{sum(s['files_unindexed'] for s in c)} not indexed, {sum(len(s['gaps']) for s in c)} gaps")
PY
if command -v strace > /dev/null; then
  opens=$(strace -f -e trace=openat "$bin" coverage --json 2>&1 >/dev/null | grep -c '\.parquet' || true)
  echo "parquet files opened by one call (strace): $opens"
fi
mv "$root/data/processed" "$root/data/processed.away"
"$bin" coverage --json > "$work/without-data.json"
mv "$root/data/processed.away" "$root/data/processed"
cmp -s "$work/with-data.json" "$work/without-data.json" && echo "same answer with the data folder moved away: yes" \
  || { echo "answers differ without the data"; exit 1; }
