#!/usr/bin/env bash
# What one owner for every change costs: `mdkeep maintain` on the bench pile
# (../shared/bench/gen_trades.py, as the unattended-daemon issue used it),
# with this tree's release build against an earlier build (the yardstick:
# no data lock, no input identities, no room checks). Each run starts from a
# fresh copy of the pile; prints each run and the medians of wall time and
# peak RSS (/usr/bin/time -v), and the ratio.
#
# Usage: benches/maintain_lock.sh BEFORE_BINARY [WORKDIR] [RUNS]
#   BEFORE_BINARY: an mdkeep built from an earlier commit, e.g.
#     git worktree add /tmp/before 2e13604 && (cd /tmp/before && cargo build --release)
#   PILE="--symbols 4 --days 3 --flushes-per-hour 4 --rows-per-flush 20000"  (gen_trades.py options)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
before=${1:?usage: benches/maintain_lock.sh BEFORE_BINARY [WORKDIR] [RUNS]}
work=${2:-/tmp/mdkeep-lock-bench}
runs=${3:-3}
pile_opts=${PILE:---symbols 4 --days 3 --flushes-per-hour 4 --rows-per-flush 20000}
gen="$here/../shared/bench/gen_trades.py"
[ -f "$gen" ] || { echo "needs $gen (the shared bench material)"; exit 1; }
py="$here/.venv/bin/python"
[ -x "$py" ] || { python3 -m venv "$here/.venv"; "$py" -m pip install -q -r "$here/tests/requirements.txt"; }
. "$here/benches/timed.sh"
[ -n "${AFTER:-}" ] || (cd "$here" && cargo build --release -q)
after=${AFTER:-$here/target/release/mdkeep}

rm -rf "$work"; mkdir -p "$work/pile"
echo "==> gen_trades.py $pile_opts"
"$py" "$gen" "$work/pile" $pile_opts > /dev/null
# Nothing tiers or expires: maintain is scan, compact, rollup and quota.
export MDKEEP__SCAN__SETTLE_TIME=0s MDKEEP__QUOTA__MIN_FREE=0%
export MDKEEP__DATASETS__TRADES__TIER_AFTER__WARM=10000d MDKEEP__DATASETS__TRADES__TIER_AFTER__COLD=20000d

one() { # binary label n → "wall rss"
  local root="$work/$2-$3"
  rm -rf "$root"; mkdir -p "$root/data/processed"
  MDKEEP_ROOT="$root" "$1" init > /dev/null
  cp -r "$work/pile/." "$root/data/processed/"
  MDKEEP_ROOT="$root" timed "$work/$2-$3.json" "$1" maintain --json
  rm -rf "$root"
}

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

declare -A walls rsss
for label in before after; do
  bin=$before; [ "$label" = after ] && bin=$after
  for n in $(seq 1 "$runs"); do
    read -r wall rss < <(one "$bin" "$label" "$n")
    echo "$label run $n: ${wall}s, peak RSS $(( rss / 1024 )) MB"
    walls[$label]+="$wall "; rsss[$label]+="$rss "
  done
done
bw=$(echo "${walls[before]}" | tr ' ' '\n' | grep . | median)
aw=$(echo "${walls[after]}" | tr ' ' '\n' | grep . | median)
br=$(echo "${rsss[before]}" | tr ' ' '\n' | grep . | median)
ar=$(echo "${rsss[after]}" | tr ' ' '\n' | grep . | median)
echo
printf "%-8s %10s %14s\n" build "median(s)" "peak RSS(MB)"
awk -v w="$bw" -v r="$br" 'BEGIN { printf "%-8s %10.2f %14.0f\n", "before", w, r/1024 }'
awk -v w="$aw" -v r="$ar" 'BEGIN { printf "%-8s %10.2f %14.0f\n", "after", w, r/1024 }'
awk -v a="$aw" -v b="$bw" 'BEGIN { printf "after / before: %.3f\n", a/b }'
