//! One partition's rollup, isolated the way a compaction's series is.
//!
//! Owns what a failed rollup leaves: an input whose bytes are bad (the
//! error's [`bad_file`](crate::error::Error::bad_file)) is quarantined with
//! its reason and the partition rolled up again without it; any other
//! failure skips the partition (the next run retries it) and is recorded in
//! `rollup_failures`, which retention reads to say why an expired partition
//! is kept ([`failure_of`]). A success clears the record.

use std::borrow::Cow;

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{roll_up, RollupItem, RollupMetrics};
use crate::catalog;
use crate::config::Config;
use crate::error::{Failure, Result};
use crate::state::{now_ns, Db};

/// A partition's rollup that failed on its current rows, and how often.
#[derive(Debug, Clone, Serialize)]
pub struct RollupFailure {
    /// Failed runs in a row on the partition's current rows.
    pub attempts: u64,
    /// The last failure's reason.
    pub last_error: String,
    /// When it first failed (RFC 3339).
    pub since: String,
}

/// Roll up `item`; nothing in it can stop the run. Every failure met is
/// added to `m.failures`.
pub(super) fn roll_up_isolating(cfg: &Config, db: &mut Db, item: &RollupItem, m: &mut RollupMetrics) {
    let mut item = Cow::Borrowed(item);
    let what = format!("{} {}", item.dataset, item.partition);
    loop {
        let e = match roll_up(cfg, db, &item, m) {
            Ok(()) => {
                if let Err(e) = clear(db, &item) {
                    tracing::warn!(partition = %what, error = %e, "could not clear the rollup's failure record");
                }
                return;
            }
            Err(e) => e,
        };
        let culprit = e.bad_file().and_then(|p| {
            item.files
                .iter()
                .position(|(tier, f)| cfg.tier_root(tier).is_ok_and(|r| r.join(&f.relpath) == p))
        });
        let Some(i) = culprit else {
            tracing::warn!(partition = %what, error = %e, "rollup skipped; retried next run");
            m.failures.push(Failure::new("rollup", &what, &e, "skipped"));
            note(db, &item, &e.to_string());
            return;
        };
        let (tier, f) = &item.files[i];
        let from = cfg.tier_root(tier).unwrap_or_default().join(&f.relpath);
        let reason = e.to_string();
        let q = catalog::Quarantine {
            tier,
            relpath: &f.relpath,
            from: &from,
            dataset: Some(&item.dataset),
            partition: Some(&f.partition),
            bytes: f.bytes,
        };
        if let Err(qe) = crate::engine::quarantine::quarantine(cfg, &db.conn, &q, &reason) {
            tracing::warn!(path = %from.display(), error = %qe, "bad input could not be quarantined; rollup skipped");
            let why = format!("{reason}; could not quarantine it: {qe}");
            m.failures
                .push(Failure::skipped("rollup", from.display().to_string(), &why));
            note(db, &item, &why);
            return;
        }
        tracing::warn!(path = %from.display(), %reason, "bad rollup input quarantined; rolling up the rest");
        m.failures
            .push(Failure::quarantined("rollup", from.display().to_string(), &reason));
        let rest = item.to_mut();
        let (_, gone) = rest.files.remove(i);
        rest.file_count -= 1;
        rest.rows -= gone.rows;
        rest.bytes -= gone.bytes;
        if rest.files.is_empty() {
            return;
        }
    }
}

/// Record a failed rollup of `item` (a failure on other rows starts over).
fn note(db: &Db, item: &RollupItem, reason: &str) {
    let now = now_ns();
    let r = db.conn.execute(
        "INSERT INTO rollup_failures (dataset, partition, source_rows, attempts, reason, first_at, at)
         VALUES (?1, ?2, ?3, 1, ?4, ?5, ?5)
         ON CONFLICT (dataset, partition) DO UPDATE SET
             attempts = CASE WHEN source_rows = excluded.source_rows THEN attempts + 1 ELSE 1 END,
             first_at = CASE WHEN source_rows = excluded.source_rows THEN first_at ELSE excluded.first_at END,
             source_rows = excluded.source_rows, reason = excluded.reason, at = excluded.at",
        params![item.dataset, item.partition, item.rows as i64, reason, now],
    );
    if let Err(e) = r {
        tracing::warn!(partition = %item.partition, error = %e, "could not record the rollup failure");
    }
}

fn clear(db: &Db, item: &RollupItem) -> Result<()> {
    db.conn
        .execute(
            "DELETE FROM rollup_failures WHERE dataset = ?1 AND partition = ?2",
            params![item.dataset, item.partition],
        )
        .map_err(db.err())?;
    Ok(())
}

/// The recorded failure of `partition`'s rollup, when it failed on the
/// `rows` the partition holds now.
pub fn failure_of(db: &Db, dataset: &str, partition: &str, rows: u64) -> Result<Option<RollupFailure>> {
    db.conn
        .query_row(
            "SELECT attempts, reason, first_at FROM rollup_failures
             WHERE dataset = ?1 AND partition = ?2 AND source_rows = ?3",
            params![dataset, partition, rows as i64],
            |r| {
                Ok(RollupFailure {
                    attempts: r.get::<_, i64>(0)? as u64,
                    last_error: r.get(1)?,
                    since: crate::catalog::rfc3339(r.get(2)?),
                })
            },
        )
        .optional()
        .map_err(db.err())
}
