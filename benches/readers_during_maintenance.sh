#!/usr/bin/env bash
# Readers during maintenance (issue 30): does a DuckDB reader ever fail, miss
# rows or see rows twice while `mdkeep maintain` compacts, trims, drops and
# tiers the files it reads? Through the lake (DuckLake, attached READ_ONLY with
# exactly the ATTACH statement `mdkeep lake attach` prints) against the glob
# over the Hive tree (the baseline).
#
# The pile (a fresh root every run): `mdkeep gen` with 3 symbols x 2 days
# (2024-01-01, 2024-01-02) at 12 flushes an hour = 1,728 flushes, plus one
# older day (2023-12-30, 1 flush an hour, 72 flushes) that retention drops.
# After `scan`, `maintain` runs with these overrides so every kind of rewrite
# has work (read `maintain`'s summary in the output):
#   MDKEEP__DATASETS__TRADES__KEEP=30h, ..._TRIM=true   drop 2023-12-30 whole,
#       trim 2024-01-01 (the cut is 30 h before the newest row: ~01-01 18:00)
#   MDKEEP__DATASETS__TRADES__TIER_AFTER={warm="12h", cold="30d"}
#       moves 2024-01-01 hot -> warm
#   compaction merges each partition's flushes (and moves misfiled rows home);
#   rollup writes candles (another dataset; not read here).
#
# One Python process (DuckDB 1.5.5, the ducklake and sqlite_scanner extensions
# LOADed from the wheels' files, autoinstall off: nothing reaches the network)
# loops while maintain runs, one read through each reader per turn:
#   lake  SELECT ... FROM lake.trades          (attached READ_ONLY)
#   glob  read_parquet('<root>/data/*/trades/**/*.parquet', hive_partitioning=true)
#         i.e. the README's glob widened to every local tier (processed, warm,
#         cold), so that a tier move is not counted as missing by design.
#         GLOB_TIERS=hot reads data/processed only, as the README writes it.
# Each read is one query: per symbol and row day (the row's own UTC date, so
# misfiled rows that compaction moves home stay in their group), count(*) and
# count(DISTINCT trade_id). It loops until maintain has ended and each reader
# has done at least MIN_READS reads (default 200); the table says how many
# reads started while maintain ran.
#
# What counts as right (honest about retention, which drops rows on purpose):
# every group may legitimately be in one of a few states, measured before and
# after maintenance, never guessed:
#   before   (n0, d0): the scanned pile, duplicates included (from the lake at
#            the pre-maintenance snapshot; the glob must agree with it)
#   after    (nf, df): the lake's final snapshot after maintain (df = d0 for
#            groups retention leaves alone, fewer for the trimmed day, 0 for
#            the dropped day); it must hold no duplicate (nf = df)
# Per read and group, with (n, d) what the read saw:
#   missing  d is neither d0 nor df: the rows short of the nearest legal
#            distinct count above d (a file gone under the reader, or half a swap)
#   doubled  n - n0 when n > n0: more rows than the pile ever had, i.e. an
#            input and its rewrite both visible (a compaction or a tier copy)
#   bad      reads with missing or doubled rows, or a group that should not
#            exist (distinct ids above d0)
#   failed   reads that raised (e.g. IO Error: Cannot open file ...)
# Also checked: time travel. The pre-maintenance snapshot, read again with
# AT (VERSION => n) after maintain, must give exactly the pre-maintenance
# answer (while lake.keep_snapshots, default 1h, keeps it).
#
# Usage: benches/readers_during_maintenance.sh [WORKDIR]   (default /tmp/mdkeep-readers-bench)
#   MDKEEP_BIN=target/release/mdkeep  the binary (built with cargo build --release when absent)
#   LAKE_PY=.lakevenv/bin/python      duckdb==1.5.5 + extension wheels + pytz (made when absent)
#   ROWS=1000 (trades per flush)  MIN_READS=200  GLOB_TIERS=all|hot
#   SHARE_CORE=19  the reader and maintain share core 0 (taskset), maintain at
#                  this nice level, so that maintain runs long enough for most
#                  reads to start while it does (a release maintain takes about
#                  5 s alone, one read of the 1,800 flushes about 1 s); empty:
#                  both run freely on every core
#   GEN=mdkeep|py  (py: ../shared/bench/gen_trades.py with PY=.venv/bin/python; it
#                   starts at 2024-01-01 too, and the dropped day is then left out)
# Exits 1 when the lake reader had a failed, missing, doubled or bad read.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/mdkeep-readers-bench}
rows=${ROWS:-1000}
min_reads=${MIN_READS:-200}
glob_tiers=${GLOB_TIERS:-all}
gen=${GEN:-mdkeep}
mdkeep=${MDKEEP_BIN:-$here/target/release/mdkeep}
share=${SHARE_CORE-19}
on_core=(); slowed=()
if [ -n "$share" ]; then on_core=(taskset -c 0); slowed=(taskset -c 0 nice -n "$share"); fi
lake_py=${LAKE_PY:-$here/.lakevenv/bin/python}

