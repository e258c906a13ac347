#!/usr/bin/env bash
# The daemon's dashboard in headless Chromium: screenshots of `/` and `/jobs`
# served by a daemon over the demo pile (scripts/common.sh) with a finished
# job, a failed one and a running one, and quality findings.
#
# Usage: scripts/dashboard_screenshot.sh [OUT_PREFIX]   (default /tmp/mdkeep-dashboard)
#   writes OUT_PREFIX.png (/) and OUT_PREFIX-jobs.png (/jobs).
# Needs Debian's chromium (apt-get install -y chromium); installs it if apt can.
set -euo pipefail
. "$(dirname "$0")/common.sh"
out=${1:-/tmp/mdkeep-dashboard}
chromium_bin
root=$(mktemp -d)
demo_pile "$root"
"$m" quality > /dev/null
job() { # name argv-toml
  printf 'name = "%s"\nframework = "command"\nmemory = "64MiB"\nargv = %s\n' "$1" "$2" > "$root/jobs/$1.toml"
  "$m" jobs submit "$root/jobs/$1.toml" > /dev/null
}
mkdir -p "$root/jobs"
job hello '["sh", "-c", "echo hello from a job"]'
job failing '["sh", "-c", "echo something went wrong >&2; exit 3"]'
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
MDKEEP__HTTP__BIND="127.0.0.1:$port" MDKEEP__SCHEDULE__MAINTAIN__ENABLED=false "$m" daemon > "$root/daemon.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  [ "$("$m" jobs ls --state succeeded --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1 ] && break
  sleep 0.2
done
# One more, still running when the pictures are taken.
job backfill '["sleep", "30"]'
for _ in $(seq 50); do
  [ "$("$m" jobs ls --state running --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1 ] && break
  sleep 0.2
done
shoot "http://127.0.0.1:$port/" "$out.png"
shoot "http://127.0.0.1:$port/jobs" "$out-jobs.png" 700
echo "screenshots: $out.png (/) and $out-jobs.png (/jobs), from a daemon on $root"
