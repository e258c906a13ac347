#!/usr/bin/env python3
"""Trade-driven market making with hftbacktest 2.4.4 on mdkeep's `hftbacktest` export.

Input : $MDKEEP_DATA_DIR/<SYMBOL>.npz - mdkeep's export: the npz member `data.npy` holds an
        array of hftbacktest's 64-byte `event_dtype` rows, one trade event per row
        (EXCH|LOCAL|BUY/SELL|TRADE). The files go to hftbacktest as paths, so its own Rust npz
        reader loads them. One backtest asset per file, all in one backtester.
Strategy: every STEP_MS, take the last trade price as the fair price, skew it against the
        inventory, and keep one post-only (GTX) bid and one ask HALF_SPREAD_BPS away from it
        (order id = price tick). The data is trades only (no book): a resting order fills when a
        trade prints through its price, or at its price once the queue ahead (empty) is gone.
Output: JSON at $MDKEEP_RESULT: framework, framework_version, strategy, fills (our order fills),
        market_trades (input rows), total_profit (quote currency, after fees), total_return
        (profit / BOOK_SIZE), max_drawdown (fraction of BOOK_SIZE), fees, trading_value,
        final_position, per_symbol{...}, wall_s, peak_rss_kb; $MDKEEP_ARTIFACTS/equity.parquet
        (ts, equity): the book plus the profit so far. Equity is marked at the last trade
        price (hftbacktest's Recorder marks at the book mid, which trades-only data lacks).
Optional env: STEP_MS (100), HALF_SPREAD_BPS (5), ORDER_QTY (0.01), MAX_POSITION (0.1),
        SKEW_BPS (1, per ORDER_QTY of inventory), MAKER_FEE (0.0002), TAKER_FEE (0.0005),
        TICK_SIZE (0.01), LOT_SIZE (0.00001), LATENCY_MS (10, order entry and response each),
        BOOK_SIZE (10000, per symbol), RECORD_EVERY_S (1).
"""

import glob
import json
import math
import os
import resource
import sys
import time

import numpy as np
from numba import njit

import hftbacktest
from hftbacktest import (BUY, GTX, LIMIT, SELL, BacktestAsset,
                         HashMapMarketDepthBacktest)
from hftbacktest.stats import LinearAssetRecord
from hftbacktest.types import event_dtype, record_dtype


@njit
def record(hbt, records, n_rec, last_px):
    """One row of state per asset, marked at the last trade price (there is no book)."""
    for a in range(records.shape[1]):
        sv = hbt.state_values(a)
        r = records[n_rec, a]
        r.timestamp = hbt.current_timestamp
        r.price = last_px[a]
        r.position = sv.position
        r.balance = sv.balance
        r.fee = sv.fee
        r.num_trades = sv.num_trades
        r.trading_volume = sv.trading_volume
        r.trading_value = sv.trading_value


@njit
def trade_mm(hbt, records, step_ns, record_every, half_spread, skew, order_qty, max_pos):
    """Quotes every asset; records (ts, last price, state) every `record_every` steps.

    Returns the number of records written.
    """
    n_assets = hbt.num_assets
    last_px = np.full(n_assets, np.nan)
    n_rec = 0
    step = 0
    while hbt.elapse(step_ns) == 0:
        for a in range(n_assets):
            trades = hbt.last_trades(a)
            if len(trades) > 0:
                last_px[a] = trades[len(trades) - 1].px
            hbt.clear_last_trades(a)
            hbt.clear_inactive_orders(a)
            px = last_px[a]
            if np.isnan(px):
                continue
            tick = hbt.depth(a).tick_size
            pos = hbt.position(a)
            fair = px * (1.0 - skew * pos / order_qty)
            bid_tick = math.floor(fair * (1.0 - half_spread) / tick)
            ask_tick = math.ceil(fair * (1.0 + half_spread) / tick)
            orders = hbt.orders(a)
            # Cancel quotes that are no longer at the wanted prices.
            values = orders.values()
            while values.has_next():
                o = values.get()
                if o.cancellable:
                    if (o.side == BUY and o.order_id != bid_tick) or (o.side == SELL and o.order_id != ask_tick):
                        hbt.cancel(a, o.order_id, False)
            if pos < max_pos and bid_tick not in orders:
                hbt.submit_buy_order(a, bid_tick, bid_tick * tick, order_qty, GTX, LIMIT, False)
            if pos > -max_pos and ask_tick not in orders:
                hbt.submit_sell_order(a, ask_tick, ask_tick * tick, order_qty, GTX, LIMIT, False)
        step += 1
        if step % record_every == 0 and n_rec < records.shape[0]:
            record(hbt, records, n_rec, last_px)
            n_rec += 1
    # Final state at the end of the data.
    if n_rec < records.shape[0]:
        record(hbt, records, n_rec, last_px)
        n_rec += 1
    return n_rec


