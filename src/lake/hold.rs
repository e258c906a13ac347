//! Holding retired files for the lake's kept snapshots. A rewrite's input
//! that an unexpired snapshot names is linked into the trash and the lake
//! pointed at that copy, so a reader of the old snapshot still opens it;
//! the old name goes after `lake.reader_grace`
//! ([`crate::engine::release`]).
//! [`Holds`] does this for a whole journal with one lake connection and one
//! transaction, not one of each per file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rusqlite::params;

use super::{absolute, cost, Lake};
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
    /// The folders of those links, synced once each before the repoint.
    dirs: BTreeSet<PathBuf>,
}

impl Holds {
    pub fn new(cfg: &Config) -> Holds {
        let kept = cfg.lake.enabled && !cfg.lake.keep_snapshots.0.is_zero() && cfg.lake_path().exists();
        let lake = kept.then(|| cost::timed(|| Lake::open(cfg))).and_then(|r| {
            r.inspect_err(|e| tracing::warn!(error = %e, "lake unreadable; nothing held"))
                .ok()
        });
        Holds {
            lake,
            linked: Vec::new(),
            dirs: BTreeSet::new(),
        }
    }

    /// Whether a kept snapshot names `path`, so a reader may still open it.
    pub fn holds(&self, path: &Path) -> bool {
        self.lake.as_ref().is_some_and(|l| {
            cost::timed(|| {
                l.conn
                    .prepare_cached("SELECT EXISTS (SELECT 1 FROM ducklake_data_file WHERE path = ?1)")
                    .and_then(|mut st| st.query_row([path.to_string_lossy()], |r| r.get(0)))
                    .unwrap_or(false)
            })
        })
    }

    /// Keep `from` readable at `to` (the trash): a hard link, whose lake row
    /// [`Holds::commit`] repoints, or `to` itself when it already is that
    /// file (linked by a run a crash stopped). Where no link can be made
    /// (another filesystem) it is moved and repointed at once. Returns
    /// whether the old name is still there, for [`crate::engine::release`].
    pub fn hold(&mut self, from: &Path, to: &Path) -> Result<bool> {
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).map_err(Error::io("create folder", dir))?;
        }
        if crate::fsutil::same_file(from, to) || std::fs::hard_link(from, to).is_ok() {
            self.dirs.extend(to.parent().map(Path::to_path_buf));
            self.linked.push((from.to_path_buf(), to.to_path_buf()));
            return Ok(true);
        }
        crate::fsutil::move_file(from, to)?;
        self.repoint(&[(from.to_path_buf(), to.to_path_buf())]);
        Ok(false)
    }

    /// Make the links durable (each folder synced once), then point the
    /// lake at the trash copies of every linked file, in one transaction.
    /// Until then it names the old paths, which are still there; a crash or
    /// a failed sync before it leaves them so, and recovery holds again.
    pub fn commit(&mut self) -> Result<()> {
        for dir in std::mem::take(&mut self.dirs) {
            crate::fsutil::fsync_dir(&dir)?;
        }
        let linked = std::mem::take(&mut self.linked);
        cost::timed(|| self.repoint(&linked));
        Ok(())
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
