//! The rewrite journal: what makes a rewrite crash-safe.
//!
//! Owns the `journal*` tables and recovery (pins and the trash are
//! [`super::pins`]'). A rewrite
//! records its inputs, then each output *before* writing it; commits the
//! catalog swap; only then removes inputs. Recovery, run at every start,
//! rolls back a rewrite that had not committed (deleting its outputs and
//! temporaries) and finishes one that had (removing its inputs, through
//! [`super::retire`]). It does not decide what to rewrite.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::deferred::{self, Deferred, Kind};
use super::pins;
pub use super::retire::{finish, retire_input, Retired, Retirements};
use crate::catalog::{self, Action};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::fsutil::{self, TMP_PREFIX};
use crate::state::{db_err, now_ns, Db};

/// A journal entry's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Writing,
    Committed,
    Done,
    RolledBack,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Writing => "writing",
            State::Committed => "committed",
            State::Done => "done",
            State::RolledBack => "rolled_back",
        }
    }
}

pub struct NewEntry<'a> {
    pub kind: Action,
    pub dataset: &'a str,
    pub tier: &'a str,
    pub out_tier: &'a str,
    pub series: &'a str,
    /// (relpath, rows, bytes) under `tier`.
    pub inputs: &'a [(String, u64, u64)],
}

/// What makes a file on disk the one a rewrite read: a collector that
/// replaces a file in place (a new inode, or new bytes and mtime) makes
/// another file under the same name, which a rewrite must not delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub dev: u64,
    pub ino: u64,
    pub bytes: u64,
    pub mtime_ns: i64,
}

impl Identity {
    /// The identity of a local file now; `None` for an object or a missing file.
    pub fn of(path: &Path) -> Option<Identity> {
        use std::os::unix::fs::MetadataExt;
        if crate::store::is_remote(path) {
            return None;
        }
        let m = std::fs::symlink_metadata(path).ok()?;
        Some(Identity {
            dev: m.dev(),
            ino: m.ino(),
            bytes: m.len(),
            mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
        })
    }
}

/// Open a journal entry for a rewrite of the run holding the data lock,
/// recording each input's identity as it is now. Refused without the lock:
/// recovery treats every journal not of the current run as abandoned.
pub fn begin(cfg: &Config, conn: &Connection, e: &NewEntry) -> Result<i64> {
    let owner = crate::lock::held_run()
        .ok_or_else(|| Error::Invalid("a rewrite began without holding the data lock".into()))?;
    let dberr = db_err(Path::new("state"));
    let root = cfg.tier_root(e.tier)?;
    let tx = conn.unchecked_transaction().map_err(&dberr)?;
    let now = now_ns();
    tx.execute(
        "INSERT INTO journal (kind, dataset, tier, out_tier, series, state, pid, owner, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'writing', ?6, ?7, ?8, ?8)",
        params![
            e.kind.as_str(),
            e.dataset,
            e.tier,
            e.out_tier,
            e.series,
            std::process::id(),
            owner,
            now
        ],
    )
    .map_err(&dberr)?;
    let id = tx.last_insert_rowid();
    {
        let mut st = tx
            .prepare(
                "INSERT INTO journal_inputs (journal_id, relpath, rows, bytes, dev, ino, mtime_ns)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(&dberr)?;
        for (rel, rows, bytes) in e.inputs {
            let id_now = Identity::of(&root.join(rel));
            st.execute(params![
                id,
                rel,
                *rows as i64,
                id_now.map_or(*bytes, |i| i.bytes) as i64,
                id_now.map(|i| i.dev as i64),
                id_now.map(|i| i.ino as i64),
                id_now.map(|i| i.mtime_ns),
            ])
            .map_err(&dberr)?;
        }
    }
    tx.commit().map_err(&dberr)?;
    Ok(id)
}

/// The identity an input had when its rewrite began (`None`: not recorded).
pub(super) fn recorded_identity(conn: &Connection, id: i64, relpath: &str) -> Result<Option<Identity>> {
    conn.query_row(
        "SELECT dev, ino, bytes, mtime_ns FROM journal_inputs WHERE journal_id = ?1 AND relpath = ?2",
        params![id, relpath],
        |r| {
            let (dev, ino, mtime_ns): (Option<i64>, Option<i64>, Option<i64>) = (r.get(0)?, r.get(1)?, r.get(3)?);
            let bytes: i64 = r.get(2)?;
            Ok(match (dev, ino, mtime_ns) {
                (Some(dev), Some(ino), Some(mtime_ns)) => Some(Identity {
                    dev: dev as u64,
                    ino: ino as u64,
                    bytes: bytes as u64,
                    mtime_ns,
                }),
                _ => None,
            })
        },
    )
    .optional()
    .map(Option::flatten)
    .map_err(db_err(Path::new("state")))
}

/// Record an output before it is written, so a crash can find it.
pub fn plan_output(conn: &Connection, id: i64, relpath: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO journal_outputs (journal_id, relpath) VALUES (?1, ?2)",
        params![id, relpath],
    )?;
    Ok(())
}

