#!/usr/bin/env bash
# Render a report's HTML in headless Chromium and save a PNG, to see that the
# page opens with no network and that its charts draw.
#
# Usage: scripts/report_screenshot.sh [REPORT.html] [OUT.png]
#   With no report given, makes one: a small generated pile with one symbol
#   missing a day (a known gap), compacted, rolled up, with a retention drop.
# Needs Debian's chromium (apt-get install -y chromium); installs it if apt can.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
html=${1:-}
out=${2:-/tmp/mdkeep-report.png}
chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium" ]; then
  apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null
  chromium=$(command -v chromium)
fi
if [ -z "$html" ]; then
  (cd "$here" && cargo build -q)
  m="$here/target/debug/mdkeep"
  root=$(mktemp -d)
  export MDKEEP_ROOT="$root" MDKEEP__SCAN__SETTLE_TIME=0s
  "$m" init >/dev/null
  "$m" gen --symbols 3 --days 6 --start 2024-01-01 --rows-per-flush 300 --flushes-per-hour 2 >/dev/null
  "$m" scan >/dev/null && "$m" compact >/dev/null && "$m" rollup >/dev/null
  rm -rf "$root/data/processed/trades/exchange=binance/symbol=ETH_USDT/date=2024-01-04"
  "$m" scan >/dev/null
  MDKEEP__DATASETS__TRADES__KEEP=4d "$m" retention >/dev/null
  # A synthetic two weeks of growth history, so the disk-use chart has lines.
  python3 - "$root/data/state/mdkeep.db" <<'PY'
import sqlite3, sys, datetime
c = sqlite3.connect(sys.argv[1])
today = datetime.datetime.now(datetime.timezone.utc).date()
for i in range(1, 15):
    day = (today - datetime.timedelta(days=i)).isoformat()
    for ds, base, per_day in (("trades", 3.6e6, 2.5e5), ("ohlcv", 1.0e6, 6e4)):
        c.execute("INSERT OR REPLACE INTO usage_daily VALUES (?, ?, 'hot', 1, 1, ?)", (day, ds, int(base - per_day * i)))
c.commit()
PY
  export MDKEEP__QUOTA__HARD_TOTAL=12MiB MDKEEP__QUOTA__SOFT_TOTAL=8MiB
  html="$root/report.html"
  "$m" report --format html --out "$html"
fi
"$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$(mktemp -d)" --hide-scrollbars --window-size=1150,2200 \
  --screenshot="$out" "file://$html" 2>/dev/null
echo "screenshot: $out (from $html)"
