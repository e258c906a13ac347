//! NautilusTrader's ParquetDataCatalog: `data/bar/<BAR_TYPE>/` and
//! `data/trade_tick/<INSTRUMENT>/` folders of `<first>_<last>.parquet`
//! files named by their first and last `ts_init`.
//!
//! Owns the Nautilus row shapes: prices and sizes as 16-byte little-endian
//! integers of value × 10^16 (rounded to the declared precision first),
//! `uint64` nanosecond times, bars stamped at their close, and the schema
//! metadata Nautilus's reader requires (`bar_type`, `instrument_id`,
//! `price_precision`, `size_precision`), and each series' instrument
//! definition (`data/currency_pair/` or `data/crypto_perpetual/`), so a
//! backtest loads instruments and data from the catalog alone.

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

/// `BTC_USDT` on `binance` → `BTCUSDT.BINANCE`; a futures symbol
/// `BTC_USDT_USDT` (Freqtrade's `BTC/USDT:USDT`) → `BTCUSDT-PERP.BINANCE`,
/// as Nautilus' Binance adapter names perpetuals.
pub fn instrument_id(symbol: &str, exchange: &str) -> String {
    let venue = exchange.to_ascii_uppercase();
    match currencies(symbol) {
        Some((base, quote, Some(_))) => format!("{base}{quote}-PERP.{venue}"),
        _ => format!("{}.{venue}", symbol.replace('_', "")),
    }
}

/// `BTC_USDT` → (BTC, USDT, None); `BTC_USDT_USDT` → (BTC, USDT, Some(USDT)).
fn currencies(symbol: &str) -> Option<(&str, &str, Option<&str>)> {
    let mut parts = symbol.split('_');
    let (base, quote) = (parts.next()?, parts.next()?);
    Some((base, quote, parts.next()))
}

/// Nautilus' text for one increment at `precision` digits: `0.01` for 2.
fn increment(precision: u32) -> String {
    format!("{:.*}", precision as usize, 10f64.powi(-(precision as i32)))
}

/// The one row of an instrument's file: its fields, columns, and whether
/// it is a perpetual.
fn instrument_row(iid: &str, symbol: &str, price_p: u32, size_p: u32) -> (Vec<Field>, Vec<ArrayRef>, bool) {
    use arrow::array::{BinaryArray, BooleanArray};
    let (base, quote, settle) = currencies(symbol).unwrap_or((symbol, "USD", None));
    let perp = settle.is_some();
    let text = |n: &str| Field::new(n, DataType::Utf8, true);
    let mut fields = vec![
        text("id"),
        text("raw_symbol"),
        text("base_currency"),
        text("quote_currency"),
    ];
    let one = |v: &str| -> ArrayRef { Arc::new(StringArray::from(vec![v])) };
    let none = || -> ArrayRef { Arc::new(StringArray::from(vec![None::<&str>])) };
    let raw = symbol.replace('_', "");
    let mut cols: Vec<ArrayRef> = vec![one(iid), one(&raw), one(base), one(quote)];
    if let Some(settle) = settle {
        fields.push(text("settlement_currency"));
        cols.push(one(settle));
        fields.push(Field::new("is_inverse", DataType::Boolean, true));
        cols.push(Arc::new(BooleanArray::from(vec![false])));
    }
    fields.push(Field::new("price_precision", DataType::UInt8, true));
    cols.push(Arc::new(UInt8Array::from(vec![price_p as u8])));
    fields.push(Field::new("size_precision", DataType::UInt8, true));
    cols.push(Arc::new(UInt8Array::from(vec![size_p as u8])));
    for (name, v) in [
        ("price_increment", increment(price_p)),
        ("size_increment", increment(size_p)),
    ] {
        fields.push(text(name));
        cols.push(one(&v));
    }
    fields.push(text("multiplier"));
    cols.push(one("1"));
    if !perp {
        fields.push(text("lot_size"));
        cols.push(none());
    }
    let (margin, fees) = if perp {
        (("0.05", "0.025"), ("0.0002", "0.0005"))
    } else {
        (("0", "0"), ("0.001", "0.001"))
    };
    let min_qty = increment(size_p);
    for (name, v) in [
        ("max_quantity", None),
        ("min_quantity", Some(min_qty.as_str())),
        ("max_notional", None),
        ("min_notional", None),
        ("max_price", None),
        ("min_price", None),
        ("margin_init", Some(margin.0)),
        ("margin_maint", Some(margin.1)),
        ("maker_fee", Some(fees.0)),
        ("taker_fee", Some(fees.1)),
    ] {
        fields.push(text(name));
        cols.push(v.map_or_else(none, one));
    }
    fields.push(Field::new("info", DataType::Binary, true));
    cols.push(Arc::new(BinaryArray::from(vec![None::<&[u8]>])));
    fields.push(Field::new("ts_event", DataType::UInt64, true));
    cols.push(Arc::new(UInt64Array::from(vec![0u64])));
    fields.push(Field::new("ts_init", DataType::UInt64, true));
    cols.push(Arc::new(UInt64Array::from(vec![0u64])));
    (fields, cols, perp)
}

/// The instrument definition of a series, as Nautilus' catalog stores it:
/// `data/currency_pair/<ID>/…parquet` for a spot pair, or
/// `data/crypto_perpetual/<ID>/…parquet` for a futures symbol, one row, with
/// the `class` schema metadata its reader dispatches on. Precision and
/// increments follow the bars' and ticks' own; fees are Binance's defaults.
pub(crate) fn write_instrument(out: &Path, symbol: &str, exchange: &str, price_p: u32, size_p: u32) -> Result<PathBuf> {
    let iid = instrument_id(symbol, exchange);
    let (fields, cols, perp) = instrument_row(&iid, symbol, price_p, size_p);
    let class = if perp { "CryptoPerpetual" } else { "CurrencyPair" };
    let schema = Arc::new(Schema::new_with_metadata(
        fields,
        HashMap::from([("class".to_string(), class.to_string())]),
    ));
    let folder = if perp { "crypto_perpetual" } else { "currency_pair" };
    let dir = out.join("data").join(folder).join(&iid);
    let dest = dir.join(format!("{}_{}.parquet", stamp(0), stamp(0)));
    let batch = RecordBatch::try_new(schema.clone(), cols).map_err(Error::arrow(&dest))?;
    std::fs::create_dir_all(&dir).map_err(Error::io("create folder", &dir))?;
    let opts = WriteOptions {
        replace: true,
        ..WriteOptions::zstd(3)
    }
    .fit(&schema, None, None);
    crate::parquet_io::write_file(&dest, schema, &[batch], &opts)?;
    Ok(dest)
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
        root: out.to_path_buf(),
        symbol: symbol.to_string(),
        exchange: exchange.unwrap_or_else(|| "EXTERNAL".into()),
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
    /// The catalog's root, and the series' names, for its instrument.
    root: PathBuf,
    symbol: String,
    exchange: String,
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
        // A backtest then needs nothing but the catalog.
        write_instrument(&self.root, &self.symbol, &self.exchange, self.price_p, self.size_p)?;
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
        assert_eq!(instrument_id("BTC_USDT_USDT", "binance"), "BTCUSDT-PERP.BINANCE");
        assert_eq!(increment(8), "0.00000001");
        assert_eq!(increment(0), "1");
        let a = fixed(&[100.10], 2).unwrap();
        let a = a.as_fixed_size_binary();
        assert_eq!(
            i128::from_le_bytes(a.value(0).try_into().unwrap()),
            1_001_000_000_000_000_000
        );
    }
}
