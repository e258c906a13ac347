//! Reading a Freqtrade data directory.
//!
//! Freqtrade stores candles as `<PAIR>-<tf>.<ext>` and trades as
//! `<PAIR>-trades.<ext>`, with futures under `futures/` as
//! `<PAIR>-<tf>-<candle type>.<ext>`; `<ext>` is feather, parquet, json or
//! json.gz (`jsongz`). Pairs are written `BTC_USDT` for `BTC/USDT` (and
//! `XRP_USDT_USDT` for `XRP/USDT:USDT`); that spelling is the `symbol`
//! partition value. Candle types go to their own datasets ([`CANDLE_TYPES`]):
//! spot and futures candles to `ohlcv`, `mark`, `index` and `premiumIndex`
//! candles to `mark`, `index` and `premium`, `funding_rate` to `funding`
//! (`ts, rate`). This module only translates those files into batches;
//! writing is the ingest sink's job.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use serde_json::Value;

use super::{ingest_series, IngestReport, Series, Skipped};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::layout;
use crate::parquet_io;
use crate::parquet_io::conform;
use crate::state::Db;

const BATCH_ROWS: usize = 64 * 1024;

/// What a Freqtrade file name says it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FtFile {
    Candles {
        pair: String,
        timeframe: String,
        candle_type: Option<String>,
        format: Format,
    },
    Trades {
        pair: String,
        format: Format,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Feather,
    Parquet,
    Json,
    JsonGz,
}

/// `BTC_USDT-5m.feather` → candles of BTC_USDT at 5m. None for files that are
/// not Freqtrade data.
pub fn parse_name(name: &str) -> Option<FtFile> {
    let (base, format) = [
        (".feather", Format::Feather),
        (".parquet", Format::Parquet),
        (".json.gz", Format::JsonGz),
        (".jsongz", Format::JsonGz),
        (".json", Format::Json),
    ]
    .iter()
    .find_map(|(ext, f)| name.strip_suffix(ext).map(|b| (b, *f)))?;
    let parts: Vec<&str> = base.split('-').collect();
    match parts.as_slice() {
        [pair, "trades"] => Some(FtFile::Trades {
            pair: pair.to_string(),
            format,
        }),
        [pair, tf] if is_timeframe(tf) => Some(FtFile::Candles {
            pair: pair.to_string(),
            timeframe: tf.to_string(),
            candle_type: None,
            format,
        }),
        [pair, tf, ct] if is_timeframe(tf) => Some(FtFile::Candles {
            pair: pair.to_string(),
            timeframe: tf.to_string(),
            candle_type: Some(ct.to_string()),
            format,
        }),
        _ => None,
    }
}

fn is_timeframe(s: &str) -> bool {
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) && matches!(unit, "s" | "m" | "h" | "d" | "w" | "M")
}

