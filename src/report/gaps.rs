//! Coverage and gaps of a dataset's series, from the data itself.
//!
//! Owns gathering each file's cadence buckets (read from its time column,
//! only that column, once per file: see `cache`) into the set each series
//! has rows in, and the
//! polars work over those sets: the gaps (runs of empty buckets between
//! the dataset's first and last bucket, so a series that stops early or
//! starts late shows too) and the per-day coverage behind the coverage map.
//! Memory is the bucket sets: 24 a day for trades, one per candle for
//! candles, never the rows.

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::{col, lit, DataFrame, IntoLazy, NamedFrom, Series, SortMultipleOptions};
use serde::Serialize;

use crate::catalog::CatalogFile;
use crate::config::DatasetConfig;
use crate::error::{Error, Result};
use crate::time::rfc3339;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Gap {
    pub dataset: String,
    /// The partition values other than time, e.g. `exchange=binance/symbol=BTC_USDT`.
    pub series: String,
    /// First missing instant and the end of the gap (exclusive), RFC 3339.
    pub from: String,
    pub to: String,
    /// Empty buckets of the dataset's cadence.
    pub missing: u64,
    pub cadence: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    pub dataset: String,
    pub series: String,
    /// YYYY-MM-DD.
    pub day: String,
    /// Share of the day's buckets that hold rows (0..=1).
    pub covered: f64,
    /// Rows named by quality findings whose first row is that day.
    pub findings: u64,
}

fn perr(e: polars::prelude::PolarsError) -> Error {
    Error::Invalid(format!("report (polars): {e}"))
}

/// Column `name` of `df` as 64-bit integers.
fn ints(df: &DataFrame, name: &str) -> Result<polars::prelude::Int64Chunked> {
    let c = df
        .column(name)
        .map_err(perr)?
        .cast(&polars::prelude::DataType::Int64)
        .map_err(perr)?;
    Ok(c.i64().map_err(perr)?.clone())
}

/// Gaps and daily coverage of every series of `ds`, from its files.
pub(crate) fn analyse(
    facts: &super::cache::Facts,
    ds: &DatasetConfig,
    files: &[CatalogFile],
) -> Result<(Vec<Gap>, Vec<Coverage>)> {
    // series → (cadence, buckets with rows)
    let mut sets: BTreeMap<String, (i64, BTreeSet<i64>)> = BTreeMap::new();
    for f in files.iter().filter(|f| !f.drift) {
        let series = crate::layout::PartitionKey::of(ds, &f.file.partition).series;
        let cadence = crate::coverage::cadence_ns(ds, &series);
        let entry = sets.entry(series).or_insert_with(|| (cadence, BTreeSet::new()));
        entry.1.extend(crate::coverage::file_buckets(
            facts.cfg,
            facts.db,
            f,
            &ds.time_column,
            cadence,
            facts.read_files,
        )?);
    }
    let mut gaps = Vec::new();
    let mut coverage = Vec::new();
    // Series of one cadence share the dataset's span; a 1m and a 5m candle
    // series are measured each against their own kind.
    let mut by_cadence: BTreeMap<i64, Vec<(String, BTreeSet<i64>)>> = BTreeMap::new();
    for (series, (cadence, set)) in sets {
        by_cadence.entry(cadence).or_default().push((series, set));
    }
    for (cadence, group) in by_cadence {
        let Some((df, lo, hi)) = bucket_frame(&group)? else {
            continue;
        };
        gaps.extend(find_gaps(ds, &group, &df, cadence)?);
        coverage.extend(daily_coverage(ds, &group, df, cadence, lo, hi)?);
    }
    gaps.sort_by(|a, b| (&a.series, &a.from).cmp(&(&b.series, &b.from)));
    Ok((gaps, coverage))
}

