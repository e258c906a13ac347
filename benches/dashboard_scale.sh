#!/usr/bin/env bash
# The dashboard's `/` on a ~10,000-file catalog (8 symbols x 13 days x 96
# flushes from `mdkeep gen`, cataloged by a scan, no report run before):
# the daemon is started, `/` fetched once (timed apart), then N times in a
# row over fresh connections: the median and p90 (goal: under 50 ms). Then
# the same under strace, counting the `.parquet` files the daemon opens at
# start, for its first build and while serving the N (goal: 0); strace slows
# every call, so its run is not timed.
#
# Usage: benches/dashboard_scale.sh [WORKDIR] [REQUESTS]   (default /tmp/mdkeep-dashboard-bench, 100)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/mdkeep-dashboard-bench}
n=${2:-100}
bin=${MDKEEP:-$here/target/release/mdkeep}
(cd "$here" && cargo build --release -q)
command -v strace > /dev/null || { echo "needs strace (apt-get install strace)"; exit 1; }
root="$work/root"
rm -rf "$root"; mkdir -p "$root"
export MDKEEP_ROOT="$root" MDKEEP__SCAN__SETTLE_TIME=0s
"$bin" init > /dev/null
"$bin" gen --symbols 8 --days 13 --flushes-per-hour 4 --rows-per-flush 20 --start 2024-01-01 > /dev/null
"$bin" scan > /dev/null
echo "catalog: $(find "$root/data/processed" -name '*.parquet' | wc -l) files"
# serve N: start the daemon (under strace when STRACE=1), GET / once (the
# build, or the warm cache), then N times; prints the figures.
serve() {
  local port pid
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  local run=("$bin" daemon)
  [ "${STRACE:-0}" = 1 ] && run=(strace -f -qq -e trace=openat -o "$work/opens.txt" "${run[@]}")
  rm -f "$work/opens.txt"; touch "$work/opens.txt"
  MDKEEP__HTTP__BIND="127.0.0.1:$port" MDKEEP__SCHEDULE__MAINTAIN__ENABLED=false \
    MDKEEP__SCHEDULE__SCAN__ENABLED=false MDKEEP__SCHEDULE__REPORT__ENABLED=false \
    "${run[@]}" > /dev/null 2>&1 &
  pid=$!
  python3 - "$port" "$n" "$work/opens.txt" "${STRACE:-0}" <<'PY'
import http.client, statistics, sys, time
port, n, opens, traced = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
def get(path="/"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request("GET", path); r = c.getresponse(); body = r.read(); c.close()
    if r.status != 200: sys.exit(f"GET {path}: {r.status} {body[:200]!r}")
    return body
deadline = time.time() + 60
while True:
    try:
        get("/healthz"); break
    except (OSError, SystemExit):
        if time.time() > deadline: sys.exit("the daemon did not answer within 60 s")
        time.sleep(0.2)
t = time.perf_counter(); page = get(); first = (time.perf_counter() - t) * 1e3
parquet = lambda: sum(1 for l in open(opens) if ".parquet" in l and "ENOENT" not in l)
before = parquet()
ms = []
for _ in range(n):
    t = time.perf_counter(); get(); ms.append((time.perf_counter() - t) * 1e3)
ms.sort()
if traced:
    print(f"under strace: .parquet files opened by the daemon: {before} before the {n} requests "
          f"(start-up and first build), {parquet() - before} during them")
else:
    print(f"first GET / (the build, or the cache the daemon warmed at start): {first:.0f} ms, {len(page)} bytes")
    print(f"GET / x{n}: median {statistics.median(ms):.1f} ms, p90 {ms[int(n * 0.9)]:.1f} ms, max {ms[-1]:.1f} ms")
PY
  # Under strace, $pid is strace's: the daemon is its child.
  pkill -TERM -P "$pid" 2>/dev/null || true
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
serve
STRACE=1 serve