if [ ! -x "$mdkeep" ]; then
  [ -z "${MDKEEP_BIN:-}" ] || { echo "MDKEEP_BIN=$mdkeep is not executable" >&2; exit 1; }
  (cd "$here" && cargo build --release -q)
fi
if ! "$lake_py" -c 'import duckdb, pytz, duckdb_extension_ducklake, duckdb_extension_sqlite_scanner' 2>/dev/null; then
  # The pins of tests/lake.rs (separate from tests/requirements.txt).
  python3 -m venv "$(dirname "$(dirname "$lake_py")")"
  "$lake_py" -m pip install -q duckdb==1.5.5 duckdb-extension-ducklake==1.5.5 \
    duckdb-extension-sqlite-scanner==1.5.5 pytz==2025.2
fi

root="$work/root"
rm -rf "$root"; mkdir -p "$root"
export MDKEEP_ROOT="$root" MDKEEP__SCAN__SETTLE_TIME=0s
"$mdkeep" init > /dev/null
echo "==> generating the pile in $root (3 symbols x 2 days x 12 flushes/h, $rows trades a flush)"
if [ "$gen" = py ]; then
  py=${PY:-$here/.venv/bin/python}
  "$py" "$here/../shared/bench/gen_trades.py" "$root/data/processed" --symbols 3 --days 2 \
    --flushes-per-hour 12 --rows-per-flush "$rows"
else
  "$mdkeep" gen --symbols 3 --days 2 --start 2024-01-01 --flushes-per-hour 12 --rows-per-flush "$rows" > /dev/null
  "$mdkeep" gen --symbols 3 --days 1 --start 2023-12-30 --flushes-per-hour 1 --rows-per-flush "$rows" > /dev/null
fi
"$mdkeep" scan > "$work/scan.out" || true
echo "    $(find "$root/data/processed/trades" -name '*.parquet' | wc -l) files scanned; $("$mdkeep" lake check | head -1)"
attach=$("$mdkeep" lake attach | grep '^ATTACH')
echo "==> readers attach with: $attach"

export MDKEEP__DATASETS__TRADES__KEEP=30h MDKEEP__DATASETS__TRADES__TRIM=true
export MDKEEP__DATASETS__TRADES__TIER_AFTER='{ warm = "12h", cold = "30d" }'
stop="$work/maintain.done"; rm -f "$stop" "$stop.ready"

"${on_core[@]}" "$lake_py" - "$root" "$attach" "$stop" "$min_reads" "$glob_tiers" > "$work/readers.out" 2> "$work/readers.err" <<'PY' &
import duckdb, glob, json, os, sys, time
import duckdb_extension_ducklake as _dl, duckdb_extension_sqlite_scanner as _sq
root, attach, stop, min_reads, tiers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
def _ext(mod, name):
    return glob.glob(os.path.join(os.path.dirname(mod.__file__), 'extensions', 'v1.5.5', name + '.duckdb_extension'))[0]
con = duckdb.connect()
con.execute("SET autoinstall_known_extensions=false; SET autoload_known_extensions=false; SET enable_progress_bar=false")
con.execute("SET TimeZone='UTC'; SET threads=1")
con.execute(f"LOAD '{_ext(_dl, 'ducklake')}'")
con.execute(f"LOAD '{_ext(_sq, 'sqlite_scanner')}'")
con.execute(attach)
pattern = f"{root}/data/{'processed' if tiers == 'hot' else '*'}/trades/**/*.parquet"
src = {"lake": "lake.trades", "glob": f"read_parquet('{pattern}', hive_partitioning=true)"}
Q = ("SELECT symbol, strftime(ts, '%Y-%m-%d') AS day, count(*), count(DISTINCT trade_id) "
     "FROM {t} GROUP BY ALL")
def read(t):
    return {(s, d): (n, k) for s, d, n, k in con.execute(Q.format(t=t)).fetchall()}
def snapshot():
    return con.execute("SELECT max(snapshot_id) FROM ducklake_snapshots('lake')").fetchone()[0]

