#!/usr/bin/env python3
"""Turn a freqtrade backtest result directory into the same flat JSON the vectorbt job writes.

usage: summarize.py RESULTS_DIR OUT_JSON [STRATEGY]
Reads RESULTS_DIR/.last_result.json -> {"latest_backtest": "<name>.zip"}, opens the zip,
takes the member "<name>.json" (not *_config.json) and strategy[STRATEGY] (first if omitted).
Standard library only.
"""
import json
import os
import sys
import zipfile


def main() -> int:
    res_dir, out = sys.argv[1], sys.argv[2]
    want = sys.argv[3] if len(sys.argv) > 3 else None
    with open(os.path.join(res_dir, ".last_result.json")) as f:
        zname = json.load(f)["latest_backtest"]
    with zipfile.ZipFile(os.path.join(res_dir, zname)) as z:
        stats = json.loads(z.read(zname[: -len(".zip")] + ".json"))
    name = want or next(iter(stats["strategy"]))
    s = stats["strategy"][name]
    r = {
        "framework": "freqtrade",
        "strategy": name,
        "total_return": s["profit_total"],          # fraction of starting_balance
        "total_profit": s["profit_total_abs"],      # stake currency
        "trades": s["total_trades"],
        "max_drawdown": s["max_drawdown_account"],  # fraction, closed-trade equity
        "max_drawdown_abs": s["max_drawdown_abs"],
        "starting_balance": s["starting_balance"],
        "final_balance": s["final_balance"],
        "win_rate": s["winrate"],
        "stake_currency": s["stake_currency"],
        "start": s["backtest_start"],
        "end": s["backtest_end"],
        "result_zip": zname,
    }
    with open(out + ".tmp", "w") as f:
        json.dump(r, f, indent=2)
    os.replace(out + ".tmp", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
