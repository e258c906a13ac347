//! Time travel for backtests: which snapshot an export read, and the files
//! a kept snapshot names, so a job with `data.snapshot = N` (or a rerun)
//! reads exactly what snapshot N held.
//!
//! Owns the lake's `mdkeep_file_arrival` table (outside the DuckLake spec;
//! readers never look at it): each lake file's arrival, so the duplicates
//! of an old snapshot are ranked by `keep` as they were then, even after
//! the file left mdkeep's catalog. Files added before the table existed
//! fall back to the catalog's arrival, then to their snapshot's time.

use std::collections::HashMap;

use rusqlite::{params, Connection};

use super::Lake;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::state::db_err;

/// Created on every open that writes (an older lake gains it; DuckLake
/// readers ignore tables that are not theirs).
pub(super) const ARRIVAL_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS mdkeep_file_arrival (data_file_id BIGINT PRIMARY KEY, arrival_ns BIGINT NOT NULL)";

/// Record a new lake file's arrival (in the snapshot's transaction).
pub(super) fn record_arrival(tx: &Connection, data_file_id: i64, arrival_ns: i64) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT OR REPLACE INTO mdkeep_file_arrival VALUES (?1, ?2)",
        params![data_file_id, arrival_ns],
    )?;
    Ok(())
}

/// Forget the arrivals of files no kept snapshot names (after `expire`).
pub(super) fn forget_arrivals(tx: &Connection) -> rusqlite::Result<()> {
    tx.execute(
        "DELETE FROM mdkeep_file_arrival WHERE data_file_id NOT IN (SELECT data_file_id FROM ducklake_data_file)",
        [],
    )?;
    Ok(())
}

/// A file snapshot N names, as an export reads it.
#[derive(Debug, Clone)]
pub struct SnapshotFile {
    /// Absolute, `s3://...`, or in the trash when retired since.
    pub path: String,
    /// `exchange=…/symbol=…/date=…`, from the path's Hive folders.
    pub partition: String,
    pub rows: u64,
    pub bytes: u64,
    /// The time column's bounds in nanoseconds (widened to the whole range when unknown).
    pub min_ts: i64,
    pub max_ts: i64,
    pub arrival_ns: Option<i64>,
    /// When the snapshot that added it was taken, nanoseconds.
    pub added_ns: i64,
}

