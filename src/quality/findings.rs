//! The findings as stored: owns the `quality_findings` and
//! `quality_checked` tables.
//!
//! A rewrite records what it saw in the partitions it wrote, in the same
//! transaction as its catalog swap. Faults still in the data are replaced
//! each time a partition is checked again; what a rewrite put right
//! (duplicates, order, filing) is added up over rewrites, since the data no
//! longer shows it. An on-demand check records the same way, marked
//! `check`, and the next rewrite's counts replace its repaired kinds. A
//! rollup reading trades replaces only the faults still in the data.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use rusqlite::{params, Connection};
use serde::Serialize;

use super::{Finding, Kind};
use crate::error::Result;
use crate::state::Db;

/// Who found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A rewrite: it put right what it counts as repaired.
    Rewrite,
    /// A check on demand, or ingest: it read every file of the partition.
    Check,
    /// A read that changed nothing (rollup reading its trades): faults in
    /// the data are replaced; repaired kinds are neither counted nor touched.
    Read,
}

impl Origin {
    fn as_str(self) -> &'static str {
        match self {
            Origin::Rewrite => "rewrite",
            Origin::Check => "check",
            Origin::Read => "read",
        }
    }
}

/// Forget the findings and the check of a partition that no longer has a
/// file in any tier (dropped or evicted): they describe rows that are gone.
pub fn forget_if_gone(conn: &Connection, dataset: &str, partition: &str) -> rusqlite::Result<()> {
    for table in ["quality_findings", "quality_checked"] {
        conn.execute(
            &format!(
                "DELETE FROM {table} WHERE dataset = ?1 AND partition = ?2
                   AND NOT EXISTS (SELECT 1 FROM files WHERE dataset = ?1 AND partition = ?2)"
            ),
            params![dataset, partition],
        )?;
    }
    Ok(())
}

/// Record the findings of `found` (partition → findings; a partition with
/// none is clean) for `dataset`, and mark those partitions checked.
pub fn record(
    conn: &Connection,
    dataset: &str,
    found: &BTreeMap<String, Vec<Finding>>,
    rows: &BTreeMap<String, u64>,
    origin: Origin,
    files: &BTreeMap<String, String>,
) -> rusqlite::Result<()> {
    let at = crate::time::now_ns();
    for (partition, findings) in found {
        // Faults in the data are as this check saw them; repaired kinds
        // keep their sum unless an on-demand check estimated them.
        conn.execute(
            "DELETE FROM quality_findings WHERE dataset = ?1 AND partition = ?2
               AND (kind NOT IN ('duplicate_keys', 'out_of_order', 'outside_partition') OR ?3 = 'check')",
            params![dataset, partition, origin.as_str()],
        )?;
        for f in findings
            .iter()
            .filter(|f| origin != Origin::Read || !f.kind.is_repaired())
        {
            conn.execute(
                "INSERT INTO quality_findings (dataset, partition, kind, rows, first_ts, example, detail, origin, at, file)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (dataset, partition, kind) DO UPDATE SET
                   rows = CASE WHEN origin = 'check' THEN excluded.rows ELSE rows + excluded.rows END,
                   example = CASE WHEN origin = 'check' OR excluded.first_ts < first_ts THEN excluded.example ELSE example END,
                   file = CASE WHEN origin = 'check' OR excluded.first_ts < first_ts THEN excluded.file ELSE file END,
                   first_ts = CASE WHEN origin = 'check' THEN excluded.first_ts ELSE min(first_ts, excluded.first_ts) END,
                   detail = excluded.detail, origin = excluded.origin, at = excluded.at",
                params![
                    dataset,
                    partition,
                    f.kind.as_str(),
                    f.rows as i64,
                    f.first_ts,
                    f.example,
                    f.detail,
                    origin.as_str(),
                    at,
                    f.file.as_deref().or(files.get(partition).map(String::as_str))
                ],
            )?;
        }
        conn.execute(
            "INSERT OR REPLACE INTO quality_checked (dataset, partition, rows, at) VALUES (?1, ?2, ?3, ?4)",
            params![dataset, partition, rows.get(partition).copied().unwrap_or(0) as i64, at],
        )?;
    }
    Ok(())
}

