//! A dataset's declaration: schema, time column, dedup key, Hive partitioning.
//!
//! This module knows how a dataset *looks* (which columns, which path
//! segments, how wide a time partition is). It does not read files; the
//! catalog and ingest use these answers to do that.

use std::fmt;
use std::str::FromStr;

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// One dataset, as declared under `[datasets.<name>]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    /// Filled from the table name, not from a key.
    #[serde(skip)]
    pub name: String,
    pub path: String,
    pub time_column: String,
    pub key: Vec<String>,
    pub partition_by: Vec<String>,
    pub time_partition: String,
    pub granularity: Granularity,
    pub columns: Vec<ColumnSpec>,
    /// Age (of a partition's end, against the dataset's guarded clock) after
    /// which it moves to a colder tier, e.g. `{ warm = "7d", cold = "30d" }`.
    #[serde(default)]
    pub tier_after: indexmap::IndexMap<String, super::Span>,
    /// Partitions that ended longer ago than this (against the guarded clock)
    /// are dropped by `retention`. None keeps everything.
    #[serde(default)]
    pub keep: Option<super::Span>,
    /// Which copy of a duplicated row survives, by arrival: "newest" or
    /// "oldest". Unset: `compaction.keep`.
    #[serde(default)]
    pub keep_duplicate: Option<super::Keep>,
    /// Hard quota eviction order: lower priorities are evicted first.
    #[serde(default)]
    pub priority: i64,
    /// Never evicted to meet a quota.
    #[serde(default)]
    pub keep_forever: bool,
    /// Candles built from this dataset's trades before its partitions expire.
    #[serde(default)]
    pub rollup: Option<RollupConfig>,
    /// With `keep`: a partition that straddles the cut is rewritten without
    /// its expired rows, instead of staying whole until it has all expired.
    #[serde(default)]
    pub trim: bool,
    /// Expected spacing of rows, for the report's gaps (default: a candle
    /// series' timeframe, else 1h).
    #[serde(default)]
    pub cadence: Option<super::Span>,
    /// Above this many bytes (all tiers), `quota` warns and tiers early.
    #[serde(default)]
    pub soft_limit: Option<super::ByteSize>,
    /// Above this many bytes (all tiers), `quota` evicts this dataset's
    /// oldest partitions.
    #[serde(default)]
    pub hard_limit: Option<super::ByteSize>,
    /// Row checks and what happens to bad rows.
    #[serde(default)]
    pub quality: super::QualityConfig,
    /// Parquet encoding per column, e.g. `{ price = "byte_stream_split" }`;
    /// a column not named here gets one chosen from its data.
    #[serde(default)]
    pub encodings: indexmap::IndexMap<String, ColumnEncoding>,
    /// Columns given a bloom filter, for lookups by value (e.g. `["trade_id"]`).
    #[serde(default)]
    pub bloom: Vec<String>,
}

/// A column's declared Parquet encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnEncoding {
    /// Dictionary first (few distinct values).
    Dict,
    Plain,
    /// Floats (and integers): the bytes of each value split into streams.
    ByteStreamSplit,
    /// DELTA_BINARY_PACKED: sorted or close integers and timestamps.
    Delta,
}

impl ColumnEncoding {
    /// Whether it can be written for a column of type `t`.
    pub fn fits(self, t: &DataType) -> bool {
        match self {
            ColumnEncoding::Dict | ColumnEncoding::Plain => true,
            ColumnEncoding::Delta => {
                t.is_integer() || matches!(t, DataType::Timestamp(..) | DataType::Date32 | DataType::Date64)
            }
            ColumnEncoding::ByteStreamSplit => t.is_floating() || t.is_integer(),
        }
    }
}

/// `rollup = { into = "ohlcv", timeframes = ["1m"] }` on a trades dataset.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RollupConfig {
    /// The candle dataset written to; it needs a `timeframe` partition column.
    pub into: String,
    /// Candle widths: a number and s, m, h or d (e.g. 1m, 5m, 1h, 1d).
    #[serde(default = "default_timeframes")]
    pub timeframes: Vec<String>,
    /// Trade price column (open, high, low, close come from it).
    #[serde(default = "default_price")]
    pub price: String,
    /// Trade size column (volume is its sum).
    #[serde(default = "default_amount")]
    pub amount: String,
}

fn default_timeframes() -> Vec<String> {
    vec!["1m".into()]
}
fn default_price() -> String {
    "price".into()
}
fn default_amount() -> String {
    "amount".into()
}

/// A candle width in nanoseconds, from `1m`, `5m`, `1h`, `1d`, `30s`.
pub fn timeframe_ns(tf: &str) -> Option<i64> {
    let (n, unit) = tf.split_at(tf.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = n.parse().ok().filter(|n| *n > 0)?;
    let unit_ns: i64 = match unit {
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        _ => return None,
    };
    n.checked_mul(unit_ns)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Day,
    Month,
    Year,
}

/// `"name: type"` in the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    pub name: String,
    pub ty: ColumnType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Timestamp(TimeUnit),
    Int64,
    Int32,
    Float64,
    Float32,
    Utf8,
    Bool,
}

