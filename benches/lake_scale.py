#!/usr/bin/env python3
"""The lake at scale (issue 30): a 5-minute slice and an id lookup through
mdkeep's DuckLake catalog against the glob over the same files, on a
year-like catalog (default 50 symbols x 180 daily partitions = 9,000 live
files, one small file each).

Run it with the lake venv's Python (duckdb==1.5.5, duckdb-extension-ducklake
and -sqlite-scanner 1.5.5, pytz; see tests/lake.rs), e.g.

    .lakevenv/bin/python benches/lake_scale.py [--symbols 50 --days 180] [--runs 7]
        [--work /tmp/mdkeep-lake-scale] [--mdkeep target/release/mdkeep]
        [--rows-per-day 1000] [--gen ingest|mdkeep] [--no-reference] [--no-strace] [--keep]
        [--root DIR]   (an existing root as it is, e.g. the compact bench's
                        /tmp/mdkeep-query-bench/mdkeep-root: the bench pile)

How the catalog is built (all files are written by mdkeep, every change is a
lake snapshot):
  --gen ingest (default): DuckDB writes one Parquet file per symbol holding all
      its days (ts timestamptz, trade_id, price, amount, side; sorted by ts),
      and `mdkeep ingest parquet --dataset trades --set exchange=binance --set
      symbol=SYMnnn_USDT` splits it into one file per daily partition.
  --gen mdkeep: `mdkeep gen` (8 symbols per exchange, so exchanges x00, x01, ...
      carry the series; 1 flush an hour) + `mdkeep scan` + `mdkeep compact`,
      leaving one file per partition. Slower: it writes 24 flush files per
      partition first.

What it measures, with DuckDB 1.5.5 (threads=2), median of --runs after one warm-up:
  scan    query_vs_peers.sh's full-scan aggregate by symbol
  slice   SELECT count(*), sum(amount) WHERE symbol = S AND date = D AND ts BETWEEN lo AND hi
          (a 5-minute window in the middle of a middle day)
  lookup  SELECT ts, price, amount WHERE symbol = S AND trade_id = X
  floor   the slice's query with a ts range no file holds: the reader's fixed cost
          (catalog queries / glob + hive filter + footers) when nothing is read
  slice_ts, floor_ts  query_vs_peers.sh's slice and floor as it writes them: no date
          filter, so only the files' ts statistics prune
through: lake  (ATTACH exactly as `mdkeep lake attach` prints, READ_ONLY),
         glob  read_parquet('<root>/data/processed/trades/**/*.parquet', hive_partitioning=true),
         ref   a DuckLake that DuckDB builds itself over the same files with
               ducklake_add_data_files(..., hive_partitioning => true) (--no-reference skips it).
Every answer must agree across readers (the script exits 1 otherwise).
Also: the Parquet files each reader opens for one slice in a fresh process
(strace -f -e trace=openat; apt-get install strace when missing), lake.sqlite
bytes per live file, and where the lake's time goes (EXPLAIN ANALYZE of the
slice: total vs the scan operator, the rest being bind/catalog work).
"""
import argparse, glob, json, os, re, shutil, statistics, subprocess, sys, tempfile, time

import duckdb

ap = argparse.ArgumentParser()
here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap.add_argument("--work", default="/tmp/mdkeep-lake-scale")
ap.add_argument("--mdkeep", default=os.environ.get("MDKEEP_BIN", os.path.join(here, "target/release/mdkeep")))
ap.add_argument("--symbols", type=int, default=50)
ap.add_argument("--days", type=int, default=180)
ap.add_argument("--rows-per-day", type=int, default=1000)
ap.add_argument("--runs", type=int, default=7)
ap.add_argument("--gen", choices=["ingest", "mdkeep"], default="ingest")
ap.add_argument("--no-reference", action="store_true")
ap.add_argument("--no-strace", action="store_true")
ap.add_argument("--keep", action="store_true", help="reuse the root of an earlier run with the same shape")
ap.add_argument("--root", help="an mdkeep root as it is (e.g. the compact bench's mdkeep-root): build nothing, probe its data")
a = ap.parse_args()

import duckdb_extension_ducklake as _dl, duckdb_extension_sqlite_scanner as _sq


def _ext(mod, name):
    return glob.glob(os.path.join(os.path.dirname(mod.__file__), "extensions", "v1.5.5", name + ".duckdb_extension"))[0]


