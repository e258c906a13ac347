#!/usr/bin/env python3
"""SMA-crossover backtest with vectorbt on a wide close table.

Input : $MDKEEP_DATA_DIR/close.parquet - column (or index) `date` plus one float column per
        symbol (e.g. date, BTC_USDT, ETH_USDT).
Output: JSON at $MDKEEP_RESULT with framework, total_return, total_profit, trades,
        max_drawdown (fraction, positive), plus a few cheap extras and a per-symbol breakdown;
        $MDKEEP_ARTIFACTS/equity.parquet (ts, equity): the portfolio's value, summed over the
        symbols, ending at init_cash * (1 + total_return).
Optional env: SMA_FAST (default 5), SMA_SLOW (20), INIT_CASH (1000 per symbol), FEES (0.001).
"""

import json
import os
import resource
import sys
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import vectorbt as vbt


def _f(x):
    x = float(x)
    return None if not np.isfinite(x) else x


def write_equity(index, values) -> None:
    """$MDKEEP_ARTIFACTS/equity.parquet: `ts` (timestamp, UTC) and `equity` (float), the
    shape mdkeep's job page and `jobs compare` read. Written whole, then renamed."""
    art = os.environ.get("MDKEEP_ARTIFACTS")
    if not art or not os.path.isdir(art):
        return
    table = pa.table({
        "ts": pa.array(pd.DatetimeIndex(index).tz_convert("UTC").as_unit("ns"), pa.timestamp("ns", tz="UTC")),
        "equity": pa.array(np.asarray(values, dtype="float64"), pa.float64()),
    })
    path = os.path.join(art, "equity.parquet")
    pq.write_table(table, path + ".tmp")
    os.replace(path + ".tmp", path)


def main() -> int:
    t0 = time.time()
    data_dir = os.environ["MDKEEP_DATA_DIR"]
    out_path = os.environ["MDKEEP_RESULT"]
    fast = int(os.environ.get("SMA_FAST", 5))
    slow = int(os.environ.get("SMA_SLOW", 20))
    init_cash = float(os.environ.get("INIT_CASH", 1000))
    fees = float(os.environ.get("FEES", 0.001))

    df = pq.read_table(os.path.join(data_dir, "close.parquet")).to_pandas()
    if "date" in df.columns:
        df = df.set_index("date")
    df.index = pd.to_datetime(df.index, utc=True)
    close = df.sort_index().astype("float64")
    symbols = [str(c) for c in close.columns]

    fast_ma = vbt.MA.run(close, fast, short_name="fast")
    slow_ma = vbt.MA.run(close, slow, short_name="slow")
    entries = fast_ma.ma_crossed_above(slow_ma)
    exits = fast_ma.ma_crossed_below(slow_ma)
    pf = vbt.Portfolio.from_signals(
        close, entries, exits, init_cash=init_cash, fees=fees, freq="1min"
    )

    # group_by=True: one portfolio over all symbols (cash per symbol, summed).
    grp = pf.replace(wrapper=pf.wrapper.replace(group_by=True))
    init_total = float(grp.init_cash)
    total_profit = float(grp.total_profit())
    per_symbol = {}
    # Columns come back as a MultiIndex (fast_window, slow_window, symbol): go by position.
    tr = pf.total_return().to_numpy()
    tp = pf.total_profit().to_numpy()
    md = pf.max_drawdown().to_numpy()
    tc = pf.trades.count().to_numpy()
    for i, s in enumerate(symbols):
        per_symbol[s] = {
            "total_return": _f(tr[i]),
            "total_profit": _f(tp[i]),
            "trades": int(tc[i]),
            "max_drawdown": _f(abs(md[i])),
        }

    result = {
        "framework": "vectorbt",
        "framework_version": vbt.__version__,
        "strategy": f"sma_cross_{fast}_{slow}",
        "total_return": _f(total_profit / init_total),
        "total_profit": _f(total_profit),
        "trades": int(pf.trades.count().sum()),
        "max_drawdown": _f(abs(grp.max_drawdown())),
        "init_cash": init_total,
        "final_value": _f(grp.final_value()),
        "win_rate": _f(grp.trades.win_rate()),
        "fees": fees,
        "symbols": symbols,
        "candles": int(len(close)),
        "start": close.index[0].isoformat(),
        "end": close.index[-1].isoformat(),
        "per_symbol": per_symbol,
        "wall_s": round(time.time() - t0, 3),
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    # The group's portfolio value over time: init_cash + total_profit at the end.
    value = grp.value()
    if getattr(value, "ndim", 1) > 1:
        value = value.sum(axis=1)
    write_equity(value.index, value.to_numpy())
    tmp = out_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=2)
    os.replace(tmp, out_path)
    print(json.dumps({k: result[k] for k in ("total_return", "total_profit", "trades",
                                             "max_drawdown")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
