//! What the report learned about a file, kept while the file is unchanged.
//!
//! Owns the `report_uncompressed` and `report_buckets` tables: a file's
//! uncompressed size (from its footer) and the cadence buckets its rows
//! fall in (from its time column), keyed by tier and path and valid while
//! the catalog's size and mtime match. A daily report then reads only new
//! files, which matters most on a store tier, where every read is a
//! request. It does not decide what the figures mean (`gaps`, `mod`).
//! Writes are best-effort: a busy database costs a re-read, never a report.

use rusqlite::{params, OptionalExtension};

use crate::catalog::CatalogFile;
use crate::config::Config;
use crate::error::Result;
use crate::state::Db;

pub(crate) struct Facts<'a> {
    cfg: &'a Config,
    db: &'a Db,
}

impl<'a> Facts<'a> {
    /// Forget files that left the catalog.
    pub fn new(cfg: &'a Config, db: &'a Db) -> Facts<'a> {
        for t in ["report_uncompressed", "report_buckets"] {
            let _ = db.conn.execute(
                &format!(
                    "DELETE FROM {t} WHERE NOT EXISTS
                       (SELECT 1 FROM files f WHERE f.tier = {t}.tier AND f.relpath = {t}.relpath)"
                ),
                [],
            );
        }
        Facts { cfg, db }
    }

    pub fn uncompressed(&self, f: &CatalogFile) -> Result<u64> {
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
            return Ok(u as u64);
        }
        let path = self.cfg.tier_root(&f.tier)?.join(&f.file.relpath);
        let u = crate::parquet_io::uncompressed_bytes(&path)?;
        let _ = self.db.conn.execute(
            "INSERT OR REPLACE INTO report_uncompressed (tier, relpath, bytes, mtime_ns, uncompressed)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![f.tier, f.file.relpath, f.file.bytes as i64, f.file.mtime_ns, u as i64],
        );
        Ok(u)
    }

    /// The distinct `cadence` buckets (time / cadence) the file has rows in, ascending.
    pub fn buckets(&self, f: &CatalogFile, time_column: &str, cadence: i64) -> Result<Vec<i64>> {
        let hit: Option<Vec<u8>> = self
            .db
            .conn
            .query_row(
                "SELECT buckets FROM report_buckets
                 WHERE tier = ?1 AND relpath = ?2 AND bytes = ?3 AND mtime_ns = ?4 AND cadence = ?5",
                params![f.tier, f.file.relpath, f.file.bytes as i64, f.file.mtime_ns, cadence],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.db.err())?;
        if let Some(v) = hit.and_then(|b| decode(&b)) {
            return Ok(v);
        }
        let path = self.cfg.tier_root(&f.tier)?.join(&f.file.relpath);
        let mut set = std::collections::BTreeSet::new();
        crate::parquet_io::for_each_time(&path, time_column, |ts| {
            set.extend(ts.iter().map(|t| t.div_euclid(cadence)));
        })?;
        let v: Vec<i64> = set.into_iter().collect();
        let _ = self.db.conn.execute(
            "INSERT OR REPLACE INTO report_buckets (tier, relpath, bytes, mtime_ns, cadence, buckets)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                f.tier,
                f.file.relpath,
                f.file.bytes as i64,
                f.file.mtime_ns,
                cadence,
                encode(&v)
            ],
        );
        Ok(v)
    }
}

/// Ascending buckets as zstd-compressed little-endian deltas (mostly 1s).
fn encode(v: &[i64]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(v.len() * 8);
    let mut prev = 0i64;
    for &b in v {
        raw.extend_from_slice(&b.wrapping_sub(prev).to_le_bytes());
        prev = b;
    }
    zstd::bulk::compress(&raw, 3).unwrap_or_default()
}

fn decode(b: &[u8]) -> Option<Vec<i64>> {
    let raw = zstd::stream::decode_all(b).ok()?;
    let mut prev = 0i64;
    Some(
        raw.chunks_exact(8)
            .map(|c| {
                prev = prev.wrapping_add(i64::from_le_bytes(c.try_into().expect("8 bytes")));
                prev
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_round_trip() {
        let v = vec![-5, 0, 1, 2, 3, 1_000_000_007, i64::MAX / 2];
        assert_eq!(decode(&encode(&v)).unwrap(), v);
        assert_eq!(decode(&encode(&[])).unwrap(), Vec::<i64>::new());
    }
}
