//! One scheduled task, run to its end on a blocking thread.
//!
//! Owns the order of things around a step: queue for the data lock (so a
//! CLI command and the daemon's own tasks never overlap; a task waits its
//! turn rather than failing), reserve memory from the jobs' budget, run the
//! step, and say what it did in one line. The steps themselves are the
//! library's.

use crate::progress::Silent;

use crate::config::{Config, Task};
use crate::error::Failure;
use crate::jobs::budget;
use crate::lock::{DataLock, Wait};
use crate::outcome::{self, Outcome};
use crate::shutdown::Shutdown;
use crate::state::Db;
use crate::{compaction, quota, retention, rollup, tiering};

/// Tasks that rewrite data reserve `compaction.memory_limit`; the others
/// read footers and the catalog, which the budget's margin covers.
fn needs_memory(task: Task) -> bool {
    !matches!(task, Task::Scan | Task::Report | Task::Verify)
}

/// Run the task a schedule names; `Ok(summary)` or `Err(message)`.
pub fn run_task(cfg: &Config, name: &str, shutdown: &Shutdown) -> Result<String, String> {
    let task: Task = name.parse()?;
    // Waiting (for the lock or for memory) gives up once the daemon drains.
    let stop = &|| shutdown.is_draining();
    let go = || -> crate::error::Result<Result<String, String>> {
        let mut db = Db::open(&cfg.state_db())?;
        let res_db = Db::open(&cfg.state_db())?;
        // Reports only read; every other task changes data.
        let lock = if task == Task::Report {
            None
        } else {
            match DataLock::acquire(cfg, &format!("daemon task {task}"), Wait::Until(stop))? {
                Some(l) => Some(l),
                None => return Ok(Ok("not started: shutting down while waiting for the data lock".into())),
            }
        };
        let mut cfg = cfg.clone();
        let _reservation = if needs_memory(task) {
            match budget::reserve(
                &cfg,
                &res_db,
                &format!("task:{task}"),
                cfg.compaction.memory_limit.0,
                stop,
            )? {
                Some(r) => {
                    // Shrunk to what the budget had left.
                    cfg.compaction.memory_limit.0 = r.bytes;
                    Some(r)
                }
                None => return Ok(Ok("not started: shutting down while waiting for memory".into())),
            }
        } else {
            None
        };
        perform(&cfg, &mut db, task, lock.as_ref())
    };
    go().map_err(|e| e.to_string())?
}

/// Run `task` once its lock and memory are held; `Ok(Err(..))` is a run
/// that ended with failures.
fn perform(
    cfg: &Config,
    db: &mut Db,
    task: Task,
    lock: Option<&DataLock>,
) -> crate::error::Result<Result<String, String>> {
    let pb = Silent;
    Ok(Ok(match task {
        Task::Scan => {
            let r = crate::maintenance::settled_scan(cfg, db, &pb)?;
            format!("added {}, updated {}, removed {}", r.added, r.updated, r.removed)
        }
        Task::Compact => {
            let plan = compaction::plan(cfg, db, &Default::default())?;
            let m = compaction::execute(cfg, db, &plan, &pb)?;
            let summary = format!(
                "rewrote {} partitions: {} files → {}{}",
                m.totals.partitions_rewritten,
                m.totals.files_in,
                m.totals.files_out,
                Failure::summary(&m.failures)
            );
            return Ok(Outcome::of_failures(&m.failures).task_result(summary));
        }
        Task::Rollup => {
            let plan = rollup::plan(cfg, db, None)?;
            let m = rollup::execute(cfg, db, &plan, &pb)?;
            let summary = format!("rolled up {} partitions{}", m.partitions, Failure::summary(&m.failures));
            return Ok(Outcome::of_failures(&m.failures).task_result(summary));
        }
        Task::Retention => {
            let plan = retention::plan(cfg, db, None)?;
            let m = retention::execute(cfg, db, &plan)?;
            let summary = format!(
                "dropped {}, trimmed {}{}",
                m.partitions_dropped,
                m.partitions_trimmed,
                Failure::summary(&m.failures)
            );
            return Ok(Outcome::of_failures(&m.failures).task_result(summary));
        }
        Task::Tier => {
            let plan = tiering::plan(cfg, db, None)?;
            let m = tiering::execute(cfg, db, &plan, &pb)?;
            return Ok(m.outcome().task_result(format!("moved {} partitions", m.moves)));
        }
        Task::Quota => {
            let plan = quota::plan(cfg, db, None)?;
            let r = quota::execute(cfg, db, plan)?;
            return Ok(r
                .outcome()
                .task_result(format!("evicted {} partitions", r.evicted.partitions_dropped)));
        }
        Task::Report => {
            let dir = cfg.reports_dir();
            let p = crate::report::write_dated(cfg, db, &dir, cfg.daemon.keep_reports)?;
            format!("wrote {}", p.display())
        }
        Task::Verify => {
            let plan = crate::verify::plan(cfg, db, false)?;
            let r = crate::verify::execute(cfg, db, &plan, &pb)?;
            let summary = format!(
                "verified {} files, {} mismatches{}",
                r.checked,
                r.mismatches,
                Failure::summary(&r.failures)
            );
            return Ok(r.outcome().task_result(summary));
        }
        Task::Maintain => {
            let r = crate::maintenance::maintain(cfg, db, lock, false, &pb)?;
            return Ok(r.outcome().task_result(maintain_summary(&r)));
        }
    }))
}

/// One line for a maintain run: what each step did, and the failures
/// (an unreachable store's moves are in the outcome's own message).
fn maintain_summary(r: &crate::maintenance::MaintainReport) -> String {
    let failed: Vec<Failure> = r
        .failures
        .iter()
        .filter(|f| f.code != outcome::STORE_UNAVAILABLE)
        .cloned()
        .collect();
    format!(
        "compacted {} partitions, rolled up {}, dropped {}, moved {}, evicted {}{}",
        r.compact.totals.partitions_rewritten,
        r.rollup.partitions,
        r.retention.partitions_dropped,
        r.tier.moves,
        r.quota.evicted.partitions_dropped,
        Failure::summary(&failed)
    )
}
