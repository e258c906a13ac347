//! The catalog: which Parquet files exist, where, and what they hold.
//!
//! Owns the `files`, `quarantine` and `history` tables and the queries over
//! them. Scanning the disk to fill it lives in [`scan`]; the catalog itself
//! never reads a file.

pub mod scan;

use crate::engine::PlanFile;
use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::error::Result;
use crate::state::{now_ns, Db};

/// One cataloged data file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileEntry {
    pub tier: String,
    /// Path under the tier root, `/`-separated.
    pub relpath: String,
    pub dataset: String,
    pub partition: String,
    pub rows: u64,
    pub bytes: u64,
    pub min_ts: Option<i64>,
    pub max_ts: Option<i64>,
    pub schema_fp: String,
    pub mtime_ns: i64,
    /// When its rows arrived: the mtime a collector's file had when first
    /// cataloged; for a file mdkeep wrote, the latest arrival of its inputs.
    /// `keep = "newest"` ranks duplicates by it, so a rewrite (which gives a
    /// file a fresh mtime) never makes old rows look new.
    pub arrival_ns: i64,
    /// CRC-32 of the whole file, for a file mdkeep wrote locally.
    pub checksum: Option<u32>,
    pub drift: Option<String>,
    pub misfiled: bool,
    /// Written by mdkeep sorted by (time, key) and without duplicates.
    pub compacted: bool,
}

/// Size and mtime as last seen: enough to know a file is unchanged without
/// opening it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub bytes: u64,
    pub mtime_ns: i64,
}

pub use crate::layout::partition_values;

/// One partition of one dataset in one tier, summed over its files.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionSummary {
    pub dataset: String,
    pub partition: serde_json::Map<String, serde_json::Value>,
    #[serde(skip)]
    pub partition_key: String,
    pub tier: String,
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
    #[serde(serialize_with = "ser_ts")]
    pub min_ts: Option<i64>,
    #[serde(serialize_with = "ser_ts")]
    pub max_ts: Option<i64>,
    pub drift_files: u64,
    pub misfiled_files: u64,
}

/// Nanoseconds → RFC 3339 (UTC), the form scripts rely on.
pub use crate::time::rfc3339;

fn ser_ts<S: serde::Serializer>(v: &Option<i64>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match v {
        Some(ns) => s.serialize_str(&rfc3339(*ns)),
        None => s.serialize_none(),
    }
}

/// Every cataloged file's size and mtime, keyed by (tier, relpath).
pub fn seen_files(db: &Db) -> Result<HashMap<(String, String), Seen>> {
    let mut st = db
        .conn
        // A drifted entry (an older mdkeep cataloged it) never looks
        // unchanged, so this scan inspects and quarantines it.
        .prepare("SELECT tier, relpath, CASE WHEN drift IS NULL THEN bytes ELSE -1 END, mtime_ns FROM files")
        .map_err(db.err())?;
    let rows = st
        .query_map([], |r| {
            Ok((
                (r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                Seen {
                    bytes: r.get::<_, i64>(2)? as u64,
                    mtime_ns: r.get(3)?,
                },
            ))
        })
        .map_err(db.err())?;
    rows.collect::<rusqlite::Result<_>>().map_err(db.err())
}

pub fn upsert(conn: &Connection, e: &FileEntry) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO files (tier, relpath, dataset, partition, rows, bytes, min_ts, max_ts, schema_fp, mtime_ns, drift, misfiled, scanned_at, compacted, arrival_ns, checksum, verified_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, NULL)
         ON CONFLICT (tier, relpath) DO UPDATE SET
           dataset = excluded.dataset, partition = excluded.partition, rows = excluded.rows,
           bytes = excluded.bytes, min_ts = excluded.min_ts, max_ts = excluded.max_ts,
           schema_fp = excluded.schema_fp, mtime_ns = excluded.mtime_ns, drift = excluded.drift,
           misfiled = excluded.misfiled, scanned_at = excluded.scanned_at, compacted = excluded.compacted,
           arrival_ns = excluded.arrival_ns, checksum = excluded.checksum, verified_at = NULL",
    )?
    .execute(params![
        e.tier,
        e.relpath,
        e.dataset,
        e.partition,
        e.rows as i64,
        e.bytes as i64,
        e.min_ts,
        e.max_ts,
        e.schema_fp,
        e.mtime_ns,
        e.drift,
        e.misfiled,
        now_ns(),
        e.compacted,
        e.arrival_ns,
        e.checksum.map(i64::from)
    ])?;
    Ok(())
}