/// `BTC/USDT` → `BTC_USDT`, `XRP/USDT:USDT` → `XRP_USDT_USDT`, as Freqtrade names files.
pub fn pair_to_symbol(pair: &str) -> String {
    pair.chars()
        .map(|c| {
            if matches!(c, '/' | ' ' | '.' | '@' | '$' | '+' | ':') {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// Import every Freqtrade file of `dir` (and `dir/futures`) for `exchange`.
pub fn ingest_dir(cfg: &Config, db: &mut Db, dir: &Path, exchange: &str) -> Result<IngestReport> {
    layout::check_segment("exchange", exchange)?;
    let mut report = IngestReport::default();
    let mut files: Vec<PathBuf> = Vec::new();
    for sub in [dir.to_path_buf(), dir.join("futures")] {
        if !sub.is_dir() {
            continue;
        }
        for e in std::fs::read_dir(&sub).map_err(Error::io("read folder", &sub))? {
            let e = e.map_err(Error::io("read folder", &sub))?;
            // Follow symlinks: a data folder often links files from elsewhere.
            if e.path().is_file() {
                files.push(e.path());
            }
        }
    }
    if files.is_empty() && !dir.is_dir() {
        return Err(Error::Invalid(format!("{} is not a folder", dir.display())));
    }
    files.sort();
    for path in files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let Some(kind) = parse_name(&name) else {
            report.skipped.push(Skipped {
                source: path.display().to_string(),
                reason: "not a Freqtrade data file name (<PAIR>-<tf>.<ext> or <PAIR>-trades.<ext>)".into(),
            });
            continue;
        };
        if let Some(why) = dataset_of(&kind).err().or_else(|| {
            let name = dataset_of(&kind).ok()?;
            (!cfg.datasets.contains_key(name)).then(|| format!("the config declares no `{name}` dataset"))
        }) {
            report.skipped.push(Skipped {
                source: path.display().to_string(),
                reason: why,
            });
            continue;
        }
        ingest_file(cfg, db, &path, &kind, exchange, &mut report)?;
    }
    Ok(report)
}

/// Freqtrade's candle types and the datasets that hold them.
pub const CANDLE_TYPES: [(&str, &str); 6] = [
    ("spot", "ohlcv"),
    ("futures", "ohlcv"),
    ("mark", "mark"),
    ("index", "index"),
    ("premiumIndex", "premium"),
    ("funding_rate", "funding"),
];

/// The dataset a Freqtrade file goes to, or why it is not imported.
pub fn dataset_of(kind: &FtFile) -> std::result::Result<&'static str, String> {
    match kind {
        FtFile::Trades { .. } => Ok("trades"),
        FtFile::Candles { candle_type: None, .. } => Ok("ohlcv"),
        FtFile::Candles {
            candle_type: Some(ct), ..
        } => CANDLE_TYPES
            .iter()
            .find(|(t, _)| t == ct)
            .map(|(_, d)| *d)
            .ok_or_else(|| {
                let known: Vec<&str> = CANDLE_TYPES.iter().map(|(t, _)| *t).collect();
                format!("candle type `{ct}` is not imported (only {})", known.join(", "))
            }),
    }
}

/// Import one Freqtrade file.
pub fn ingest_file(
    cfg: &Config,
    db: &mut Db,
    path: &Path,
    kind: &FtFile,
    exchange: &str,
    report: &mut IngestReport,
) -> Result<()> {
    let ds = cfg.dataset(dataset_of(kind).map_err(Error::Invalid)?)?;
    let (pair, format, extra): (&str, Format, Option<(String, String)>) = match kind {
        FtFile::Candles {
            pair,
            timeframe,
            format,
            ..
        } => (pair, *format, Some(("timeframe".into(), timeframe.clone()))),
        FtFile::Trades { pair, format } => (pair, *format, None),
    };
    let funding = ds.name == "funding";
    let symbol = pair_to_symbol(pair);
    layout::check_segment("symbol", &symbol)?;
    let mut fixed = vec![
        ("exchange".to_string(), exchange.to_string()),
        ("symbol".to_string(), symbol),
    ];
    fixed.extend(extra);
    let is_trades = matches!(kind, FtFile::Trades { .. });
    let raw = read_raw(path, format, is_trades, funding)?;
    // Schema first: translate the first batch before anything is written.
    let mut raw = raw.peekable();
    if let Some(Err(_)) = raw.peek() {
        return Err(raw.next().expect("peeked").expect_err("peeked an error"));
    }
    let src = path.to_path_buf();
    let batches = raw.map(move |b| {
        let b = b?;
        let b = if is_trades {
            trades_to_dataset(&b, &src)?
        } else if funding {
            funding_to_dataset(&b, &src)?
        } else {
            candles_to_dataset(&b, &src)?
        };
        conform(&b, ds, &src)
    });
    ingest_series(
        cfg,
        db,
        Series {
            ds,
            source: path,
            fixed,
        },
        batches,
        report,
    )
}

type Batches = Box<dyn Iterator<Item = Result<RecordBatch>>>;

fn read_raw(path: &Path, format: Format, trades: bool, funding: bool) -> Result<Batches> {
    let owned = path.to_path_buf();
    match format {
        Format::Feather => {
            let f = File::open(path).map_err(Error::io("open", path))?;
            let r = arrow::ipc::reader::FileReader::try_new(BufReader::new(f), None).map_err(|e| Error::BadInput {
                path: owned.clone(),
                message: format!("not an Arrow IPC (feather v2) file: {e}"),
            })?;
            Ok(Box::new(r.map(move |b| b.map_err(Error::arrow(&owned)))))
        }
        Format::Parquet => {
            let (_, r) = parquet_io::open_batches(path, BATCH_ROWS)?;
            Ok(Box::new(r.map(move |b| b.map_err(Error::arrow(&owned)))))
        }
        Format::Json | Format::JsonGz => {
            let f = File::open(path).map_err(Error::io("open", path))?;
            let reader: Box<dyn Read> = if format == Format::JsonGz {
                Box::new(flate2::read::GzDecoder::new(BufReader::new(f)))
            } else {
                Box::new(BufReader::new(f))
            };
            let rows: Vec<Vec<Value>> = serde_json::from_reader(reader).map_err(|e| Error::BadInput {
                path: owned.clone(),
                message: format!("JSON line {}, column {}: {e}", e.line(), e.column()),
            })?;
            let b = if trades {
                json_trades(&rows, path)?
            } else if funding {
                json_funding(&rows, path)?
            } else {
                json_candles(&rows, path)?
            };
            Ok(Box::new(std::iter::once(Ok(b))))
        }
    }
}

fn column<'a>(b: &'a RecordBatch, name: &str, path: &Path, what: &str) -> Result<&'a ArrayRef> {
    b.column_by_name(name).ok_or_else(|| Error::BadInput {
        path: path.to_path_buf(),
        message: format!("Freqtrade {what} file has no `{name}` column"),
    })
}