/// Which findings to list.
#[derive(Debug, Clone, Default)]
pub struct QualityFilter {
    pub dataset: Option<String>,
    /// Partition values that must all match, e.g. `symbol=BTC_USDT`.
    pub values: Vec<(String, String)>,
    /// Only these kinds (all when empty).
    pub kinds: Vec<Kind>,
    /// Only these partitions (e.g. those an export read).
    pub partitions: Option<std::collections::BTreeSet<String>>,
}

impl QualityFilter {
    pub fn matches_partition(&self, partition: &str) -> bool {
        let vals = crate::layout::partition_values(partition);
        self.values.iter().all(|w| vals.contains(w)) && self.partitions.as_ref().is_none_or(|p| p.contains(partition))
    }
}

/// Whether a finding's rows are still as found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A rewrite put it right: duplicates removed, rows re-filed or
    /// re-sorted ([`Kind::is_repaired`], recorded by a rewrite).
    Repaired,
    /// In the data now.
    Present,
}

impl Status {
    /// A finding of `kind` recorded by `origin` (`rewrite`, `check`, `read`).
    pub fn of(kind: Kind, origin: &str) -> Status {
        if kind.is_repaired() && origin == Origin::Rewrite.as_str() {
            Status::Repaired
        } else {
            Status::Present
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Repaired => "repaired",
            Status::Present => "present",
        }
    }
}

/// A stored finding with where it is.
#[derive(Debug, Clone, Serialize)]
pub struct FindingRow {
    pub dataset: String,
    /// The partition's values, e.g. `{"exchange": "x", "symbol": "y", "date": "2024-01-02"}`.
    pub partition: indexmap::IndexMap<String, String>,
    pub kind: Kind,
    /// `repaired` by a rewrite, or `present` in the data now.
    pub status: Status,
    pub rows: u64,
    /// RFC 3339.
    pub first_ts: String,
    pub example: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The file the example came from (a source file) or is in now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Whether `file` is still there (one of the partition's files, or a
    /// source outside the roots that still exists).
    pub file_exists: bool,
    /// When `file` is gone: the partition's files that hold its rows now.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub now_in: Vec<String>,
    #[serde(skip)]
    pub partition_key: String,
    #[serde(skip)]
    pub first_ts_ns: i64,
}

/// A value that changes whenever a check records something.
pub fn generation(db: &Db) -> Result<String> {
    db.conn
        .query_row(
            "SELECT (SELECT count(*) || '/' || ifnull(max(at), 0) FROM quality_checked)
                 || '/' || (SELECT count(*) || '/' || total(rows) FROM quality_findings)",
            [],
            |r| r.get(0),
        )
        .map_err(db.err())
}

/// `mdkeep quality --json` and the dashboard's `/api/quality`: how many
/// partitions a check has seen, and the findings that pass a filter.
#[derive(Debug, Serialize)]
pub struct Overview {
    pub partitions_checked: u64,
    /// Partitions read just now because no check had seen them.
    pub checked_now: u64,
    pub findings: Vec<FindingRow>,
}

/// The stored findings that pass `filter`, after `checked_now` partitions
/// were checked on demand (0 when nothing was).
pub fn overview(db: &Db, filter: &QualityFilter, checked_now: u64) -> Result<Overview> {
    Ok(Overview {
        partitions_checked: checked_count(db, filter.dataset.as_deref())?,
        checked_now,
        findings: list(db, filter)?,
    })
}

/// The stored findings of partitions still in the catalog, by dataset,
/// partition and kind.
pub fn list(db: &Db, filter: &QualityFilter) -> Result<Vec<FindingRow>> {
    let mut st = db
        .conn
        .prepare(
            "SELECT q.dataset, q.partition, q.kind, q.rows, q.first_ts, q.example, q.detail, q.file, q.origin
             FROM quality_findings q
             WHERE (?1 IS NULL OR q.dataset = ?1)
               AND EXISTS (SELECT 1 FROM files f WHERE f.dataset = q.dataset AND f.partition = q.partition)
             ORDER BY q.dataset, q.partition, q.kind",
        )
        .map_err(db.err())?;
    let rows = st
        .query_map([filter.dataset.as_deref()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, Option<String>>(7)?,
                r.get::<_, String>(8)?,
            ))
        })
        .map_err(db.err())?;
    let mut out = Vec::new();
    let mut live: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for row in rows {
        let (dataset, partition, kind, n, first, example, detail, file, origin) = row.map_err(db.err())?;
        let Some(kind) = Kind::parse(&kind) else { continue };
        if !filter.matches_partition(&partition) || (!filter.kinds.is_empty() && !filter.kinds.contains(&kind)) {
            continue;
        }
        let files: &Vec<String> = match live.entry((dataset.clone(), partition.clone())) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(live_files(db, &dataset, &partition)?),
        };
        let file_exists = file.as_deref().is_some_and(|f| still_there(f, &partition, files));
        out.push(FindingRow {
            dataset,
            partition: crate::layout::partition_values(&partition).into_iter().collect(),
            kind,
            status: Status::of(kind, &origin),
            rows: n as u64,
            first_ts: crate::time::rfc3339(first),
            example,
            detail,
            now_in: if file_exists { Vec::new() } else { files.clone() },
            file,
            file_exists,
            partition_key: partition,
            first_ts_ns: first,
        });
    }
    Ok(out)
}

