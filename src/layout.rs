//! The on-disk Hive layout: `<tier root>/<dataset>/<col>=<value>/.../<file>.parquet`.
//!
//! Owns parsing a path into dataset and partition values, building the
//! folder for a partition, and refusing names that could escape a folder.
//! Does not touch the disk: callers decide what to do with the paths.

use std::path::{Component, Path, PathBuf};

use crate::config::DatasetConfig;
use crate::error::Result;

/// Partition values parsed back from a `col=value/...` key, in order.
pub fn partition_values(partition: &str) -> Vec<(String, String)> {
    partition
        .split('/')
        .filter_map(|s| s.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A partition key split into its series (the partition columns before
/// the time one) and its period (the time partition's value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionKey {
    /// The series' `(column, value)` pairs, in order.
    pub values: Vec<(String, String)>,
    /// `col=value/...` of [`values`](Self::values).
    pub series: String,
    /// The time partition's value, e.g. `2024-01-31`.
    pub period: Option<String>,
}

impl PartitionKey {
    /// Split `partition` (`exchange=x/symbol=y/date=d`) as `ds` partitions.
    pub fn of(ds: &DatasetConfig, partition: &str) -> PartitionKey {
        let (mut values, mut period) = (Vec::new(), None);
        for (k, v) in partition_values(partition) {
            if k == ds.time_partition {
                period = Some(v);
            } else {
                values.push((k, v));
            }
        }
        PartitionKey {
            series: partition_key(&values),
            values,
            period,
        }
    }

    /// The `[start, end)` nanoseconds of its period, when it has a valid one.
    pub fn range(&self, ds: &DatasetConfig) -> Option<(i64, i64)> {
        ds.period_range(self.period.as_deref()?)
    }
}

pub use crate::names::{check_partition_value, check_segment};

/// Refuse a partition whose values [`partition_dir`] would refuse to write:
/// scan checks with this, so what it catalogs the engine can write.
pub fn check_partition_values(values: &[(String, String)]) -> Result<()> {
    values.iter().try_for_each(|(_, v)| check_partition_value(v))
}

/// A data file's place in the layout, parsed from its path under a tier root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// First path segment: the dataset's folder.
    pub dataset_path: String,
    /// `col=value` segments, outermost first.
    pub values: Vec<(String, String)>,
}

impl Located {
    /// `exchange=binance/symbol=BTC_USDT/date=2024-01-01`.
    pub fn partition_key(&self) -> String {
        partition_key(&self.values)
    }

    pub fn get(&self, col: &str) -> Option<&str> {
        self.values.iter().find(|(k, _)| k == col).map(|(_, v)| v.as_str())
    }

    /// Whether the segments are exactly the dataset's partition columns, in order.
    pub fn fits(&self, ds: &DatasetConfig) -> bool {
        let want = ds.partition_by.iter().chain([&ds.time_partition]);
        self.values.len() == ds.partition_by.len() + 1 && self.values.iter().map(|(k, _)| k).eq(want)
    }
}

pub fn partition_key(values: &[(String, String)]) -> String {
    values
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("/")
}

/// Parse `trades/exchange=x/symbol=y/date=d/part.parquet` (relative to a tier
/// root). None when the path is not in the layout.
pub fn locate(rel: &Path) -> Option<Located> {
    let mut segs: Vec<&str> = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(s) => segs.push(s.to_str()?),
            _ => return None,
        }
    }
    if segs.len() < 2 {
        return None;
    }
    let dataset_path = segs[0].to_string();
    let mut values = Vec::new();
    for seg in &segs[1..segs.len() - 1] {
        let (k, v) = seg.split_once('=')?;
        values.push((k.to_string(), v.to_string()));
    }
    Some(Located { dataset_path, values })
}

/// The folder of one partition under a tier root.
pub fn partition_dir(tier_root: &Path, ds: &DatasetConfig, values: &[(String, String)]) -> Result<PathBuf> {
    check_partition_values(values)?;
    let mut p = tier_root.join(&ds.path);
    for (k, v) in values {
        p.push(format!("{k}={v}"));
    }
    Ok(p)
}

/// Whether a file name is a live data file (not a temporary, hidden or foreign file).
pub fn is_data_file(name: &str) -> bool {
    name.ends_with(".parquet") && !name.starts_with('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_escapes() {
        for bad in ["..", "../evil", "a/b", ".hidden", "", "a\\b", "x=y", "a\0b"] {
            assert!(check_segment("symbol", bad).is_err(), "{bad:?}");
        }
        for good in ["BTC_USDT", "binance", "1m", "2024-01-01", "XRP_USDT_USDT"] {
            assert!(check_segment("symbol", good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn a_partition_value_may_start_with_a_dot_and_nothing_else_loosens() {
        for good in [".BXBT", "BTC USDT", "BTC_USDT"] {
            assert!(check_partition_value(good).is_ok(), "{good:?}");
        }
        for bad in [".", "..", "a=b", ".a=b", "../x", "a/b", "", ".\n"] {
            assert!(check_partition_value(bad).is_err(), "{bad:?}");
        }
        assert!(
            check_segment("dataset", ".BXBT").is_err(),
            "a segment itself is never hidden"
        );
    }

    #[test]
    fn locates_hive_paths() {
        let l = locate(Path::new(
            "trades/exchange=binance/symbol=BTC_USDT/date=2024-01-01/part-0.parquet",
        ))
        .unwrap();
        assert_eq!(l.dataset_path, "trades");
        assert_eq!(l.get("symbol"), Some("BTC_USDT"));
        assert_eq!(l.partition_key(), "exchange=binance/symbol=BTC_USDT/date=2024-01-01");
        assert!(locate(Path::new("trades/nokey/part.parquet")).is_none());
        assert!(locate(Path::new("part.parquet")).is_none());
    }

    #[test]
    fn data_files() {
        assert!(is_data_file("part-0.parquet"));
        assert!(!is_data_file(".part-0.parquet.tmp"));
        assert!(!is_data_file(".x.parquet"));
        assert!(!is_data_file("notes.txt"));
    }
}
