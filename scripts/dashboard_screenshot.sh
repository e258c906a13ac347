#!/usr/bin/env bash
# The daemon's dashboard in headless Chromium: screenshots of `/`, `/jobs`, a
# job's page and a comparison, served by a daemon over the demo pile
# (scripts/common.sh) with a finished job, a failed one, a running one, two
# that leave metrics and an equity curve, and quality findings.
#
# Usage: scripts/dashboard_screenshot.sh [OUT_PREFIX]   (default /tmp/mdkeep-dashboard)
#   writes OUT_PREFIX.png (/), OUT_PREFIX-jobs.png (/jobs), OUT_PREFIX-job.png
#   (/jobs/<id>) and OUT_PREFIX-compare.png (/jobs/compare?ids=...).
# The equity curves need a Python with pyarrow: $MDKEEP_PY (default python3).
# Needs Debian's chromium (apt-get install -y chromium); installs it if apt can.
set -euo pipefail
. "$(dirname "$0")/common.sh"
out=${1:-/tmp/mdkeep-dashboard}
chromium_bin
root=$(mktemp -d)
demo_pile "$root"
"$m" quality > /dev/null
job() { # name argv-toml [memory]
  printf 'name = "%s"\nframework = "command"\nmemory = "%s"\nargv = %s\n' "$1" "${3:-64MiB}" "$2" > "$root/jobs/$1.toml"
  "$m" jobs submit "$root/jobs/$1.toml" > /dev/null
}
mkdir -p "$root/jobs"
job hello '["sh", "-c", "echo hello from a job"]'
job failing '["sh", "-c", "echo something went wrong >&2; exit 3"]'
# Two strategies that report metrics and an equity curve (a random walk).
py=${MDKEEP_PY:-python3}
# A root daemon runs jobs as jobs.run_as (nobody), who cannot enter a venv
# under /root (pyenv's Python): as root, the jobs keep root, as the tests do.
[ "$(id -u)" != 0 ] || export MDKEEP__JOBS__RUN_AS=root
walk=$(cat <<'PY'
import json, os, random, sys
import pyarrow as pa, pyarrow.parquet as pq
drift, seed = float(sys.argv[1]), int(sys.argv[2])
rnd = random.Random(seed)
eq, peak, dd = [1000.0], 1000.0, 0.0
for _ in range(1439):
    eq.append(eq[-1] * (1 + drift + rnd.gauss(0, 0.002)))
    peak = max(peak, eq[-1])
    dd = max(dd, (peak - eq[-1]) / peak)
t0 = 1704067200000
ts = pa.array([t0 + i * 60000 for i in range(1440)], pa.timestamp('ms', tz='UTC'))
pq.write_table(pa.table(dict(ts=ts, equity=eq)), os.path.join(os.environ['MDKEEP_ARTIFACTS'], 'equity.parquet'))
with open(os.environ['MDKEEP_RESULT'], 'w') as f:
    json.dump(dict(total_return=eq[-1] / 1000 - 1, total_profit=eq[-1] - 1000, max_drawdown=dd, trades=rnd.randint(20, 80)), f)
PY
)
equity_job() { # name drift seed
  job "$1" "[\"$py\", \"-c\", '''$walk''', \"$2\", \"$3\"]" 512MiB
}
equity_job sma-fast 0.0002 1
equity_job sma-slow -0.0001 2
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
MDKEEP__HTTP__BIND="127.0.0.1:$port" MDKEEP__SCHEDULE__MAINTAIN__ENABLED=false "$m" daemon > "$root/daemon.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
count() { "$m" jobs ls --state "$1" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
for _ in $(seq 150); do
  [ "$(count succeeded)" = 3 ] && break
  sleep 0.2
done
# One more, still running when the pictures are taken.
job backfill '["sleep", "30"]'
for _ in $(seq 50); do
  [ "$(count running)" = 1 ] && break
  sleep 0.2
done
ids=$("$m" jobs ls --json | python3 -c 'import json,sys; print(",".join(str(j["id"]) for j in json.load(sys.stdin) if j["name"].startswith("sma-")))')
shoot "http://127.0.0.1:$port/" "$out.png"
shoot "http://127.0.0.1:$port/jobs?sort=total_return" "$out-jobs.png" 700
shoot "http://127.0.0.1:$port/jobs/${ids%%,*}" "$out-job.png" 1600
shoot "http://127.0.0.1:$port/jobs/compare?ids=$ids" "$out-compare.png" 1000
echo "screenshots: $out.png (/), $out-jobs.png (/jobs), $out-job.png (a job) and $out-compare.png (a comparison), from a daemon on $root"