PRELUDE = f"""
import duckdb
con = duckdb.connect()
con.execute("SET autoinstall_known_extensions=false; SET autoload_known_extensions=false; SET enable_progress_bar=false")
con.execute("SET threads=2; SET TimeZone='UTC'")
con.execute("LOAD '{_ext(_dl, 'ducklake')}'")
con.execute("LOAD '{_ext(_sq, 'sqlite_scanner')}'")
"""
exec(PRELUDE)  # defines con

work = os.path.abspath(a.work)
root = os.path.abspath(a.root) if a.root else f"{work}/root"
hot = f"{root}/data/processed"
env = dict(os.environ, MDKEEP_ROOT=root, MDKEEP__SCAN__SETTLE_TIME="0s")
shape = f"{a.gen} {a.symbols}x{a.days}x{a.rows_per_day}"


def mdkeep(*args):
    t = time.perf_counter()
    r = subprocess.run([a.mdkeep, *args], env=env, capture_output=True, text=True)
    if r.returncode not in (0, 4):
        sys.exit(f"mdkeep {' '.join(args)} failed ({r.returncode}):\n{r.stderr}")
    return r.stdout, time.perf_counter() - t


def symbols():
    if a.gen == "ingest":
        return [("binance", f"SYM{i:03d}_USDT") for i in range(a.symbols)]
    names = ["BTC_USDT", "ETH_USDT", "SOL_USDT", "BNB_USDT", "XRP_USDT", "ADA_USDT", "DOGE_USDT", "AVAX_USDT"]
    return [(f"x{i // 8:02d}", names[i % 8]) for i in range(a.symbols)]


build = {}
if a.root:
    os.makedirs(work, exist_ok=True)
    for old in ("ref.sqlite", "ref.sqlite.wal"):
        if os.path.exists(f"{work}/{old}"):
            os.remove(f"{work}/{old}")
