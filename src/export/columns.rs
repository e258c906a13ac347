//! What every export format shares: a dataset's shape, the one-file-per-
//! series writer interface, and column conversions (time to UTC
//! milliseconds or nanoseconds, a value column as f64).
//!
//! Owns nothing format-specific; [`super::formats`] and the writers of
//! hftbacktest, Nautilus and vectorbt files all use it.

use std::path::PathBuf;

use arrow::array::{ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Int64Type, TimeUnit};

use crate::config::DatasetConfig;
use crate::error::{Error, Result};

/// What a dataset's rows are, judged by its columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Candles,
    Trades,
    /// Funding rates: `rate` at each funding time.
    Funding,
    Other,
}

pub(crate) fn shape(ds: &DatasetConfig) -> Shape {
    let has = |c: &str| ds.column(c).is_some();
    if ["open", "high", "low", "close", "volume"].iter().all(|c| has(c)) {
        Shape::Candles
    } else if ["price", "amount", "side"].iter().all(|c| has(c)) && !has("update_id") {
        Shape::Trades
    } else if has("rate") {
        Shape::Funding
    } else {
        Shape::Other
    }
}

/// One series' output file being written.
pub(crate) trait SeriesOut {
    fn write(&mut self, batch: &RecordBatch) -> Result<()>;
    /// Make the file durable; `None` when no row was written.
    fn close(self: Box<Self>) -> Result<Option<(PathBuf, u64)>>;
}

pub(crate) fn utc_ms(name: &str) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        false,
    )
}

/// The time column (first in every dataset) as UTC milliseconds.
pub(crate) fn ts_ms_utc(a: &ArrayRef) -> Result<ArrayRef> {
    let ms = cast(a, &DataType::Timestamp(TimeUnit::Millisecond, None)).map_err(|e| Error::Invalid(e.to_string()))?;
    crate::parquet_io::to_utc(&ms, TimeUnit::Millisecond).map_err(|e| Error::Invalid(e.to_string()))
}

/// The time column as nanoseconds since the epoch.
pub(crate) fn ts_ns(a: &ArrayRef) -> Result<arrow::buffer::ScalarBuffer<i64>> {
    let ns = cast(a, &DataType::Timestamp(TimeUnit::Nanosecond, None))
        .and_then(|a| cast(&a, &DataType::Int64))
        .map_err(|e| Error::Invalid(e.to_string()))?;
    Ok(ns.as_primitive::<Int64Type>().values().clone())
}

pub(crate) fn f64_col(b: &RecordBatch, name: &str) -> Result<ArrayRef> {
    let c = b
        .column_by_name(name)
        .ok_or_else(|| Error::Invalid(format!("column `{name}` missing")))?;
    cast(c, &DataType::Float64).map_err(|e| Error::Invalid(e.to_string()))
}