before_snap = snapshot()
before = read(f"lake.trades AT (VERSION => {before_snap})")
assert read(src["glob"]) == before, "the glob and the lake disagree before maintenance"
print(json.dumps({"ready": True}), flush=True)
open(stop + ".ready", "w").close()

runs = {r: [] for r in src}  # (during, error or None, answer or None)
while True:
    during = not os.path.exists(stop)
    for r, t in src.items():
        try:
            runs[r].append((during, None, read(t)))
        except Exception as e:
            runs[r].append((during, str(e).splitlines()[0][:200], None))
    if not during and min(len(v) for v in runs.values()) >= min_reads:
        break

after_snap = snapshot()
after = read(f"lake.trades AT (VERSION => {after_snap})")
again = read(f"lake.trades AT (VERSION => {before_snap})")
groups = sorted(set(before) | set(after))
legal_d = {g: {before.get(g, (0, 0))[1], after.get(g, (0, 0))[1]} for g in groups}
n0 = {g: before.get(g, (0, 0))[0] for g in groups}
rows = []
for r, v in runs.items():
    failed = missing = doubled = bad = during = 0
    errors = []
    for dur, err, ans in v:
        during += dur
        if err is not None:
            failed += 1; errors.append(err); continue
        wrong = set(ans) - set(groups)
        m = dbl = 0
        for g in groups:
            n, d = ans.get(g, (0, 0))
            if d not in legal_d[g]:
                above = [x for x in legal_d[g] if x > d]
                if above:
                    m += min(above) - d
                else:
                    wrong.add(g)
            dbl += max(0, n - n0[g])
        missing += m; doubled += dbl; bad += bool(m or dbl or wrong)
    rows.append(dict(reader=r, reads=len(v), during=during, failed=failed, missing=missing,
                     doubled=doubled, bad=bad, errors=sorted(set(errors))[:3]))
print(json.dumps({
    "before_snapshot": before_snap, "after_snapshot": after_snap,
    "time_travel_ok": again == before,
    "after_has_duplicates": any(n != d for n, d in after.values()),
    "before": {f"{s} {d}": v for (s, d), v in sorted(before.items())},
    "after": {f"{s} {d}": v for (s, d), v in sorted(after.items())},
    "readers": rows}))
PY
reader=$!
while [ ! -e "$stop.ready" ]; do
  kill -0 "$reader" 2>/dev/null || { cat "$work/readers.err" >&2; exit 1; }
  sleep 0.2
done
echo "==> maintain (compact, rollup, retention: trim + drop, tier) while the readers loop${share:+ (sharing core 0, maintain at nice $share)}"
t0=$(date +%s.%N)
"${slowed[@]}" "$mdkeep" maintain | tee "$work/maintain.out" | sed 's/^/    /'
t1=$(date +%s.%N)
touch "$stop"
wait "$reader" || { cat "$work/readers.err" >&2; exit 1; }
"$mdkeep" lake check > "$work/lake-check.out" || { echo "lake check found differences:"; cat "$work/lake-check.out"; }

"$lake_py" - "$work/readers.out" "$t0" "$t1" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
print(f"\nmaintain took {float(sys.argv[3]) - float(sys.argv[2]):.1f} s; lake snapshots {r['before_snapshot']} -> {r['after_snapshot']}")
print("rows (count, distinct ids) per symbol and day, before -> after maintain:")
for g in sorted(set(r["before"]) | set(r["after"])):
    print(f"  {g:22} {str(r['before'].get(g, [0, 0])):18} -> {r['after'].get(g, [0, 0])}")
print(f"time travel to snapshot {r['before_snapshot']} after maintain: {'same answer' if r['time_travel_ok'] else 'DIFFERENT ANSWER'}")
print(f"duplicates left after maintain: {r['after_has_duplicates']}\n")
print(f"{'reader':7} {'reads':>6} {'during':>7} {'failed':>7} {'missing':>8} {'doubled':>8} {'bad':>5}")
for x in r["readers"]:
    print(f"{x['reader']:7} {x['reads']:6} {x['during']:7} {x['failed']:7} {x['missing']:8} {x['doubled']:8} {x['bad']:5}")
for x in r["readers"]:
    for e in x["errors"]:
        print(f"  {x['reader']}: {e}")
lake = next(x for x in r["readers"] if x["reader"] == "lake")
sys.exit(1 if lake["failed"] or lake["missing"] or lake["doubled"] or lake["bad"] or not r["time_travel_ok"] else 0)
PY
