//! The schedule: which maintenance task is due when, and what happened.
//!
//! Owns the decisions, not the running: [`Scheduler`] holds each task's
//! cron expression and next run, says which tasks to start when the clock
//! reaches them, skips a run whose previous one is still going (overlap
//! policy: forbid), and after downtime starts the latest missed run once if
//! it is within `daemon.starting_deadline`, never a burst of replays. The
//! next run times and last results are persisted in the `schedules` table,
//! so `mdkeep schedule ls` and a restarted daemon see them. The async
//! driver ([`driver`]) sleeps until the next run or a shutdown.

pub mod cron;
pub mod driver;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::state::Db;
pub use cron::CronExpr;

/// What a scheduler asks of its runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Start {
        task: String,
        scheduled: DateTime<Utc>,
    },
    /// Due while its previous run is still going: skipped and recorded.
    SkipOverlap {
        task: String,
        scheduled: DateTime<Utc>,
    },
    /// Missed during downtime, beyond the starting deadline: not run.
    SkipMissed {
        task: String,
        scheduled: DateTime<Utc>,
    },
}

struct Entry {
    cron: CronExpr,
    next: Option<DateTime<Utc>>,
    running: bool,
}

pub struct Scheduler {
    entries: BTreeMap<String, Entry>,
}

impl Scheduler {
    /// Schedules from config; `persisted` holds each task's next run as
    /// stored before a restart. Missed runs are decided here, once.
    pub fn new(
        specs: Vec<(String, CronExpr)>,
        persisted: &BTreeMap<String, DateTime<Utc>>,
        now: DateTime<Utc>,
        deadline: std::time::Duration,
    ) -> (Scheduler, Vec<Decision>) {
        let mut entries = BTreeMap::new();
        let mut decisions = Vec::new();
        for (task, cron) in specs {
            if let Some(&missed) = persisted.get(&task).filter(|t| **t <= now) {
                // Only the latest missed run matters: walk to it.
                let mut latest = missed;
                while let Some(n) = cron.next_after(latest).filter(|n| *n <= now) {
                    latest = n;
                }
                let late = (now - latest).to_std().unwrap_or_default();
                decisions.push(if late <= deadline {
                    Decision::Start {
                        task: task.clone(),
                        scheduled: latest,
                    }
                } else {
                    Decision::SkipMissed {
                        task: task.clone(),
                        scheduled: latest,
                    }
                });
            }
            let next = match persisted.get(&task) {
                Some(t) if *t > now => Some(*t),
                _ => cron.next_after(now),
            };
            entries.insert(
                task,
                Entry {
                    cron,
                    next,
                    running: false,
                },
            );
        }
        let mut s = Scheduler { entries };
        for d in &decisions {
            if let Decision::Start { task, .. } = d {
                s.entries.get_mut(task).expect("just inserted").running = true;
            }
        }
        (s, decisions)
    }

    /// The earliest next run, if any task has one.
    pub fn next_wake(&self) -> Option<DateTime<Utc>> {
        self.entries.values().filter_map(|e| e.next).min()
    }

    pub fn next_run(&self, task: &str) -> Option<DateTime<Utc>> {
        self.entries.get(task).and_then(|e| e.next)
    }

    /// Every task whose run is due at `now`; each due task's next run moves
    /// past `now`, so one late wake-up never replays several runs.
    pub fn due(&mut self, now: DateTime<Utc>) -> Vec<Decision> {
        let mut out = Vec::new();
        for (task, e) in &mut self.entries {
            let Some(at) = e.next.filter(|t| *t <= now) else {
                continue;
            };
            e.next = e.cron.next_after(now);
            if e.running {
                out.push(Decision::SkipOverlap {
                    task: task.clone(),
                    scheduled: at,
                });
            } else {
                e.running = true;
                out.push(Decision::Start {
                    task: task.clone(),
                    scheduled: at,
                });
            }
        }
        out
    }

    pub fn finished(&mut self, task: &str) {
        if let Some(e) = self.entries.get_mut(task) {
            e.running = false;
        }
    }

    pub fn is_running(&self, task: &str) -> bool {
        self.entries.get(task).is_some_and(|e| e.running)
    }
}

/// The schedules a config declares, parsed; errors name the key.
pub fn from_config(cfg: &Config) -> Result<Vec<(String, CronExpr)>> {
    let mut out = Vec::new();
    for (task, s) in &cfg.schedule {
        if !s.enabled {
            continue;
        }
        let cron = CronExpr::parse(&s.cron, s.timezone.as_deref()).map_err(|message| Error::Config {
            source_name: cfg.source.clone(),
            key: format!("schedule.{task}.cron"),
            message,
        })?;
        out.push((task.clone(), cron));
    }
    Ok(out)
}

/// One row of `mdkeep schedule ls`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ScheduleRow {
    pub task: String,
    pub cron: String,
    pub timezone: String,
    pub next_run: Option<String>,
    pub last_start: Option<String>,
    pub last_end: Option<String>,
    pub last_result: Option<String>,
    pub last_success: Option<String>,
    pub last_duration_ms: Option<i64>,
    pub failures: i64,
    pub skipped: i64,
}

fn rfc(t: Option<i64>) -> Option<String> {
    t.map(crate::time::rfc3339)
}

