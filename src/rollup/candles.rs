//! Trades to candles, one sorted chunk at a time, with polars.
//!
//! Owns the candle rule (Freqtrade's: open first, high max, low min, close
//! last, volume sum) and stitching: a chunk boundary can split a candle, so
//! the last candle of each chunk waits and is combined with the first of the
//! next when they share an open time. Memory is one chunk, not a partition.

use polars::prelude::{
    col, len, ClosedWindow, Column, DataFrame, DataType, Duration, DynamicGroupOptions, IntoLazy, Label, StartBy,
    TimeUnit,
};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candle {
    /// Open time, nanoseconds since the epoch.
    pub ts: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
    pub trades: u64,
}

impl Candle {
    /// `self` followed by `later`, within the same window.
    fn absorb(&mut self, later: &Candle) {
        self.high = self.high.max(later.high);
        self.low = self.low.min(later.low);
        self.close = later.close;
        self.volume += later.volume;
        self.trades += later.trades;
    }
}

fn perr(e: polars::prelude::PolarsError) -> Error {
    Error::Invalid(format!("rollup (polars): {e}"))
}

/// Candles of one timeframe, fed sorted trade chunks.
pub struct CandleBuilder {
    tf_ns: i64,
    options: DynamicGroupOptions,
    pending: Option<Candle>,
}

impl CandleBuilder {
    pub fn new(tf_ns: i64) -> Self {
        let options = DynamicGroupOptions {
            every: Duration::parse(&format!("{tf_ns}ns")),
            period: Duration::parse(&format!("{tf_ns}ns")),
            offset: Duration::parse("0ns"),
            label: Label::Left,
            include_boundaries: false,
            closed_window: ClosedWindow::Left,
            start_by: StartBy::WindowBound,
            ..Default::default()
        };
        CandleBuilder {
            tf_ns,
            options,
            pending: None,
        }
    }

    pub fn tf_ns(&self) -> i64 {
        self.tf_ns
    }

    /// Aggregate one chunk of trades sorted by time; completed candles go to `out`.
    pub fn push(&mut self, ts: &[i64], price: &[f64], amount: &[f64], out: &mut Vec<Candle>) -> Result<()> {
        if ts.is_empty() {
            return Ok(());
        }
        let df = DataFrame::new(
            ts.len(),
            vec![
                Column::new("ts".into(), ts)
                    .cast(&DataType::Datetime(TimeUnit::Nanoseconds, None))
                    .map_err(perr)?,
                Column::new("price".into(), price),
                Column::new("amount".into(), amount),
            ],
        )
        .map_err(perr)?;
        let agg = df
            .lazy()
            .group_by_dynamic(col("ts"), [], self.options.clone())
            .agg([
                col("price").first().alias("open"),
                col("price").max().alias("high"),
                col("price").min().alias("low"),
                col("price").last().alias("close"),
                col("amount").sum().alias("volume"),
                len().alias("trades"),
            ])
            .collect()
            .map_err(perr)?;
        let get_i64 = |name: &str| -> Result<Vec<i64>> {
            let c = agg.column(name).map_err(perr)?.cast(&DataType::Int64).map_err(perr)?;
            Ok(c.i64().map_err(perr)?.into_no_null_iter().collect())
        };
        let get_f64 = |name: &str| -> Result<Vec<f64>> {
            let c = agg.column(name).map_err(perr)?.cast(&DataType::Float64).map_err(perr)?;
            Ok(c.f64().map_err(perr)?.into_no_null_iter().collect())
        };
        let (t, o, h, l, c, v, n) = (
            get_i64("ts")?,
            get_f64("open")?,
            get_f64("high")?,
            get_f64("low")?,
            get_f64("close")?,
            get_f64("volume")?,
            get_i64("trades")?,
        );
        for i in 0..t.len() {
            let candle = Candle {
                ts: t[i],
                open: o[i],
                high: h[i],
                low: l[i],
                close: c[i],
                volume: v[i],
                trades: n[i] as u64,
            };
            match &mut self.pending {
                Some(p) if p.ts == candle.ts => p.absorb(&candle),
                Some(p) => {
                    out.push(*p);
                    self.pending = Some(candle);
                }
                None => self.pending = Some(candle),
            }
        }
        Ok(())
    }

    /// The last candle, once no trade is left.
    pub fn finish(&mut self, out: &mut Vec<Candle>) {
        out.extend(self.pending.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: i64 = 60_000_000_000;

    #[test]
    fn freqtrade_rule_and_stitching_across_chunks() {
        let ts = [0, 10, 20, M, M + 5, M + 6, 3 * M];
        let px = [10.0, 12.0, 9.0, 11.0, 13.0, 8.0, 7.0];
        let qty = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
        let whole = {
            let mut b = CandleBuilder::new(M);
            let mut out = Vec::new();
            b.push(&ts, &px, &qty, &mut out).unwrap();
            b.finish(&mut out);
            out
        };
        assert_eq!(whole.len(), 3, "{whole:?}");
        assert_eq!(
            whole[0],
            Candle {
                ts: 0,
                open: 10.0,
                high: 12.0,
                low: 9.0,
                close: 9.0,
                volume: 6.0,
                trades: 3
            }
        );
        assert_eq!(
            (whole[1].open, whole[1].high, whole[1].low, whole[1].close),
            (11.0, 13.0, 8.0, 8.0)
        );
        assert_eq!(whole[2].ts, 3 * M);
        // Any split point gives the same candles.
        for cut in 1..ts.len() {
            let mut b = CandleBuilder::new(M);
            let mut out = Vec::new();
            b.push(&ts[..cut], &px[..cut], &qty[..cut], &mut out).unwrap();
            b.push(&ts[cut..], &px[cut..], &qty[cut..], &mut out).unwrap();
            b.finish(&mut out);
            assert_eq!(out, whole, "cut at {cut}");
        }
    }
}