pub fn remove(conn: &Connection, tier: &str, relpath: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM files WHERE tier = ?1 AND relpath = ?2")?
        .execute(params![tier, relpath])?;
    Ok(())
}

/// An entry in the action history, which reports read.
/// What a history row, or the journal entry behind it, records. The stored
/// text is [`Action::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Action {
    #[default]
    Compact,
    Tier,
    Trim,
    Retention,
    Evict,
    Rollup,
    Quarantine,
    /// A recovered rewrite kept an input that was replaced meanwhile.
    Kept,
    Ingest,
    /// A maintain run ended (its result in `reason`), from the CLI or the daemon.
    Maintain,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Compact => "compact",
            Action::Tier => "tier",
            Action::Trim => "trim",
            Action::Retention => "retention",
            Action::Evict => "evict",
            Action::Rollup => "rollup",
            Action::Quarantine => "quarantine",
            Action::Kept => "kept",
            Action::Ingest => "ingest",
            Action::Maintain => "maintain",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Default)]
pub struct HistoryEvent<'a> {
    pub action: Action,
    pub dataset: Option<&'a str>,
    pub partition: Option<&'a str>,
    pub path: Option<&'a str>,
    pub rows: Option<u64>,
    pub bytes: Option<u64>,
    pub reason: Option<&'a str>,
}

/// Whether no file was ever cataloged (a scan never ran, or found nothing).
pub fn is_empty(db: &Db) -> Result<bool> {
    let n: i64 = db
        .conn
        .query_row("SELECT count(*) FROM files", [], |r| r.get(0))
        .map_err(db.err())?;
    Ok(n == 0)
}

/// How many cataloged files `dataset` has in `partition`.
pub fn files_in_partition(db: &Db, dataset: &str, partition: &str) -> Result<u64> {
    db.conn
        .query_row(
            "SELECT count(*) FROM files WHERE dataset = ?1 AND partition = ?2",
            [dataset, partition],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n as u64)
        .map_err(db.err())
}

/// A file to take out of the data roots.
pub struct Quarantine<'a> {
    pub tier: &'a str,
    /// Its catalog key (for a name that is not UTF-8, a lossy one).
    pub relpath: &'a str,
    /// Where it is on disk.
    pub from: &'a std::path::Path,
    pub dataset: Option<&'a str>,
    pub partition: Option<&'a str>,
    pub bytes: u64,
}

/// Move a file that cannot be handled out of the data roots and record why;
/// it leaves the catalog. It is never deleted: a person decides. Callers go
/// through [`crate::engine::quarantine`], which refuses a pinned file.
pub(crate) fn move_to_quarantine(
    cfg: &crate::Config,
    conn: &Connection,
    q: &Quarantine,
    reason: &str,
) -> Result<std::path::PathBuf> {
    let dberr = crate::state::db_err(std::path::Path::new("state"));
    let base = cfg.quarantine_dir().join(q.tier).join(q.relpath);
    let mut to = base.clone();
    let mut n = 1;
    loop {
        match crate::fsutil::move_file(q.from, &to) {
            Ok(()) => break,
            Err(crate::Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => {
                to = std::path::PathBuf::from(format!("{}.{n}", base.display()));
                n += 1;
            }
            Err(e) => return Err(e),
        }
    }
    let from = q.from.display().to_string();
    conn.execute(
        "INSERT INTO quarantine (tier, relpath, moved_to, reason, bytes, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            q.tier,
            q.relpath,
            to.display().to_string(),
            reason,
            q.bytes as i64,
            now_ns()
        ],
    )
    .map_err(&dberr)?;
    remove(conn, q.tier, q.relpath).map_err(&dberr)?;
    record(
        conn,
        &HistoryEvent {
            action: Action::Quarantine,
            dataset: q.dataset,
            partition: q.partition,
            path: Some(&from),
            bytes: Some(q.bytes),
            reason: Some(reason),
            ..Default::default()
        },
    )
    .map_err(&dberr)?;
    tracing::warn!(path = %from, %reason, moved_to = %to.display(), "quarantined");
    Ok(to)
}

