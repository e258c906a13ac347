//! Pins and the trash: files a job reads are never deleted under it.
//!
//! Owns the `pins` and `trash` tables. A pinned input of a rewrite goes to
//! the trash folder (an object stays where it is) instead of being deleted,
//! and is purged once its pins are gone and `compaction.trash_grace` has
//! passed. A pin belongs to its holder's run, never to a pid: a job's pins
//! go when the job's run ends in any state (the queue releases them with
//! the state change, recovery included), an export's when its run's lease
//! ([`crate::lock::RunLease`]) is no longer held. A manual pin stays until
//! it is unpinned.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};
use serde::Serialize;

use super::deferred::{self, Kind};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::state::{db_err, now_ns, Db};

pub fn is_pinned(conn: &Connection, tier: &str, relpath: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM pins WHERE tier = ?1 AND relpath = ?2)",
        params![tier, relpath],
        |r| r.get(0),
    )
}

/// Record a pinned input kept at `kept_at` until its pins go.
pub(crate) fn to_trash(
    conn: &Connection,
    tier: &str,
    relpath: &str,
    kept_at: &Path,
    bytes: u64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO trash (tier, relpath, path, bytes, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![tier, relpath, kept_at.display().to_string(), bytes as i64, now_ns()],
    )?;
    Ok(())
}

/// Whether the trash already has a row for `path`.
pub(crate) fn in_trash(conn: &Connection, path: &Path) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM trash WHERE path = ?1)",
        [path.display().to_string()],
        |r| r.get(0),
    )
}

/// Who a pin belongs to: its name (what `mdkeep pins` shows) and its
/// holder (`job:<id>`, `run:<run id>`, or none for a manual pin).
#[derive(Debug, Clone)]
pub struct PinOwner {
    name: String,
    holder: Option<String>,
}

impl PinOwner {
    /// A job's pins: released when the job's run ends, however it ends.
    pub fn job(id: i64) -> PinOwner {
        let name = format!("job:{id}");
        PinOwner {
            holder: Some(name.clone()),
            name,
        }
    }

    /// Pins of a run that holds `lease` (`export`, `submit`): released once
    /// the lease is no longer held.
    pub fn run(kind: &str, lease: &crate::lock::RunLease) -> PinOwner {
        PinOwner {
            name: format!("{kind}:{}", lease.run()),
            holder: Some(format!("run:{}", lease.run())),
        }
    }

