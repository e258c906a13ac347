//! How exported rows look in each framework's own files.
//!
//! Owns file names, column names and types per format; choosing and merging
//! the source rows is the parent module's job. Every file appears under its
//! final name only when complete (temp, fsync, rename).
//!
//! - `parquet`: the rows as they are, one file per series.
//! - `freqtrade`: `<PAIR>-<tf>.feather` (date, open, high, low, close,
//!   volume) from candles, `<PAIR>-trades.feather` from trades.
//! - `hftbacktest`: `<PAIR>.npz` holding `data`, hftbacktest's 64-byte event
//!   records, from trades.
//! - `vectorbt`: `close.parquet`, one `date` column and one close column per
//!   symbol, joined on time in a streaming pass over per-series spills.
//! - `nautilus`: a ParquetDataCatalog folder of bars or trade ticks.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Float64Array, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Float64Type, Schema, SchemaRef, TimeUnit};
use arrow::ipc::writer::{FileWriter, IpcWriteOptions};
use serde::Serialize;

use super::columns::{f64_col, shape, ts_ms_utc, utc_ms, SeriesOut, Shape};
use super::npz::NpzWriter;
use super::{ExportedFile, Request};
use crate::config::DatasetConfig;
use crate::error::{Error, Result};
use crate::fsutil::AtomicFile;
use crate::parquet_io::{DataFileWriter, WriteOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Parquet,
    Freqtrade,
    Hftbacktest,
    Vectorbt,
    Nautilus,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Freqtrade => "freqtrade",
            Format::Hftbacktest => "hftbacktest",
            Format::Vectorbt => "vectorbt",
            Format::Nautilus => "nautilus",
        }
    }

    /// Refuse a dataset the format cannot express, before anything is pinned.
    pub(crate) fn check(self, ds: &DatasetConfig, req: &Request) -> Result<()> {
        let s = shape(ds);
        let ok = match self {
            Format::Parquet => true,
            Format::Freqtrade => s != Shape::Other,
            Format::Nautilus => matches!(s, Shape::Candles | Shape::Trades),
            Format::Hftbacktest => s == Shape::Trades,
            Format::Vectorbt => s == Shape::Candles,
        };
        if !ok {
            return Err(Error::Invalid(format!(
                "--format {} cannot express dataset `{}` (it needs {})",
                self.name(),
                ds.name,
                match self {
                    Format::Hftbacktest => "trades: price, amount, side",
                    Format::Vectorbt => "candles: open, high, low, close, volume",
                    _ => "candles or trades",
                }
            )));
        }
        // A file's name holds the timeframe: from the partition, or the request.
        let tf_known = req.timeframe.is_some() || ds.partition_by.iter().any(|c| c == "timeframe");
        if s == Shape::Candles && matches!(self, Format::Freqtrade | Format::Nautilus) && !tf_known {
            return Err(Error::Invalid(format!(
                "--format {} of candles needs --timeframe (e.g. 1m)",
                self.name()
            )));
        }
        Ok(())
    }
}

/// Chooses file names and writers per series, and writes what spans series.
pub(crate) struct Exporter<'a> {
    req: &'a Request,
    ds: &'a DatasetConfig,
    scratch: PathBuf,
    files: Vec<ExportedFile>,
    /// vectorbt: (symbol, spill of date+close) per series.
    wide: Vec<(String, PathBuf)>,
    current: String,
    count: usize,
}

impl<'a> Exporter<'a> {
    pub(crate) fn new(req: &'a Request, ds: &'a DatasetConfig, scratch: &Path) -> Self {
        Exporter {
            req,
            ds,
            scratch: scratch.to_path_buf(),
            files: Vec::new(),
            wide: Vec::new(),
            current: String::new(),
            count: 0,
        }
    }

    pub(crate) fn count(&self) -> usize {
        self.count
    }

