//! Old names of held inputs, waiting out `lake.reader_grace`. A rewrite's
//! input that a kept lake snapshot names is linked into the trash and the
//! lake repointed there ([`crate::lake::Holds`]); its old name must stay a
//! moment for a reader that listed it just before. Instead of sleeping that
//! grace once per rewrite, [`journal::finish`] leaves such a journal
//! `committed` and queues it here; [`settle`] waits out the grace once for
//! all of them (at the end of each run, and before recovery), unlinks the
//! old names and marks the journals done. A crash before that leaves them
//! `committed`, and recovery finishes them: the lake no longer names the old
//! names, so they are removed.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use rusqlite::Connection;

use super::deferred::{self, Kind};
use super::journal::{self, remove_empty_dirs};
use crate::config::Config;
use crate::error::{Error, Result};

/// A journal whose held inputs still have their old names.
struct Pending {
    id: i64,
    names: Vec<PathBuf>,
    /// When the lake stopped naming them.
    since: Instant,
    root: Option<PathBuf>,
}

static PENDING: Mutex<Vec<Pending>> = Mutex::new(Vec::new());

/// Queue journal `id`, whose inputs are retired but for `names`.
pub(crate) fn queue(id: i64, names: Vec<PathBuf>, since: Instant, root: Option<PathBuf>) {
    lock().push(Pending { id, names, since, root });
}

fn lock() -> std::sync::MutexGuard<'static, Vec<Pending>> {
    PENDING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Unlink the queued old names once their grace has passed (one wait for
/// all) and mark their journals done; a name that cannot be removed defers
/// its journal with the reason, as `finish` would.
pub fn settle(cfg: &Config, conn: &Connection) -> Result<()> {
    let mut pending = std::mem::take(&mut *lock());
    pending.sort_by_key(|p| p.since);
    for p in pending {
        match release_old_names(cfg, &p.names, p.since) {
            Ok(()) => journal::mark_done(conn, p.id)?,
            Err((file, e)) => {
                tracing::warn!(journal = p.id, path = %file.display(), error = %e, "cannot remove a held input's old name; deferred");
                deferred::defer(
                    conn,
                    Kind::Journal,
                    p.id,
                    "retire",
                    &file.display().to_string(),
                    &e.to_string(),
                )?;
            }
        }
        if let Some(root) = &p.root {
            for dir in p.names.iter().filter_map(|n| n.parent()) {
                remove_empty_dirs(dir, root);
            }
        }
    }
    Ok(())
}

/// Unlink the old names of files [`crate::lake::Holds`] linked into the trash, once
/// `lake.reader_grace` has passed since `since` (the repoint); each folder
/// is synced. Returns the first failure, with its file.
fn release_old_names(cfg: &Config, names: &[PathBuf], since: Instant) -> std::result::Result<(), (PathBuf, Error)> {
    if names.is_empty() {
        return Ok(());
    }
    if let Some(left) = cfg.lake.reader_grace.0.checked_sub(since.elapsed()) {
        std::thread::sleep(left);
        crate::lake::cost::waited(left);
    }
    let mut first = None;
    // Each folder is synced once, after all its names went.
    let mut dirs = std::collections::BTreeMap::new();
    for p in names {
        match std::fs::remove_file(p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                first.get_or_insert((p.clone(), Error::io("remove", p)(e)));
            }
            _ => {
                if let Some(d) = p.parent() {
                    dirs.entry(d.to_path_buf()).or_insert_with(|| p.clone());
                }
            }
        }
    }
    for (dir, p) in dirs {
        if let Err(e) = crate::fsutil::fsync_dir(&dir) {
            first.get_or_insert((p, e));
        }
    }
    first.map_or(Ok(()), Err)
}
