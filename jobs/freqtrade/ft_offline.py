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
  2. otherwise spot markets synthesized for every pair in the configs' exchange.pair_whitelist
     and in `-p/--pairs` (precision 1e-8, min cost 5 quote, fees 0.1%).

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
    return [_spot_market(p) for p in pairs]


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


def main():
    argv = sys.argv[1:]
    # freqtrade stops if --userdir is missing, and takes a missing
    # --backtest-directory for a file-name prefix: make both folders.
    for d in _argv_values(argv, "--userdir", "--user-data-dir", "--backtest-directory"):
        os.makedirs(d, exist_ok=True)
    install(_load_markets_list(argv))
    from freqtrade.main import main as ft_main

    ft_main(argv)


if __name__ == "__main__":
    main()
