//! `maintain`: scan → compact → rollup → retention → tier → quota, under one lock.
//!
//! Owns the maintenance lock (a row in SQLite with the owner's pid and a
//! heartbeat; a lock whose owner is gone or silent is taken over) and the
//! order of the steps. Each step is its own module. Rollup runs before
//! retention so expiring trades have their candles first.

use std::path::Path;
use std::time::Duration;

use indicatif::ProgressBar;
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use crate::catalog::scan::{scan, ScanReport};
use crate::compaction::{self, Metrics};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::quota::{self, QuotaReport};
use crate::retention::{self, RetentionMetrics};
use crate::rollup::{self, RollupMetrics};
use crate::state::{now_ns, Db};
use crate::tiering::{self, TierMetrics};

pub const MAINTENANCE_LOCK: &str = "maintenance";

/// A silent owner for this long has lost its lock.
const STALE_AFTER: Duration = Duration::from_secs(600);

/// A held named lock; released on drop.
pub struct Lock<'a> {
    db: &'a Db,
    name: &'static str,
}

impl<'a> Lock<'a> {
    pub fn acquire(db: &'a Db, name: &'static str) -> Result<Lock<'a>> {
        let me = std::process::id() as i64;
        // IMMEDIATE: two runs starting together cannot both see the lock free.
        let tx = rusqlite::Transaction::new_unchecked(&db.conn, rusqlite::TransactionBehavior::Immediate)
            .map_err(db.err())?;
        let held: Option<(i64, i64, i64)> = tx
            .query_row(
                "SELECT pid, acquired_at, heartbeat_at FROM locks WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(db.err())?;
        let now = now_ns();
        if let Some((pid, since, beat)) = held {
            let alive = pid == me || Path::new(&format!("/proc/{pid}")).exists();
            let fresh = now - beat < STALE_AFTER.as_nanos() as i64;
            if pid != me && alive && fresh {
                return Err(Error::Busy(format!(
                    "{name} is already running (pid {pid}, since {})",
                    crate::catalog::rfc3339(since)
                )));
            }
            if pid != me {
                tracing::warn!(lock = name, stale_pid = pid, "taking over a stale lock");
            }
        }
        tx.execute(
            "INSERT INTO locks (name, pid, acquired_at, heartbeat_at) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (name) DO UPDATE SET pid = excluded.pid, acquired_at = excluded.acquired_at, heartbeat_at = excluded.heartbeat_at",
            params![name, me, now],
        )
        .map_err(db.err())?;
        tx.commit().map_err(db.err())?;
        Ok(Lock { db, name })
    }

    pub fn heartbeat(&self) -> Result<()> {
        self.db
            .conn
            .execute(
                "UPDATE locks SET heartbeat_at = ?2 WHERE name = ?1 AND pid = ?3",
                params![self.name, now_ns(), std::process::id() as i64],
            )
            .map_err(self.db.err())?;
        Ok(())
    }
}

impl Drop for Lock<'_> {
    fn drop(&mut self) {
        let _ = self.db.conn.execute(
            "DELETE FROM locks WHERE name = ?1 AND pid = ?2",
            params![self.name, std::process::id() as i64],
        );
    }
}

#[derive(Debug, Default, Serialize)]
pub struct MaintainReport {
    pub dry_run: bool,
    pub scan: Option<ScanReport>,
    pub compact: Metrics,
    pub rollup: RollupMetrics,
    pub retention: RetentionMetrics,
    pub tier: TierMetrics,
    pub quota: QuotaReport,
}

impl MaintainReport {
    pub fn quota_unmet(&self) -> bool {
        self.quota.plan.unmet.is_some()
    }
}

/// Run every step in order. A dry run skips the scan (it writes the catalog)
/// and reports each later step's plan against the catalog as it is.
pub fn maintain(cfg: &Config, db: &mut Db, dry_run: bool, progress: &ProgressBar) -> Result<MaintainReport> {
    let mut r = MaintainReport {
        dry_run,
        ..Default::default()
    };
    if dry_run {
        r.compact = compaction::dry_run_metrics(&compaction::plan(cfg, db, &Default::default())?);
        let up = rollup::plan(cfg, db, None)?;
        r.rollup.dry_run = true;
        r.rollup.partitions = up.items.len() as u64;
        r.rollup.trades = up.items.iter().map(|i| i.rows).sum();
        let rp = retention::plan(cfg, db, None)?;
        r.retention.dry_run = true;
        r.retention.partitions_dropped = rp.drops.len() as u64;
        r.retention.bytes_removed = rp.drops.iter().map(|d| d.bytes).sum();
        let tp = tiering::plan(cfg, db, None)?;
        r.tier.dry_run = true;
        r.tier.moves = tp.moves.len() as u64;
        r.tier.totals.bytes_in = tp.moves.iter().map(|m| m.bytes).sum();
        r.quota = QuotaReport {
            dry_run: true,
            plan: quota::plan(cfg, db, None)?,
            ..Default::default()
        };
        return Ok(r);
    }
    let db_path = db.path.clone();
    let lock_db = Db::open(&db_path)?;
    let lock = Lock::acquire(&lock_db, MAINTENANCE_LOCK)?;
    r.scan = Some(scan(cfg, db, progress)?);
    lock.heartbeat()?;
    let plan = compaction::plan(cfg, db, &Default::default())?;
    r.compact = compaction::execute(cfg, db, &plan, progress)?;
    lock.heartbeat()?;
    let plan = rollup::plan(cfg, db, None)?;
    r.rollup = rollup::execute(cfg, db, &plan, progress)?;
    lock.heartbeat()?;
    let plan = retention::plan(cfg, db, None)?;
    r.retention = retention::execute(cfg, db, &plan)?;
    lock.heartbeat()?;
    let plan = tiering::plan(cfg, db, None)?;
    r.tier = tiering::execute(cfg, db, &plan, progress)?;
    lock.heartbeat()?;
    let plan = quota::plan(cfg, db, None)?;
    r.quota = quota::execute(cfg, db, plan)?;
    drop(lock);
    Ok(r)
}
