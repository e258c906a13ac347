#!/usr/bin/env python3
"""The tests' own check of a compacted trades tree against its input pile.

DuckDB (and pyarrow for the order inside each file) read both trees as an
independent reader. Passes when the output holds exactly the input's distinct
(exchange, symbol, trade_id), none twice; every row is one of the input's rows
and sits in the date partition of its own ts (UTC); and every file is sorted by
(ts, trade_id). Prints one line; exits 1 with the reasons otherwise.

Usage: verify_compacted.py INPUT_ROOT OUTPUT_ROOT   (tier roots holding trades/)
"""
import glob
import sys

import duckdb
import pyarrow.parquet as pq

COLS = "exchange, symbol, trade_id, ts, price, amount, side"


def main():
    inp, out = sys.argv[1], sys.argv[2]
    con = duckdb.connect().execute('SET enable_progress_bar = false')
    src = f"read_parquet('{inp}/trades/**/*.parquet', hive_partitioning=true)"
    dst = f"read_parquet('{out}/trades/**/*.parquet', hive_partitioning=true)"
    q = lambda sql: con.execute(sql).fetchone()[0]
    want = q(f"SELECT count(*) FROM (SELECT DISTINCT exchange, symbol, trade_id FROM {src})")
    rows = q(f"SELECT count(*) FROM {dst}")
    distinct = q(f"SELECT count(*) FROM (SELECT DISTINCT exchange, symbol, trade_id FROM {dst})")
    foreign = q(f"SELECT count(*) FROM (SELECT {COLS} FROM {dst} EXCEPT SELECT {COLS} FROM {src})")
    misplaced = q(f"SELECT count(*) FROM {dst} WHERE strftime(ts AT TIME ZONE 'UTC', '%Y-%m-%d') <> CAST(date AS VARCHAR)")
    errors = []
    if rows != distinct:
        errors.append(f"{rows - distinct} keys twice")
    if distinct != want:
        errors.append(f"{distinct} distinct keys out, {want} in")
    if foreign:
        errors.append(f"{foreign} rows that are no input row")
    if misplaced:
        errors.append(f"{misplaced} rows outside their own day's partition")
    files = glob.glob(f"{out}/trades/**/*.parquet", recursive=True)
    for f in files:
        t = pq.read_table(f, columns=["ts", "trade_id"])
        keys = list(zip(t.column("ts").cast("int64").to_pylist(), t.column("trade_id").to_pylist()))
        if keys != sorted(keys):
            errors.append(f"{f} is not sorted by (ts, trade_id)")
    print(("FAIL: " + "; ".join(errors)) if errors else f"ok: {len(files)} files, {rows} rows")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
