#!/usr/bin/env bash
# What the files cost their readers: the same pile (../shared/bench/gen_trades.py)
# compacted by mdkeep, polars and DuckDB (../shared/bench/peer_compact.py),
# then the same queries over each output with DuckDB and with polars as the
# reader, best of N, 2 threads:
#   scan   a full-scan aggregate by symbol (count, sum(amount), avg(price), vwap)
#   slice  a 5-minute slice of one symbol
#   lookup one trade by id (in one symbol)
#   floor  DuckDB's cost of the slice's query when no row group matches (the
#          glob, the hive filter, the footers): no file layout goes below it
# Also prints each output's bytes and each compaction's wall time and peak RSS.
#
# Usage: benches/query_vs_peers.sh [WORKDIR] [N]   (default /tmp/mdkeep-query-bench, 5)
#   PILE="--symbols 4 --days 3 --flushes-per-hour 4 --rows-per-flush 20000"
#   PEERS="polars duckdb"   KEEP=1 reuses the peers' outputs from an earlier run
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shared="$here/../shared/bench"
work=${1:-/tmp/mdkeep-query-bench}
n=${2:-5}
pile_opts=${PILE:---symbols 4 --days 3 --flushes-per-hour 4 --rows-per-flush 20000}
peers=${PEERS-polars duckdb}
. "$here/benches/timed.sh"
pile "$work" "$pile_opts"

touch "$work/compaction.txt"
for peer in $peers; do
  if [ -z "${KEEP:-}" ] || [ ! -d "$work/out-$peer" ]; then
    rm -rf "$work/out-$peer"
    echo "==> compacting with $peer"
    grep -v "^$peer " "$work/compaction.txt" > "$work/compaction.tmp" || true
    echo "$peer $(timed "$work/$peer.out" "$py" "$shared/peer_compact.py" "$peer" "$work/pile" "$work/out-$peer")" \
      >> "$work/compaction.tmp"
    mv "$work/compaction.tmp" "$work/compaction.txt"
  fi
done
echo "==> compacting with mdkeep"
root="$work/mdkeep-root"
rm -rf "$root"; mkdir -p "$root/data/processed"
cp -r "$work/pile/trades" "$root/data/processed/"
MDKEEP_ROOT="$root" "$mdkeep" init > /dev/null
MDKEEP_ROOT="$root" MDKEEP__SCAN__SETTLE_TIME=0s "$mdkeep" scan > /dev/null
grep -v "^mdkeep " "$work/compaction.txt" > "$work/compaction.tmp" || true
echo "mdkeep $(MDKEEP_ROOT="$root" timed "$work/mdkeep.out" "$mdkeep" compact --json)" >> "$work/compaction.tmp"
mv "$work/compaction.tmp" "$work/compaction.txt"
"$py" "$shared/verify_compacted.py" "$work/pile" "$root/data/processed"
rm -rf "$work/out-mdkeep"; ln -s "$root/data/processed" "$work/out-mdkeep"

"$py" - "$work" "$n" "mdkeep $peers" <<'PY'
import glob, os, sys, time
import duckdb, polars as pl
work, n, engines = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
os.environ["POLARS_MAX_THREADS"] = "2"
comp = {l.split()[0]: (float(l.split()[1]), int(l.split()[2])) for l in open(f"{work}/compaction.txt")}

def size(d):
    return sum(os.path.getsize(f) for f in glob.glob(f"{d}/trades/**/*.parquet", recursive=True))

# The slice and the lookup: a 5-minute window and a trade id from the middle of one symbol's data.
probe = duckdb.sql(f"SELECT min(ts), max(ts) FROM read_parquet('{work}/out-mdkeep/trades/**/*.parquet', hive_partitioning=true) WHERE symbol = 'BTC_USDT'").fetchall()[0]
mid = probe[0] + (probe[1] - probe[0]) / 2
lo, hi = mid, mid + __import__("datetime").timedelta(minutes=5)
tid = duckdb.sql(f"SELECT trade_id FROM read_parquet('{work}/out-mdkeep/trades/**/*.parquet', hive_partitioning=true) WHERE symbol = 'BTC_USDT' AND ts >= '{lo}' LIMIT 1").fetchall()[0][0]

def best(f):
    ts = []
    for _ in range(n):
        t = time.perf_counter(); r = f(); ts.append((time.perf_counter() - t) * 1e3)
    return min(ts), r

