#!/usr/bin/env python3
"""Synthetic random-walk 1m candles for backtest smoke runs (pyarrow + numpy only).

usage: synth_data.py OUTDIR [--days 3] [--pairs BTC_USDT,ETH_USDT] [--seed 42]

Writes, in OUTDIR:
  <PAIR>-1m.feather  columns date timestamp[ms, tz=UTC], open/high/low/close/volume float64
                     (freqtrade's FeatherDataHandler layout, lz4-compressed Feather v2)
  close.parquet      wide close table: date timestamp[ms, tz=UTC], one float64 column per pair
"""
import argparse
import os

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq

START_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
PRICES = {"BTC_USDT": 60_000.0, "ETH_USDT": 3_000.0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--days", type=float, default=3)
    ap.add_argument("--pairs", default="BTC_USDT,ETH_USDT")
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    n = int(a.days * 1440)
    rng = np.random.default_rng(a.seed)
    ts = pa.array(START_MS + np.arange(n, dtype=np.int64) * 60_000, pa.timestamp("ms", tz="UTC"))
    wide = {"date": ts}
    for pair in a.pairs.split(","):
        p0 = PRICES.get(pair, 100.0)
        # geometric random walk, ~0.1% per minute
        close = p0 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
        open_ = np.concatenate([[p0], close[:-1]])
        wig = np.abs(rng.normal(0, 0.0005, (2, n)))
        high = np.maximum(open_, close) * (1 + wig[0])
        low = np.minimum(open_, close) * (1 - wig[1])
        vol = rng.gamma(2.0, 5.0, n)
        t = pa.table({"date": ts, "open": open_, "high": high, "low": low,
                      "close": close, "volume": vol})
        feather.write_feather(t, os.path.join(a.outdir, f"{pair}-1m.feather"),
                              compression="lz4")
        wide[pair] = close
    pq.write_table(pa.table(wide), os.path.join(a.outdir, "close.parquet"), compression="zstd")
    print(f"wrote {n} candles x {len(wide) - 1} pairs to {a.outdir}")


if __name__ == "__main__":
    main()