impl DatasetConfig {
    /// The data kind: as declared, else candles when the dataset has
    /// open/high/low/close, book when it has an update id, trades when it has
    /// price and amount.
    pub fn data_kind(&self) -> super::DataKind {
        if let Some(k) = self.quality.kind {
            return k;
        }
        let has = |c: &str| self.column(c).is_some();
        if ["open", "high", "low", "close"].iter().all(|c| has(c)) {
            super::DataKind::Candles
        } else if has("update_id") && has("price") {
            super::DataKind::Book
        } else if has("price") && has("amount") {
            super::DataKind::Trades
        } else {
            super::DataKind::Other
        }
    }

    /// The Arrow schema files of this dataset are written with.
    pub fn arrow_schema(&self) -> Schema {
        Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(&c.name, c.ty.to_arrow(), c.name != self.time_column))
                .collect::<Vec<_>>(),
        )
    }

    /// `tier_after` in tier order, warmest first, whatever order the config
    /// (or the environment) gave it in.
    pub fn tier_thresholds(&self, cfg: &super::Config) -> Vec<(String, super::Span)> {
        let mut v: Vec<(usize, String, super::Span)> = self
            .tier_after
            .iter()
            .filter_map(|(t, a)| cfg.tiers.get_index_of(t).map(|i| (i, t.clone(), *a)))
            .collect();
        v.sort_by_key(|(i, _, _)| *i);
        v.into_iter().map(|(_, t, a)| (t, a)).collect()
    }

    pub fn column(&self, name: &str) -> Option<&ColumnSpec> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn time_unit(&self) -> TimeUnit {
        match self.column(&self.time_column).map(|c| c.ty) {
            Some(ColumnType::Timestamp(u)) => u,
            _ => TimeUnit::Millisecond,
        }
    }

    /// Differences between a file's schema and the declared one, empty when
    /// the file fits. Column order does not matter; string encodings and
    /// spellings of UTC are treated as the same type.
    pub fn schema_drift(&self, file: &Schema) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.columns {
            match file.field_with_name(&c.name) {
                Err(_) => out.push(format!("missing column `{}`", c.name)),
                Ok(f) if !c.ty.accepts(f.data_type()) => {
                    out.push(format!("column `{}` is {} (expected {})", c.name, f.data_type(), c.ty))
                }
                Ok(_) => {}
            }
        }
        for f in file.fields() {
            if self.column(f.name()).is_none() {
                out.push(format!("extra column `{}`", f.name()));
            }
        }
        out
    }

    /// The time partition value (`2024-01-31`, `2024-01`, `2024`) for a
    /// time in nanoseconds since the epoch.
    pub fn period_of(&self, ts_ns: i64) -> String {
        let t = Utc.timestamp_nanos(ts_ns);
        match self.granularity {
            Granularity::Day => t.format("%Y-%m-%d").to_string(),
            Granularity::Month => t.format("%Y-%m").to_string(),
            Granularity::Year => t.format("%Y").to_string(),
        }
    }

    /// Whether a time (ns since the epoch) falls in a period this dataset can
    /// name; a value that saturated when scaled to ns (a µs value in a ms
    /// column) cannot.
    pub fn placeable(&self, ts_ns: i64) -> bool {
        ts_ns != i64::MAX && ts_ns != i64::MIN && self.period_range(&self.period_of(ts_ns)).is_some()
    }

    /// `[start, end)` in nanoseconds of a time partition value, or None when
    /// the value is not a period of this granularity.
    pub fn period_range(&self, value: &str) -> Option<(i64, i64)> {
        let start = match self.granularity {
            Granularity::Day => NaiveDate::parse_from_str(value, "%Y-%m-%d").ok()?,
            Granularity::Month => NaiveDate::parse_from_str(&format!("{value}-01"), "%Y-%m-%d").ok()?,
            Granularity::Year => NaiveDate::from_ymd_opt(value.parse().ok().filter(|_| value.len() == 4)?, 1, 1)?,
        };
        let end = match self.granularity {
            Granularity::Day => start.succ_opt()?,
            Granularity::Month if start.month() == 12 => NaiveDate::from_ymd_opt(start.year() + 1, 1, 1)?,
            Granularity::Month => NaiveDate::from_ymd_opt(start.year(), start.month() + 1, 1)?,
            Granularity::Year => NaiveDate::from_ymd_opt(start.year() + 1, 1, 1)?,
        };
        let ns = |d: NaiveDate| -> Option<i64> {
            DateTime::<Utc>::from_naive_utc_and_offset(d.and_hms_opt(0, 0, 0)?, Utc).timestamp_nanos_opt()
        };
        Some((ns(start)?, ns(end)?))
    }
}

