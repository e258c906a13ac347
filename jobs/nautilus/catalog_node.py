#!/usr/bin/env python3
"""Backtest from a ParquetDataCatalog alone, with NautilusTrader's BacktestNode.

usage: catalog_node.py CATALOG INSTRUMENT_ID CASH|MARGIN

The node reads the instrument and the 1-minute bars from the catalog itself
(nothing is declared in Python) and runs Nautilus' example EMA cross: the
long-only one on a CASH account (a spot CurrencyPair), the long/short one on
a MARGIN account (a CryptoPerpetual). Prints one JSON line: the instruments
the engine cached, iterations, orders, positions and fills.
"""
import json
import sys

from nautilus_trader.backtest.node import BacktestNode
from nautilus_trader.config import (BacktestDataConfig, BacktestEngineConfig, BacktestRunConfig,
                                    BacktestVenueConfig, ImportableStrategyConfig, LoggingConfig,
                                    RiskEngineConfig)

root, iid, account = sys.argv[1], sys.argv[2], sys.argv[3]
module = "nautilus_trader.examples.strategies."
strategy = module + ("ema_cross_long_only:EMACrossLongOnly" if account == "CASH" else "ema_cross:EMACross")
venue = iid.rsplit(".", 1)[1]
cfg = BacktestRunConfig(
    venues=[BacktestVenueConfig(name=venue, oms_type="NETTING", account_type=account,
                                starting_balances=["100000 USDT"] + (["0 BTC"] if account == "CASH" else []),
                                base_currency=None, bar_execution=True)],
    data=[BacktestDataConfig(catalog_path=root, data_cls="nautilus_trader.model.data:Bar",
                             instrument_id=iid, bar_spec="1-MINUTE-LAST")],
    engine=BacktestEngineConfig(
        logging=LoggingConfig(log_level="ERROR"),
        risk_engine=RiskEngineConfig(bypass=True),
        strategies=[ImportableStrategyConfig(
            strategy_path=strategy, config_path=strategy + "Config",
            config={"instrument_id": iid, "bar_type": f"{iid}-1-MINUTE-LAST-EXTERNAL", "trade_size": "0.1",
                    "subscribe_trade_ticks": False, "request_bars": False})]),
    dispose_on_completion=False,
)
node = BacktestNode(configs=[cfg])
[res] = node.run()
eng = node.get_engine(cfg.id)
print(json.dumps({
    "instruments": [str(i) for i in eng.cache.instrument_ids()],
    "classes": [type(i).__name__ for i in eng.cache.instruments()],
    "iterations": res.iterations, "orders": res.total_orders, "positions": res.total_positions,
    "fills": len(eng.trader.generate_fills_report()),
}))
node.dispose()
