//! `gen`: a realistic pile of small trade files, the way a live collector leaves them.
//!
//! Random-walk prices, several flushes an hour, about 1 % of rows repeated
//! from the previous flush (collectors re-send on reconnect, including across
//! midnight, which misfiles rows into the next day), files written in
//! shuffled order. Mirrors `bench/gen_trades.py`; memory is one series-day.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use chrono::{NaiveDate, Utc};
use serde::Serialize;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::layout;
use crate::parquet_io::{write_file, Codec, WriteOptions};

pub const SYMBOLS: &[(&str, f64)] = &[
    ("BTC_USDT", 42000.0),
    ("ETH_USDT", 2300.0),
    ("SOL_USDT", 95.0),
    ("BNB_USDT", 310.0),
    ("XRP_USDT", 0.62),
    ("ADA_USDT", 0.55),
    ("DOGE_USDT", 0.09),
    ("AVAX_USDT", 36.0),
];

#[derive(Debug, Clone)]
pub struct GenOptions {
    pub exchange: String,
    pub symbols: usize,
    pub days: u32,
    /// First day; None means `days` days before today (UTC), so the pile ends at midnight.
    pub start: Option<NaiveDate>,
    pub flushes_per_hour: u32,
    pub rows_per_flush: usize,
    /// Share of each flush repeated in the next one.
    pub dup: f64,
    pub seed: u64,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            exchange: "binance".into(),
            symbols: 4,
            days: 3,
            start: None,
            flushes_per_hour: 4,
            rows_per_flush: 5000,
            dup: 0.01,
            seed: 7,
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct GenReport {
    pub files: u64,
    /// Rows written, repeats included.
    pub rows: u64,
    /// Distinct trades (what compaction must keep).
    pub distinct_rows: u64,
    pub bytes: u64,
    pub root: String,
}

/// Write the pile into the hot tier of `cfg`.
pub fn generate(cfg: &Config, o: &GenOptions) -> Result<GenReport> {
    layout::check_segment("exchange", &o.exchange)?;
    if o.symbols == 0 || o.symbols > SYMBOLS.len() {
        return Err(Error::Invalid(format!("--symbols must be 1..={}", SYMBOLS.len())));
    }
    if o.flushes_per_hour == 0 || o.rows_per_flush == 0 || !(0.0..1.0).contains(&o.dup) {
        return Err(Error::Invalid(
            "--flushes-per-hour and --rows-per-flush must be positive, --dup in [0, 1)".into(),
        ));
    }
    let ds = cfg.dataset("trades")?;
    let (_, root) = cfg.hot_tier();
    let start = o
        .start
        .unwrap_or_else(|| Utc::now().date_naive() - chrono::Days::new(o.days as u64));
    let schema = Arc::new(ds.arrow_schema());
    let opts = WriteOptions {
        compression: Codec::Snappy,
        ..Default::default()
    };
    let mut rng = Rng::new(o.seed);
    let mut report = GenReport {
        root: root.display().to_string(),
        ..Default::default()
    };
    let span_ms = 3_600_000 / o.flushes_per_hour as i64;
    for &(sym, start_price) in &SYMBOLS[..o.symbols] {
        let mut price = start_price;
        let mut trade_id: i64 = 1_000_000;
        let mut prev_tail: Option<Flush> = None;
        for d in 0..o.days {
            let day = start + chrono::Days::new(d as u64);
            let day_ms = day.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_millis();
            let mut files: Vec<(String, Flush, i64)> = Vec::new();
            for h in 0..24 {
                for f in 0..o.flushes_per_hour as i64 {
                    let t0 = day_ms + h * 3_600_000 + f * span_ms;
                    let n = o.rows_per_flush;
                    let mut fl = trades(&mut rng, &mut price, trade_id, t0, span_ms, n);
                    trade_id += n as i64;
                    report.distinct_rows += n as u64;
                    if let Some(tail) = prev_tail.take() {
                        fl = tail.merge(fl);
                    }
                    if o.dup > 0.0 {
                        let k = ((n as f64 * o.dup) as usize).max(1);
                        prev_tail = Some(fl.tail(k));
                    }
                    files.push((format!("part-{h:02}-{f}.parquet"), fl, t0 + span_ms));
                }
            }
            // Collectors do not flush in time order after restarts and retries.
            rng.shuffle(&mut files);
            let dir = layout::partition_dir(
                &root,
                ds,
                &[
                    ("exchange".into(), o.exchange.clone()),
                    ("symbol".into(), sym.into()),
                    (ds.time_partition.clone(), day.format("%Y-%m-%d").to_string()),
                ],
            )?;
            for (name, fl, flushed_ms) in files {
                let path = dir.join(name);
                let batch = fl.batch(schema.clone())?;
                let w = write_file(&path, schema.clone(), &[batch], &opts)?;
                // The mtime a collector would have left: when the flush happened.
                let mtime = UNIX_EPOCH + Duration::from_millis(flushed_ms.max(0) as u64 + rng.next_u64() % 30_000);
                set_mtime(&path, mtime.min(SystemTime::now()))?;
                report.files += 1;
                report.rows += w.rows;
                report.bytes += w.bytes;
            }
        }
    }
    Ok(report)
}

/// `n` trades of one flush: times in `[t0, t0 + span_ms)`, sorted; ids
/// from `first_id`; a random-walk price and log-normal sizes.
fn trades(rng: &mut Rng, price: &mut f64, first_id: i64, t0: i64, span_ms: i64, n: usize) -> Flush {
    let mut ts: Vec<i64> = (0..n).map(|_| t0 + (rng.next_u64() % span_ms as u64) as i64).collect();
    ts.sort_unstable();
    let mut fl = Flush::default();
    for (i, &t) in ts.iter().enumerate() {
        *price *= (rng.normal() * 0.0002).exp();
        fl.ts.push(t);
        fl.id.push(first_id + i as i64);
        fl.price.push((*price * 1e6).round() / 1e6);
        fl.amount.push(((-3.0 + 1.2 * rng.normal()).exp() * 1e6).round() / 1e6);
        fl.side.push(if rng.unit() < 0.5 { "buy" } else { "sell" });
    }
    fl
}

fn set_mtime(path: &std::path::Path, t: SystemTime) -> Result<()> {
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(t))
        .map_err(Error::io("set mtime", path))
}