def _f(x):
    x = float(x)
    return None if not np.isfinite(x) else x


def _env(name, default):
    return float(os.environ.get(name, default))


def write_equity(art, ts, records, book_total) -> None:
    """$MDKEEP_ARTIFACTS/equity.parquet: `ts` (timestamp, UTC) and `equity` (float), the
    shape mdkeep's job page and `jobs compare` read: the book plus every asset's profit so far
    (its equity less its first marked equity, carried forward), so it ends at
    book * (1 + total_return)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = len(ts)
    if n == 0:
        return
    eq = records["balance"] + records["position"] * records["price"] - records["fee"]
    rows = np.arange(n)
    profit = np.zeros(n)
    for i in range(eq.shape[1]):
        e = eq[:, i]
        ok = np.isfinite(e)
        if not ok.any():
            continue
        start = int(np.argmax(ok))
        last_ok = np.maximum.accumulate(np.where(ok, rows, start))
        profit += np.where(rows >= start, e[last_ok] - e[start], 0.0)
    table = pa.table({
        "ts": pa.array(np.asarray(ts, dtype="int64"), pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
        "equity": pa.array(book_total + profit, pa.float64()),
    })
    path = os.path.join(art, "equity.parquet")
    pq.write_table(table, path + ".tmp")
    os.replace(path + ".tmp", path)


def main() -> int:
    t0 = time.time()
    data_dir = os.environ["MDKEEP_DATA_DIR"]
    out_path = os.environ["MDKEEP_RESULT"]
    step_ms = _env("STEP_MS", 100)
    half_spread_bps = _env("HALF_SPREAD_BPS", 5)
    order_qty = _env("ORDER_QTY", 0.01)
    max_pos = _env("MAX_POSITION", 0.1)
    skew_bps = _env("SKEW_BPS", 1)
    maker_fee = _env("MAKER_FEE", 0.0002)
    taker_fee = _env("TAKER_FEE", 0.0005)
    tick_size = _env("TICK_SIZE", 0.01)
    lot_size = _env("LOT_SIZE", 0.00001)
    latency_ns = int(_env("LATENCY_MS", 10) * 1_000_000)
    book_size = _env("BOOK_SIZE", 10000)
    record_every_s = _env("RECORD_EVERY_S", 1)

    files = sorted(glob.glob(os.path.join(data_dir, "*.npz")))
    if not files:
        raise SystemExit(f"no .npz in {data_dir}")
    symbols = [os.path.basename(f)[:-4] for f in files]

    # Row counts and the time span, to size the record buffer (one day of trades is ~12 MB;
    # loaded once here and dropped, the backtester reads the files itself).
    rows, t_first, t_last = [], [], []
    for f in files:
        with np.load(f) as z:
            d = z["data"]
            if d.dtype != event_dtype:
                raise SystemExit(f"{f}: dtype {d.dtype} is not hftbacktest's event_dtype")
            rows.append(int(len(d)))
            if len(d):
                t_first.append(int(d["exch_ts"][0]))
                t_last.append(int(d["exch_ts"][-1]))
            del d
    span_ns = (max(t_last) - min(t_first)) if t_first else 0
    step_ns = int(step_ms * 1_000_000)
    record_every = max(1, int(round(record_every_s * 1e9 / step_ns)))
    capacity = span_ns // (step_ns * record_every) + 16

    assets = [
        BacktestAsset()
        .data([f])
        .linear_asset(1.0)
        .constant_order_latency(latency_ns, latency_ns)
        .risk_adverse_queue_model()
        .no_partial_fill_exchange()
        .trading_value_fee_model(maker_fee, taker_fee)
        .tick_size(tick_size)
        .lot_size(lot_size)
        .last_trades_capacity(10_000)
        for f in files
    ]
    hbt = HashMapMarketDepthBacktest(assets)
    records = np.zeros((capacity, len(files)), record_dtype)
    n_rec = trade_mm(hbt, records, step_ns, record_every, half_spread_bps / 1e4, skew_bps / 1e4,
                     order_qty, max_pos)
    hbt.close()
    records = records[:n_rec]

    per_symbol = {}
    tot_profit = tot_fee = tot_value = 0.0
    tot_fills = 0
    equity_sum = None
    for i, s in enumerate(symbols):
        rec = records[:, i]
        rec = rec[np.isfinite(rec["price"])]
        if len(rec) == 0:
            per_symbol[s] = {"fills": 0, "market_trades": rows[i]}
            continue
        st = LinearAssetRecord(rec).resample("1s").stats(book_size=book_size).splits[-1]
        equity = rec["balance"] + rec["position"] * rec["price"] - rec["fee"]
        profit = float(equity[-1] - equity[0])
        last = rec[-1]
        per_symbol[s] = {
            "fills": int(last["num_trades"]),
            "market_trades": rows[i],
            "total_profit": _f(profit),
            "total_return": _f(st["Return"]),
            "max_drawdown": _f(st["MaxDrawdown"]),
            "sharpe": _f(st["SR"]),
            "fees": _f(last["fee"]),
            "trading_volume": _f(last["trading_volume"]),
            "trading_value": _f(last["trading_value"]),
            "final_position": _f(round(float(last["position"]), 12)),
            "max_position_value": _f(st["MaxPositionValue"]),
        }
        tot_profit += profit
        tot_fee += float(last["fee"])
        tot_value += float(last["trading_value"])
        tot_fills += int(last["num_trades"])
        # Same record timestamps for every asset: the group equity is the sum.
        e = records[:, i]["balance"] + records[:, i]["position"] * records[:, i]["price"] - records[:, i]["fee"]
        equity_sum = e if equity_sum is None else equity_sum + e

    book_total = book_size * len(files)
    max_dd = None
    if equity_sum is not None:
        eq = equity_sum[np.isfinite(equity_sum)]
        if len(eq):
            max_dd = _f(np.max(np.maximum.accumulate(eq) - eq) / book_total)

    ts = records["timestamp"][:, 0] if n_rec else np.array([], dtype="i8")
    result = {
        "framework": "hftbacktest",
        "framework_version": hftbacktest.__version__,
        "strategy": f"trade_mm_{half_spread_bps:g}bps_q{order_qty:g}",
        "fills": tot_fills,
        "trades": tot_fills,
        "market_trades": int(sum(rows)),
        "total_profit": _f(tot_profit),
        "total_return": _f(tot_profit / book_total),
        "max_drawdown": max_dd,
        "book_size": book_total,
        "fees": _f(tot_fee),
        "trading_value": _f(tot_value),
        "symbols": symbols,
        "records": int(n_rec),
        "start": int(ts[0]) if len(ts) else None,
        "end": int(ts[-1]) if len(ts) else None,
        "params": {"step_ms": step_ms, "half_spread_bps": half_spread_bps, "order_qty": order_qty,
                   "max_position": max_pos, "skew_bps": skew_bps, "maker_fee": maker_fee,
                   "taker_fee": taker_fee, "tick_size": tick_size, "lot_size": lot_size,
                   "latency_ns": latency_ns},
        "per_symbol": per_symbol,
        "wall_s": round(time.time() - t0, 3),
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    art = os.environ.get("MDKEEP_ARTIFACTS")
    if art and os.path.isdir(art):
        np.savez_compressed(os.path.join(art, "records.npz"),
                            **{s: records[:, i] for i, s in enumerate(symbols)})
        write_equity(art, ts, records, book_total)
    tmp = out_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=2)
    os.replace(tmp, out_path)
    print(json.dumps({k: result[k] for k in ("fills", "total_profit", "total_return", "max_drawdown")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