impl ColumnType {
    pub fn to_arrow(self) -> DataType {
        match self {
            ColumnType::Timestamp(u) => DataType::Timestamp(u, Some("UTC".into())),
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Int32 => DataType::Int32,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Float32 => DataType::Float32,
            ColumnType::Utf8 => DataType::Utf8,
            ColumnType::Bool => DataType::Boolean,
        }
    }

    /// Whether a file column of type `t` holds this type. Engines differ in
    /// string encoding (polars writes large strings, DuckDB views) and in how
    /// they spell UTC; neither changes the data.
    pub fn accepts(self, t: &DataType) -> bool {
        match (self, t) {
            (ColumnType::Timestamp(u), DataType::Timestamp(v, tz)) => {
                u == *v
                    && tz
                        .as_deref()
                        .is_none_or(|z| matches!(z, "UTC" | "+00:00" | "Etc/UTC" | "Z"))
            }
            (ColumnType::Utf8, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) => true,
            (a, b) => a.to_arrow() == *b,
        }
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ColumnType::Timestamp(TimeUnit::Second) => "timestamp[s]",
            ColumnType::Timestamp(TimeUnit::Millisecond) => "timestamp[ms]",
            ColumnType::Timestamp(TimeUnit::Microsecond) => "timestamp[us]",
            ColumnType::Timestamp(TimeUnit::Nanosecond) => "timestamp[ns]",
            ColumnType::Int64 => "int64",
            ColumnType::Int32 => "int32",
            ColumnType::Float64 => "float64",
            ColumnType::Float32 => "float32",
            ColumnType::Utf8 => "string",
            ColumnType::Bool => "bool",
        };
        f.write_str(s)
    }
}

impl FromStr for ColumnType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.trim() {
            "timestamp[s]" => ColumnType::Timestamp(TimeUnit::Second),
            "timestamp[ms]" | "timestamp" => ColumnType::Timestamp(TimeUnit::Millisecond),
            "timestamp[us]" => ColumnType::Timestamp(TimeUnit::Microsecond),
            "timestamp[ns]" => ColumnType::Timestamp(TimeUnit::Nanosecond),
            "int64" => ColumnType::Int64,
            "int32" => ColumnType::Int32,
            "float64" | "double" => ColumnType::Float64,
            "float32" | "float" => ColumnType::Float32,
            "string" | "utf8" => ColumnType::Utf8,
            "bool" | "boolean" => ColumnType::Bool,
            other => {
                return Err(format!(
                "unknown column type `{other}` (use timestamp[ms|us|ns], int64, int32, float64, float32, string, bool)"
            ))
            }
        })
    }
}

impl<'de> Deserialize<'de> for ColumnSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let (name, ty) = s
            .split_once(':')
            .ok_or_else(|| serde::de::Error::custom(format!("column `{s}` must be written as \"name: type\"")))?;
        let name = name.trim().to_string();
        crate::names::check_segment("column", &name).map_err(serde::de::Error::custom)?;
        Ok(ColumnSpec {
            name,
            ty: ty.parse().map_err(serde::de::Error::custom)?,
        })
    }
}

impl Serialize for ColumnSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{}: {}", self.name, self.ty))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(g: Granularity) -> DatasetConfig {
        DatasetConfig {
            name: "t".into(),
            path: "t".into(),
            time_column: "ts".into(),
            key: vec!["id".into()],
            partition_by: vec![],
            time_partition: "date".into(),
            granularity: g,
            columns: vec![
                ColumnSpec {
                    name: "ts".into(),
                    ty: ColumnType::Timestamp(TimeUnit::Millisecond),
                },
                ColumnSpec {
                    name: "id".into(),
                    ty: ColumnType::Int64,
                },
            ],
            tier_after: Default::default(),
            keep: None,
            keep_duplicate: None,
            priority: 0,
            keep_forever: false,
            rollup: None,
            trim: false,
            cadence: None,
            soft_limit: None,
            hard_limit: None,
            quality: Default::default(),
            encodings: Default::default(),
            bloom: Vec::new(),
        }
    }

    #[test]
    fn periods_round_trip() {
        let d = ds(Granularity::Day);
        let (s, e) = d.period_range("2024-02-28").unwrap();
        assert_eq!(e - s, 86_400_000_000_000);
        assert_eq!(d.period_of(s), "2024-02-28");
        assert_eq!(d.period_of(e - 1), "2024-02-28");
        assert_eq!(d.period_of(e), "2024-02-29");
        let m = ds(Granularity::Month);
        let (s, e) = m.period_range("2023-12").unwrap();
        assert_eq!(m.period_of(s), "2023-12");
        assert_eq!(m.period_of(e), "2024-01");
        assert!(m.period_range("2023-13").is_none());
        assert!(ds(Granularity::Year).period_range("20x4").is_none());
    }

    #[test]
    fn drift_ignores_order_and_string_flavour() {
        let d = ds(Granularity::Day);
        let f = Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into())),
                true,
            ),
        ]);
        assert!(d.schema_drift(&f).is_empty());
        let g = Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
        ]);
        assert_eq!(d.schema_drift(&g).len(), 2);
    }
}
