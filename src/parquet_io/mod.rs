//! Single Parquet files: inspecting a footer, and writing a data file safely.
//!
//! Owns the read side a catalog needs (row count, schema, time range from
//! row-group statistics, computed from the column when statistics are
//! missing) and, in [`write`], the write side every rewrite uses
//! ([`DataFileWriter`]: temp name → fsync → rename → fsync folder). Which
//! files to read or write, and when inputs may go, is decided elsewhere.

pub mod encoding;
mod write;

pub use write::{write_file, Codec, DataFileWriter, WriteOptions, WrittenFile};

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::compute::kernels::aggregate;
use arrow::datatypes::{DataType, Int64Type, SchemaRef, TimeUnit};
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::{ArrowReaderBuilder, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use parquet::arrow::ProjectionMask;
use parquet::file::metadata::ParquetMetaData;

use crate::config::DatasetConfig;
use crate::error::{Error, Result};
use crate::store::{AsyncObject, Batches};

/// What a footer (and, failing statistics, the time column) says about a file.
#[derive(Debug, Clone)]
pub struct FileInfo {
    pub rows: u64,
    pub schema: SchemaRef,
    pub schema_fp: String,
    /// Nanoseconds since the epoch; None when the file has no usable time column or no rows.
    pub min_ts: Option<i64>,
    pub max_ts: Option<i64>,
    /// True when the time range had to be computed by reading the column.
    pub read_column: bool,
    /// The footer says mdkeep wrote it sorted and deduplicated.
    pub compacted: bool,
}

/// Footer key marking files mdkeep wrote sorted by (time, key) and deduplicated.
pub const COMPACTED_KEY: &str = "mdkeep.compacted";

/// Read a file's footer and time range. The error string is the reason the
/// file is unreadable, for the quarantine ledger.
pub fn inspect(path: &Path, time_column: &str) -> std::result::Result<FileInfo, String> {
    let (schema, meta) = footer(path)?;
    let rows = meta.file_metadata().num_rows().max(0) as u64;
    let mut info = FileInfo {
        rows,
        schema_fp: fingerprint(&schema),
        schema: schema.clone(),
        min_ts: None,
        max_ts: None,
        read_column: false,
        compacted: meta.file_metadata().key_value_metadata().is_some_and(|kv| {
            kv.iter()
                .any(|k| k.key == COMPACTED_KEY && k.value.as_deref() == Some("1"))
        }),
    };
    let unit = match schema.field_with_name(time_column).map(|f| f.data_type().clone()) {
        Ok(DataType::Timestamp(u, _)) => u,
        _ => return Ok(info),
    };
    if rows == 0 {
        return Ok(info);
    }
    let conv = StatisticsConverter::try_new(time_column, &schema, meta.file_metadata().schema_descr())
        .map_err(|e| format!("statistics of `{time_column}`: {e}"))?;
    let mins = conv.row_group_mins(meta.row_groups().iter()).ok();
    let maxes = conv.row_group_maxes(meta.row_groups().iter()).ok();
    if let (Some(mins), Some(maxes)) = (mins, maxes) {
        if mins.null_count() == 0 && maxes.null_count() == 0 && !mins.is_empty() {
            info.min_ts = min_of(&mins, unit);
            info.max_ts = max_of(&maxes, unit);
            return Ok(info);
        }
    }
    // No statistics (some writers omit them): read just the time column.
    let (_, reader) =
        open_columns(path, 64 * 1024, Some(&[time_column])).map_err(|e| format!("reading `{time_column}`: {e}"))?;
    info.read_column = true;
    for batch in reader {
        let batch = batch.map_err(|e| format!("reading `{time_column}`: {e}"))?;
        let col = batch.column(0);
        info.min_ts = opt_min(info.min_ts, min_of(col, unit));
        info.max_ts = opt_max(info.max_ts, max_of(col, unit));
    }
    Ok(info)
}

/// A file whose footer is read and whose data is not yet: a local file, or
/// an object (one suffix GET).
enum Opened {
    Local(ParquetRecordBatchReaderBuilder<File>),
    Remote(ParquetRecordBatchStreamBuilder<AsyncObject>),
}

impl Opened {
    fn new(path: &Path) -> Result<Opened> {
        Ok(if crate::store::is_remote(path) {
            let b = crate::store::block_on(ParquetRecordBatchStreamBuilder::new(AsyncObject::open(path)?))
                .map_err(Error::parquet(path))?;
            Opened::Remote(b)
        } else {
            let f = File::open(path).map_err(Error::io("open", path))?;
            Opened::Local(ParquetRecordBatchReaderBuilder::try_new(f).map_err(Error::parquet(path))?)
        })
    }

    fn footer(&self) -> (SchemaRef, Arc<ParquetMetaData>) {
        match self {
            Opened::Local(b) => (b.schema().clone(), b.metadata().clone()),
            Opened::Remote(b) => (b.schema().clone(), b.metadata().clone()),
        }
    }

    /// Batches of `batch_size` rows, of the named root columns when given.
    fn batches(self, path: &Path, batch_size: usize, columns: Option<&[&str]>) -> Result<Batches> {
        fn shape<T>(b: ArrowReaderBuilder<T>, batch_size: usize, columns: Option<&[&str]>) -> ArrowReaderBuilder<T> {
            let b = b.with_batch_size(batch_size);
            match columns {
                Some(cols) => {
                    let idx: Vec<usize> = cols.iter().filter_map(|c| b.schema().index_of(c).ok()).collect();
                    let mask = ProjectionMask::roots(b.parquet_schema(), idx);
                    b.with_projection(mask)
                }
                None => b,
            }
        }
        Ok(match self {
            Opened::Local(b) => Batches::Local(shape(b, batch_size, columns).build().map_err(Error::parquet(path))?),
            Opened::Remote(b) => Batches::Remote(Box::new(
                shape(b, batch_size, columns).build().map_err(Error::parquet(path))?,
            )),
        })
    }
}

/// A file's Arrow schema and footer, reading nothing else. The error is the
/// reason, for the quarantine ledger.
pub(crate) fn footer(path: &Path) -> std::result::Result<(SchemaRef, Arc<ParquetMetaData>), String> {
    match Opened::new(path) {
        Ok(o) => Ok(o.footer()),
        Err(Error::Io { source, .. }) => Err(format!("cannot open: {source}")),
        Err(Error::Parquet { message, .. }) => Err(format!("invalid footer: {message}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Stream a file's record batches (a local file, or an object by ranged
/// GETs), only the named root columns when `columns` is given. Returns the
/// file's whole Arrow schema.
pub fn open_columns(path: &Path, batch_size: usize, columns: Option<&[&str]>) -> Result<(SchemaRef, Batches)> {
    let o = Opened::new(path)?;
    let (schema, _) = o.footer();
    Ok((schema, o.batches(path, batch_size, columns)?))
}

fn opt_min(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn opt_max(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Nanoseconds per tick of a time unit.
pub fn unit_ns(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    }
}

fn as_i64(a: &ArrayRef) -> Option<ArrayRef> {
    arrow::compute::cast(a, &DataType::Int64).ok()
}

fn min_of(a: &ArrayRef, unit: TimeUnit) -> Option<i64> {
    let v = as_i64(a)?;
    aggregate::min(v.as_primitive::<Int64Type>()).map(|x| x.saturating_mul(unit_ns(unit)))
}

fn max_of(a: &ArrayRef, unit: TimeUnit) -> Option<i64> {
    let v = as_i64(a)?;
    aggregate::max(v.as_primitive::<Int64Type>()).map(|x| x.saturating_mul(unit_ns(unit)))
}

/// Cast and reorder `batch` to `ds`'s schema. Types that only differ in
/// encoding or precision (timestamp units, large strings, narrower ints) are
/// cast; anything else, a missing column or an extra one, is refused.
pub fn conform(batch: &RecordBatch, ds: &DatasetConfig, source: &Path) -> Result<RecordBatch> {
    let schema: SchemaRef = Arc::new(ds.arrow_schema());
    let in_schema = batch.schema();
    for f in in_schema.fields() {
        if ds.column(f.name()).is_none() {
            return Err(Error::Schema {
                path: source.to_path_buf(),
                dataset: ds.name.clone(),
                message: format!("extra column `{}` (expected exactly: {})", f.name(), column_list(ds)),
            });
        }
    }
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(ds.columns.len());
    for c in &ds.columns {
        let idx = in_schema.index_of(&c.name).map_err(|_| Error::Schema {
            path: source.to_path_buf(),
            dataset: ds.name.clone(),
            message: format!("missing column `{}` (expected: {})", c.name, column_list(ds)),
        })?;
        let col = batch.column(idx);
        let want = c.ty.to_arrow();
        let from = col.data_type();
        let castable = c.ty.accepts(from)
            || matches!((from, &want), (DataType::Timestamp(..), DataType::Timestamp(..)))
            || matches!(
                (from, &want),
                (DataType::Int32 | DataType::Int16 | DataType::UInt32, DataType::Int64)
            )
            || matches!(
                (from, &want),
                (DataType::Float32 | DataType::Int64 | DataType::Int32, DataType::Float64)
            )
            || matches!((from, &want), (DataType::Null, _));
        if !castable {
            return Err(Error::Schema {
                path: source.to_path_buf(),
                dataset: ds.name.clone(),
                message: format!("column `{}` is {from}, expected {}", c.name, c.ty),
            });
        }
        let out = match (from, &want) {
            _ if from == &want => col.clone(),
            (DataType::Timestamp(..), DataType::Timestamp(unit, _)) => {
                to_utc(col, *unit).map_err(Error::arrow(source))?
            }
            _ => cast(col, &want).map_err(Error::arrow(source))?,
        };
        if c.name == ds.time_column && out.null_count() > 0 {
            return Err(Error::Schema {
                path: source.to_path_buf(),
                dataset: ds.name.clone(),
                message: format!("time column `{}` has {} null values", c.name, out.null_count()),
            });
        }
        if c.name == ds.time_column {
            check_times(&out, ds, source)?;
        }
        cols.push(out);
    }
    RecordBatch::try_new(schema, cols).map_err(Error::arrow(source))
}

/// Refuse a time column holding a value that no partition can hold, such as
/// a microsecond value in a millisecond column: it names the file and value.
fn check_times(col: &ArrayRef, ds: &DatasetConfig, source: &Path) -> Result<()> {
    let DataType::Timestamp(unit, _) = col.data_type() else {
        return Ok(());
    };
    let Some(ints) = as_i64(col) else { return Ok(()) };
    let ints = ints.as_primitive::<Int64Type>();
    let scale = unit_ns(*unit);
    for v in [aggregate::min(ints), aggregate::max(ints)].into_iter().flatten() {
        if !v.checked_mul(scale).is_some_and(|ns| ds.placeable(ns)) {
            return Err(Error::BadInput {
                path: source.to_path_buf(),
                message: format!(
                    "time {v} in `{}` ({unit:?}) is outside what a {unit:?} column can place in a partition",
                    ds.time_column
                ),
            });
        }
    }
    Ok(())
}

fn column_list(ds: &DatasetConfig) -> String {
    ds.columns
        .iter()
        .map(|c| format!("{}: {}", c.name, c.ty))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Cast any timestamp (or epoch integer) column to `unit` in UTC. Naive
/// timestamps are taken as UTC, as collectors write them; the conversion
/// only relabels, so no timezone database is needed.
pub fn to_utc(a: &ArrayRef, unit: TimeUnit) -> std::result::Result<ArrayRef, arrow::error::ArrowError> {
    use arrow::compute::cast;
    let a = match a.data_type() {
        DataType::Timestamp(_, tz) => cast(a, &DataType::Timestamp(unit, tz.clone()))?,
        _ => a.clone(),
    };
    let ints = cast(&a, &DataType::Int64)?;
    cast(&ints, &DataType::Timestamp(unit, Some("UTC".into())))
}

/// A stable fingerprint of column names and types (FNV-1a; stable across
/// Rust versions, unlike `DefaultHasher`).
pub fn fingerprint(schema: &arrow::datatypes::Schema) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for f in schema.fields() {
        for b in format!("{}:{};", f.name(), f.data_type()).bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// Open a file for streaming reads of its record batches.
pub fn open_batches(path: &Path, batch_size: usize) -> Result<(SchemaRef, Batches)> {
    open_columns(path, batch_size, None)
}

/// Stream one file's time column, in nanoseconds, a batch at a time; only
/// that column's pages are read. Memory is one batch.
pub fn for_each_time(path: &Path, time_column: &str, mut f: impl FnMut(&[i64])) -> Result<()> {
    let (schema, reader) = open_columns(path, 64 * 1024, Some(&[time_column]))?;
    let Ok(field) = schema.field_with_name(time_column) else {
        return Err(Error::BadInput {
            path: path.to_path_buf(),
            message: format!("no time column `{time_column}`"),
        });
    };
    let unit = match field.data_type() {
        DataType::Timestamp(u, _) => unit_ns(*u),
        _ => 1,
    };
    let mut ns = Vec::new();
    for batch in reader {
        let batch = batch.map_err(Error::arrow(path))?;
        let c = arrow::compute::cast(batch.column(0), &DataType::Int64).map_err(Error::arrow(path))?;
        ns.clear();
        ns.extend(
            c.as_primitive::<arrow::datatypes::Int64Type>()
                .iter()
                .flatten()
                .map(|t| t.saturating_mul(unit)),
        );
        f(&ns);
    }
    Ok(())
}

/// Uncompressed bytes of a file's row groups, from its footer.
pub fn uncompressed_bytes(path: &Path) -> Result<u64> {
    let (_, meta) = footer(path).map_err(|message| Error::Parquet {
        path: path.to_path_buf(),
        message,
    })?;
    Ok(meta
        .row_groups()
        .iter()
        .map(|g| g.total_byte_size().max(0) as u64)
        .sum())
}

pub fn arc_schema(s: arrow::datatypes::Schema) -> SchemaRef {
    Arc::new(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, TimestampMillisecondArray};
    use arrow::datatypes::{Field, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::{EnabledStatistics, WriterProperties};

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                false,
            ),
            Field::new("id", DataType::Int64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(TimestampMillisecondArray::from(vec![5, 1, 9]).with_timezone("UTC")),
                Arc::new(Int64Array::from(vec![1, 2, 3])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn write_then_inspect() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.parquet");
        let b = batch();
        let w = write_file(&p, b.schema(), &[b], &WriteOptions::default()).unwrap();
        assert_eq!(w.rows, 3);
        let i = inspect(&p, "ts").unwrap();
        assert_eq!((i.rows, i.min_ts, i.max_ts), (3, Some(1_000_000), Some(9_000_000)));
        assert!(!i.read_column);
    }

    #[test]
    fn time_range_is_computed_when_statistics_are_missing() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("nostats.parquet");
        let b = batch();
        let props = WriterProperties::builder()
            .set_statistics_enabled(EnabledStatistics::None)
            .build();
        let mut w = ArrowWriter::try_new(File::create(&p).unwrap(), b.schema(), Some(props)).unwrap();
        w.write(&b).unwrap();
        w.close().unwrap();
        let i = inspect(&p, "ts").unwrap();
        assert!(i.read_column, "statistics were present after all");
        assert_eq!((i.min_ts, i.max_ts), (Some(1_000_000), Some(9_000_000)));
    }

    #[test]
    fn truncated_file_is_unreadable() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.parquet");
        let b = batch();
        write_file(&p, b.schema(), &[b], &WriteOptions::default()).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        assert!(inspect(&p, "ts").is_err());
    }
}
