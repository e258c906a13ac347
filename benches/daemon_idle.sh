#!/usr/bin/env bash
# The daemon at rest and waking: idle RSS and CPU over a minute, and
# submit-to-start latency of jobs. Release build.
#
# Usage: benches/daemon_idle.sh [SECONDS]   (default 60)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
(cd "$here" && cargo build --release -q)
m="$here/target/release/mdkeep"
root=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export MDKEEP_ROOT="$root" MDKEEP__HTTP__BIND="127.0.0.1:$port"
"$m" init >/dev/null
"$m" daemon 2>"$root/daemon.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$root"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
sleep 2
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
t0=$(ticks); s0=$(date +%s.%N)
sleep "$secs"
t1=$(ticks); s1=$(date +%s.%N)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
awk -v a="$t0" -v b="$t1" -v hz="$hz" -v s0="$s0" -v s1="$s1" -v rss="$rss" -v hwm="$hwm" 'BEGIN {
  printf "idle over %.0f s: CPU %.3f%% (%d ticks), RSS %.1f MiB (peak %.1f MiB)\n", s1 - s0, 100 * (b - a) / hz / (s1 - s0), b - a, rss / 1024, hwm / 1024 }'

# Submit-to-start latency: a job's started_at minus its queued_at.
cat > "$root/quick.toml" <<TOML
name = "quick"
framework = "command"
memory = "16MiB"
argv = ["true"]
TOML
for _ in $(seq 10); do "$m" jobs submit "$root/quick.toml" >/dev/null; sleep 0.5; done
sleep 1
"$m" jobs ls --json | python3 -c '
import json, sys, datetime, statistics
def p(s):
    base, _, frac = s.rstrip("Z").partition(".")
    return datetime.datetime.fromisoformat(base).timestamp() + float("0." + (frac or "0"))
lat = sorted((p(j["started_at"]) - p(j["queued_at"])) * 1000 for j in json.load(sys.stdin) if j["started_at"])
print(f"submit-to-start over {len(lat)} jobs: median {statistics.median(lat):.0f} ms, max {max(lat):.0f} ms")'
kill -TERM $pid; wait $pid && echo "SIGTERM: exit 0"
