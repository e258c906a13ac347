#!/usr/bin/env bash
# Issue 29: `maintain`'s wall time on the compact bench's pile, this build
# against a build of the commit before the issue (8ffd551), each from a
# fresh copy of the pile, RUNS times alternating (cold page caches when
# allowed); medians and the ratio. This build runs twice: with the lake
# (the default) and without it, so the reliability work and the lake's
# share are told apart.
#
# Usage: benches/maintain_vs_base.sh BASE_BINARY [WORKDIR]   (default /tmp/mdkeep-bench)
#   build BASE_BINARY, e.g.:
#     git worktree add --detach /tmp/base 8ffd551
#     CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 CARGO_PROFILE_RELEASE_DEBUG=false \
#       cargo build --release --manifest-path /tmp/base/Cargo.toml
#   PILE="--symbols 4 --days 3 --rows-per-flush 20000"   RUNS=5
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
base=$1
work=${2:-/tmp/mdkeep-bench}
runs=${RUNS:-5}
. "$here/benches/timed.sh"
pile "$work" "${PILE:---symbols 4 --days 3 --rows-per-flush 20000}"
export MDKEEP__SCAN__SETTLE_TIME=0s
: > "$work/maintain.txt"
one() { # label binary [VAR=value...]
  local label=$1 bin=$2 root="$work/maintain-$1"; shift 2
  fresh_root "$root"
  env MDKEEP_ROOT="$root" "$@" "$bin" init > /dev/null
  echo "$label $(timed "$work/maintain-$label.out" env MDKEEP_ROOT="$root" "$@" "$bin" maintain --json)" >> "$work/maintain.txt"
}
for i in $(seq "$runs"); do
  one base "$base"
  one now "$mdkeep"
  one now-nolake "$mdkeep" MDKEEP__LAKE__ENABLED=false
  echo "run $i: $(tail -3 "$work/maintain.txt" | tr '\n' ' ')"
done
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
m() { awk -v l="$1" '$1 == l { print $2 }' "$work/maintain.txt" | median; }
b=$(m base); n=$(m now); nl=$(m now-nolake)
echo
echo "maintain, median of $runs: base ${b}s, now ${n}s ($(awk -v a="$n" -v b="$b" 'BEGIN { printf "%+.1f %%", (a - b) / b * 100 }')), now without the lake ${nl}s ($(awk -v a="$nl" -v b="$b" 'BEGIN { printf "%+.1f %%", (a - b) / b * 100 }'))"
