//! Retiring a committed rewrite's inputs: each one removed, moved to the
//! trash while pinned, held for the lake's kept snapshots, or kept when a
//! collector replaced it in place; then the journal marked done, queued
//! for the reader grace ([`super::release`]) or deferred with its reason.
//! Folders are synced once each and the trash rows commit together.

use std::path::Path;

use rusqlite::Connection;

use super::deferred::{self, Deferred, Kind};
use super::journal::{drop_claims, kind, mark_done, paths, recorded_identity, remove_empty_dirs, Identity};
use super::pins;
use crate::catalog::{self, Action};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::state::db_err;

/// What became of a retired input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retired {
    /// It was already gone (a recovery finishing what a crash began).
    Absent,
    Removed,
    /// Pinned: kept, with a trash entry that deletes it once unpinned.
    Trashed,
    /// Another file now has its name (a collector replaced it in place):
    /// kept, and the next scan catalogs it.
    Replaced,
    /// A kept lake snapshot still names it: held in the trash, readable,
    /// until the snapshot expires ([`crate::lake::Holds`]).
    Held,
}

/// Remove an input that journal `id`'s committed rewrite replaced, if it is
/// still the file the rewrite read. A pinned file is moved to the trash
/// folder instead (an object stays where it is), to be deleted after its
/// pins go and a grace period.
pub fn retire_input(
    cfg: &Config,
    conn: &Connection,
    holds: &mut crate::lake::Holds,
    id: i64,
    tier: &str,
    relpath: &str,
) -> Result<Retired> {
    let root = cfg.tier_root(tier)?;
    let path = root.join(relpath);
    let remote = crate::store::is_remote(&path);
    // One stat (for an object, one HEAD): its size, or None when gone.
    let bytes = if remote {
        crate::store::for_path(&path)?.size(&path)?
    } else {
        std::fs::symlink_metadata(&path).ok().map(|m| m.len())
    };
    let Some(bytes) = bytes else { return Ok(Retired::Absent) };
    if let Some(was) = recorded_identity(conn, id, relpath)? {
        if Identity::of(&path) != Some(was) {
            tracing::warn!(path = %path.display(), journal = id, "input was replaced in place after it was read; kept for the next scan");
            catalog::record(
                conn,
                &catalog::HistoryEvent {
                    action: Action::Kept,
                    path: Some(&path.display().to_string()),
                    bytes: Some(bytes),
                    reason: Some("replaced in place after a rewrite read it; rescanned next run"),
                    ..Default::default()
                },
            )
            .map_err(db_err(Path::new("state")))?;
            return Ok(Retired::Replaced);
        }
    }
    let dberr = db_err(Path::new("state"));
    // A pinned file waits for its pins; else a lake reader may still read
    // it (while snapshots are kept), unless a quota evicts it for room.
    let pinned = pins::is_pinned(conn, tier, relpath).map_err(&dberr)?;
    let held = !pinned && holds.holds(&path) && kind(conn, id)? != Action::Evict.as_str();
    if held || pinned {
        // Where it waits, and whether an interrupted run already recorded it there.
        let (kept_at, recorded) = if remote {
            (path, false)
        } else {
            let mut to = cfg.trash_dir().join(tier).join(relpath);
            let mut n = 1;
            // A link an interrupted run made is this file already: reused.
            while to.exists() && !(held && fsutil::same_file(&path, &to)) {
                to = cfg.trash_dir().join(tier).join(format!("{relpath}.{n}"));
                n += 1;
            }
            let recorded = to.exists() && pins::in_trash(conn, &to).map_err(&dberr)?;
            if held {
                // The old name goes after the reader grace (`finish`).
                holds.hold(&path, &to)?;
            } else {
                fsutil::move_file(&path, &to)?;
            }
            (to, recorded)
        };
        if !recorded {
            pins::to_trash(conn, tier, relpath, &kept_at, bytes).map_err(&dberr)?;
        }
        return Ok(if held { Retired::Held } else { Retired::Trashed });
    }
    // Its folder is synced by `finish`, once for all the inputs it held.
    crate::store::remove(&path)?;
    Ok(Retired::Removed)
}

/// What retiring a committed rewrite's inputs did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Retirements {
    pub removed: u64,
    pub trashed: u64,
    pub replaced: u64,
}

impl Retirements {
    /// Inputs that were still there and are settled now.
    pub fn total(&self) -> u64 {
        self.removed + self.trashed + self.replaced
    }
}