fn strict_cast(a: &ArrayRef, to: &DataType, path: &Path, col: &str) -> Result<ArrayRef> {
    let opts = CastOptions {
        safe: false,
        ..Default::default()
    };
    cast_with_options(a, to, &opts).map_err(|e| Error::BadInput {
        path: path.to_path_buf(),
        message: format!("column `{col}`: {e}"),
    })
}

fn utc_ms() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// A Freqtrade `date` column as UTC milliseconds.
fn date_ms(b: &RecordBatch, path: &Path) -> Result<ArrayRef> {
    let date = column(b, "date", path, "candle")?;
    Ok(match date.data_type() {
        DataType::Timestamp(..) => parquet_io::to_utc(date, TimeUnit::Millisecond).map_err(Error::arrow(path))?,
        // JSON and some older files hold epoch milliseconds.
        DataType::Int64 => strict_cast(date, &utc_ms(), path, "date")?,
        other => {
            return Err(Error::BadInput {
                path: path.to_path_buf(),
                message: format!("column `date` is {other}, expected a timestamp"),
            })
        }
    })
}

/// Freqtrade candles (`date`, open, high, low, close, volume) → `ohlcv` columns.
fn candles_to_dataset(b: &RecordBatch, path: &Path) -> Result<RecordBatch> {
    let ts = date_ms(b, path)?;
    let mut fields = vec![Field::new("ts", utc_ms(), false)];
    let mut cols = vec![ts];
    for name in ["open", "high", "low", "close", "volume"] {
        fields.push(Field::new(name, DataType::Float64, true));
        cols.push(strict_cast(
            column(b, name, path, "candle")?,
            &DataType::Float64,
            path,
            name,
        )?);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).map_err(Error::arrow(path))
}

/// Freqtrade funding rates (`date`, `funding_rate`; or the older candle
/// layout with the rate in `open`) → `funding` columns (ts, rate).
fn funding_to_dataset(b: &RecordBatch, path: &Path) -> Result<RecordBatch> {
    let ts = date_ms(b, path)?;
    let rate = b
        .column_by_name("funding_rate")
        .or_else(|| b.column_by_name("open"))
        .ok_or_else(|| Error::BadInput {
            path: path.to_path_buf(),
            message: "Freqtrade funding-rate file has neither a `funding_rate` nor an `open` column".into(),
        })?;
    let rate = strict_cast(rate, &DataType::Float64, path, "funding_rate")?;
    let schema = Schema::new(vec![
        Field::new("ts", utc_ms(), false),
        Field::new("rate", DataType::Float64, true),
    ]);
    RecordBatch::try_new(Arc::new(schema), vec![ts, rate]).map_err(Error::arrow(path))
}

/// Funding rows: `[date, rate]`, or the older 6-wide candle rows.
fn json_funding(rows: &[Vec<Value>], path: &Path) -> Result<RecordBatch> {
    let (mut ts, mut rate) = (Vec::with_capacity(rows.len()), Vec::with_capacity(rows.len()));
    for (i, r) in rows.iter().enumerate() {
        if r.len() < 2 {
            return Err(Error::BadInput {
                path: path.to_path_buf(),
                message: format!("row {i}: expected [date, funding_rate]"),
            });
        }
        ts.push(num(&r[0], path, i, "date")? as i64);
        rate.push(num(&r[1], path, i, "funding_rate")?);
    }
    let schema = Schema::new(vec![
        Field::new("date", utc_ms(), false),
        Field::new("funding_rate", DataType::Float64, true),
    ]);
    let cols: Vec<ArrayRef> = vec![
        Arc::new(TimestampMillisecondArray::from(ts).with_timezone("UTC")),
        Arc::new(Float64Array::from(rate)),
    ];
    RecordBatch::try_new(Arc::new(schema), cols).map_err(Error::arrow(path))
}

