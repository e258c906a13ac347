"""Futures on a clock: long from 01:00 to 23:00, short from 02:00 to 23:30 (UTC),
so every trade is open over funding times and pays or earns funding."""
from freqtrade.strategy import IStrategy


class HoldLong(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "1m"
    minimal_roi = {"0": 100}
    stoploss = -0.99
    can_short = True
    startup_candle_count = 0

    def populate_indicators(self, df, metadata):
        return df

    def populate_entry_trend(self, df, metadata):
        h, mi = df["date"].dt.hour, df["date"].dt.minute
        df.loc[(h == 1) & (mi == 0), "enter_long"] = 1
        df.loc[(h == 2) & (mi == 0), "enter_short"] = 1
        return df

    def populate_exit_trend(self, df, metadata):
        h, mi = df["date"].dt.hour, df["date"].dt.minute
        df.loc[(h == 23) & (mi == 0), "exit_long"] = 1
        df.loc[(h == 23) & (mi == 30), "exit_short"] = 1
        return df