    pub(crate) fn series(&mut self, series: &str, values: &[(String, String)]) -> Result<Box<dyn SeriesOut>> {
        self.current = series.to_string();
        let get = |c: &str| values.iter().find(|(k, _)| k == c).map(|(_, v)| v.clone());
        let symbol = get("symbol").unwrap_or_else(|| self.ds.name.clone());
        let tf = get("timeframe").or_else(|| self.req.timeframe.clone());
        let out = &self.req.out;
        let shape = shape(self.ds);
        Ok(match self.req.format {
            Format::Parquet => {
                let name = match &tf {
                    Some(tf) if self.ds.partition_by.iter().any(|c| c == "timeframe") => format!("{symbol}-{tf}"),
                    _ => symbol,
                };
                Box::new(ParquetOut::new(out.join(format!("{name}.parquet")), self.ds))
            }
            Format::Freqtrade if matches!(shape, Shape::Candles | Shape::Funding) => {
                let tf = tf.unwrap_or_default();
                let mapping = if shape == Shape::Funding {
                    Mapping::Funding
                } else {
                    Mapping::Candles
                };
                Box::new(FeatherOut::new(
                    freqtrade_path(out, &self.ds.name, &symbol, &tf),
                    mapping,
                ))
            }
            Format::Freqtrade => Box::new(FeatherOut::new(
                out.join(format!("{symbol}-trades.feather")),
                Mapping::Trades,
            )),
            Format::Hftbacktest => Box::new(NpzWriter::new(
                out.join(format!("{symbol}.npz")),
                self.scratch.join(format!("{}.npy", self.count)),
            )),
            Format::Vectorbt => {
                let spill = self.scratch.join(format!("wide-{}.parquet", self.count));
                if self.wide.last().map(|w| &w.1) != Some(&spill) {
                    self.wide.push((symbol, spill.clone()));
                }
                Box::new(FeatherlessSpill::new(spill))
            }
            Format::Nautilus => {
                super::nautilus::series_out(out, &symbol, get("exchange"), tf, shape, self.req.precision)?
            }
        })
    }

    pub(crate) fn finish_series(&mut self, out: Box<dyn SeriesOut>) -> Result<()> {
        self.count += 1;
        if let Some((path, rows)) = out.close()? {
            let path_s = path.display().to_string();
            if let Some(prev) = self.files.iter().find(|f| f.path == path_s) {
                return Err(Error::Invalid(format!(
                    "{} and {} both export to {path_s}: pass --exchange",
                    prev.series, self.current
                )));
            }
            if self.req.format == Format::Vectorbt {
                return Ok(());
            }
            let bytes = std::fs::metadata(&path).map_err(Error::io("stat", &path))?.len();
            self.files.push(ExportedFile {
                path: path_s,
                series: self.current.clone(),
                rows,
                bytes,
            });
        }
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Result<Vec<ExportedFile>> {
        if self.req.format == Format::Vectorbt && !self.wide.is_empty() {
            let dest = self.req.out.join("close.parquet");
            let rows = super::wide::join_close(&self.wide, &dest)?;
            let bytes = std::fs::metadata(&dest).map_err(Error::io("stat", &dest))?.len();
            self.files.push(ExportedFile {
                path: dest.display().to_string(),
                series: String::new(),
                rows,
                bytes,
            });
        }
        Ok(self.files)
    }
}

/// Rows as they are, zstd.
struct ParquetOut {
    dest: PathBuf,
    schema: SchemaRef,
    w: Option<DataFileWriter>,
    /// The dataset's declared encodings and bloom filters go with its rows.
    ds: Option<DatasetConfig>,
}

impl ParquetOut {
    fn new(dest: PathBuf, ds: &DatasetConfig) -> Self {
        ParquetOut {
            dest,
            schema: Arc::new(ds.arrow_schema()),
            w: None,
            ds: Some(ds.clone()),
        }
    }
}

impl SeriesOut for ParquetOut {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if self.w.is_none() {
            let opts = WriteOptions {
                replace: true,
                delta_columns: self.ds.iter().map(|d| d.time_column.clone()).collect(),
                ..WriteOptions::zstd(3)
            }
            .fit(&self.schema, Some(batch), self.ds.as_ref());
            self.w = Some(DataFileWriter::try_new(&self.dest, self.schema.clone(), &opts)?);
        }
        self.w.as_mut().expect("opened above").write(batch)
    }

