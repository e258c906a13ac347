# Sourced by the side-by-side bench scripts (not a bench itself).
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