elif not (a.keep and os.path.exists(f"{work}/shape") and open(f"{work}/shape").read() == shape):
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(root)
    mdkeep("init")
    t0 = time.perf_counter()
    if a.gen == "ingest":
        src = f"{work}/series"
        os.makedirs(src)
        step = 86_400_000 // a.rows_per_day
        w = duckdb.connect()
        w.execute("SET TimeZone='UTC'; SET threads=2")
        ing = 0.0
        for i, (ex, sym) in enumerate(symbols()):
            f = f"{src}/{sym}.parquet"
            w.execute(f"""COPY (
                SELECT (TIMESTAMP '2024-01-01' + to_days(d::INT) + to_milliseconds(r * {step} + (hash(d, r, {i}) % {step})::BIGINT))::TIMESTAMPTZ AS ts,
                       ({i}::BIGINT * 1000000000 + d * {a.rows_per_day} + r)::BIGINT AS trade_id,
                       round(100 * (1 + {i}) + 10 * sin(d + r / {a.rows_per_day}) + (hash(r, d) % 1000) / 1000.0, 2) AS price,
                       round((hash(d, r) % 100000) / 10000.0, 4) AS amount,
                       CASE WHEN hash(r, d, 1) % 2 = 0 THEN 'buy' ELSE 'sell' END AS side
                FROM range({a.days}) t(d), range({a.rows_per_day}) s(r) ORDER BY ts) TO '{f}' (FORMAT parquet)""")
            _, dt = mdkeep("ingest", "parquet", "--dataset", "trades", "--set", f"exchange={ex}", "--set", f"symbol={sym}", f)
            ing += dt
            os.remove(f)
        build["ingest s"] = ing
    else:
        for e in range(0, a.symbols, 8):
            mdkeep("gen", "--exchange", f"x{e // 8:02d}", "--symbols", str(min(8, a.symbols - e)), "--days", str(a.days),
                   "--start", "2024-01-01", "--flushes-per-hour", "1", "--rows-per-flush", str(max(1, a.rows_per_day // 24)))
        build["scan s"] = mdkeep("scan")[1]
        build["compact s"] = mdkeep("compact")[1]
    build["build s"] = time.perf_counter() - t0
    open(f"{work}/shape", "w").write(shape)

check = json.loads(mdkeep("lake", "check", "--json")[0])
if check.get("differences"):
    sys.exit(f"lake check found differences: {check['differences'][:5]}")
attach = next(l for l in mdkeep("lake", "attach")[0].splitlines() if l.startswith("ATTACH"))
lake_file = f"{root}/data/lake.sqlite"
con.execute(attach)
files = glob.glob(f"{hot}/trades/**/*.parquet", recursive=True)
live = len(files)
lake_bytes = sum(os.path.getsize(p) for p in (lake_file, lake_file + "-wal") if os.path.exists(p))
# The bytes that grow with the files (per-file tables and their indexes), apart
# from the fixed cost of ~30 empty tables; dbstat needs SQLite built with it.
per_file_tables = ("ducklake_data_file", "ducklake_file_column_stats", "ducklake_file_partition_value",
                   "mdkeep_data_file_live", "mdkeep_data_file_path", "mdkeep_file_stats", "mdkeep_file_partition")
try:
    import sqlite3
    _c = sqlite3.connect(f"file:{lake_file}?mode=ro", uri=True)
    per_file_bytes = sum(b for n, b in _c.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name") if n in per_file_tables)
    _c.close()
except Exception:
    per_file_bytes = None

src = {"lake": "lake.trades", "glob": f"read_parquet('{hot}/trades/**/*.parquet', hive_partitioning=true)"}
if not a.no_reference:
    ref = f"{work}/ref.sqlite"
    if not os.path.exists(ref):
        t = time.perf_counter()
        w = duckdb.connect()
        exec(PRELUDE.replace("con = duckdb.connect()", "pass").replace("con.", "w."))
        w.execute(f"ATTACH 'ducklake:sqlite:{ref}' AS ref (DATA_PATH '{work}/ref-data/')")
        w.execute("""CREATE TABLE ref.trades(exchange VARCHAR, symbol VARCHAR, date VARCHAR, ts TIMESTAMPTZ,
                     trade_id BIGINT, price DOUBLE, amount DOUBLE, side VARCHAR)""")
        w.execute("ALTER TABLE ref.trades SET PARTITIONED BY (exchange, symbol, date)")
        w.execute(f"CALL ducklake_add_data_files('ref', 'trades', '{hot}/trades/**/*.parquet', hive_partitioning => true)")
        w.close()
        build["ref add_data_files s"] = time.perf_counter() - t
    con.execute(f"ATTACH 'ducklake:sqlite:{ref}' AS ref (READ_ONLY)")
    src["ref"] = "ref.trades"

# The probe: a middle symbol, a middle day, a 5-minute window in its middle and one trade id there.
if a.root:
    series = con.execute("SELECT DISTINCT exchange, symbol FROM lake.trades ORDER BY ALL").fetchall()
    ex, sym = series[len(series) // 2]
    days = [d for (d,) in con.execute(f"SELECT DISTINCT date FROM lake.trades WHERE exchange = '{ex}' AND symbol = '{sym}' ORDER BY 1").fetchall()]
    day = days[len(days) // 2]
else:
    ex, sym = symbols()[len(symbols()) // 2]
    day = con.execute(f"SELECT strftime(TIMESTAMP '2024-01-01' + to_days({a.days // 2}), '%Y-%m-%d')").fetchone()[0]
lo = f"{day} 12:00:00+00"
hi = f"{day} 12:05:00+00"
tid = con.execute(f"SELECT min(trade_id) FROM lake.trades WHERE exchange = '{ex}' AND symbol = '{sym}' AND date = '{day}' AND ts >= '{lo}'").fetchone()[0]
where = f"exchange = '{ex}' AND symbol = '{sym}'"
Q = {
    "scan": "SELECT symbol, count(*), round(sum(amount), 4), round(avg(price), 6), round(sum(price*amount)/sum(amount), 6) FROM {t} GROUP BY symbol ORDER BY symbol",
    "slice": f"SELECT count(*), sum(amount) FROM {{t}} WHERE {where} AND date = '{day}' AND ts BETWEEN '{lo}' AND '{hi}'",
    "lookup": f"SELECT ts, price, amount FROM {{t}} WHERE {where} AND trade_id = {tid}",
    "floor": f"SELECT count(*), sum(amount) FROM {{t}} WHERE {where} AND date = '{day}' AND ts < '2000-01-01'",
    # query_vs_peers.sh's own slice and floor: no partition filter, so only
    # the ts statistics prune (its scan and lookup are the ones above).
    "slice_ts": f"SELECT count(*), sum(amount) FROM {{t}} WHERE {where} AND ts >= '{lo}' AND ts < '{hi}'",
    "floor_ts": f"SELECT count(*), sum(amount) FROM {{t}} WHERE {where} AND ts < '2000-01-01'",
}


def median_ms(sql):
    con.execute(sql).fetchall()  # warm-up
    ts = []
    for _ in range(a.runs):
        t = time.perf_counter()
        r = con.execute(sql).fetchall()
        ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts), r


res = {q: {r: median_ms(sql.format(t=t)) for r, t in src.items()} for q, sql in Q.items()}
bad = []
for q in Q:
    answers = {r: repr(v[1]) for r, v in res[q].items()}
    if len(set(answers.values())) != 1:
        bad.append(f"{q}: readers disagree: {answers}")

# Files a slice opens, in a fresh process per reader.
opens = {}
if not a.no_strace and shutil.which("strace"):
    for r, t in src.items():
        att = attach if r == "lake" else (f"ATTACH 'ducklake:sqlite:{work}/ref.sqlite' AS ref (READ_ONLY)" if r == "ref" else "")
        code = PRELUDE + (f"con.execute({att!r})\n" if att else "") + f"con.execute({Q['slice'].format(t=t)!r}).fetchall()\n"
        with tempfile.NamedTemporaryFile("r", suffix=".strace") as out:
            subprocess.run(["strace", "-f", "-qq", "-e", "trace=openat", "-o", out.name, sys.executable, "-c", code], check=True)
            paths = set(re.findall(r'openat\([^,]+, "([^"]+\.parquet)"', out.read()))
        opens[r] = len(paths)

# Where the lake's time goes: EXPLAIN ANALYZE of the slice.
con.execute("PRAGMA enable_profiling='json'; PRAGMA profiling_output='" + f"{work}/profile.json" + "'")
con.execute(Q["slice"].format(t="lake.trades")).fetchall()
con.execute("PRAGMA disable_profiling")
prof = json.load(open(f"{work}/profile.json"))


def walk(n, acc):
    acc.append((n.get("operator_type") or n.get("operator_name") or "?", n.get("operator_timing", 0.0),
                n.get("extra_info", {})))
    for c in n.get("children", []):
        walk(c, acc)
    return acc


ops = walk(prof, [])
total = prof.get("latency", 0.0) * 1e3
scan = sum(t for name, t, _ in ops if "SCAN" in name.upper()) * 1e3
ops_ms = sum(t for _, t, _ in ops) * 1e3

print(f"\nlake scale: " + (f"the root {root}" if a.root else f"{a.gen} {a.symbols} symbols x {a.days} days, {a.rows_per_day} rows a day") + f"; {live} live files "
      f"(lake check: {check.get('live_files')} live, snapshot {check.get('snapshot')})")
print("build: " + ", ".join(f"{k} {v:.1f}" for k, v in build.items()) if build else "build: reused")
print(f"lake.sqlite: {lake_bytes / 1e6:.2f} MB = {lake_bytes / max(live, 1):.0f} bytes per live file"
      + (f" (the per-file tables and indexes: {per_file_bytes / max(live, 1):.0f} bytes per file)" if per_file_bytes else ""))
print(f"probe: {ex}/{sym} {day} {lo[11:19]}..{hi[11:19]}, trade_id {tid}; median of {a.runs}, ms, threads=2")
readers = list(src)
print(f"{'query':8}" + "".join(f"{r:>10}" for r in readers) + f"{'lake/glob':>11}" + (f"{'ref/glob':>10}" if 'ref' in src else ""))
for q in Q:
    row = f"{q:8}" + "".join(f"{res[q][r][0]:10.1f}" for r in readers)
    row += f"{res[q]['lake'][0] / res[q]['glob'][0]:10.2f}x"
    if "ref" in src:
        row += f"{res[q]['ref'][0] / res[q]['glob'][0]:9.2f}x"
    print(row)
if opens:
    print("parquet files opened by one slice (strace, fresh process): " + ", ".join(f"{r} {n}" for r, n in opens.items()))
print(f"lake slice profile: latency {total:.1f} ms, operators {ops_ms:.1f} ms (scans {scan:.1f} ms); "
      f"the rest ({total - ops_ms:.1f} ms) is bind, catalog queries to lake.sqlite and pruning")
for name, t, extra in ops:
    if t * 1e3 >= 0.05 or "SCAN" in name.upper():
        info = {k: v for k, v in extra.items() if k in ("Total Files Read", "Filters", "Function", "Estimated Cardinality")} if isinstance(extra, dict) else {}
        print(f"  {name:24} {t * 1e3:7.2f} ms  {json.dumps(info)[:160]}")
print("answers: " + ("lake, glob" + (" and ref" if "ref" in src else "") + " agree" if not bad else "DISAGREE"))
for b in bad:
    print("  " + b)
json.dump({"live": live, "lake_bytes": lake_bytes, "per_file_bytes": per_file_bytes, "build": build, "opens": opens,
           "ms": {q: {r: v[0] for r, v in res[q].items()} for q in Q}, "bad": bad}, open(f"{work}/result.json", "w"), indent=1)
sys.exit(1 if bad else 0)