/// Stored state of every configured task (next run computed when none is stored).
pub fn list(cfg: &Config, db: &Db) -> Result<Vec<ScheduleRow>> {
    let mut out = Vec::new();
    for (task, s) in &cfg.schedule {
        let row = db
            .conn
            .query_row(
                "SELECT next_run, last_start, last_end, last_result, last_success, last_duration_ms, failures, skipped
                 FROM schedules WHERE task = ?1",
                [task],
                |r| {
                    Ok(ScheduleRow {
                        next_run: rfc(r.get(0)?),
                        last_start: rfc(r.get(1)?),
                        last_end: rfc(r.get(2)?),
                        last_result: r.get(3)?,
                        last_success: rfc(r.get(4)?),
                        last_duration_ms: r.get(5)?,
                        failures: r.get(6)?,
                        skipped: r.get(7)?,
                        ..Default::default()
                    })
                },
            )
            .optional()
            .map_err(db.err())?;
        let mut row = row.unwrap_or_default();
        if row.next_run.is_none() && s.enabled {
            row.next_run = CronExpr::parse(&s.cron, s.timezone.as_deref())
                .ok()
                .and_then(|c| c.next_after(Utc::now()))
                .map(|t| crate::time::rfc3339(t.timestamp_nanos_opt().unwrap_or(0)));
        }
        row.task = task.clone();
        row.cron = if s.enabled {
            s.cron.clone()
        } else {
            format!("{} (disabled)", s.cron)
        };
        row.timezone = s.timezone.clone().unwrap_or_else(|| "UTC".into());
        out.push(row);
    }
    Ok(out)
}

/// Next run times as persisted.
pub fn persisted_next(db: &Db) -> Result<BTreeMap<String, DateTime<Utc>>> {
    let mut st = db
        .conn
        .prepare("SELECT task, next_run FROM schedules WHERE next_run IS NOT NULL")
        .map_err(db.err())?;
    let rows = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .map_err(db.err())?;
    let mut out = BTreeMap::new();
    for r in rows {
        let (task, ns) = r.map_err(db.err())?;
        out.insert(task, DateTime::from_timestamp_nanos(ns));
    }
    Ok(out)
}

fn ns(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// Record a task's next run.
pub fn store_next(db: &Db, task: &str, next: Option<DateTime<Utc>>) -> Result<()> {
    db.conn
        .execute(
            "INSERT INTO schedules (task, next_run) VALUES (?1, ?2)
             ON CONFLICT (task) DO UPDATE SET next_run = excluded.next_run",
            params![task, next.map(ns)],
        )
        .map_err(db.err())?;
    Ok(())
}

/// Record the start of a run.
pub fn record_start(db: &Db, task: &str, at: DateTime<Utc>) -> Result<()> {
    db.conn
        .execute(
            "INSERT INTO schedules (task, last_start, last_result) VALUES (?1, ?2, 'running')
             ON CONFLICT (task) DO UPDATE SET last_start = excluded.last_start, last_result = 'running'",
            params![task, ns(at)],
        )
        .map_err(db.err())?;
    Ok(())
}

/// Record the end of a run: `result` is `ok` or the error. `failures`
/// counts the failed runs in a row (a success sets it back to 0).
pub fn record_end(db: &Db, task: &str, at: DateTime<Utc>, ok: bool, result: &str, duration_ms: i64) -> Result<()> {
    db.conn
        .execute(
            "INSERT INTO schedules (task, last_end, last_result, last_duration_ms, last_success, failures)
             VALUES (?1, ?2, ?3, ?4, CASE WHEN ?5 THEN ?2 END, CASE WHEN ?5 THEN 0 ELSE 1 END)
             ON CONFLICT (task) DO UPDATE SET last_end = excluded.last_end, last_result = excluded.last_result,
                 last_duration_ms = excluded.last_duration_ms,
                 last_success = CASE WHEN ?5 THEN excluded.last_end ELSE schedules.last_success END,
                 failures = CASE WHEN ?5 THEN 0 ELSE schedules.failures + 1 END",
            params![task, ns(at), result, duration_ms, ok],
        )
        .map_err(db.err())?;
    Ok(())
}

/// The last end of `task`'s runs: (when, whether it succeeded, the result
/// text), or `None` when it never ended.
pub fn last_run(db: &Db, task: &str) -> Result<Option<(i64, bool, String)>> {
    let row: Option<(Option<i64>, Option<i64>, Option<String>)> = db
        .conn
        .query_row(
            "SELECT last_end, last_success, last_result FROM schedules WHERE task = ?1",
            [task],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(db.err())?;
    Ok(row.and_then(|(end, success, result)| {
        let end = end?;
        Some((end, success == Some(end), result.unwrap_or_default()))
    }))
}

/// Record a skipped run (overlap or missed).
pub fn record_skip(db: &Db, task: &str, why: &str) -> Result<()> {
    db.conn
        .execute(
            "INSERT INTO schedules (task, skipped, last_skip) VALUES (?1, 1, ?2)
             ON CONFLICT (task) DO UPDATE SET skipped = schedules.skipped + 1, last_skip = excluded.last_skip",
            params![task, why],
        )
        .map_err(db.err())?;
    Ok(())
}

#[cfg(test)]
mod tests;

/// What the state database says of one task's runs, for `/metrics`.
#[derive(Debug, Clone)]
pub struct TaskStatus {
    pub task: String,
    pub last_success_ns: Option<i64>,
    pub last_duration_ms: Option<i64>,
    pub failures: i64,
    pub skipped: i64,
}

/// Every task the state database has runs of.
pub fn status_rows(db: &Db) -> Result<Vec<TaskStatus>> {
    let mut st = db
        .conn
        .prepare("SELECT task, last_success, last_duration_ms, failures, skipped FROM schedules ORDER BY task")
        .map_err(db.err())?;
    let rows = st
        .query_map([], |r| {
            Ok(TaskStatus {
                task: r.get(0)?,
                last_success_ns: r.get(1)?,
                last_duration_ms: r.get(2)?,
                failures: r.get(3)?,
                skipped: r.get(4)?,
            })
        })
        .map_err(db.err())?;
    rows.collect::<rusqlite::Result<_>>().map_err(db.err())
}
