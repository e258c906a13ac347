//! What the report learned about a file, kept while the file is unchanged.
//!
//! Owns the `report_uncompressed` table: a file's uncompressed size (from
//! its footer), keyed by tier and path and valid while the catalog's size
//! and mtime match. A daily report then reads only new files, which
//! matters most on a store tier, where every read is a request. The cadence
//! buckets behind gaps and coverage are the coverage index's (`coverage`).
//! Writes are best-effort: a busy database costs a re-read, never a report.

use rusqlite::{params, OptionalExtension};

use crate::catalog::CatalogFile;
use crate::config::Config;
use crate::error::Result;
use crate::state::Db;

pub(crate) struct Facts<'a> {
    pub cfg: &'a Config,
    pub db: &'a Db,
    /// Whether a file this cache does not know yet is read ([`super::Reads`]).
    pub read_files: bool,
}

impl<'a> Facts<'a> {
    /// Forget files that left the catalog.
    pub fn new(cfg: &'a Config, db: &'a Db, read_files: bool) -> Facts<'a> {
        let _ = db.conn.execute(
            "DELETE FROM report_uncompressed WHERE NOT EXISTS
               (SELECT 1 FROM files f WHERE f.tier = report_uncompressed.tier AND f.relpath = report_uncompressed.relpath)",
            [],
        );
        crate::coverage::forget_gone(db);
        Facts { cfg, db, read_files }
    }

    /// A file's uncompressed size; `None` when it is not cached and files
    /// are not to be read.
    pub fn uncompressed(&self, f: &CatalogFile) -> Result<Option<u64>> {
        let hit: Option<i64> = self
            .db
            .conn
            .query_row(
                "SELECT uncompressed FROM report_uncompressed
                 WHERE tier = ?1 AND relpath = ?2 AND bytes = ?3 AND mtime_ns = ?4",
                params![f.tier, f.file.relpath, f.file.bytes as i64, f.file.mtime_ns],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.db.err())?;
        if let Some(u) = hit {
            return Ok(Some(u as u64));
        }
        if !self.read_files {
            return Ok(None);
        }
        let path = self.cfg.tier_root(&f.tier)?.join(&f.file.relpath);
        let u = crate::parquet_io::uncompressed_bytes(&path)?;
        let _ = self.db.conn.execute(
            "INSERT OR REPLACE INTO report_uncompressed (tier, relpath, bytes, mtime_ns, uncompressed)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![f.tier, f.file.relpath, f.file.bytes as i64, f.file.mtime_ns, u as i64],
        );
        Ok(Some(u))
    }
}
