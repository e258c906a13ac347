#!/usr/bin/env bash
# The dashboard's `/` on a ~10,000-file catalog (8 symbols x 13 days x 96
# flushes from `mdkeep gen`, cataloged by a scan, no report run before):
# the daemon is started, `/` fetched once (the build, timed apart), then N
# times in a row over fresh connections. Prints the first build's time, the
# median and p90 of the N, and the `.parquet` files the daemon opened while
# serving all of them (strace on the daemon: the goal is 0, and a median
# under 50 ms).
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
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
MDKEEP__HTTP__BIND="127.0.0.1:$port" MDKEEP__SCHEDULE__MAINTAIN__ENABLED=false \
  MDKEEP__SCHEDULE__SCAN__ENABLED=false MDKEEP__SCHEDULE__REPORT__ENABLED=false \
  strace -f -qq -e trace=openat -o "$work/opens.txt" "$bin" daemon > /dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
python3 - "$port" "$n" "$work/opens.txt" <<'PY'
import http.client, os, statistics, sys, time
port, n, opens = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
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
print(f"first GET / (cache build or warm-up): {first:.0f} ms, {len(page)} bytes")
print(f"GET / x{n}: median {statistics.median(ms):.1f} ms, p90 {ms[int(n * 0.9)]:.1f} ms, max {ms[-1]:.1f} ms")
print(f".parquet opens by the daemon: {before} before the {n} requests (start-up and first build), "
      f"{parquet() - before} during them")
PY