/// The kept snapshots: (oldest, latest), `None` without any.
fn kept(lake: &Lake) -> Result<Option<(i64, i64)>> {
    let (lo, hi): (Option<i64>, Option<i64>) = lake
        .conn
        .query_row(
            "SELECT min(snapshot_id), max(snapshot_id) FROM ducklake_snapshot",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(db_err(&lake.path))?;
    Ok(lo.zip(hi))
}

/// Whether snapshot `n` is still kept (so `data.snapshot = n` can be read).
pub fn is_kept(cfg: &Config, n: i64) -> bool {
    open_kept(cfg, n).is_ok()
}

/// The lake, when it still keeps snapshot `n`: it has it, and holds retired
/// files for its snapshots at all. Refused, saying what is kept, otherwise.
pub fn open_kept(cfg: &Config, n: i64) -> Result<Lake> {
    let lake = match Lake::open_existing(cfg)? {
        Some(l) if cfg.lake.enabled => l,
        _ => {
            return Err(Error::Invalid(format!(
                "snapshot {n} cannot be read: no lake at {} (lake.enabled = {})",
                cfg.lake_path().display(),
                cfg.lake.enabled
            )))
        }
    };
    if cfg.lake.keep_snapshots.0.is_zero() {
        return Err(Error::Invalid(format!(
            "snapshot {n} cannot be read: lake.keep_snapshots = 0s, so no retired file is kept for old snapshots"
        )));
    }
    match kept(&lake)? {
        Some((lo, hi)) if (lo..=hi).contains(&n) => Ok(lake),
        range => Err(Error::Invalid(format!(
            "snapshot {n} is not kept: the lake keeps {} (lake.keep_snapshots = {}; `mdkeep lake status` shows what is)",
            range.map_or("none".into(), |(lo, hi)| format!("snapshots {lo} to {hi}")),
            cfg.lake.keep_snapshots
        ))),
    }
}

/// The files of `dataset` that snapshot `n` names ([`open_kept`]'s refusals apply).
pub fn files_at(cfg: &Config, dataset: &str, n: i64) -> Result<Vec<SnapshotFile>> {
    let ds = cfg.dataset(dataset)?;
    let lake = open_kept(cfg, n)?;
    let time_col = super::schema::table_columns(ds)
        .iter()
        .position(|(c, _)| c == &ds.time_column)
        .map_or(-1, |i| i as i64 + 1);
    let unit = crate::parquet_io::unit_ns(ds.time_unit());
    let lerr = db_err(&lake.path);
    let mut st = lake
        .conn
        .prepare(
            "SELECT f.path, f.record_count, f.file_size_bytes, s.min_value, s.max_value,
                    (SELECT arrival_ns FROM mdkeep_file_arrival a WHERE a.data_file_id = f.data_file_id),
                    (SELECT snapshot_time FROM ducklake_snapshot n WHERE n.snapshot_id = f.begin_snapshot)
             FROM ducklake_data_file f
             JOIN ducklake_table t ON t.table_id = f.table_id
             LEFT JOIN ducklake_file_column_stats s ON s.data_file_id = f.data_file_id AND s.column_id = ?3
             WHERE t.table_name = ?1 AND t.begin_snapshot <= ?2 AND (t.end_snapshot IS NULL OR t.end_snapshot > ?2)
               AND f.begin_snapshot <= ?2 AND (f.end_snapshot IS NULL OR f.end_snapshot > ?2)
             ORDER BY f.data_file_id",
        )
        .map_err(&lerr)?;
    let rows = st
        .query_map(params![dataset, n, time_col], |r| {
            let min: Option<String> = r.get(3)?;
            let max: Option<String> = r.get(4)?;
            let path: String = r.get(0)?;
            Ok(SnapshotFile {
                partition: hive_partition(&path),
                rows: r.get::<_, i64>(1)?.max(0) as u64,
                bytes: r.get::<_, i64>(2)?.max(0) as u64,
                min_ts: min.as_deref().and_then(|s| bound_ns(s, unit)).unwrap_or(i64::MIN),
                max_ts: max.as_deref().and_then(|s| bound_ns(s, unit)).unwrap_or(i64::MAX),
                arrival_ns: r.get(5)?,
                added_ns: r
                    .get::<_, Option<String>>(6)?
                    .as_deref()
                    .and_then(|s| bound_ns(s, 1))
                    .unwrap_or(0),
                path,
            })
        })
        .map_err(&lerr)?;
    let files: Vec<SnapshotFile> = rows.collect::<rusqlite::Result<_>>().map_err(&lerr)?;
    Ok(files)
}

/// The Hive folders (`k=v/...`) right above a file.
fn hive_partition(path: &str) -> String {
    let mut parts: Vec<&str> = path.rsplit('/').skip(1).take_while(|s| s.contains('=')).collect();
    parts.reverse();
    parts.join("/")
}

/// A stat bound as nanoseconds: a timestamp as the lake writes it, or an
/// integer in the time column's unit (`unit` ns each).
fn bound_ns(s: &str, unit: i64) -> Option<i64> {
    if let Ok(v) = s.parse::<i64>() {
        return Some(v.saturating_mul(unit));
    }
    let t = s.trim_end_matches("+00");
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(t, f).ok())
        .and_then(|t| t.and_utc().timestamp_nanos_opt())
}

/// The snapshot an export that read `paths` records: the one that added
/// the last of them, provided it still names them all. Every file that
/// came in before it and that the request touches was read too; a snapshot
/// after it may add files the export never saw. `None` when the lake is
/// off, or has not caught up with the catalog (a file is missing).
pub fn naming(cfg: &Config, dataset: &str, paths: &[String]) -> Option<i64> {
    if !cfg.lake.enabled || paths.is_empty() {
        return None;
    }
    let lake = Lake::open_existing(cfg).ok()??;
    let mut st = lake
        .conn
        .prepare(
            "SELECT f.path, f.begin_snapshot, f.end_snapshot FROM ducklake_data_file f
             JOIN ducklake_table t ON t.table_id = f.table_id WHERE t.table_name = ?1",
        )
        .ok()?;
    let spans: HashMap<String, (i64, Option<i64>)> = st
        .query_map([dataset], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .ok()?
        .collect::<rusqlite::Result<_>>()
        .ok()?;
    let (mut lo, mut hi) = (i64::MIN, i64::MAX);
    for p in paths {
        let (begin, end) = spans.get(p)?;
        lo = lo.max(*begin);
        hi = hi.min(end.map_or(i64::MAX, |e| e - 1));
    }
    (lo <= hi).then_some(lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_and_bounds() {
        assert_eq!(
            hive_partition("/d/trades/exchange=x/symbol=BTC_USDT/date=2024-01-02/p.parquet"),
            "exchange=x/symbol=BTC_USDT/date=2024-01-02"
        );
        assert_eq!(hive_partition("/d/f.parquet"), "");
        assert_eq!(bound_ns("2024-01-02 00:00:01.5+00", 1), Some(1_704_153_601_500_000_000));
        assert_eq!(bound_ns("2024-01-02 00:00:01+00", 1), Some(1_704_153_601_000_000_000));
        assert_eq!(bound_ns("1000", 1_000_000), Some(1_000_000_000));
        assert_eq!(bound_ns("nope", 1), None);
    }
}