pub fn record(conn: &Connection, ev: &HistoryEvent) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO history (at, action, dataset, partition, path, rows, bytes, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        now_ns(),
        ev.action.as_str(),
        ev.dataset,
        ev.partition,
        ev.path,
        ev.rows.map(|v| v as i64),
        ev.bytes.map(|v| v as i64),
        ev.reason
    ])?;
    Ok(())
}

/// Partitions, optionally of one dataset, ordered by dataset, partition, tier.
pub fn partitions(db: &Db, dataset: Option<&str>) -> Result<Vec<PartitionSummary>> {
    let mut st = db
        .conn
        .prepare(
            "SELECT dataset, partition, tier, count(*), sum(rows), sum(bytes), min(min_ts), max(max_ts),
                    sum(drift IS NOT NULL), sum(misfiled)
             FROM files WHERE ?1 IS NULL OR dataset = ?1
             GROUP BY dataset, partition, tier ORDER BY dataset, partition, tier",
        )
        .map_err(db.err())?;
    let rows = st
        .query_map([dataset], |r| {
            let key: String = r.get(1)?;
            Ok(PartitionSummary {
                dataset: r.get(0)?,
                partition: partition_values(&key)
                    .into_iter()
                    .map(|(k, v)| (k, serde_json::Value::String(v)))
                    .collect(),
                partition_key: key,
                tier: r.get(2)?,
                files: r.get::<_, i64>(3)? as u64,
                rows: r.get::<_, i64>(4)? as u64,
                bytes: r.get::<_, i64>(5)? as u64,
                min_ts: r.get(6)?,
                max_ts: r.get(7)?,
                drift_files: r.get::<_, i64>(8)? as u64,
                misfiled_files: r.get::<_, i64>(9)? as u64,
            })
        })
        .map_err(db.err())?;
    rows.collect::<rusqlite::Result<_>>().map_err(db.err())
}

/// Total rows and files of a dataset (all tiers).
pub fn dataset_totals(db: &Db, dataset: &str) -> Result<(u64, u64)> {
    db.conn
        .query_row(
            "SELECT count(*), coalesce(sum(rows), 0) FROM files WHERE dataset = ?1",
            [dataset],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )
        .optional()
        .map_err(db.err())
        .map(|o| o.unwrap_or((0, 0)))
}

/// Files with a checksum whose last verification is older than `since`
/// (never verified first, then oldest), and how many files have none.
pub fn due_for_verify(db: &Db, since: i64) -> Result<(Vec<crate::verify::Due>, u64)> {
    let mut st = db
        .conn
        .prepare(
            "SELECT tier, relpath, dataset, partition, bytes, checksum FROM files
             WHERE checksum IS NOT NULL AND coalesce(verified_at, 0) < ?1
             ORDER BY coalesce(verified_at, 0), tier, relpath",
        )
        .map_err(db.err())?;
    let due = st
        .query_map([since], |r| {
            Ok(crate::verify::Due {
                tier: r.get(0)?,
                relpath: r.get(1)?,
                dataset: r.get(2)?,
                partition: r.get(3)?,
                bytes: r.get::<_, i64>(4)? as u64,
                checksum: r.get::<_, i64>(5)? as u32,
            })
        })
        .map_err(db.err())?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db.err())?;
    let none: i64 = db
        .conn
        .query_row("SELECT count(*) FROM files WHERE checksum IS NULL", [], |r| r.get(0))
        .map_err(db.err())?;
    Ok((due, none as u64))
}