/// Freqtrade trades (timestamp ms, id, type, side, price, amount, cost) → `trades` columns.
fn trades_to_dataset(b: &RecordBatch, path: &Path) -> Result<RecordBatch> {
    let ts = strict_cast(
        column(b, "timestamp", path, "trades")?,
        &DataType::Int64,
        path,
        "timestamp",
    )?;
    let ts = strict_cast(&ts, &utc_ms(), path, "timestamp")?;
    let id = strict_cast(column(b, "id", path, "trades")?, &DataType::Int64, path, "id")?;
    let fields = vec![
        Field::new("ts", utc_ms(), false),
        Field::new("trade_id", DataType::Int64, true),
        Field::new("price", DataType::Float64, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("side", DataType::Utf8, true),
    ];
    let cols = vec![
        ts,
        id,
        strict_cast(column(b, "price", path, "trades")?, &DataType::Float64, path, "price")?,
        strict_cast(column(b, "amount", path, "trades")?, &DataType::Float64, path, "amount")?,
        strict_cast(column(b, "side", path, "trades")?, &DataType::Utf8, path, "side")?,
    ];
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).map_err(Error::arrow(path))
}

fn num(v: &Value, path: &Path, row: usize, col: &str) -> Result<f64> {
    v.as_f64().ok_or_else(|| Error::BadInput {
        path: path.to_path_buf(),
        message: format!("row {row}: `{col}` is {v}, expected a number"),
    })
}

fn json_candles(rows: &[Vec<Value>], path: &Path) -> Result<RecordBatch> {
    let mut ts = Vec::with_capacity(rows.len());
    let mut vals: [Vec<f64>; 5] = Default::default();
    for (i, r) in rows.iter().enumerate() {
        if r.len() < 6 {
            return Err(Error::BadInput {
                path: path.to_path_buf(),
                message: format!("row {i}: expected [date, open, high, low, close, volume]"),
            });
        }
        ts.push(num(&r[0], path, i, "date")? as i64);
        for (k, name) in ["open", "high", "low", "close", "volume"].iter().enumerate() {
            vals[k].push(num(&r[k + 1], path, i, name)?);
        }
    }
    let mut fields = vec![Field::new("date", utc_ms(), false)];
    let mut cols: Vec<ArrayRef> = vec![Arc::new(TimestampMillisecondArray::from(ts).with_timezone("UTC"))];
    for (k, name) in ["open", "high", "low", "close", "volume"].iter().enumerate() {
        fields.push(Field::new(*name, DataType::Float64, true));
        cols.push(Arc::new(Float64Array::from(std::mem::take(&mut vals[k]))));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).map_err(Error::arrow(path))
}

fn json_trades(rows: &[Vec<Value>], path: &Path) -> Result<RecordBatch> {
    let (mut ts, mut id, mut side, mut price, mut amount) = (vec![], vec![], vec![], vec![], vec![]);
    for (i, r) in rows.iter().enumerate() {
        if r.len() < 6 {
            return Err(Error::BadInput {
                path: path.to_path_buf(),
                message: format!("row {i}: expected [timestamp, id, type, side, price, amount, cost]"),
            });
        }
        ts.push(num(&r[0], path, i, "timestamp")? as i64);
        id.push(match &r[1] {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        });
        side.push(r[3].as_str().unwrap_or_default().to_string());
        price.push(num(&r[4], path, i, "price")?);
        amount.push(num(&r[5], path, i, "amount")?);
    }
    let schema = Schema::new(vec![
        Field::new("timestamp", DataType::Int64, false),
        Field::new("id", DataType::Utf8, true),
        Field::new("side", DataType::Utf8, true),
        Field::new("price", DataType::Float64, true),
        Field::new("amount", DataType::Float64, true),
    ]);
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ts)),
        Arc::new(StringArray::from(id)),
        Arc::new(StringArray::from(side)),
        Arc::new(Float64Array::from(price)),
        Arc::new(Float64Array::from(amount)),
    ];
    RecordBatch::try_new(Arc::new(schema), cols).map_err(Error::arrow(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            parse_name("BTC_USDT-5m.feather"),
            Some(FtFile::Candles {
                pair: "BTC_USDT".into(),
                timeframe: "5m".into(),
                candle_type: None,
                format: Format::Feather
            })
        );
        assert_eq!(
            parse_name("XRP_ETH-trades.json.gz"),
            Some(FtFile::Trades {
                pair: "XRP_ETH".into(),
                format: Format::JsonGz
            })
        );
        assert!(matches!(
            parse_name("XRP_USDT_USDT-5m-futures.feather"),
            Some(FtFile::Candles { candle_type: Some(ref c), .. }) if c == "futures"
        ));
        assert_eq!(parse_name("notes.txt"), None);
        assert_eq!(parse_name("BTC_USDT-5x.feather"), None);
    }

    #[test]
    fn pairs() {
        assert_eq!(pair_to_symbol("BTC/USDT"), "BTC_USDT");
        assert_eq!(pair_to_symbol("XRP/USDT:USDT"), "XRP_USDT_USDT");
    }
}