    fn close(self: Box<Self>) -> Result<Option<(PathBuf, u64)>> {
        match self.w {
            Some(w) => {
                let f = w.close()?;
                Ok(Some((f.path, f.rows)))
            }
            None => Ok(None),
        }
    }
}

/// The per-series spill vectorbt's wide join reads back: date and close.
struct FeatherlessSpill(ParquetOut);

impl FeatherlessSpill {
    fn new(dest: PathBuf) -> Self {
        FeatherlessSpill(ParquetOut {
            dest,
            schema: Arc::new(Schema::new(vec![
                utc_ms("date"),
                Field::new("close", DataType::Float64, false),
            ])),
            w: None,
            ds: None,
        })
    }
}

impl SeriesOut for FeatherlessSpill {
    fn write(&mut self, b: &RecordBatch) -> Result<()> {
        let cols = vec![ts_ms_utc(b.column(0))?, f64_col(b, "close")?];
        let out = RecordBatch::try_new(self.0.schema.clone(), cols).map_err(Error::arrow(&self.0.dest))?;
        self.0.write(&out)
    }
    fn close(self: Box<Self>) -> Result<Option<(PathBuf, u64)>> {
        Box::new(self.0).close()
    }
}

/// Whether a Freqtrade symbol is a futures pair: `BTC_USDT_USDT` for
/// `BTC/USDT:USDT` names its settle currency.
pub(crate) fn is_futures_symbol(symbol: &str) -> bool {
    symbol.split('_').count() >= 3
}

/// Where Freqtrade looks for a candle file: `<SYM>-<tf>.feather` for spot
/// candles, `futures/<SYM>-<tf>-<candle type>.feather` for futures ones
/// (futures, mark, index, premiumIndex, funding_rate).
fn freqtrade_path(out: &Path, dataset: &str, symbol: &str, tf: &str) -> PathBuf {
    let candle_type = crate::ingest::freqtrade::CANDLE_TYPES
        .iter()
        .find(|(t, d)| *d == dataset && *t != "spot" && (*t != "futures" || is_futures_symbol(symbol)))
        .map(|(t, _)| *t);
    match candle_type {
        Some(ct) => out.join("futures").join(format!("{symbol}-{tf}-{ct}.feather")),
        None => out.join(format!("{symbol}-{tf}.feather")),
    }
}

#[derive(Debug, Clone, Copy)]
/// Freqtrade's file layouts.
enum Mapping {
    /// date, open, high, low, close, volume.
    Candles,
    /// date, funding_rate (Freqtrade's current funding layout).
    Funding,
    /// timestamp (ms), id, type, side, price, amount, cost.
    Trades,
}

impl Mapping {
    fn schema(self) -> SchemaRef {
        let f = |n: &str| Field::new(n, DataType::Float64, false);
        Arc::new(Schema::new(match self {
            Mapping::Candles => vec![utc_ms("date"), f("open"), f("high"), f("low"), f("close"), f("volume")],
            Mapping::Funding => vec![utc_ms("date"), f("funding_rate")],
            Mapping::Trades => vec![
                Field::new("timestamp", DataType::Int64, false),
                Field::new("id", DataType::Utf8, true),
                Field::new("type", DataType::Utf8, true),
                Field::new("side", DataType::Utf8, false),
                f("price"),
                f("amount"),
                f("cost"),
            ],
        }))
    }

