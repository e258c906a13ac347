//! One memory budget for jobs and maintenance.
//!
//! Owns the `reservations` table: a maintenance task (a daemon schedule)
//! reserves its memory from `jobs.memory_budget` before it starts and gives
//! it back when it ends. The worker counts those rows, with its running
//! jobs, before it admits a job, so a backtest and a compaction never
//! together pass the budget. A row whose process is gone does not count; a
//! process is its pid and start time, so a reused pid revives no row.

use std::time::Duration;

use rusqlite::params;

use crate::config::{Config, WhenBusy};
use crate::error::Result;
use crate::state::{now_ns, Db};

/// Bytes reserved by live maintenance owners.
pub fn maintenance_reserved(db: &Db) -> Result<u64> {
    let mut st = db
        .conn
        .prepare("SELECT pid, pid_start, bytes FROM reservations")
        .map_err(db.err())?;
    let rows = st
        .query_map([], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?, r.get::<_, i64>(2)?))
        })
        .map_err(db.err())?;
    let mut sum = 0u64;
    for r in rows {
        let (pid, start, bytes) = r.map_err(db.err())?;
        let live = match start {
            Some(start) => crate::proc::same(pid, start as u64),
            // Written before rows had a start time.
            None => crate::proc::alive(pid),
        };
        if live {
            sum += bytes.max(0) as u64;
        }
    }
    Ok(sum)
}

/// Bytes of the budget in use: running jobs and maintenance tasks.
pub fn in_use(db: &Db) -> Result<u64> {
    Ok(super::queue::reserved_by_running(db)? + maintenance_reserved(db)?)
}

/// Memory held by a maintenance task until dropped.
pub struct Reservation<'a> {
    db: &'a Db,
    owner: String,
    pub bytes: u64,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let _ = self
            .db
            .conn
            .execute("DELETE FROM reservations WHERE owner = ?1", [&self.owner]);
    }
}

/// Reserve `want` bytes for `owner`: waits while jobs and other tasks hold
/// too much (`when_busy = "wait"`), or takes what is left
/// (`"shrink"`, at least 16MiB). `stop` ends a wait with `None`.
pub fn reserve<'a>(
    cfg: &Config,
    db: &'a Db,
    owner: &str,
    want: u64,
    stop: &dyn Fn() -> bool,
) -> Result<Option<Reservation<'a>>> {
    const FLOOR: u64 = 16 << 20;
    let budget = cfg.jobs.memory_budget.0;
    let mut logged = false;
    loop {
        let used = in_use(db)?;
        let free = budget.saturating_sub(used);
        let bytes = match cfg.daemon.when_busy {
            _ if free >= want => Some(want),
            WhenBusy::Shrink if free >= FLOOR => Some(free),
            _ => None,
        };
        if let Some(bytes) = bytes {
            db.conn
                .execute(
                    "INSERT OR REPLACE INTO reservations (owner, pid, pid_start, bytes, at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        owner,
                        std::process::id(),
                        crate::proc::my_start_time() as i64,
                        bytes as i64,
                        now_ns()
                    ],
                )
                .map_err(db.err())?;
            return Ok(Some(Reservation {
                db,
                owner: owner.to_string(),
                bytes,
            }));
        }
        if !logged {
            tracing::info!(task = owner, want, free, "waiting for room in the memory budget");
            logged = true;
        }
        if stop() {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(when_busy: &str) -> (tempfile::TempDir, Config, Db) {
        let dir = tempfile::tempdir().unwrap();
        let env = vec![
            ("MDKEEP__JOBS__MEMORY_BUDGET".to_string(), "1GiB".to_string()),
            ("MDKEEP__DAEMON__WHEN_BUSY".to_string(), when_busy.to_string()),
        ];
        let cfg = Config::load(dir.path(), None, env).unwrap();
        std::fs::create_dir_all(cfg.state_db().parent().unwrap()).unwrap();
        let db = Db::open(&cfg.state_db()).unwrap();
        // A running job holds 900 MiB of the 1 GiB budget.
        db.conn
            .execute(
                "INSERT INTO jobs (name, framework, grp, spec, spec_dir, fingerprint, priority, retries, state,
                                   reserved_bytes, timeout_ms, dir, queued_at)
                 VALUES ('big', 'command', 'command', '{}', '.', 'x', 0, 0, 'running', ?1, 1000, '', 0)",
                [900i64 << 20],
            )
            .unwrap();
        (dir, cfg, db)
    }

    #[test]
    fn a_task_waits_for_room_or_shrinks_to_what_is_left() {
        let (_d, cfg, db) = setup("wait");
        assert_eq!(crate::jobs::queue::reserved_by_running(&db).unwrap(), 900 << 20);
        // 256 MiB does not fit next to the job: a wait that is told to stop gives up.
        let r = reserve(&cfg, &db, "task:compact", 256 << 20, &|| true).unwrap();
        assert!(r.is_none());
        assert_eq!(maintenance_reserved(&db).unwrap(), 0);
        // 64 MiB fits, and counts until dropped.
        let r = reserve(&cfg, &db, "task:scan", 64 << 20, &|| true).unwrap().unwrap();
        assert_eq!((r.bytes, maintenance_reserved(&db).unwrap()), (64 << 20, 64 << 20));
        drop(r);
        assert_eq!(maintenance_reserved(&db).unwrap(), 0);

        let (_d, cfg, db) = setup("shrink");
        let r = reserve(&cfg, &db, "task:compact", 256 << 20, &|| true)
            .unwrap()
            .unwrap();
        assert_eq!(r.bytes, 124 << 20, "what the job leaves of the budget");
    }
}
