//! Deferred work: what could not be finished yet, retried every run.
//!
//! Owns the `deferred` table. A committed rewrite whose inputs cannot all be
//! retired (a file that cannot be deleted, a store that is down), a
//! roll-back that fails, a trash entry that cannot be purged: each is
//! recorded here with its step, file, reason and since when, listed by
//! `maintain`, `scan`, `compact` and the daemon, and retried at the next
//! recovery, while the rest of the run goes on. Also says which files a scan
//! must not catalog while their rewrite is unsettled ([`unsettled_paths`]):
//! an input still on disk after its rewrite committed would count its rows
//! twice.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{params, Connection};
use serde::Serialize;

use crate::error::{Error, Failure, Result};
use crate::state::{db_err, now_ns, Db};

/// What was deferred: a journal entry or a trash entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Journal,
    Trash,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Journal => "journal",
            Kind::Trash => "trash",
        }
    }
}

/// One piece of work that could not be finished, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Deferred {
    /// `journal` or `trash`.
    pub kind: String,
    /// The journal's (or trash entry's) id.
    pub id: i64,
    /// `retire`, `roll back`, `drop claims` or `purge`.
    pub step: String,
    pub file: String,
    pub reason: String,
    /// When it first failed (RFC 3339).
    pub since: String,
}

impl Deferred {
    /// As one of a run's failures (outcome `deferred`, exit 4).
    pub fn failure(&self, step: &str) -> Failure {
        let why = format!("{} ({} {}, {} deferred)", self.reason, self.kind, self.id, self.step);
        Failure::deferred(step, self.file.clone(), &why)
    }
}

/// The file an error names, if any (else `fallback`).
pub fn file_of(e: &Error, fallback: &str) -> String {
    match e {
        Error::Io { path, .. } | Error::Parquet { path, .. } | Error::BadInput { path, .. } => {
            path.display().to_string()
        }
        Error::Store { url, .. } => url.clone(),
        _ => fallback.to_string(),
    }
}

/// Record (or refresh) a deferral; its `since` stays that of the first failure.
pub fn defer(conn: &Connection, kind: Kind, id: i64, step: &str, file: &str, reason: &str) -> Result<Deferred> {
    let now = now_ns();
    let dberr = db_err(Path::new("state"));
    conn.execute(
        "INSERT INTO deferred (kind, id, step, file, reason, since, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
         ON CONFLICT (kind, id) DO UPDATE SET step = excluded.step, file = excluded.file,
             reason = excluded.reason, at = excluded.at",
        params![kind.as_str(), id, step, file, reason, now],
    )
    .map_err(&dberr)?;
    let since: i64 = conn
        .query_row(
            "SELECT since FROM deferred WHERE kind = ?1 AND id = ?2",
            params![kind.as_str(), id],
            |r| r.get(0),
        )
        .map_err(&dberr)?;
    tracing::warn!(
        kind = kind.as_str(),
        id,
        step,
        file,
        reason,
        "deferred; retried next run"
    );
    Ok(Deferred {
        kind: kind.as_str().into(),
        id,
        step: step.into(),
        file: file.into(),
        reason: reason.into(),
        since: crate::time::rfc3339(since),
    })
}

/// It is done: forget its deferral, if it had one.
pub fn clear(conn: &Connection, kind: Kind, id: i64) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM deferred WHERE kind = ?1 AND id = ?2",
        params![kind.as_str(), id],
    )?;
    Ok(())
}

/// Everything deferred now, oldest first.
pub fn list(db: &Db) -> Result<Vec<Deferred>> {
    list_conn(&db.conn).map_err(db.err())
}

pub fn list_conn(conn: &Connection) -> rusqlite::Result<Vec<Deferred>> {
    let mut st = conn.prepare("SELECT kind, id, step, file, reason, since FROM deferred ORDER BY since, kind, id")?;
    let r = st.query_map([], |r| {
        Ok(Deferred {
            kind: r.get(0)?,
            id: r.get(1)?,
            step: r.get(2)?,
            file: r.get(3)?,
            reason: r.get(4)?,
            since: crate::time::rfc3339(r.get(5)?),
        })
    })?;
    r.collect()
}

/// Files a scan must not catalog and a plan must not pick, by (tier,
/// relpath), with why: the inputs of a committed rewrite not yet retired
/// (their rows are in its outputs) and the outputs of one not committed
/// (their rows are in its inputs).
pub fn unsettled_paths(conn: &Connection) -> rusqlite::Result<HashMap<(String, String), String>> {
    let mut st = conn.prepare(
        "SELECT j.tier, i.relpath, j.id, 'an input of committed rewrite ' FROM journal j
             JOIN journal_inputs i ON i.journal_id = j.id WHERE j.state = 'committed'
         UNION ALL
         SELECT j.out_tier, o.relpath, j.id, 'an output of unfinished rewrite ' FROM journal j
             JOIN journal_outputs o ON o.journal_id = j.id WHERE j.state = 'writing'",
    )?;
    let r = st.query_map([], |r| {
        let (tier, rel, id, what): (String, String, i64, String) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        Ok((
            (tier, rel),
            format!("{what}{id} (journal); not cataloged until it is settled"),
        ))
    })?;
    r.collect()
}