/// One cadence's series: (series index, bucket) rows with a sentinel one
/// bucket outside the span at each end of every series, so a late start or
/// an early end is a gap too; with the span's first and last bucket.
fn bucket_frame(group: &[(String, BTreeSet<i64>)]) -> Result<Option<(DataFrame, i64, i64)>> {
    let (mut names, mut buckets) = (Vec::new(), Vec::new());
    // A series is its index in `group`: one integer a row, not its name.
    for (i, (_, set)) in group.iter().enumerate() {
        for b in set {
            names.push(i as i64);
            buckets.push(*b);
        }
    }
    let (Some(&lo), Some(&hi)) = (buckets.iter().min(), buckets.iter().max()) else {
        return Ok(None);
    };
    for i in 0..group.len() as i64 {
        names.extend([i, i]);
        buckets.extend([lo - 1, hi + 1]);
    }
    let df = DataFrame::new(
        names.len(),
        vec![
            Series::new("series".into(), &names).into(),
            Series::new("bucket".into(), &buckets).into(),
        ],
    )
    .map_err(perr)?;
    Ok(Some((df, lo, hi)))
}

/// Runs of empty buckets between two with rows, per series.
fn find_gaps(ds: &DatasetConfig, group: &[(String, BTreeSet<i64>)], df: &DataFrame, cadence: i64) -> Result<Vec<Gap>> {
    let prev = col("bucket")
        .shift(lit(1))
        .over([col("series")])
        .map_err(perr)?
        .alias("prev");
    let found = df
        .clone()
        .lazy()
        .sort(["series", "bucket"], SortMultipleOptions::default())
        .with_column(prev)
        .filter((col("bucket") - col("prev")).gt(lit(1i64)))
        .collect()
        .map_err(perr)?;
    let s = ints(&found, "series")?;
    let cur = ints(&found, "bucket")?;
    let prev = ints(&found, "prev")?;
    let mut gaps = Vec::new();
    for i in 0..found.height() {
        let (Some(series), Some(c), Some(p)) = (s.get(i), cur.get(i), prev.get(i)) else {
            continue;
        };
        gaps.push(Gap {
            dataset: ds.name.clone(),
            series: group[series as usize].0.clone(),
            from: rfc3339((p + 1).saturating_mul(cadence)),
            to: rfc3339(c.saturating_mul(cadence)),
            missing: (c - p - 1) as u64,
            cadence: crate::time::human_ns(cadence),
        });
    }
    Ok(gaps)
}

/// Coverage per series and day, over the real buckets only (`lo..=hi`).
fn daily_coverage(
    ds: &DatasetConfig,
    group: &[(String, BTreeSet<i64>)],
    df: DataFrame,
    cadence: i64,
    lo: i64,
    hi: i64,
) -> Result<Vec<Coverage>> {
    let per_day = 86_400_000_000_000i64.div_euclid(cadence).max(1);
    let daily = df
        .lazy()
        .filter(col("bucket").gt_eq(lit(lo)).and(col("bucket").lt_eq(lit(hi))))
        .with_column((col("bucket") / lit(per_day)).alias("day"))
        .group_by([col("series"), col("day")])
        .agg([col("bucket").n_unique().alias("n")])
        .sort(["series", "day"], SortMultipleOptions::default())
        .collect()
        .map_err(perr)?;
    let s = ints(&daily, "series")?;
    let day = ints(&daily, "day")?;
    let n = ints(&daily, "n")?;
    let mut coverage = Vec::new();
    for i in 0..daily.height() {
        let (Some(series), Some(d), Some(k)) = (s.get(i), day.get(i), n.get(i)) else {
            continue;
        };
        coverage.push(Coverage {
            dataset: ds.name.clone(),
            series: group[series as usize].0.clone(),
            day: rfc3339(d.saturating_mul(per_day).saturating_mul(cadence))[..10].to_string(),
            covered: (k as f64 / per_day as f64).min(1.0),
            findings: 0,
        });
    }
    Ok(coverage)
}
