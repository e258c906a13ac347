//! `lake check` and `lake rebuild`: comparing the lake with mdkeep's
//! catalog and the disk, and writing a fresh lake from the catalog.
//!
//! Owns what counts as a difference: a live lake file the catalog lacks, a
//! cataloged file the lake lacks or has stale, and any file a kept snapshot
//! names that is not on disk. Rebuild writes the new lake beside the old
//! one and renames it into place, so a reader sees one or the other.

use std::path::Path;

use serde::Serialize;

use super::{wanted, Lake};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::state::{db_err, Db};

/// One way the lake, the catalog and the disk disagree.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    pub kind: &'static str,
    pub path: String,
    pub detail: String,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct CheckReport {
    pub lake: String,
    pub snapshot: Option<i64>,
    pub snapshots: u64,
    pub live_files: u64,
    pub kept_files: u64,
    pub differences: Vec<Difference>,
}

impl CheckReport {
    pub fn clean(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Compare the lake with the catalog (live files, rows, bytes) and with
/// the disk (every file any kept snapshot names exists).
pub fn check(cfg: &Config, db: &Db) -> Result<CheckReport> {
    let mut r = CheckReport {
        lake: cfg.lake_path().display().to_string(),
        ..Default::default()
    };
    let Some(lake) = Lake::open_existing(cfg)? else {
        r.differences.push(Difference {
            kind: "no_lake",
            path: r.lake.clone(),
            detail: "no lake file (the next change or `mdkeep lake rebuild` writes one)".into(),
        });
        return Ok(r);
    };
    let lerr = db_err(&lake.path);
    let want = wanted(cfg, &db.conn, None)?;
    let live = lake.live(None).map_err(&lerr)?;
    (r.snapshot, r.snapshots) = lake
        .conn
        .query_row("SELECT max(snapshot_id), count(*) FROM ducklake_snapshot", [], |x| {
            Ok((x.get(0)?, x.get::<_, i64>(1)? as u64))
        })
        .map_err(&lerr)?;
    r.live_files = live.len() as u64;
    for (path, l) in &live {
        match want.get(path) {
            None => r.differences.push(diff(
                "not_in_catalog",
                path,
                "the lake names it live; the catalog does not",
            )),
            Some(w) if w.rows as i64 != l.rows || w.bytes as i64 != l.bytes => r.differences.push(diff(
                "stale",
                path,
                &format!(
                    "lake {} rows {} bytes; catalog {} rows {} bytes",
                    l.rows, l.bytes, w.rows, w.bytes
                ),
            )),
            Some(_) => {}
        }
    }
    for path in want.keys() {
        if !live.contains_key(path) {
            r.differences
                .push(diff("not_in_lake", path, "cataloged, but no live lake file"));
        }
    }
    let mut st = lake
        .conn
        .prepare("SELECT path, end_snapshot IS NOT NULL FROM ducklake_data_file")
        .map_err(&lerr)?;
    let named: Vec<(String, bool)> = st
        .query_map([], |x| Ok((x.get(0)?, x.get(1)?)))
        .map_err(&lerr)?
        .collect::<rusqlite::Result<_>>()
        .map_err(&lerr)?;
    for (path, ended) in named {
        r.kept_files += ended as u64;
        if !exists(Path::new(&path))? {
            let what = if ended {
                "a kept snapshot"
            } else {
                "the current snapshot"
            };
            r.differences.push(diff(
                "missing_file",
                &path,
                &format!("{what} names it; it is not on disk"),
            ));
        }
    }
    Ok(r)
}

fn diff(kind: &'static str, path: &str, detail: &str) -> Difference {
    Difference {
        kind,
        path: path.to_string(),
        detail: detail.to_string(),
    }
}

fn exists(p: &Path) -> Result<bool> {
    if crate::store::is_remote(p) {
        return Ok(crate::store::for_path(p)?.size(p)?.is_some());
    }
    Ok(p.exists())
}

/// What `lake rebuild` did.
#[derive(Debug, Clone, Serialize)]
pub struct Rebuilt {
    pub lake: String,
    pub snapshot: Option<i64>,
    pub files: u64,
    pub unreadable: Vec<String>,
    pub note: &'static str,
}

/// Write a fresh lake from the catalog and put it in place of the old one:
/// a new snapshot history (older snapshots, and the files only they named,
/// are forgotten).
pub fn rebuild(cfg: &Config, db: &Db) -> Result<Rebuilt> {
    let path = cfg.lake_path();
    let tmp = path.with_extension("rebuild.tmp");
    for p in [tmp.clone(), side(&tmp, "-wal"), side(&tmp, "-shm")] {
        let _ = std::fs::remove_file(&p);
    }
    let _one = super::SYNC.lock().unwrap_or_else(|e| e.into_inner());
    let synced = {
        let lake = Lake::open_at(cfg, &tmp)?;
        let s = super::sync_into(cfg, &db.conn, &lake, None)?;
        lake.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE;")
            .map_err(db_err(&tmp))?;
        s
    };
    for p in [side(&path, "-wal"), side(&path, "-shm")] {
        let _ = std::fs::remove_file(&p);
    }
    std::fs::rename(&tmp, &path).map_err(Error::io("rename", &tmp))?;
    if let Some(dir) = path.parent() {
        crate::fsutil::fsync_dir(dir)?;
    }
    Ok(Rebuilt {
        lake: path.display().to_string(),
        snapshot: synced.snapshot,
        files: synced.added,
        unreadable: synced.unreadable,
        note: "a new snapshot history starts here: snapshots of the old lake (and time travel to them) are gone",
    })
}

fn side(p: &Path, suffix: &str) -> std::path::PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    s.into()
}
