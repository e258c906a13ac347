//! Per-file column statistics for the lake, read from a Parquet footer.
//!
//! Owns how a footer's row-group statistics become DuckLake's
//! `ducklake_file_column_stats` rows: min and max as strings DuckDB casts
//! (timestamps as `YYYY-MM-DD HH:MM:SS.ffffff+00`, fixed width so they also
//! sort as text), null and value counts, and `contains_nan` from the
//! writer's NaN counts (unknown stays NULL). A partition key's stats are its
//! value. A bound that is not exact (a truncated string) is left out.

use std::path::Path;

use arrow::datatypes::{DataType, TimeUnit};
use parquet::file::statistics::Statistics;

use crate::config::DatasetConfig;
use crate::error::{Error, Result};

/// One column's figures in one file.
#[derive(Debug, Clone, Default)]
pub struct ColStats {
    /// The table column id (1-based, in [`super::schema::table_columns`] order).
    pub column_id: i64,
    pub size: i64,
    pub value_count: i64,
    pub null_count: i64,
    pub min: Option<String>,
    pub max: Option<String>,
    pub contains_nan: Option<bool>,
}

/// What the lake records of one data file.
#[derive(Debug, Clone)]
pub struct FileStats {
    pub rows: i64,
    pub footer_size: Option<i64>,
    pub columns: Vec<ColStats>,
}

/// Read `path`'s footer (a local file or an object) and give its stats in
/// the table's column order; `partition` holds its Hive key values.
pub fn read(path: &Path, ds: &DatasetConfig, partition: &[(String, String)]) -> Result<FileStats> {
    let (schema, meta) = crate::parquet_io::footer(path).map_err(|message| Error::Parquet {
        path: path.to_path_buf(),
        message,
    })?;
    let rows = meta.file_metadata().num_rows();
    let keys = super::schema::partition_keys(ds);
    let descr = meta.file_metadata().schema_descr();
    let mut columns = Vec::new();
    for (i, (name, _)) in super::schema::table_columns(ds).iter().enumerate() {
        let column_id = i as i64 + 1;
        if i < keys.len() {
            let v = partition.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
            columns.push(ColStats {
                column_id,
                value_count: if v.is_some() { rows } else { 0 },
                null_count: if v.is_some() { 0 } else { rows },
                min: v.clone(),
                max: v,
                ..Default::default()
            });
            continue;
        }
        let leaf = (0..descr.num_columns()).find(|&c| descr.column(c).name() == name.as_str());
        let unit = match schema.field_with_name(name).map(|f| f.data_type().clone()) {
            Ok(DataType::Timestamp(u, _)) => Some(u),
            _ => None,
        };
        let Some(leaf) = leaf else {
            // Not in the file: DuckDB reads it as NULL.
            columns.push(ColStats {
                column_id,
                null_count: rows,
                ..Default::default()
            });
            continue;
        };
        columns.push(column(&meta, leaf, column_id, unit));
    }
    Ok(FileStats {
        rows,
        footer_size: footer_size(path),
        columns,
    })
}

/// Fold one leaf column's row-group statistics.
fn column(
    meta: &parquet::file::metadata::ParquetMetaData,
    leaf: usize,
    column_id: i64,
    unit: Option<TimeUnit>,
) -> ColStats {
    let mut c = ColStats {
        column_id,
        ..Default::default()
    };
    let (mut min, mut max): (Option<Bound>, Option<Bound>) = (None, None);
    let (mut bounds_known, mut nans_known, mut nans) = (true, true, 0u64);
    for rg in meta.row_groups() {
        let cc = rg.column(leaf);
        c.size += cc.compressed_size();
        let values = cc.num_values();
        let Some(st) = cc.statistics() else {
            bounds_known = false;
            nans_known = false;
            c.value_count += values;
            continue;
        };
        let nulls = st.null_count_opt().map(|n| n as i64);
        c.null_count += nulls.unwrap_or(0);
        c.value_count += values - nulls.unwrap_or(0);
        match st.nan_count_opt() {
            Some(n) => nans += n,
            None => nans_known = false,
        }
        if values - nulls.unwrap_or(0) == 0 {
            continue;
        }
        match (bound(st, true, unit), bound(st, false, unit)) {
            (Some(lo), Some(hi)) => {
                min = Some(match min {
                    Some(m) if m.le(&lo) => m,
                    _ => lo,
                });
                max = Some(match max {
                    Some(m) if hi.le(&m) => m,
                    _ => hi,
                });
            }
            _ => bounds_known = false,
        }
    }
    if bounds_known {
        c.min = min.map(|b| b.text());
        c.max = max.map(|b| b.text());
    }
    let float = meta.row_groups().first().is_some_and(|rg| {
        matches!(
            rg.column(leaf).column_type(),
            parquet::basic::Type::FLOAT | parquet::basic::Type::DOUBLE
        )
    });
    if float && nans_known {
        c.contains_nan = Some(nans > 0);
    }
    c
}

