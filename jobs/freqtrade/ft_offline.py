#!/usr/bin/env python3
"""Run the freqtrade CLI with no exchange network at all.

freqtrade (every version, incl. 2026.9) calls ccxt `load_markets()` at start-up, even for
`backtesting`; without network it stops with "Could not load markets, therefore cannot
start." Upstream declines to support offline mode (freqtrade issues #5526, #6077, #12456).

This wrapper patches ccxt before freqtrade starts:
  * `load_markets` sets markets from a local source instead of fetching them;
  * every HTTP `fetch` raises ExchangeNotAvailable at once, so a leak fails fast and loudly.

Market source, in order:
  1. $MDKEEP_FT_MARKETS: JSON file, a list (or symbol-keyed dict) of ccxt unified market dicts,
     e.g. `json.dump(list(ccxt.binance().load_markets().values()), f)` saved on a machine
     with network;
  2. otherwise markets synthesized for every pair in the configs' exchange.pair_whitelist
     and in `-p/--pairs`: spot markets (precision 1e-8, min cost 5 quote, fees 0.1%), and
     linear perpetual swaps for futures pairs such as `BTC/USDT:USDT` (fees 0.02/0.05%,
     leverage up to 125; Binance's leverage tiers ship with freqtrade and load in dry runs).

After a backtest that succeeded, it writes $MDKEEP_ARTIFACTS/equity.parquet (ts, equity):
the closed-trade equity from the backtest's export (see write_equity).

usage: python ft_offline.py <freqtrade CLI args...>   (same arguments as `freqtrade`)
"""

import json
import os
import sys


def _argv_values(argv, *flags):
    out = []
    i = 0
    while i < len(argv):
        a = argv[i]
        for f in flags:
            if a == f:
                # collect following non-option values (nargs='+' for -p)
                j = i + 1
                while j < len(argv) and not argv[j].startswith("-"):
                    out.append(argv[j])
                    j += 1
                    if f in ("-c", "--config"):
                        break
            elif a.startswith(f + "="):
                out.append(a.split("=", 1)[1])
        i += 1
    return out


def _pairs_from_cli(argv):
    pairs = list(_argv_values(argv, "-p", "--pairs"))
    configs = [c for c in _argv_values(argv, "-c", "--config") if c != "-"]
    if not configs and os.path.exists("config.json"):
        configs = ["config.json"]
    if configs:
        from freqtrade.configuration.load_config import load_config_file

        for c in configs:
            cfg = load_config_file(c)
            pairs += cfg.get("exchange", {}).get("pair_whitelist", [])
    return sorted(set(pairs))


def _spot_market(symbol):
    base, quote = symbol.split("/", 1)
    quote = quote.split(":", 1)[0]
    return {
        "id": f"{base}{quote}",
        "symbol": f"{base}/{quote}",
        "base": base,
        "quote": quote,
        "baseId": base,
        "quoteId": quote,
        "settle": None,
        "settleId": None,
        "type": "spot",
        "spot": True,
        "margin": False,
        "swap": False,
        "future": False,
        "option": False,
        "active": True,
        "contract": False,
        "linear": None,
        "inverse": None,
        "contractSize": None,
        "taker": 0.001,
        "maker": 0.001,
        "percentage": True,
        "tierBased": False,
        "precision": {"amount": 1e-8, "price": 1e-8, "base": 1e-8, "quote": 1e-8},
        "limits": {
            "amount": {"min": 1e-8, "max": 1e9},
            "price": {"min": 1e-8, "max": 1e9},
            "cost": {"min": 5.0, "max": None},
            "leverage": {"min": None, "max": None},
            "market": {"min": None, "max": None},
        },
        "created": None,
        "info": {},
    }


def _swap_market(symbol):
    """A linear perpetual swap, as ccxt describes Binance's USD-M futures."""
    base, rest = symbol.split("/", 1)
    quote, settle = rest.split(":", 1)
    m = _spot_market(f"{base}/{quote}")
    m.update({
        "symbol": symbol, "settle": settle, "settleId": settle, "type": "swap", "spot": False,
        "swap": True, "contract": True, "linear": True, "inverse": False, "contractSize": 1.0,
        "taker": 0.0005, "maker": 0.0002, "expiry": None, "expiryDatetime": None,
        "strike": None, "optionType": None,
        "precision": {"amount": 0.001, "price": 0.1, "base": 1e-8, "quote": 1e-8},
    })
    m["limits"].update({"amount": {"min": 0.001, "max": 1000.0}, "price": {"min": 0.1, "max": 1e7},
                        "leverage": {"min": 1, "max": 125}, "market": {"min": 0.001, "max": 120.0}})
    return m


