#!/usr/bin/env bash
# What a /metrics scrape costs as the data grows: the daemon on a 10-file
# tree and on a ~10,000-file tree (8 symbols x 13 days x 96 flushes), each
# scraped N times in a row over fresh connections. Prints the median and
# p90 of each, the ratio, and the daemon's peak RSS (VmHWM). The data
# families come from the snapshot the daemon renders after each task, so
# the two medians should match; an earlier build (BEFORE=path/to/mdkeep)
# is measured the same way for comparison.
#
# Usage: benches/metrics_scale.sh [WORKDIR] [SCRAPES]
#   MDKEEP=path/to/mdkeep (default: target/release/mdkeep, built if missing)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/mdkeep-metrics-bench}
scrapes=${2:-100}
bin=${MDKEEP:-$here/target/release/mdkeep}
[ -x "$bin" ] || (cd "$here" && cargo build --release -q)

tree() { # binary root symbols days flushes keep → a tree of `keep` files cataloged by that build
  local b=$1 root=$2
  rm -rf "$root"; mkdir -p "$root"
  MDKEEP_ROOT="$root" "$b" init > /dev/null
  # Each build reads its own embedded defaults and state schema.
  rm -f "$root/configs/mdkeep.toml"
  MDKEEP_ROOT="$root" "$b" gen --symbols "$3" --days "$4" --flushes-per-hour "$5" --rows-per-flush 20 > /dev/null
  find "$root/data/processed" -name '*.parquet' | sort | tail -n +"$(( $6 + 1 ))" | xargs -r rm -f
  MDKEEP__SCAN__SETTLE_TIME=0s MDKEEP_ROOT="$root" "$b" scan > /dev/null
  echo "$(find "$root/data/processed" -name '*.parquet' | wc -l) files"
}

scrape() { # binary root label
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  MDKEEP_ROOT="$2" MDKEEP__HTTP__BIND="127.0.0.1:$port" MDKEEP__SCHEDULE__MAINTAIN__ENABLED=false \
    MDKEEP__SCHEDULE__SCAN__ENABLED=false MDKEEP__SCHEDULE__REPORT__ENABLED=false \
    "$1" daemon > /dev/null 2>&1 &
  local pid=$!
  python3 - "$port" "$scrapes" "$3" "$pid" <<'PY'
import http.client, statistics, sys, time
port, n, label, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
def get():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("GET", "/metrics"); r = c.getresponse(); body = r.read(); c.close()
    return body
deadline = time.time() + 60
while True:
    try:
        if b"mdkeep_dataset_files{" in get(): break
    except OSError: pass
    if time.time() > deadline: sys.exit(f"{label}: no metrics snapshot within 60 s")
    time.sleep(0.1)
ms = []
for _ in range(n):
    t = time.perf_counter(); get(); ms.append((time.perf_counter() - t) * 1e3)
ms.sort()
hwm = [l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith("VmHWM")][0]
print(f"{label}: median {statistics.median(ms):.2f} ms, p90 {ms[int(len(ms) * 0.9)]:.2f} ms over {n} scrapes; daemon peak RSS {int(hwm) // 1024} MB")
with open(f"/tmp/metrics-bench-{label}.median", "w") as f: f.write(str(statistics.median(ms)))
PY
  kill -TERM "$pid"; wait "$pid" || true
}

for b in "$bin" ${BEFORE:+"$BEFORE"}; do
  tag=$([ "$b" = "$bin" ] && echo this || echo before)
  echo "==> $tag small: $(tree "$b" "$work/$tag-small" 1 1 1 10)"
  echo "==> $tag large: $(tree "$b" "$work/$tag-large" 8 13 4 100000)"
  scrape "$b" "$work/$tag-small" "$tag-small"
  scrape "$b" "$work/$tag-large" "$tag-large"
  python3 -c "import sys; a, b = (float(open(f'/tmp/metrics-bench-$tag-{k}.median').read()) for k in ('small', 'large')); print(f'$tag: large/small median ratio {b / a:.2f}')"
done