/// A typed bound, compared by value, written as DuckDB casts it.
#[derive(Debug, Clone)]
enum Bound {
    Int(i64),
    /// Microseconds since the epoch (DuckDB's timestamptz), rounded outward.
    Micros(i64),
    Float(f64),
    Bool(bool),
    Text(String),
}

impl Bound {
    fn le(&self, o: &Bound) -> bool {
        match (self, o) {
            (Bound::Int(a), Bound::Int(b)) | (Bound::Micros(a), Bound::Micros(b)) => a <= b,
            (Bound::Float(a), Bound::Float(b)) => a <= b,
            (Bound::Bool(a), Bound::Bool(b)) => a <= b,
            (Bound::Text(a), Bound::Text(b)) => a <= b,
            _ => true,
        }
    }

    fn text(self) -> String {
        match self {
            Bound::Int(v) => v.to_string(),
            Bound::Micros(us) => timestamp_text(us),
            Bound::Float(v) => format!("{v:?}"),
            Bound::Bool(v) => v.to_string(),
            Bound::Text(s) => s,
        }
    }
}

/// A microsecond time as DuckDB writes a timestamptz stat.
pub fn timestamp_text(us: i64) -> String {
    let t = chrono::DateTime::from_timestamp_micros(us).unwrap_or_default();
    t.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string()
}

/// The min (`lo`) or max of a row group's statistics, `None` when unknown,
/// not exact, or NaN.
fn bound(st: &Statistics, lo: bool, unit: Option<TimeUnit>) -> Option<Bound> {
    let pick = |a: bool, b: bool| if lo { a } else { b };
    Some(match st {
        Statistics::Boolean(s) => Bound::Bool(*pick_opt(lo, s.min_opt(), s.max_opt())?),
        Statistics::Int32(s) => Bound::Int(*pick_opt(lo, s.min_opt(), s.max_opt())? as i64),
        Statistics::Int64(s) => {
            let v = *pick_opt(lo, s.min_opt(), s.max_opt())?;
            match unit {
                Some(u) => Bound::Micros(to_micros(v, u, lo)),
                None => Bound::Int(v),
            }
        }
        Statistics::Float(s) => {
            let v = *pick_opt(lo, s.min_opt(), s.max_opt())? as f64;
            Bound::Float(Some(v).filter(|v| !v.is_nan())?)
        }
        Statistics::Double(s) => Bound::Float(Some(*pick_opt(lo, s.min_opt(), s.max_opt())?).filter(|v| !v.is_nan())?),
        Statistics::ByteArray(s) => {
            if !pick(st.min_is_exact(), st.max_is_exact()) {
                return None;
            }
            let b = pick_opt(lo, s.min_opt(), s.max_opt())?;
            Bound::Text(std::str::from_utf8(b.data()).ok()?.to_string())
        }
        _ => return None,
    })
}

fn pick_opt<T>(lo: bool, a: Option<T>, b: Option<T>) -> Option<T> {
    if lo {
        a
    } else {
        b
    }
}

/// A time in `unit` as microseconds, rounded down for a min and up for a max.
fn to_micros(v: i64, unit: TimeUnit, lo: bool) -> i64 {
    match unit {
        TimeUnit::Second => v.saturating_mul(1_000_000),
        TimeUnit::Millisecond => v.saturating_mul(1_000),
        TimeUnit::Microsecond => v,
        TimeUnit::Nanosecond if lo => v.div_euclid(1_000),
        TimeUnit::Nanosecond => v.div_euclid(1_000) + (v.rem_euclid(1_000) != 0) as i64,
    }
}

/// The footer's length (the 4 bytes before the closing magic) of a local
/// file; unknown for an object.
fn footer_size(path: &Path) -> Option<i64> {
    use std::io::{Read, Seek, SeekFrom};
    if crate::store::is_remote(path) {
        return None;
    }
    let mut f = std::fs::File::open(path).ok()?;
    f.seek(SeekFrom::End(-8)).ok()?;
    let mut b = [0u8; 8];
    f.read_exact(&mut b).ok()?;
    (&b[4..] == b"PAR1").then(|| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64)
}