#[derive(Default)]
struct Flush {
    ts: Vec<i64>,
    id: Vec<i64>,
    price: Vec<f64>,
    amount: Vec<f64>,
    side: Vec<&'static str>,
}

impl Flush {
    fn len(&self) -> usize {
        self.ts.len()
    }

    fn tail(&self, k: usize) -> Flush {
        let s = self.len() - k.min(self.len());
        Flush {
            ts: self.ts[s..].to_vec(),
            id: self.id[s..].to_vec(),
            price: self.price[s..].to_vec(),
            amount: self.amount[s..].to_vec(),
            side: self.side[s..].to_vec(),
        }
    }

    /// `self` (older, already sorted) followed by `next`: both are sorted by
    /// (ts, id) and every id in `self` is smaller, so sorting by (ts, id) is a merge.
    fn merge(self, next: Flush) -> Flush {
        let mut idx: Vec<(i64, i64, bool, usize)> = (0..self.len())
            .map(|i| (self.ts[i], self.id[i], false, i))
            .chain((0..next.len()).map(|i| (next.ts[i], next.id[i], true, i)))
            .collect();
        idx.sort_unstable();
        let mut out = Flush::default();
        for (_, _, from_next, i) in idx {
            let src = if from_next { &next } else { &self };
            out.ts.push(src.ts[i]);
            out.id.push(src.id[i]);
            out.price.push(src.price[i]);
            out.amount.push(src.amount[i]);
            out.side.push(src.side[i]);
        }
        out
    }

    fn batch(&self, schema: arrow::datatypes::SchemaRef) -> Result<RecordBatch> {
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(TimestampMillisecondArray::from(self.ts.clone()).with_timezone("UTC")),
                Arc::new(Int64Array::from(self.id.clone())),
                Arc::new(Float64Array::from(self.price.clone())),
                Arc::new(Float64Array::from(self.amount.clone())),
                Arc::new(StringArray::from(self.side.clone())),
            ],
        )
        .map_err(|e| Error::Invalid(format!("gen batch: {e}")))
    }
}

/// splitmix64: small, seedable and stable across releases, so a seed names a pile.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_stable_and_spread() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        assert_eq!(a.next_u64(), b.next_u64());
        let mean: f64 = (0..10_000).map(|_| a.normal()).sum::<f64>() / 10_000.0;
        assert!(mean.abs() < 0.05, "{mean}");
    }

    #[test]
    fn merge_keeps_order() {
        let a = Flush {
            ts: vec![1, 5],
            id: vec![1, 2],
            price: vec![1.0; 2],
            amount: vec![1.0; 2],
            side: vec!["buy"; 2],
        };
        let b = Flush {
            ts: vec![3, 6],
            id: vec![3, 4],
            price: vec![1.0; 2],
            amount: vec![1.0; 2],
            side: vec!["buy"; 2],
        };
        let m = a.merge(b);
        assert_eq!(m.ts, vec![1, 3, 5, 6]);
        assert_eq!(m.id, vec![1, 3, 2, 4]);
    }
}
