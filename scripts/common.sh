# Sourced by the screenshot scripts (not run on its own).
#
# chromium_bin: Debian's chromium (installed with apt when it can be) in $chromium.
# demo_pile ROOT: a small pile under ROOT, as the report's pictures want it: a
#   generated pile with one symbol missing a day (a known gap), compacted,
#   rolled up, with a retention drop, two weeks of synthetic growth history,
#   and a quota to forecast against. $m is the debug build.
# shoot URL OUT.png [HEIGHT]: a headless Chromium screenshot, no network.

chromium_bin() {
  chromium=$(command -v chromium || command -v chromium-browser || true)
  if [ -z "$chromium" ]; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null
    chromium=$(command -v chromium)
  fi
}

demo_pile() {
  local root=$1 here
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  (cd "$here" && cargo build -q)
  m="$here/target/debug/mdkeep"
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
}

shoot() {
  "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$(mktemp -d)" --hide-scrollbars --window-size=1150,"${3:-2200}" \
    --screenshot="$2" "$1" 2>/dev/null
}