pub fn forget_output(conn: &Connection, id: i64, relpath: &str) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM journal_outputs WHERE journal_id = ?1 AND relpath = ?2",
        params![id, relpath],
    )?;
    Ok(())
}

pub fn set_state(conn: &Connection, id: i64, s: State) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE journal SET state = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, s.as_str(), now_ns()],
    )?;
    Ok(())
}

/// Scratch folder of one journal entry (spills, sorted runs); never under a tier root.
pub fn scratch_dir(cfg: &Config, id: i64) -> PathBuf {
    cfg.tmp_dir().join(format!("j{id}"))
}

/// Paths recorded for a journal entry in `journal_inputs` or `journal_outputs`.
pub(super) fn paths(conn: &Connection, table: &'static str, id: i64) -> rusqlite::Result<Vec<String>> {
    let mut st = conn.prepare(&format!(
        "SELECT relpath FROM {table} WHERE journal_id = ?1 ORDER BY rowid"
    ))?;
    let r = st.query_map([id], |r| r.get(0))?;
    r.collect()
}

/// Undo a rewrite that had not committed: delete every output it planned
/// (and their temporaries and catalog rows; a concurrent scan may have
/// cataloged one, it never held unique rows). Inputs stay. Returns how many
/// outputs were planned.
pub fn roll_back(cfg: &Config, conn: &Connection, id: i64, out_tier: &str) -> Result<u64> {
    let dberr = db_err(Path::new("state"));
    let out_root = cfg.tier_root(out_tier)?;
    let outs = paths(conn, "journal_outputs", id).map_err(&dberr)?;
    let tx = conn.unchecked_transaction().map_err(&dberr)?;
    for rel in &outs {
        if Path::new(rel).is_absolute() {
            // Not data: a file of rows set aside (quality quarantine).
            remove_output(Path::new(rel))?;
            continue;
        }
        let p = out_root.join(rel);
        remove_output(&p)?;
        catalog::remove(&tx, out_tier, rel).map_err(&dberr)?;
        if let Some(dir) = p.parent().filter(|_| !crate::store::is_remote(&p)) {
            remove_empty_dirs(dir, &out_root);
        }
    }
    set_state(&tx, id, State::RolledBack).map_err(&dberr)?;
    tx.commit().map_err(&dberr)?;
    Ok(outs.len() as u64)
}

/// After a commit: remove the upload claims of a rewrite's objects (a
/// no-op for a local tier).
pub fn drop_claims(cfg: &Config, conn: &Connection, id: i64, out_tier: &str) -> Result<()> {
    let root = cfg.tier_root(out_tier)?;
    if !crate::store::is_remote(&root) {
        return Ok(());
    }
    for rel in paths(conn, "journal_outputs", id).map_err(db_err(Path::new("state")))? {
        if Path::new(&rel).is_absolute() {
            continue;
        }
        crate::store::remove(&crate::store::write::claim_path(&root.join(rel)))?;
    }
    Ok(())
}

/// Delete an output and any temporary a crash left beside it (for an
/// object: its upload claim).
pub fn remove_output(path: &Path) -> Result<()> {
    crate::store::remove(path)?;
    if crate::store::is_remote(path) {
        return crate::store::remove(&crate::store::write::claim_path(path));
    }
    if let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) {
        let prefix = format!("{TMP_PREFIX}{name}-");
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    let p = e.path();
                    std::fs::remove_file(&p).map_err(Error::io("remove", &p))?;
                }
            }
        }
        fsutil::fsync_dir(dir).ok();
    }
    Ok(())
}

/// Journal `id` is finished: `done`, and any deferral of it cleared.
pub(crate) fn mark_done(conn: &Connection, id: i64) -> Result<()> {
    let dberr = db_err(Path::new("state"));
    set_state(conn, id, State::Done).map_err(&dberr)?;
    deferred::clear(conn, Kind::Journal, id).map_err(&dberr)
}

/// The kind (`compact`, `evict`, ...) of journal entry `id`.
pub(super) fn kind(conn: &Connection, id: i64) -> Result<String> {
    conn.query_row("SELECT kind FROM journal WHERE id = ?1", [id], |r| r.get(0))
        .map_err(db_err(Path::new("state")))
}