def duck(d):
    con = duckdb.connect(); con.execute("SET threads=2")
    src = f"read_parquet('{d}/trades/**/*.parquet', hive_partitioning=true)"
    q = {
        "scan": f"SELECT symbol, count(*), sum(amount), avg(price), sum(price*amount)/sum(amount) FROM {src} GROUP BY symbol ORDER BY symbol",
        "slice": f"SELECT count(*), sum(amount) FROM {src} WHERE symbol = 'BTC_USDT' AND ts >= '{lo}' AND ts < '{hi}'",
        "lookup": f"SELECT ts, price, amount FROM {src} WHERE symbol = 'BTC_USDT' AND trade_id = {tid}",
        "floor": f"SELECT count(*), sum(amount) FROM {src} WHERE symbol = 'BTC_USDT' AND ts < '2000-01-01'",
    }
    return {k: best(lambda: con.execute(v).fetchall()) for k, v in q.items()}

def polars(d):
    lf = pl.scan_parquet(f"{d}/trades/**/*.parquet", hive_partitioning=True)
    tsd = lf.collect_schema()["ts"]
    plo, phi = pl.lit(lo).cast(tsd), pl.lit(hi).cast(tsd)
    q = {
        "scan": lambda: lf.group_by("symbol").agg(pl.len(), pl.col("amount").sum(), pl.col("price").mean().alias("avg"),
                                                 ((pl.col("price") * pl.col("amount")).sum() / pl.col("amount").sum()).alias("vwap"))
                          .sort("symbol").collect(),
        "slice": lambda: lf.filter((pl.col("symbol") == "BTC_USDT") & (pl.col("ts") >= plo) & (pl.col("ts") < phi))
                           .select(pl.len(), pl.col("amount").sum()).collect(),
        "lookup": lambda: lf.filter((pl.col("symbol") == "BTC_USDT") & (pl.col("trade_id") == tid)).select("ts", "price", "amount").collect(),
    }
    return {k: best(v) for k, v in q.items()}

def norm(res):
    """An answer without its types (a polars frame's time unit differs by writer)."""
    if isinstance(res, pl.DataFrame):
        res = res.drop([c for c in res.columns if c == "ts"]).rows()
    return repr([tuple(round(v, 6) if isinstance(v, float) else v for v in r if not hasattr(v, "tzinfo")) for r in res])

rows = {}
for e in engines:
    d = f"{work}/out-{e}"
    rows[e] = {"bytes": size(d), "duckdb": duck(d), "polars": polars(d)}
# The answers agree across outputs.
for r in ("duckdb", "polars"):
    for q in ("slice", "lookup"):
        vals = {e: norm(rows[e][r][q][1]) for e in engines}
        if len(set(vals.values())) != 1:
            sys.exit(f"{r} {q}: outputs disagree: {vals}")
print(f"\nquery at {lo} .. {hi}, trade_id {tid}; best of {n}, ms")
head = f"{'engine':8} {'bytes MB':>9} {'compact s':>9} {'RSS MB':>7} " + " ".join(f"{r[:4]}-{q:6}" for r in ("duckdb", "polars") for q in ("scan", "slice", "lookup"))
print(head)
for e in engines:
    c = comp.get(e, (float("nan"), 0))
    cells = " ".join(f"{rows[e][r][q][0]:11.1f}" for r in ("duckdb", "polars") for q in ("scan", "slice", "lookup"))
    print(f"{e:8} {rows[e]['bytes'] / 1e6:9.1f} {c[0]:9.1f} {c[1] / 1024:7.0f} {cells}")
peers = [e for e in engines if e != "mdkeep"]
if peers:
    m = rows["mdkeep"]
    print("\nmdkeep against the best peer:")
    smallest = min(rows[p]["bytes"] for p in peers)
    print(f"  bytes {m['bytes'] / smallest:.3f}x the smallest peer's (goal <= 0.85)")
    for r in ("duckdb", "polars"):
        for q, goal in (("scan", "<= 1.0"), ("slice", "<= 0.5"), ("lookup", "")):
            b = min(rows[p][r][q][0] for p in peers)
            print(f"  {r} {q}: {m[r][q][0] / b:.2f}x {('(goal ' + goal + ')') if goal else ''}")
    b = min(rows[p]["duckdb"]["slice"][0] for p in peers)
    print(f"  duckdb floor (no row group read) over mdkeep's files {m['duckdb']['floor'][0]:.1f} ms = {m['duckdb']['floor'][0] / b:.2f}x the best peer's slice")
    fast = min(comp[p][0] for p in peers if p in comp)
    print(f"  compaction wall {comp['mdkeep'][0] / fast:.2f}x the faster peer's (goal <= 0.3), peak RSS {comp['mdkeep'][1] / 1024:.0f} MB")
PY
