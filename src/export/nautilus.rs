//! NautilusTrader's ParquetDataCatalog: `data/bar/<BAR_TYPE>/` and
//! `data/trade_tick/<INSTRUMENT>/` folders of `<first>_<last>.parquet`
//! files named by their first and last `ts_init`.
//!
//! Owns the Nautilus row shapes: prices and sizes as 16-byte little-endian
//! integers of value × 10^16 (rounded to the declared precision first),
//! `uint64` nanosecond times, bars stamped at their close, and the schema
//! metadata Nautilus's reader requires (`bar_type`, `instrument_id`,
//! `price_precision`, `size_precision`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, FixedSizeBinaryBuilder, RecordBatch, StringArray, UInt64Array, UInt8Array,
};
use arrow::datatypes::{DataType, Field, Float64Type, Schema, SchemaRef};

use super::columns::{f64_col, ts_ns, SeriesOut, Shape};
use crate::config::timeframe_ns;
use crate::error::{Error, Result};
use crate::parquet_io::{DataFileWriter, WriteOptions};

/// Digits kept for prices and sizes; the instrument a backtest declares must match.
pub const PRICE_PRECISION: u32 = 8;
pub const SIZE_PRECISION: u32 = 8;

/// `BTC_USDT` on `binance` → `BTCUSDT.BINANCE`.
pub fn instrument_id(symbol: &str, exchange: &str) -> String {
    format!("{}.{}", symbol.replace('_', ""), exchange.to_ascii_uppercase())
}

/// `1m` → `<instrument>-1-MINUTE-LAST-EXTERNAL`.
fn bar_type(instrument: &str, tf: &str) -> Result<String> {
    let bad = || Error::Invalid(format!("timeframe `{tf}` has no Nautilus bar aggregation"));
    let n = &tf[..tf.len() - 1];
    let agg = match tf.chars().last().ok_or_else(bad)? {
        's' => "SECOND",
        'm' => "MINUTE",
        'h' => "HOUR",
        'd' => "DAY",
        _ => return Err(bad()),
    };
    Ok(format!("{instrument}-{n}-{agg}-LAST-EXTERNAL"))
}

fn fixed(values: &[f64], precision: u32) -> Result<ArrayRef> {
    let mut b = FixedSizeBinaryBuilder::with_capacity(values.len(), 16);
    let scale = 10i128.pow(16 - precision);
    let p = 10f64.powi(precision as i32);
    for v in values {
        let raw = ((v * p).round() as i128) * scale;
        b.append_value(raw.to_le_bytes())
            .map_err(|e| Error::Invalid(e.to_string()))?;
    }
    Ok(Arc::new(b.finish()))
}

/// `2023-11-14T22-14-20-000000000Z` for a nanosecond time.
fn stamp(ns: u64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns as i64)
        .format("%Y-%m-%dT%H-%M-%S-%9fZ")
        .to_string()
}

pub(crate) fn series_out(
    out: &Path,
    symbol: &str,
    exchange: Option<String>,
    tf: Option<String>,
    shape: Shape,
    precision: Option<(u32, u32)>,
) -> Result<Box<dyn SeriesOut>> {
    let (price_p, size_p) = precision.unwrap_or((PRICE_PRECISION, SIZE_PRECISION));
    let instrument = instrument_id(symbol, exchange.as_deref().unwrap_or("EXTERNAL"));
    let mut meta = HashMap::from([
        ("instrument_id".to_string(), instrument.clone()),
        ("price_precision".to_string(), price_p.to_string()),
        ("size_precision".to_string(), size_p.to_string()),
    ]);
    let bin = |n: &str| Field::new(n, DataType::FixedSizeBinary(16), false);
    let u64f = |n: &str| Field::new(n, DataType::UInt64, false);
    let (dir, fields, kind) = match shape {
        Shape::Candles => {
            let tf = tf.ok_or_else(|| Error::Invalid("--format nautilus of candles needs --timeframe".into()))?;
            let bt = bar_type(&instrument, &tf)?;
            meta.insert("bar_type".into(), bt.clone());
            let step = timeframe_ns(&tf).ok_or_else(|| Error::Invalid(format!("bad timeframe `{tf}`")))?;
            (
                out.join("data/bar").join(bt),
                vec![
                    bin("open"),
                    bin("high"),
                    bin("low"),
                    bin("close"),
                    bin("volume"),
                    u64f("ts_event"),
                    u64f("ts_init"),
                ],
                Kind::Bars { step },
            )
        }
        _ => (
            out.join("data/trade_tick").join(&instrument),
            vec![
                bin("price"),
                bin("size"),
                Field::new("aggressor_side", DataType::UInt8, false),
                Field::new("trade_id", DataType::Utf8, false),
                u64f("ts_event"),
                u64f("ts_init"),
            ],
            Kind::Trades,
        ),
    };
    Ok(Box::new(NautilusOut {
        dir,
        schema: Arc::new(Schema::new_with_metadata(fields, meta)),
        kind,
        price_p,
        size_p,
        w: None,
        first: None,
        last: 0,
    }))
}