/// Remove `dir` and its parents while empty, stopping at `stop`: Hive readers
/// should not see partitions that no longer hold data.
pub fn remove_empty_dirs(dir: &Path, stop: &Path) {
    let mut d = dir.to_path_buf();
    while d.starts_with(stop) && d != stop {
        if std::fs::remove_dir(&d).is_err() {
            break;
        }
        if !d.pop() {
            break;
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct RecoveryReport {
    pub rolled_back: u64,
    pub finished: u64,
    pub outputs_removed: u64,
    pub inputs_removed: u64,
    pub trash_purged: u64,
    pub stale_pins: u64,
    /// What is still deferred after this recovery (a rewrite that could not
    /// be finished or rolled back, a trash entry that could not be purged),
    /// with its step, file, reason and since when: retried every run.
    pub deferred: Vec<Deferred>,
}

/// Finish or roll back every rewrite whose writer is gone. Runs only under
/// the data lock, which every writer holds for its whole run: a journal of
/// another run is then abandoned, whichever process or task wrote it; the
/// current run's own journals are left alone. Without the lock it does nothing.
pub fn recover(cfg: &Config, db: &mut Db) -> Result<RecoveryReport> {
    let mut report = RecoveryReport::default();
    let Some(me) = crate::lock::held_run() else {
        tracing::debug!("recovery skipped: this process does not hold the data lock");
        return Ok(report);
    };
    // Journals this process left for the reader grace are its own to finish.
    super::release::settle(cfg, &db.conn)?;
    crate::lake::after_change(cfg, &db.conn);
    let open: Vec<(i64, String, String, String, i64, Option<String>)> = {
        let mut st = db
            .conn
            .prepare("SELECT id, state, tier, out_tier, pid, owner FROM journal WHERE state IN ('writing', 'committed') ORDER BY id")
            .map_err(db.err())?;
        let rows = st
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })
            .map_err(db.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(db.err())?
    };
    for (id, state, tier, out_tier, pid, owner) in open {
        let abandoned = match owner {
            Some(o) => o != me,
            // Written before journals had owners: by a process that is gone.
            None => !crate::proc::alive(pid) || pid == std::process::id() as i64,
        };
        if !abandoned {
            continue;
        }
        // One journal that cannot be settled is deferred with its reason;
        // it never stops the others or the run.
        if state == "writing" {
            recover_writing(cfg, &db.conn, id, &out_tier, &mut report)?;
        } else {
            let (retired, left) = finish(cfg, &db.conn, id, &tier, &out_tier)?;
            report.inputs_removed += retired.total();
            if left.is_none() {
                report.finished += 1;
                tracing::warn!(journal = id, "finished an interrupted rewrite");
            }
        }
        let scratch = scratch_dir(cfg, id);
        if scratch.exists() {
            if let Err(e) = std::fs::remove_dir_all(&scratch) {
                tracing::warn!(path = %scratch.display(), error = %e, "cannot remove a rewrite's scratch folder; retried next run");
            }
        }
    }
    report.stale_pins = pins::release_stale_pins(cfg, db)?;
    report.trash_purged = pins::purge_trash(cfg, db)?;
    report.deferred = deferred::list(db)?;
    // What recovery finished itself, after the grace.
    super::release::settle(cfg, &db.conn)?;
    Ok(report)
}

/// Roll back an abandoned rewrite that had not committed, or defer it with
/// its reason (a store that is down, an output that cannot be removed): its
/// outputs are in no catalog and a scan leaves them out meanwhile.
fn recover_writing(
    cfg: &Config,
    conn: &Connection,
    id: i64,
    out_tier: &str,
    report: &mut RecoveryReport,
) -> Result<()> {
    match roll_back(cfg, conn, id, out_tier) {
        Ok(n) => {
            deferred::clear(conn, Kind::Journal, id).map_err(db_err(Path::new("state")))?;
            report.outputs_removed += n;
            report.rolled_back += 1;
            tracing::warn!(journal = id, outputs = n, "rolled back an interrupted rewrite");
        }
        Err(e @ Error::Db { .. }) => return Err(e),
        Err(e) => {
            tracing::warn!(journal = id, error = %e, "cannot roll back an interrupted rewrite yet");
            deferred::defer(
                conn,
                Kind::Journal,
                id,
                "roll back",
                &deferred::file_of(&e, out_tier),
                &e.to_string(),
            )?;
        }
    }
    Ok(())
}

/// Bytes that use disk outside the live data: trash, scratch, quarantine.
#[derive(Debug, Default, Serialize)]
pub struct Overhead {
    pub trash_bytes: u64,
    pub tmp_bytes: u64,
    pub quarantine_bytes: u64,
    pub open_journals: u64,
}

pub fn overhead(cfg: &Config, db: &Db) -> Result<Overhead> {
    let open_journals: i64 = db
        .conn
        .query_row(
            "SELECT count(*) FROM journal WHERE state IN ('writing', 'committed')",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(db.err())?
        .unwrap_or(0);
    Ok(Overhead {
        trash_bytes: dir_bytes(&cfg.trash_dir()),
        tmp_bytes: dir_bytes(&cfg.tmp_dir()),
        quarantine_bytes: dir_bytes(&cfg.quarantine_dir()),
        open_journals: open_journals as u64,
    })
}

pub fn dir_bytes(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}