/// A partition's files listed beside a finding whose file is gone, at most.
const NOW_IN: usize = 10;

/// The partition's files in the catalog (paths under their tier root), at
/// most [`NOW_IN`].
fn live_files(db: &Db, dataset: &str, partition: &str) -> Result<Vec<String>> {
    let mut st = db
        .conn
        .prepare("SELECT relpath FROM files WHERE dataset = ?1 AND partition = ?2 ORDER BY relpath LIMIT ?3")
        .map_err(db.err())?;
    let rows = st
        .query_map(params![dataset, partition, NOW_IN as i64], |r| r.get::<_, String>(0))
        .map_err(db.err())?;
    rows.collect::<rusqlite::Result<_>>().map_err(db.err())
}

/// Whether a finding's file (a path under a tier root, or a source file's
/// whole path) is one of `live`, or a source outside the data's layout
/// that still exists. A file in the partition's folder counts only while
/// the catalog has it: a rewrite's input may linger until it is retired.
fn still_there(file: &str, partition: &str, live: &[String]) -> bool {
    let path = std::path::Path::new(file);
    live.iter().any(|r| file == r || file.ends_with(&format!("/{r}")))
        || (path.is_absolute() && !file.contains(&format!("/{partition}/")) && path.is_file())
}

/// Partitions of the catalog (dataset, partition) that no check has seen
/// since their files last changed.
pub fn unchecked(db: &Db, dataset: Option<&str>) -> Result<Vec<(String, String)>> {
    let mut st = db
        .conn
        .prepare(
            "SELECT f.dataset, f.partition FROM files f
             LEFT JOIN quality_checked c ON c.dataset = f.dataset AND c.partition = f.partition
             WHERE (?1 IS NULL OR f.dataset = ?1) AND f.drift IS NULL
             GROUP BY f.dataset, f.partition
             HAVING max(c.at) IS NULL OR max(f.scanned_at) > max(c.at)
             ORDER BY f.dataset, f.partition",
        )
        .map_err(db.err())?;
    let rows = st
        .query_map([dataset], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(db.err())?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db.err())?;
    Ok(rows)
}

/// How many partitions have been checked (of those still in the catalog).
pub fn checked_count(db: &Db, dataset: Option<&str>) -> Result<u64> {
    db.conn
        .query_row(
            "SELECT count(*) FROM quality_checked c WHERE (?1 IS NULL OR c.dataset = ?1)
               AND EXISTS (SELECT 1 FROM files f WHERE f.dataset = c.dataset AND f.partition = c.partition)",
            [dataset],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n as u64)
        .map_err(db.err())
}

/// Findings summed by dataset and kind: (dataset, kind, partitions, rows).
pub fn totals(db: &Db) -> Result<Vec<(String, Kind, u64, u64)>> {
    let rows = list(db, &QualityFilter::default())?;
    let mut by: BTreeMap<(String, Kind), (u64, u64)> = BTreeMap::new();
    for r in rows {
        let e = by.entry((r.dataset, r.kind)).or_default();
        e.0 += 1;
        e.1 += r.rows;
    }
    Ok(by.into_iter().map(|((d, k), (p, n))| (d, k, p, n)).collect())
}