/// A file read whole and found as written.
pub fn mark_verified(conn: &Connection, tier: &str, relpath: &str, at: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE files SET verified_at = ?3 WHERE tier = ?1 AND relpath = ?2")?
        .execute(params![tier, relpath, at])?;
    Ok(())
}

/// Record today's cataloged files, rows and bytes per dataset and tier (the
/// day's last snapshot wins), for growth and forecasts in reports.
pub fn snapshot_usage(conn: &Connection, now_ns: i64) -> rusqlite::Result<()> {
    let day = rfc3339(now_ns)[..10].to_string();
    conn.execute("DELETE FROM usage_daily WHERE day = ?1", [&day])?;
    conn.execute(
        "INSERT INTO usage_daily (day, dataset, tier, files, rows, bytes)
         SELECT ?1, dataset, tier, count(*), coalesce(sum(rows), 0), coalesce(sum(bytes), 0)
         FROM files GROUP BY dataset, tier",
        [&day],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(rel: &str, part: &str) -> FileEntry {
        FileEntry {
            tier: "hot".into(),
            relpath: rel.into(),
            dataset: "trades".into(),
            partition: part.into(),
            rows: 10,
            bytes: 100,
            min_ts: Some(1),
            max_ts: Some(5),
            schema_fp: "x".into(),
            mtime_ns: 7,
            arrival_ns: 7,
            checksum: None,
            drift: None,
            misfiled: false,
            compacted: false,
        }
    }

    #[test]
    fn upsert_sum_remove() {
        let d = tempfile::tempdir().unwrap();
        let db = Db::open(&d.path().join("s.db")).unwrap();
        upsert(&db.conn, &entry("a", "symbol=X/date=2024-01-01")).unwrap();
        upsert(&db.conn, &entry("b", "symbol=X/date=2024-01-01")).unwrap();
        upsert(&db.conn, &entry("b", "symbol=X/date=2024-01-01")).unwrap();
        let p = partitions(&db, None).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].files, p[0].rows, p[0].bytes), (2, 20, 200));
        assert_eq!(p[0].partition["symbol"], "X");
        remove(&db.conn, "hot", "a").unwrap();
        assert_eq!(dataset_totals(&db, "trades").unwrap(), (1, 10));
    }
}

/// A cataloged file as the planners (compaction, tiering, retention, quota) see it.
#[derive(Debug, Clone)]
pub struct CatalogFile {
    pub dataset: String,
    pub tier: String,
    pub file: PlanFile,
    pub drift: bool,
    pub misfiled: bool,
    pub compacted: bool,
}

/// The guarded clock over a dataset's files: min(now, newest row), so a
/// future-dated row or a stalled collector never ages everything at once.
pub fn guarded_clock(files: &[CatalogFile]) -> Option<i64> {
    files.iter().map(|f| f.file.max_ts).max().map(crate::time::guarded)
}

/// Every cataloged file (of one dataset, if given), ordered by dataset, tier, partition.
pub fn files(db: &Db, dataset: Option<&str>) -> Result<Vec<CatalogFile>> {
    select_files(db, "?1 IS NULL OR dataset = ?1", rusqlite::params![dataset])
}

/// The files of one partition on one tier.
pub fn partition_files(db: &Db, dataset: &str, tier: &str, partition: &str) -> Result<Vec<CatalogFile>> {
    select_files(
        db,
        "dataset = ?1 AND tier = ?2 AND partition = ?3",
        rusqlite::params![dataset, tier, partition],
    )
}