    /// A pin that stays until someone unpins it (`mdkeep pin`).
    pub fn manual(name: &str) -> PinOwner {
        PinOwner {
            name: name.to_string(),
            holder: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Release job `id`'s pins (its run ended); how many went. The queue calls
/// this in the transaction that records the end.
pub(crate) fn release_job(conn: &Connection, id: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM pins WHERE holder = ?1", [format!("job:{id}")])
}

/// Release pins whose holder is gone: a job's that is no longer running
/// (or no longer exists), a run's whose lease nobody holds, and pins of
/// exports from before pins had holders (`export:<pid>`) whose process is
/// gone. Manual pins stay.
pub(crate) fn release_stale_pins(cfg: &Config, db: &Db) -> Result<u64> {
    let holders: Vec<(Option<String>, String)> = {
        let mut st = db
            .conn
            .prepare(
                "SELECT DISTINCT holder, owner FROM pins
                 WHERE holder IS NOT NULL OR owner LIKE 'export:%' OR owner LIKE 'submit:%'",
            )
            .map_err(db.err())?;
        let r = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(db.err())?;
        r.collect::<rusqlite::Result<_>>().map_err(db.err())?
    };
    let mut n = 0;
    for (holder, owner) in holders {
        let gone = match holder.as_deref() {
            Some(h) => match (h.strip_prefix("job:"), h.strip_prefix("run:")) {
                (Some(id), _) => !id.parse().is_ok_and(|id| job_running(db, id)),
                (_, Some(run)) => !crate::lock::run_alive(cfg, run),
                _ => false,
            },
            None => owner
                .rsplit(':')
                .next()
                .and_then(|p| p.parse::<i64>().ok())
                .is_some_and(|p| !crate::proc::alive(p)),
        };
        if gone {
            n += db
                .conn
                .execute(
                    "DELETE FROM pins WHERE owner = ?1 AND holder IS ?2",
                    params![owner, holder],
                )
                .map_err(db.err())? as u64;
        }
    }
    Ok(n)
}

/// Whether job `id` runs now; an unreadable answer counts as running, so
/// its pins are kept.
fn job_running(db: &Db, id: i64) -> bool {
    match crate::jobs::queue::get(db, id) {
        Ok(j) => j.life.state() == "running",
        Err(crate::error::Error::Job { .. }) => false,
        Err(_) => true,
    }
}

/// Delete trashed files whose pins are gone and whose grace period has
/// passed; one that cannot be deleted now is deferred with its reason.
pub fn purge_trash(cfg: &Config, db: &mut Db) -> Result<u64> {
    let grace = cfg.compaction.trash_grace.0.as_nanos() as i64;
    let now = now_ns();
    let dberr = db_err(&db.path);
    let rows: Vec<(i64, String, String, String, Option<i64>)> = {
        let mut st = db
            .conn
            .prepare("SELECT id, tier, relpath, path, released_at FROM trash")
            .map_err(&dberr)?;
        let r = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .map_err(&dberr)?;
        r.collect::<rusqlite::Result<_>>().map_err(&dberr)?
    };
    let mut purged = 0;
    let holds = crate::lake::Holds::new(cfg);
    for (id, tier, rel, path, released) in rows {
        let pinned = is_pinned(&db.conn, &tier, &rel).map_err(&dberr)? || holds.holds(Path::new(&path));
        match (pinned, released) {
            (true, Some(_)) => {
                db.conn
                    .execute("UPDATE trash SET released_at = NULL WHERE id = ?1", [id])
                    .map_err(&dberr)?;
            }
            (true, None) => {}
            (false, None) => {
                db.conn
                    .execute("UPDATE trash SET released_at = ?2 WHERE id = ?1", params![id, now])
                    .map_err(&dberr)?;
            }
            (false, Some(at)) if now - at >= grace => {
                // One entry that cannot be purged (a store that is down, a
                // file that cannot be deleted) is deferred; the others go on.
                if let Err(e) = crate::store::remove(&PathBuf::from(&path)) {
                    deferred::defer(&db.conn, Kind::Trash, id, "purge", &path, &e.to_string())?;
                    continue;
                }
                db.conn
                    .execute("DELETE FROM trash WHERE id = ?1", [id])
                    .map_err(&dberr)?;
                deferred::clear(&db.conn, Kind::Trash, id).map_err(&dberr)?;
                purged += 1;
            }
            (false, Some(_)) => {}
        }
    }
    Ok(purged)
}

/// A file given by path, as (tier, relpath under that tier's root).
pub fn locate_file(cfg: &Config, path: &Path) -> Result<(String, String)> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(Error::io("current dir", "."))?
            .join(path)
    };
    let abs = abs.canonicalize().unwrap_or(abs);
    for (tier, root) in cfg.tier_roots() {
        let root = root.canonicalize().unwrap_or(root);
        if let Ok(rel) = abs.strip_prefix(&root) {
            return Ok((tier, rel.to_string_lossy().replace('\\', "/")));
        }
    }
    Err(Error::Invalid(format!("{} is not under any tier root", path.display())))
}

#[derive(Debug, Serialize)]
pub struct Pin {
    pub tier: String,
    pub relpath: String,
    pub owner: String,
    pub created_at: String,
}

/// Paths on `tier` that wait in the trash (objects a scan must not take
/// for new data).
pub fn trashed(db: &Db, tier: &str) -> Result<std::collections::HashSet<String>> {
    let mut st = db
        .conn
        .prepare("SELECT relpath FROM trash WHERE tier = ?1")
        .map_err(db.err())?;
    let r = st.query_map([tier], |r| r.get(0)).map_err(db.err())?;
    r.collect::<rusqlite::Result<_>>().map_err(db.err())
}

/// Pin a file for `owner` until it is unpinned (`mdkeep pin`).
pub fn pin_file(db: &Db, tier: &str, relpath: &str, owner: &str) -> Result<()> {
    pin(&db.conn, tier, relpath, &PinOwner::manual(owner)).map_err(db.err())
}

/// Remove `owner`'s pins (any owner's when `None`) of a file; how many went.
pub fn unpin_file(db: &Db, tier: &str, relpath: &str, owner: Option<&str>) -> Result<usize> {
    unpin(&db.conn, tier, relpath, owner).map_err(db.err())
}

/// Every pin, by tier and path.
pub fn list_pins(db: &Db) -> Result<Vec<Pin>> {
    pins(&db.conn).map_err(db.err())
}

pub fn pin(conn: &Connection, tier: &str, relpath: &str, owner: &PinOwner) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO pins (tier, relpath, owner, holder, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![tier, relpath, owner.name, owner.holder, now_ns()],
    )?;
    Ok(())
}

/// Remove pins on a file (only `owner`'s when given). Returns how many went.
pub fn unpin(conn: &Connection, tier: &str, relpath: &str, owner: Option<&str>) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM pins WHERE tier = ?1 AND relpath = ?2 AND (?3 IS NULL OR owner = ?3)",
        params![tier, relpath, owner],
    )
}

pub fn pins(conn: &Connection) -> rusqlite::Result<Vec<Pin>> {
    let mut st = conn.prepare("SELECT tier, relpath, owner, created_at FROM pins ORDER BY tier, relpath")?;
    let r = st.query_map([], |r| {
        Ok(Pin {
            tier: r.get(0)?,
            relpath: r.get(1)?,
            owner: r.get(2)?,
            created_at: crate::time::rfc3339(r.get(3)?),
        })
    })?;
    r.collect()
}
