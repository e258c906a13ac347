"""Tiny SMA-crossover strategy for smoke backtests (trades often on random-walk 1m data)."""

from pandas import DataFrame

from freqtrade.strategy import IStrategy


class SmaCross(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "1m"
    can_short = False
    # Exits come only from the signal; ROI/stoploss are effectively disabled.
    minimal_roi = {"0": 100.0}
    stoploss = -0.99
    process_only_new_candles = True
    startup_candle_count = 30
    use_exit_signal = True

    fast = 5
    slow = 20

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["sma_fast"] = dataframe["close"].rolling(self.fast).mean()
        dataframe["sma_slow"] = dataframe["close"].rolling(self.slow).mean()
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        above = dataframe["sma_fast"] > dataframe["sma_slow"]
        dataframe.loc[above & ~above.shift(1, fill_value=False), "enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        below = dataframe["sma_fast"] < dataframe["sma_slow"]
        dataframe.loc[below & ~below.shift(1, fill_value=False), "exit_long"] = 1
        return dataframe