def _market(symbol):
    return _swap_market(symbol) if ":" in symbol else _spot_market(symbol)


def _load_markets_list(argv):
    path = os.environ.get("MDKEEP_FT_MARKETS")
    if path:
        with open(path) as f:
            data = json.load(f)
        return list(data.values()) if isinstance(data, dict) else data
    pairs = _pairs_from_cli(argv)
    if not pairs:
        sys.exit("ft_offline: no pairs found (config exchange.pair_whitelist or -p) "
                 "and MDKEEP_FT_MARKETS not set")
    return [_market(p) for p in pairs]


def install(markets):
    import ccxt
    from ccxt.async_support.base import exchange as async_ex
    from ccxt.base import exchange as sync_ex

    def offline_fetch_sync(self, url, method="GET", headers=None, body=None):
        raise ccxt.ExchangeNotAvailable(f"ft_offline: network disabled ({method} {url})")

    async def offline_fetch_async(self, url, method="GET", headers=None, body=None):
        raise ccxt.ExchangeNotAvailable(f"ft_offline: network disabled ({method} {url})")

    def load_markets_sync(self, reload=False, params={}):
        if reload or not self.markets:
            self.set_markets(markets)
        return self.markets

    async def load_markets_helper(self, reload=False, params={}):
        return self.set_markets(markets)

    sync_ex.Exchange.fetch = offline_fetch_sync
    sync_ex.Exchange.load_markets = load_markets_sync
    async_ex.Exchange.fetch = offline_fetch_async
    async_ex.Exchange.load_markets_helper = load_markets_helper


def write_equity(res_dir):
    """$MDKEEP_ARTIFACTS/equity.parquet from a finished backtest's export: `ts` (timestamp,
    UTC) and `equity` (float), the shape mdkeep's job page and `jobs compare` read. Freqtrade's
    closed-trade equity: the starting balance, then plus each trade's profit_abs at its close,
    so it ends at starting_balance * (1 + profit_total)."""
    import zipfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    art = os.environ.get("MDKEEP_ARTIFACTS")
    if not art or not os.path.isdir(art):
        return
    with open(os.path.join(res_dir, ".last_result.json")) as f:
        name = json.load(f)["latest_backtest"]
    if name.endswith(".zip"):
        with zipfile.ZipFile(os.path.join(res_dir, name)) as z:
            stats = json.loads(z.read(name[: -len(".zip")] + ".json"))
    else:
        with open(os.path.join(res_dir, name)) as f:
            stats = json.load(f)
    s = next(iter(stats["strategy"].values()))
    balance = float(s["starting_balance"])
    start = s.get("backtest_start_ts")
    points = [(int(start), balance)] if start is not None else []
    trades = sorted(s.get("trades", []), key=lambda t: t["close_timestamp"])
    for t in trades:
        balance += float(t["profit_abs"])
        points.append((int(t["close_timestamp"]), balance))
    if not points:
        return
    table = pa.table({
        "ts": pa.array([p[0] for p in points], pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
        "equity": pa.array([p[1] for p in points], pa.float64()),
    })
    path = os.path.join(art, "equity.parquet")
    pq.write_table(table, path + ".tmp")
    os.replace(path + ".tmp", path)


def main():
    argv = sys.argv[1:]
    # freqtrade stops if --userdir is missing, and takes a missing
    # --backtest-directory for a file-name prefix: make both folders.
    for d in _argv_values(argv, "--userdir", "--user-data-dir", "--backtest-directory"):
        os.makedirs(d, exist_ok=True)
    install(_load_markets_list(argv))
    from freqtrade.main import main as ft_main

    try:
        ft_main(argv)
    except SystemExit as e:
        if e.code in (0, None):
            _after_backtest(argv)
        raise
    _after_backtest(argv)


def _after_backtest(argv):
    """A finished backtest leaves its equity series for mdkeep's pages; a failure to write
    it is reported and does not fail the job."""
    dirs = _argv_values(argv, "--backtest-directory", "--export-directory")
    if argv and argv[0] == "backtesting" and dirs:
        try:
            write_equity(dirs[0])
        except Exception as e:  # noqa: BLE001 - the backtest itself succeeded
            print(f"ft_offline: no equity.parquet: {e}", file=sys.stderr)


if __name__ == "__main__":
    main()