fn select_files(db: &Db, filter: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<CatalogFile>> {
    let mut st = db
        .conn
        .prepare(&format!(
            "SELECT dataset, tier, partition, relpath, rows, bytes, coalesce(min_ts, 0), coalesce(max_ts, 0), mtime_ns,
                    drift IS NOT NULL, misfiled, compacted, coalesce(arrival_ns, mtime_ns)
             FROM files WHERE {filter} ORDER BY dataset, tier, partition, relpath"
        ))
        .map_err(db.err())?;
    let rows = st
        .query_map(args, |r| {
            Ok(CatalogFile {
                dataset: r.get(0)?,
                tier: r.get(1)?,
                file: PlanFile {
                    partition: r.get(2)?,
                    relpath: r.get(3)?,
                    rows: r.get::<_, i64>(4)? as u64,
                    bytes: r.get::<_, i64>(5)? as u64,
                    min_ts: r.get(6)?,
                    max_ts: r.get(7)?,
                    mtime_ns: r.get(8)?,
                    arrival_ns: r.get(12)?,
                },
                drift: r.get(9)?,
                misfiled: r.get(10)?,
                compacted: r.get(11)?,
            })
        })
        .map_err(db.err())?;
    rows.collect::<rusqlite::Result<_>>().map_err(db.err())
}

/// What the catalog holds of one dataset on one tier.
#[derive(Debug, Clone, Serialize)]
pub struct Totals {
    pub dataset: String,
    pub tier: String,
    pub files: u64,
    pub bytes: u64,
    pub rows: u64,
}

/// Files, bytes and rows per dataset and tier.
/// A value that changes whenever the catalog or its history does: the
/// files, their bytes, the newest mtime and the last history event.
pub fn generation(db: &Db) -> Result<String> {
    db.conn
        .query_row(
            "SELECT (SELECT count(*) || '/' || total(bytes) || '/' || ifnull(max(mtime_ns), 0) FROM files)
                 || '/' || (SELECT ifnull(max(id), 0) FROM history)",
            [],
            |r| r.get(0),
        )
        .map_err(db.err())
}

pub fn totals(db: &Db) -> Result<Vec<Totals>> {
    let mut st = db
        .conn
        .prepare(
            "SELECT dataset, tier, count(*), coalesce(sum(bytes), 0), coalesce(sum(rows), 0) FROM files GROUP BY 1, 2",
        )
        .map_err(db.err())?;
    let rows = st
        .query_map([], |r| {
            Ok(Totals {
                dataset: r.get(0)?,
                tier: r.get(1)?,
                files: r.get::<_, i64>(2)? as u64,
                bytes: r.get::<_, i64>(3)? as u64,
                rows: r.get::<_, i64>(4)? as u64,
            })
        })
        .map_err(db.err())?;
    rows.collect::<rusqlite::Result<_>>().map_err(db.err())
}

/// Bytes each rewriting action has processed, over the whole history:
/// compact, tier, rollup, trim, retention, evict.
pub fn bytes_processed(db: &Db) -> Result<Vec<(String, u64)>> {
    db.labelled_amounts(
        "SELECT action, coalesce(sum(bytes), 0) FROM history
         WHERE action IN ('compact', 'tier', 'rollup', 'trim', 'retention', 'evict') GROUP BY 1",
    )
}

#[derive(Debug, Serialize)]
/// One event of the history, as the report lists it.
pub struct HistoryRow {
    pub at: String,
    pub action: String,
    pub dataset: Option<String>,
    pub partition: Option<String>,
    pub rows: Option<u64>,
    pub bytes: Option<u64>,
    pub reason: Option<String>,
}

/// The rewriting and quarantine events since `since_ns`, oldest first.
pub fn history_since(db: &Db, since_ns: i64) -> Result<Vec<HistoryRow>> {
    let mut st = db
        .conn
        .prepare(
            "SELECT at, action, dataset, partition, rows, bytes, reason FROM history
             WHERE at >= ?1 AND action IN ('compact', 'tier', 'rollup', 'trim', 'retention', 'evict', 'quarantine')
             ORDER BY at, id",
        )
        .map_err(db.err())?;
    let rows = st
        .query_map([since_ns], |x| {
            Ok(HistoryRow {
                at: rfc3339(x.get(0)?),
                action: x.get(1)?,
                dataset: x.get(2)?,
                partition: x.get(3)?,
                rows: x.get::<_, Option<i64>>(4)?.map(|v| v.max(0) as u64),
                bytes: x.get::<_, Option<i64>>(5)?.map(|v| v.max(0) as u64),
                reason: x.get(6)?,
            })
        })
        .map_err(db.err())?;
    rows.collect::<rusqlite::Result<_>>().map_err(db.err())
}

/// The newest history event of `action`: (when, its reason), if any.
pub fn last_event(db: &Db, action: Action) -> Result<Option<(i64, Option<String>)>> {
    db.conn
        .query_row(
            "SELECT at, reason FROM history WHERE action = ?1 ORDER BY at DESC, id DESC LIMIT 1",
            [action.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(db.err())
}

/// (day, dataset, bytes over every tier) recorded each day from `since_day` (YYYY-MM-DD).
pub fn usage_since(db: &Db, since_day: &str) -> Result<Vec<(String, String, u64)>> {
    let mut st = db
        .conn
        .prepare(
            "SELECT day, dataset, sum(bytes) FROM usage_daily WHERE day >= ?1
             GROUP BY day, dataset ORDER BY day, dataset",
        )
        .map_err(db.err())?;
    let rows = st
        .query_map([since_day], |x| {
            Ok((x.get(0)?, x.get(1)?, x.get::<_, i64>(2)?.max(0) as u64))
        })
        .map_err(db.err())?;
    rows.collect::<rusqlite::Result<_>>().map_err(db.err())
}

/// The newest row time cataloged for `dataset`, if it has files.
pub fn newest_row(db: &Db, dataset: &str) -> Result<Option<i64>> {
    db.conn
        .query_row("SELECT max(max_ts) FROM files WHERE dataset = ?1", [dataset], |r| {
            r.get(0)
        })
        .map_err(db.err())
}

/// A cataloged file readers may see through the lake (its columns are the
/// dataset's: no drift).
#[derive(Debug, Clone)]
pub struct ReadableFile {
    pub tier: String,
    pub relpath: String,
    pub dataset: String,
    pub partition: String,
    pub rows: u64,
    pub bytes: u64,
    /// When its rows arrived (what `keep` ranks duplicates by).
    pub arrival_ns: i64,
}

/// When a cataloged file's rows arrived; `None` when it is not cataloged.
pub fn arrival_of(db: &Db, tier: &str, relpath: &str) -> Result<Option<i64>> {
    db.conn
        .query_row(
            "SELECT coalesce(arrival_ns, mtime_ns) FROM files WHERE tier = ?1 AND relpath = ?2",
            [tier, relpath],
            |r| r.get(0),
        )
        .optional()
        .map_err(db.err())
}

const READABLE: &str = "SELECT tier, relpath, dataset, partition, rows, bytes, coalesce(arrival_ns, mtime_ns) FROM files WHERE drift IS NULL";

fn readable_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ReadableFile> {
    Ok(ReadableFile {
        tier: r.get(0)?,
        relpath: r.get(1)?,
        dataset: r.get(2)?,
        partition: r.get(3)?,
        rows: r.get::<_, i64>(4)? as u64,
        bytes: r.get::<_, i64>(5)? as u64,
        arrival_ns: r.get(6)?,
    })
}

/// Every cataloged file without schema drift, for the lake (`crate::lake`).
pub fn readable_files(conn: &Connection) -> rusqlite::Result<Vec<ReadableFile>> {
    let mut st = conn.prepare_cached(&format!("{READABLE} ORDER BY dataset, tier, relpath"))?;
    let rows = st.query_map([], readable_row)?;
    rows.collect()
}

/// [`readable_files`] for one file, when it is cataloged and readable.
pub fn readable_file(conn: &Connection, tier: &str, relpath: &str) -> rusqlite::Result<Option<ReadableFile>> {
    conn.prepare_cached(&format!("{READABLE} AND tier = ?1 AND relpath = ?2"))?
        .query_row([tier, relpath], readable_row)
        .optional()
}
