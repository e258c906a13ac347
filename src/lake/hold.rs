//! Holding retired files for the lake's kept snapshots. A rewrite's input
//! that an unexpired snapshot names is linked into the trash and the lake
//! pointed at that copy, so a reader of the old snapshot still opens it;
//! the old name goes after `lake.reader_grace` ([`release_old_names`]).
//! [`Holds`] does this for a whole journal with one lake connection and one
//! transaction, not one of each per file.

use std::path::{Path, PathBuf};

use rusqlite::params;

use super::{absolute, Lake};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::state::db_err;

/// The lake as a run of retirements sees it: open once, for every
/// question and every repoint of one journal (or one purge of the trash).
pub struct Holds {
    /// None: no lake, snapshots are not kept, or it cannot be read (then
    /// nothing is held, as when it names nothing).
    lake: Option<Lake>,
    /// Files linked into the trash whose lake rows still name the old path.
    linked: Vec<(PathBuf, PathBuf)>,
}

impl Holds {
    pub fn new(cfg: &Config) -> Holds {
        let kept = cfg.lake.enabled && !cfg.lake.keep_snapshots.0.is_zero() && cfg.lake_path().exists();
        let lake = kept.then(|| Lake::open(cfg)).and_then(|r| {
            r.inspect_err(|e| tracing::warn!(error = %e, "lake unreadable; nothing held"))
                .ok()
        });
        Holds {
            lake,
            linked: Vec::new(),
        }
    }

    /// Whether a kept snapshot names `path`, so a reader may still open it.
    pub fn holds(&self, path: &Path) -> bool {
        self.lake.as_ref().is_some_and(|l| {
            l.conn
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM ducklake_data_file WHERE path = ?1)",
                    [path.to_string_lossy()],
                    |r| r.get(0),
                )
                .unwrap_or(false)
        })
    }

    /// Keep `from` readable at `to` (the trash): a hard link, whose lake row
    /// [`Holds::commit`] repoints. Where no link can be made (another
    /// filesystem) it is moved and repointed at once. Returns whether the
    /// old name is still there, for [`release_old_names`].
    pub fn hold(&mut self, from: &Path, to: &Path) -> Result<bool> {
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).map_err(Error::io("create folder", dir))?;
        }
        if std::fs::hard_link(from, to).is_ok() {
            if let Some(dir) = to.parent() {
                crate::fsutil::fsync_dir(dir)?;
            }
            self.linked.push((from.to_path_buf(), to.to_path_buf()));
            return Ok(true);
        }
        crate::fsutil::move_file(from, to)?;
        self.repoint(&[(from.to_path_buf(), to.to_path_buf())]);
        Ok(false)
    }

    /// Point the lake at the trash copies of every linked file, in one
    /// transaction. Until then it names the old paths, which are still
    /// there; a crash before it leaves them so, and recovery holds again.
    pub fn commit(&mut self) {
        let linked = std::mem::take(&mut self.linked);
        self.repoint(&linked);
    }

    fn repoint(&self, moved: &[(PathBuf, PathBuf)]) {
        let Some(lake) = self.lake.as_ref().filter(|_| !moved.is_empty()) else {
            return;
        };
        let done = lake.begin().and_then(|tx| {
            {
                let mut st = tx
                    .prepare_cached("UPDATE ducklake_data_file SET path = ?2 WHERE path = ?1")
                    .map_err(db_err(&lake.path))?;
                for (from, to) in moved {
                    st.execute(params![from.to_string_lossy(), absolute(to).to_string_lossy()])
                        .map_err(db_err(&lake.path))?;
                }
            }
            tx.commit().map_err(db_err(&lake.path))
        });
        if let Err(e) = done {
            tracing::warn!(files = moved.len(), error = %e, "lake: could not repoint held files; old snapshots may not read them");
        }
    }
}

/// Unlink the old names of files [`Holds`] linked into the trash, once
/// `lake.reader_grace` has passed since `since` (the repoint); each folder
/// is synced. Returns the first failure, with its file.
pub fn release_old_names(
    cfg: &Config,
    names: &[PathBuf],
    since: std::time::Instant,
) -> std::result::Result<(), (PathBuf, Error)> {
    if names.is_empty() {
        return Ok(());
    }
    if let Some(left) = cfg.lake.reader_grace.0.checked_sub(since.elapsed()) {
        std::thread::sleep(left);
    }
    let mut first = None;
    for p in names {
        let r = std::fs::remove_file(p)
            .or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(Error::io("remove", p))
            .and_then(|()| p.parent().map_or(Ok(()), crate::fsutil::fsync_dir));
        if let Err(e) = r {
            first.get_or_insert((p.clone(), e));
        }
    }
    first.map_or(Ok(()), Err)
}
