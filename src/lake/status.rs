//! The lake at a glance, for `ls`, the report, `/status` and the dashboard:
//! its snapshots (how many, the newest, the oldest kept and when), its live
//! files, and what is kept on disk only for old snapshots.
//!
//! Owns nothing but the reading: a lake that cannot be read is reported in
//! `error`, never a failure of the page or command that shows it.

use rusqlite::OptionalExtension;
use serde::Serialize;

use super::Lake;
use crate::config::Config;

/// The lake's figures.
#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct LakeStatus {
    pub path: String,
    pub snapshots: u64,
    pub latest_snapshot: Option<i64>,
    /// The oldest snapshot still kept (a reader can time-travel back to it).
    pub oldest_snapshot: Option<i64>,
    /// When it was taken, RFC 3339.
    pub oldest_time: Option<String>,
    pub live_files: u64,
    pub live_bytes: u64,
    /// Retired files kept on disk only because a kept snapshot names them.
    pub kept_files: u64,
    pub kept_bytes: u64,
    /// Why the lake could not be read, when it could not.
    pub error: Option<String>,
}

/// The lake's status; `None` when the lake is off or not written yet.
pub fn status(cfg: &Config) -> Option<LakeStatus> {
    if !cfg.lake.enabled {
        return None;
    }
    let path = cfg.lake_path();
    let mut s = LakeStatus {
        path: path.display().to_string(),
        ..Default::default()
    };
    match Lake::open_existing(cfg) {
        Ok(None) => return None,
        Ok(Some(lake)) => {
            if let Err(e) = read(&lake, &mut s) {
                s.error = Some(format!("{}: {e}", path.display()));
            }
        }
        Err(e) => s.error = Some(e.to_string()),
    }
    Some(s)
}

fn read(lake: &Lake, s: &mut LakeStatus) -> rusqlite::Result<()> {
    let c = &lake.conn;
    (s.snapshots, s.latest_snapshot, s.oldest_snapshot) = c.query_row(
        "SELECT count(*), max(snapshot_id), min(snapshot_id) FROM ducklake_snapshot",
        [],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?)),
    )?;
    s.oldest_time = match s.oldest_snapshot {
        Some(id) => c
            .query_row(
                "SELECT snapshot_time FROM ducklake_snapshot WHERE snapshot_id = ?1",
                [id],
                |r| r.get::<_, String>(0),
            )
            .optional()?,
        None => None,
    };
    let figures = |ended: bool| {
        c.query_row(
            &format!(
                "SELECT count(*), coalesce(sum(file_size_bytes), 0) FROM ducklake_data_file WHERE end_snapshot IS {}NULL",
                if ended { "NOT " } else { "" }
            ),
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )
    };
    (s.live_files, s.live_bytes) = figures(false)?;
    (s.kept_files, s.kept_bytes) = figures(true)?;
    Ok(())
}

impl LakeStatus {
    /// One line for `ls` and the text report.
    pub fn line(&self) -> String {
        use crate::config::units::human_bytes;
        if let Some(e) = &self.error {
            return format!("lake {}: unreadable ({e})", self.path);
        }
        format!(
            "lake {}: {} snapshots (latest {}, oldest kept {}{}), {} live files ({}), {} files kept only for old snapshots ({})",
            self.path,
            self.snapshots,
            opt(self.latest_snapshot),
            opt(self.oldest_snapshot),
            self.oldest_time.as_deref().map(|t| format!(" of {t}")).unwrap_or_default(),
            self.live_files,
            human_bytes(self.live_bytes),
            self.kept_files,
            human_bytes(self.kept_bytes),
        )
    }
}

/// A snapshot id, or `-`.
pub fn opt(v: Option<i64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}
