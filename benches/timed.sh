# Sourced by the side-by-side bench scripts (not a bench itself).
#
# pile WORK OPTS: see below.
#
# timed OUT COMMAND...: run COMMAND with cold page caches (when allowed)
# under /usr/bin/time -v, its stdout into OUT and the time report into
# OUT.time; prints "wall_seconds peak_rss_kb".
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)"; exit 1; }

timed() {
  local out=$1; shift
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  /usr/bin/time -v "$@" > "$out" 2> "$out.time"
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$out.time" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$out.time")
  echo "$wall $rss"
}

# pile WORK OPTS: the venv's Python in $py, a release build in $mdkeep
# ($MDKEEP_BIN when set, else cargo builds one), and
# a gen_trades.py pile (../shared/bench) at WORK/pile, made once.
pile() {
  local work=$1 opts=$2 here
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  py="$here/.venv/bin/python"
  [ -x "$py" ] || { python3 -m venv "$here/.venv"; "$py" -m pip install -q -r "$here/tests/requirements.txt"; }
  if [ -n "${MDKEEP_BIN:-}" ]; then
    mdkeep=$MDKEEP_BIN # a release build made earlier (no cargo here)
  else
    (cd "$here" && cargo build --release -q)
    mdkeep="$here/target/release/mdkeep"
  fi
  mkdir -p "$work"
  if [ ! -d "$work/pile/trades" ]; then
    echo "==> generating the pile: gen_trades.py $opts"
    "$py" "$here/../shared/bench/gen_trades.py" "$work/pile" $opts
  fi
}

# fresh_root ROOT: an empty root holding a copy of the pile's trades (after pile).
fresh_root() {
  rm -rf "$1"; mkdir -p "$1/data/processed"
  cp -r "$work/pile/trades" "$1/data/processed/"
}