enum Kind {
    Bars { step: i64 },
    Trades,
}

struct NautilusOut {
    dir: PathBuf,
    schema: SchemaRef,
    kind: Kind,
    price_p: u32,
    size_p: u32,
    w: Option<DataFileWriter>,
    first: Option<u64>,
    last: u64,
}

impl SeriesOut for NautilusOut {
    fn write(&mut self, b: &RecordBatch) -> Result<()> {
        let ts = ts_ns(b.column(0))?;
        let f =
            |name: &str| -> Result<Vec<f64>> { Ok(f64_col(b, name)?.as_primitive::<Float64Type>().values().to_vec()) };
        let (cols, init): (Vec<ArrayRef>, Vec<u64>) = match self.kind {
            Kind::Bars { step } => {
                // Nautilus stamps a bar at its close.
                let t: Vec<u64> = ts.iter().map(|t| (t + step) as u64).collect();
                let tsa: ArrayRef = Arc::new(UInt64Array::from(t.clone()));
                (
                    vec![
                        fixed(&f("open")?, self.price_p)?,
                        fixed(&f("high")?, self.price_p)?,
                        fixed(&f("low")?, self.price_p)?,
                        fixed(&f("close")?, self.price_p)?,
                        fixed(&f("volume")?, self.size_p)?,
                        tsa.clone(),
                        tsa,
                    ],
                    t,
                )
            }
            Kind::Trades => {
                let t: Vec<u64> = ts.iter().map(|t| *t as u64).collect();
                let tsa: ArrayRef = Arc::new(UInt64Array::from(t.clone()));
                let side = arrow::compute::cast(b.column_by_name("side").expect("trades shape"), &DataType::Utf8)
                    .map_err(|e| Error::Invalid(e.to_string()))?;
                let side = side.as_string::<i32>();
                let aggressor: UInt8Array = (0..b.num_rows())
                    .map(|i| {
                        Some(match side.is_valid(i).then(|| side.value(i)) {
                            Some("buy") => 1u8,
                            Some("sell") => 2,
                            _ => 0,
                        })
                    })
                    .collect();
                let ids: ArrayRef = match b.column_by_name("trade_id") {
                    Some(c) => arrow::compute::cast(c, &DataType::Utf8).map_err(|e| Error::Invalid(e.to_string()))?,
                    None => Arc::new(StringArray::from_iter_values(t.iter().map(|x| x.to_string()))),
                };
                (
                    vec![
                        fixed(&f("price")?, self.price_p)?,
                        fixed(&f("amount")?, self.size_p)?,
                        Arc::new(aggressor),
                        ids,
                        tsa.clone(),
                        tsa,
                    ],
                    t,
                )
            }
        };
        if init.is_empty() {
            return Ok(());
        }
        self.first.get_or_insert(init[0]);
        self.last = *init.last().expect("non-empty");
        if self.w.is_none() {
            let opts = WriteOptions {
                replace: true,
                ..WriteOptions::zstd(3)
            }
            .fit(&self.schema, None, None);
            self.w = Some(DataFileWriter::try_new(
                &self.dir.join("export.parquet"),
                self.schema.clone(),
                &opts,
            )?);
        }
        let out = RecordBatch::try_new(self.schema.clone(), cols).map_err(Error::arrow(&self.dir))?;
        self.w.as_mut().expect("opened above").write(&out)
    }

    fn close(self: Box<Self>) -> Result<Option<(PathBuf, u64)>> {
        let (Some(w), Some(first)) = (self.w, self.first) else {
            return Ok(None);
        };
        let written = w.close()?;
        // Nautilus finds a file's range from its name, known only now.
        let dest = self.dir.join(format!("{}_{}.parquet", stamp(first), stamp(self.last)));
        std::fs::rename(&written.path, &dest).map_err(Error::io("rename into place", &dest))?;
        crate::fsutil::fsync_dir(&self.dir)?;
        Ok(Some((dest, written.rows)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_as_nautilus_writes_them() {
        assert_eq!(instrument_id("BTC_USDT", "binance"), "BTCUSDT.BINANCE");
        assert_eq!(
            bar_type("BTCUSDT.BINANCE", "1m").unwrap(),
            "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
        );
        assert_eq!(stamp(1_700_000_060_000_000_000), "2023-11-14T22-14-20-000000000Z");
        let a = fixed(&[100.10], 2).unwrap();
        let a = a.as_fixed_size_binary();
        assert_eq!(
            i128::from_le_bytes(a.value(0).try_into().unwrap()),
            1_001_000_000_000_000_000
        );
    }
}