    fn columns(self, b: &RecordBatch) -> Result<Vec<ArrayRef>> {
        Ok(match self {
            Mapping::Candles => {
                let mut v = vec![ts_ms_utc(b.column(0))?];
                for c in ["open", "high", "low", "close", "volume"] {
                    v.push(f64_col(b, c)?);
                }
                v
            }
            Mapping::Funding => vec![ts_ms_utc(b.column(0))?, f64_col(b, "rate")?],
            Mapping::Trades => {
                let ts = cast(b.column(0), &DataType::Timestamp(TimeUnit::Millisecond, None))
                    .and_then(|a| cast(&a, &DataType::Int64))
                    .map_err(|e| Error::Invalid(e.to_string()))?;
                let id: ArrayRef = match b.column_by_name("trade_id") {
                    Some(c) => cast(c, &DataType::Utf8).map_err(|e| Error::Invalid(e.to_string()))?,
                    None => Arc::new(StringArray::new_null(b.num_rows())),
                };
                let price = f64_col(b, "price")?;
                let amount = f64_col(b, "amount")?;
                let cost: Float64Array = price
                    .as_primitive::<Float64Type>()
                    .iter()
                    .zip(amount.as_primitive::<Float64Type>().iter())
                    .map(|(p, a)| Some(p.unwrap_or(0.0) * a.unwrap_or(0.0)))
                    .collect();
                let side = cast(b.column_by_name("side").expect("checked shape"), &DataType::Utf8)
                    .map_err(|e| Error::Invalid(e.to_string()))?;
                vec![
                    ts,
                    id,
                    Arc::new(StringArray::new_null(b.num_rows())),
                    side,
                    price,
                    amount,
                    Arc::new(cost),
                ]
            }
        })
    }
}

/// Arrow IPC file ("feather" v2), zstd-compressed, as pandas reads it.
struct FeatherOut {
    dest: PathBuf,
    mapping: Mapping,
    schema: SchemaRef,
    w: Option<(AtomicFile, FileWriter<std::io::BufWriter<std::fs::File>>)>,
    rows: u64,
}

impl FeatherOut {
    fn new(dest: PathBuf, mapping: Mapping) -> Self {
        FeatherOut {
            dest,
            mapping,
            schema: mapping.schema(),
            w: None,
            rows: 0,
        }
    }
}

impl SeriesOut for FeatherOut {
    fn write(&mut self, b: &RecordBatch) -> Result<()> {
        let dest = self.dest.clone();
        let aerr = |e: arrow::error::ArrowError| Error::Parquet {
            path: dest.clone(),
            message: e.to_string(),
        };
        if self.w.is_none() {
            if let Some(dir) = self.dest.parent() {
                std::fs::create_dir_all(dir).map_err(Error::io("create folder", dir))?;
            }
            let (target, file) = AtomicFile::create(&self.dest)?;
            let opts = IpcWriteOptions::default()
                .try_with_compression(Some(arrow::ipc::CompressionType::ZSTD))
                .map_err(aerr)?;
            let w =
                FileWriter::try_new_with_options(std::io::BufWriter::new(file), &self.schema, opts).map_err(aerr)?;
            self.w = Some((target, w));
        }
        let out = RecordBatch::try_new(self.schema.clone(), self.mapping.columns(b)?).map_err(aerr)?;
        self.rows += out.num_rows() as u64;
        self.w.as_mut().expect("opened above").1.write(&out).map_err(aerr)
    }

    fn close(self: Box<Self>) -> Result<Option<(PathBuf, u64)>> {
        let Some((target, mut w)) = self.w else { return Ok(None) };
        let dest = self.dest.clone();
        let aerr = |e: arrow::error::ArrowError| Error::Parquet {
            path: dest.clone(),
            message: e.to_string(),
        };
        w.finish().map_err(aerr)?;
        let mut buf = w.into_inner().map_err(aerr)?;
        std::io::Write::flush(&mut buf).map_err(Error::io("write", &self.dest))?;
        drop(buf);
        Ok(Some((target.commit_replacing()?, self.rows)))
    }
}