/// Finish journal `id`'s committed rewrite: drop its upload claims and
/// retire every input, each tried whichever other fails. When all are
/// settled the journal is `done` (and any deferral cleared), or queued for
/// [`super::release::settle`] while held inputs keep their old names; else it stays
/// `committed`, deferred with the first failure's step, file and reason,
/// and the next run's recovery retries it. Its inputs stay out of the
/// catalog meanwhile ([`deferred::unsettled_paths`]). Only the state
/// database failing is an error: nothing else stops the caller.
pub fn finish(
    cfg: &Config,
    conn: &Connection,
    id: i64,
    tier: &str,
    out_tier: &str,
) -> Result<(Retirements, Option<Deferred>)> {
    let dberr = db_err(Path::new("state"));
    let mut done = Retirements::default();
    let mut first: Option<(&str, String, Error)> = None;
    if let Err(e) = drop_claims(cfg, conn, id, out_tier) {
        first = Some(("drop claims", deferred::file_of(&e, out_tier), e));
    }
    let root = cfg.tier_root(tier).ok();
    let local_root = root.as_deref().filter(|r| !crate::store::is_remote(r));
    // Held inputs keep their old names until readers that listed them are done.
    let (mut holds, mut old_names) = (crate::lake::Holds::new(cfg), Vec::new());
    let inputs = paths(conn, "journal_inputs", id).map_err(&dberr)?;
    // Folders that inputs were removed from: each synced once, after the loop.
    let mut removed_from = std::collections::BTreeSet::new();
    // The trash rows of a local tier's held inputs commit together: one
    // state sync, not one per input. A pinned move commits at once, so a
    // moved file never lacks its row; a crash before the commit leaves
    // held inputs at their old names, and recovery holds them again.
    let batch = Batch::begin(conn, local_root.is_some()).map_err(&dberr)?;
    for (i, rel) in inputs.iter().enumerate() {
        match retire_input(cfg, conn, &mut holds, id, tier, rel) {
            Ok(Retired::Removed) => {
                done.removed += 1;
                removed_from.extend(local_root.and_then(|r| r.join(rel).parent().map(Path::to_path_buf)));
            }
            Ok(Retired::Trashed) => {
                done.trashed += 1;
                batch.commit_so_far().map_err(&dberr)?;
            }
            Ok(Retired::Replaced) => done.replaced += 1,
            Ok(Retired::Held) => old_names.extend(root.as_ref().map(|r| r.join(rel)).filter(|p| p.exists())),
            Ok(Retired::Absent) => {}
            Err(e @ Error::Db { .. }) => return Err(e),
            Err(e) => {
                let file = root.as_ref().map_or_else(|| rel.into(), |r| r.join(rel));
                tracing::warn!(journal = id, path = %file.display(), error = %e, "cannot retire an input of a committed rewrite; deferred");
                first.get_or_insert(("retire", file.display().to_string(), e));
            }
        }
        if i == 0 {
            crate::failpoint::hit("rewrite:mid-delete");
        }
    }
    batch.commit().map_err(&dberr)?;
    for dir in removed_from {
        match fsutil::fsync_dir(&dir) {
            Ok(()) => remove_empty_dirs(&dir, local_root.unwrap_or(&dir)),
            Err(e) => {
                first.get_or_insert(("retire", dir.display().to_string(), e));
            }
        }
    }
    if let Err(e) = holds.commit() {
        first.get_or_insert(("hold", deferred::file_of(&e, tier), e));
    }
    match first {
        // The old names go after the reader grace, once for the whole run.
        None if !old_names.is_empty() => {
            super::release::queue(id, old_names, std::time::Instant::now(), root);
            Ok((done, None))
        }
        None => {
            mark_done(conn, id)?;
            Ok((done, None))
        }
        Some((step, file, e)) => {
            let d = deferred::defer(conn, Kind::Journal, id, step, &file, &e.to_string())?;
            Ok((done, Some(d)))
        }
    }
}

/// A state transaction around a run of retirements, when one can be had
/// (the connection is not in one already); it rolls back when dropped
/// uncommitted.
struct Batch<'c> {
    conn: Option<&'c Connection>,
}

impl<'c> Batch<'c> {
    fn begin(conn: &'c Connection, wanted: bool) -> rusqlite::Result<Batch<'c>> {
        let conn = (wanted && conn.is_autocommit()).then_some(conn);
        if let Some(c) = conn {
            c.execute_batch("BEGIN IMMEDIATE")?;
        }
        Ok(Batch { conn })
    }

    /// Commit what is written so far and go on in a new transaction.
    fn commit_so_far(&self) -> rusqlite::Result<()> {
        self.conn.map_or(Ok(()), |c| c.execute_batch("COMMIT; BEGIN IMMEDIATE"))
    }

    fn commit(mut self) -> rusqlite::Result<()> {
        self.conn.take().map_or(Ok(()), |c| c.execute_batch("COMMIT"))
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            let _ = c.execute_batch("ROLLBACK");
        }
    }
}
