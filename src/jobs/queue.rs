//! The job queue: a table in the state database.
//!
//! Owns job rows and their lifecycle: submit, atomic claim (`BEGIN
//! IMMEDIATE` and one `UPDATE … RETURNING` that also counts the attempt),
//! finish, cancel requests, retry, and the event log each transition
//! writes. Every state change is conditional on the state it was decided
//! from (`WHERE id = ? AND state = ?`, its change count checked), so a
//! cancel, a claim, a retry and recovery that race cannot run a job twice.
//! A run's end, in any state, releases the job's pins. Each job has a
//! folder of its own under `data/jobs/`, named so that it is never reused,
//! not even by a job of a new state database. Deciding *which* job to
//! claim is the runner's business.

use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};
use serde::Serialize;

use super::spec::JobSpec;
use crate::error::{Error, Result};
use crate::state::{now_ns, Db};
use crate::time::rfc3339;

pub use super::job::{Job, JobView, Lifecycle, Outcome};

const COLUMNS: &str = "id, name, framework, grp, spec, spec_dir, fingerprint, priority, retries, attempts, state,
     reserved_bytes, peak_bytes, limit_mechanism, exit_code, pgid, worker_pid, cancel_requested, timeout_ms,
     message, dir, queued_at, started_at, finished_at, slurm_id, data_fingerprint, data_rows, worker_run, pgid_start, data_snapshot";

fn from_row(r: &Row) -> rusqlite::Result<Job> {
    let spec_json: String = r.get(4)?;
    let spec: JobSpec = serde_json::from_str(&spec_json)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e)))?;
    let state: String = r.get(10)?;
    let (q, s, f): (i64, Option<i64>, Option<i64>) = (r.get(21)?, r.get(22)?, r.get(23)?);
    let life = match state.as_str() {
        "queued" => Lifecycle::Queued { queued_at: q },
        "running" => Lifecycle::Running {
            queued_at: q,
            started_at: s.unwrap_or(q),
        },
        other => Lifecycle::Done {
            queued_at: q,
            started_at: s,
            finished_at: f.unwrap_or(q),
            outcome: Outcome::parse(other).unwrap_or(Outcome::Failed),
        },
    };
    Ok(Job {
        id: r.get(0)?,
        name: r.get(1)?,
        framework: r.get(2)?,
        group: r.get(3)?,
        spec,
        spec_dir: r.get(5)?,
        fingerprint: r.get(6)?,
        priority: r.get(7)?,
        retries: r.get(8)?,
        attempts: r.get(9)?,
        life,
        reserved_bytes: r.get::<_, i64>(11)? as u64,
        peak_bytes: r.get::<_, Option<i64>>(12)?.map(|v| v as u64),
        limit_mechanism: r.get(13)?,
        exit_code: r.get(14)?,
        pgid: r.get(15)?,
        pgid_start: r.get(28)?,
        worker_pid: r.get(16)?,
        worker_run: r.get(27)?,
        cancel_requested: r.get(17)?,
        timeout_ms: r.get(18)?,
        message: r.get(19)?,
        dir: r.get(20)?,
        slurm_id: r.get(24)?,
        data_fingerprint: r.get(25)?,
        data_rows: r.get::<_, Option<i64>>(26)?.map(|v| v as u64),
        data_snapshot: r.get(29)?,
    })
}

/// Record the data a running job's export handed over.
pub fn record_data(db: &Db, id: i64, m: &crate::export::manifest::Manifest) -> Result<()> {
    let text = serde_json::to_string(m).map_err(|e| Error::Invalid(e.to_string()))?;
    db.conn
        .execute(
            "UPDATE jobs SET data_fingerprint = ?2, data_rows = ?3, data_manifest = ?4, data_snapshot = ?5
             WHERE id = ?1 AND state = 'running'",
            params![id, m.fingerprint, m.rows as i64, text, m.snapshot],
        )
        .map_err(db.err())?;
    Ok(())
}

/// The manifest of the data a job read, if its export ran.
pub fn data_manifest(db: &Db, id: i64) -> Result<Option<crate::export::manifest::Manifest>> {
    let text: Option<String> = db
        .conn
        .query_row("SELECT data_manifest FROM jobs WHERE id = ?1", [id], |r| r.get(0))
        .optional()
        .map_err(db.err())?
        .ok_or(Error::Job {
            id,
            message: "no such job".into(),
        })?;
    text.map(|t| serde_json::from_str(&t).map_err(|e| Error::Invalid(format!("job {id}: data manifest: {e}"))))
        .transpose()
}

/// The newest job whose data had `fingerprint`, with its manifest.
pub fn with_data_fingerprint(db: &Db, fingerprint: &str) -> Result<Option<(i64, crate::export::manifest::Manifest)>> {
    let id: Option<i64> = db
        .conn
        .query_row(
            "SELECT id FROM jobs WHERE data_fingerprint = ?1 AND data_manifest IS NOT NULL ORDER BY id DESC LIMIT 1",
            [fingerprint],
            |r| r.get(0),
        )
        .optional()
        .map_err(db.err())?;
    match id {
        Some(id) => Ok(data_manifest(db, id)?.map(|m| (id, m))),
        None => Ok(None),
    }
}

/// What `submit` needs besides the spec.
pub struct NewJob<'a> {
    pub spec: &'a JobSpec,
    pub spec_dir: &'a str,
    pub reserved_bytes: u64,
    pub timeout_ms: i64,
    pub jobs_dir: &'a std::path::Path,
}

pub fn submit(db: &Db, j: &NewJob) -> Result<i64> {
    let spec = serde_json::to_string(j.spec).map_err(|e| Error::Invalid(e.to_string()))?;
    let tx = db.conn.unchecked_transaction().map_err(db.err())?;
    tx.execute(
        "INSERT INTO jobs (name, framework, grp, spec, spec_dir, fingerprint, priority, retries, state,
                           reserved_bytes, timeout_ms, dir, queued_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'queued', ?9, ?10, '', ?11)",
        params![
            j.spec.name,
            j.spec.framework,
            j.spec.group(),
            spec,
            j.spec_dir,
            j.spec.fingerprint(),
            j.spec.priority,
            j.spec.retries,
            j.reserved_bytes as i64,
            j.timeout_ms,
            now_ns()
        ],
    )
    .map_err(db.err())?;
    let id = tx.last_insert_rowid();
    let dir = unique_dir(j.jobs_dir, id);
    tx.execute(
        "UPDATE jobs SET dir = ?2 WHERE id = ?1 AND state = 'queued'",
        params![id, dir.display().to_string()],
    )
    .map_err(db.err())?;
    event(&tx, id, "queued", "submitted")?;
    tx.commit().map_err(db.err())?;
    Ok(id)
}

/// A folder for job `id` that no job has had: `<id>-<suffix>`, the suffix
/// drawn from the time and a per-process random key. Ids start again at 1
/// in a new state database; folder names do not repeat, so a new job never
/// finds an old job's exports, metrics or results in its folder.
fn unique_dir(jobs_dir: &std::path::Path, id: i64) -> std::path::PathBuf {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new();
    loop {
        let mut h = random.build_hasher();
        h.write_i64(now_ns());
        h.write_u32(std::process::id());
        let dir = jobs_dir.join(format!("{id}-{:016x}", h.finish()));
        if !dir.exists() {
            return dir;
        }
    }
}

fn event(conn: &rusqlite::Connection, id: i64, state: &str, message: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO job_events (job_id, at, state, message) VALUES (?1, ?2, ?3, ?4)",
        params![id, now_ns(), state, message],
    )
    .map_err(|e| Error::Job {
        id,
        message: format!("recording event: {e}"),
    })?;
    Ok(())
}

pub fn get(db: &Db, id: i64) -> Result<Job> {
    db.conn
        .query_row(&format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"), [id], from_row)
        .optional()
        .map_err(db.err())?
        .ok_or(Error::Job {
            id,
            message: "no such job".into(),
        })
}

/// A value that changes whenever a job is submitted or changes state.
pub fn generation(db: &Db) -> Result<i64> {
    db.conn
        .query_row("SELECT ifnull(max(id), 0) FROM job_events", [], |r| r.get(0))
        .map_err(db.err())
}

/// Jobs, newest first; `state` filters by state name.
pub fn list(db: &Db, state: Option<&str>) -> Result<Vec<Job>> {
    let mut st = db
        .conn
        .prepare(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE ?1 IS NULL OR state = ?1 ORDER BY id DESC"
        ))
        .map_err(db.err())?;
    let rows = st.query_map([state], from_row).map_err(db.err())?;
    rows.collect::<rusqlite::Result<_>>().map_err(db.err())
}

/// How many jobs are in `state`, without reading them.
pub fn count(db: &Db, state: &str) -> Result<u64> {
    db.conn
        .query_row("SELECT count(*) FROM jobs WHERE state = ?1", [state], |r| {
            r.get::<_, i64>(0)
        })
        .map(|n| n.max(0) as u64)
        .map_err(db.err())
}

/// (id, folder) of jobs in a final state that ended before `cutoff_ns`.
pub fn ended_before(db: &Db, cutoff_ns: i64) -> Result<Vec<(i64, String)>> {
    let mut st = db
        .conn
        .prepare(
            "SELECT id, dir FROM jobs WHERE state NOT IN ('queued', 'running')
             AND finished_at IS NOT NULL AND finished_at < ?1 ORDER BY id",
        )
        .map_err(db.err())?;
    let rows = st
        .query_map([cutoff_ns], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(db.err())?;
    rows.collect::<rusqlite::Result<_>>().map_err(db.err())
}

/// Jobs that ended failed, timed out or OOM-killed at or after `since_ns`,
/// oldest first (the alerts' job rule).
pub fn ended_badly_since(db: &Db, since_ns: i64) -> Result<Vec<Job>> {
    let mut st = db
        .conn
        .prepare(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE state IN ('failed', 'timed_out', 'oom_killed')
             AND finished_at IS NOT NULL AND finished_at >= ?1 ORDER BY finished_at, id"
        ))
        .map_err(db.err())?;
    let rows = st.query_map([since_ns], from_row).map_err(db.err())?;
    rows.collect::<rusqlite::Result<_>>().map_err(db.err())
}

/// Queued jobs in the order they may run: priority, then age.
pub fn queued(db: &Db) -> Result<Vec<Job>> {
    list(db, Some("queued")).map(|mut v| {
        v.sort_by_key(|j| (-j.priority, j.id));
        v
    })
}

#[derive(Debug, Serialize)]
pub struct Event {
    pub at: String,
    pub state: String,
    pub message: String,
}

pub fn events(db: &Db, id: i64) -> Result<Vec<Event>> {
    let mut st = db
        .conn
        .prepare("SELECT at, state, message FROM job_events WHERE job_id = ?1 ORDER BY id")
        .map_err(db.err())?;
    let rows = st
        .query_map([id], |r| {
            Ok(Event {
                at: rfc3339(r.get(0)?),
                state: r.get(1)?,
                message: r.get(2)?,
            })
        })
        .map_err(db.err())?;
    rows.collect::<rusqlite::Result<_>>().map_err(db.err())
}

/// Claim a queued job for the worker whose lock has run id `worker_run`.
/// Returns the attempt number, or None when the job was claimed, cancelled
/// or removed in the meantime.
pub fn claim(db: &mut Db, id: i64, reserved: u64, mechanism: &str, worker_run: &str) -> Result<Option<u32>> {
    let err = crate::state::db_err(&db.path);
    let tx = db
        .conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(&err)?;
    let attempt: Option<u32> = tx
        .query_row(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, started_at = ?2, finished_at = NULL,
                             worker_pid = ?3, reserved_bytes = ?4, limit_mechanism = ?5, exit_code = NULL,
                             peak_bytes = NULL, pgid = NULL, pgid_start = NULL, slurm_id = NULL, message = NULL,
                             worker_run = ?6
             WHERE id = ?1 AND state = 'queued' AND cancel_requested = 0
             RETURNING attempts",
            params![
                id,
                now_ns(),
                std::process::id() as i64,
                reserved as i64,
                mechanism,
                worker_run
            ],
            |r| r.get(0),
        )
        .optional()
        .map_err(&err)?;
    if let Some(a) = attempt {
        event(
            &tx,
            id,
            "running",
            &format!("attempt {a}, {mechanism} limit {reserved} bytes"),
        )?;
    }
    tx.commit().map_err(&err)?;
    Ok(attempt)
}

pub fn set_slurm_id(db: &Db, id: i64, slurm_id: i64) -> Result<()> {
    db.conn
        .execute(
            "UPDATE jobs SET slurm_id = ?2 WHERE id = ?1 AND state = 'running'",
            params![id, slurm_id],
        )
        .map_err(db.err())?;
    event(
        &db.conn,
        id,
        "running",
        &format!("submitted to Slurm as job {slurm_id}"),
    )?;
    Ok(())
}

/// The worker of run `worker_run` now watches a running job (a Slurm job
/// re-attached after a restart).
pub fn adopt(db: &Db, id: i64, worker_run: &str) -> Result<()> {
    db.conn
        .execute(
            "UPDATE jobs SET worker_pid = ?2, worker_run = ?3 WHERE id = ?1 AND state = 'running'",
            params![id, std::process::id() as i64, worker_run],
        )
        .map_err(db.err())?;
    Ok(())
}

/// Record a running job's process group, with its leader's start time so
/// that recovery never signals a group whose pid was reused.
pub fn set_pgid(db: &Db, id: i64, pgid: i64, start: Option<u64>) -> Result<()> {
    db.conn
        .execute(
            "UPDATE jobs SET pgid = ?2, pgid_start = ?3 WHERE id = ?1 AND state = 'running'",
            params![id, pgid, start.map(|s| s as i64)],
        )
        .map_err(db.err())?;
    Ok(())
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct Finish {
    pub outcome: Outcome,
    pub exit_code: Option<i32>,
    pub peak_bytes: Option<u64>,
    pub message: String,
}

/// Record how a run ended, if the job is still in state `from` (`running`
/// for a run; `queued` for a job refused or cancelled before it ran), and
/// release its pins. An interrupted or failed run with retries left goes
/// back to the queue (an OOM-killed one with `requeue_reservation`, which
/// must differ from the one it had). Returns false, changing nothing, when
/// the job had left `from` in the meantime.
pub fn finish(db: &Db, id: i64, from: &str, f: &Finish, requeue_reservation: Option<u64>) -> Result<bool> {
    let tx = db.conn.unchecked_transaction().map_err(db.err())?;
    let changed = tx
        .execute(
            "UPDATE jobs SET state = ?2, exit_code = ?3, peak_bytes = coalesce(?4, peak_bytes), message = ?5,
                             finished_at = ?6
             WHERE id = ?1 AND state = ?7",
            params![
                id,
                f.outcome.as_str(),
                f.exit_code,
                f.peak_bytes.map(|p| p as i64),
                f.message,
                now_ns(),
                from
            ],
        )
        .map_err(db.err())?;
    if changed == 0 {
        return Ok(false);
    }
    event(&tx, id, f.outcome.as_str(), &f.message)?;
    crate::engine::pins::release_job(&tx, id).map_err(db.err())?;
    if let Some(res) = requeue_reservation {
        tx.execute(
            "UPDATE jobs SET state = 'queued', reserved_bytes = ?2, queued_at = ?3 WHERE id = ?1 AND state = ?4",
            params![id, res as i64, now_ns(), f.outcome.as_str()],
        )
        .map_err(db.err())?;
        event(&tx, id, "queued", &format!("re-queued with a {res}-byte reservation"))?;
    }
    tx.commit().map_err(db.err())?;
    Ok(true)
}

/// Ask for a job to stop: a queued one is cancelled at once, a running one
/// by its worker. Returns the state it was in.
pub fn cancel(db: &Db, id: i64) -> Result<&'static str> {
    // A job that changed state between the read and the write is read again.
    loop {
        if let Some(was) = request_cancel(db, &get(db, id)?)? {
            return Ok(was);
        }
    }
}

/// Cancel `job` as it was read: None when it is no longer in that state
/// (claimed, finished or re-queued since), and nothing was changed.
fn request_cancel(db: &Db, job: &Job) -> Result<Option<&'static str>> {
    let id = job.id;
    match job.life {
        Lifecycle::Queued { .. } => {
            let f = Finish {
                outcome: Outcome::Cancelled,
                exit_code: None,
                peak_bytes: None,
                message: "cancelled while queued".into(),
            };
            Ok(finish(db, id, "queued", &f, None)?.then_some("queued"))
        }
        Lifecycle::Running { .. } => {
            let n = db
                .conn
                .execute(
                    "UPDATE jobs SET cancel_requested = 1 WHERE id = ?1 AND state = 'running'",
                    [id],
                )
                .map_err(db.err())?;
            Ok((n == 1).then_some("running"))
        }
        Lifecycle::Done { outcome, .. } => Err(Error::Job {
            id,
            message: format!("already {}", outcome.as_str()),
        }),
    }
}

/// Running jobs whose cancellation was asked for.
pub fn cancel_requests(db: &Db) -> Result<Vec<i64>> {
    let mut st = db
        .conn
        .prepare("SELECT id FROM jobs WHERE state = 'running' AND cancel_requested = 1")
        .map_err(db.err())?;
    let rows = st.query_map([], |r| r.get(0)).map_err(db.err())?;
    rows.collect::<rusqlite::Result<_>>().map_err(db.err())
}

/// Put a finished job back in the queue as it was submitted.
pub fn retry(db: &Db, id: i64) -> Result<()> {
    let job = get(db, id)?;
    if !job.life.is_done() {
        return Err(Error::Job {
            id,
            message: format!("is {}; only a finished job can be retried", job.life.state()),
        });
    }
    let tx = db.conn.unchecked_transaction().map_err(db.err())?;
    // Only from the finished state just read: a job re-queued or claimed
    // since is not queued a second time.
    let n = tx
        .execute(
            "UPDATE jobs SET state = 'queued', cancel_requested = 0, queued_at = ?2, started_at = NULL,
                             finished_at = NULL, exit_code = NULL, message = NULL
             WHERE id = ?1 AND state = ?3",
            params![id, now_ns(), job.life.state()],
        )
        .map_err(db.err())?;
    if n == 0 {
        return Err(Error::Job {
            id,
            message: "changed state meanwhile; only a finished job can be retried".into(),
        });
    }
    event(&tx, id, "queued", "retry requested")?;
    tx.commit().map_err(db.err())
}

/// Measured peaks of the latest finished runs of this framework and spec.
pub fn recent_peaks(db: &Db, framework: &str, fingerprint: &str, n: usize) -> Result<Vec<u64>> {
    let mut st = db
        .conn
        .prepare(
            "SELECT peak_bytes FROM jobs WHERE framework = ?1 AND fingerprint = ?2 AND peak_bytes IS NOT NULL
             AND state IN ('succeeded', 'failed', 'oom_killed') ORDER BY finished_at DESC LIMIT ?3",
        )
        .map_err(db.err())?;
    let rows = st
        .query_map(params![framework, fingerprint, n as i64], |r| r.get::<_, i64>(0))
        .map_err(db.err())?;
    rows.map(|r| r.map(|v| v as u64))
        .collect::<rusqlite::Result<_>>()
        .map_err(db.err())
}

/// Bytes reserved by the running jobs.
pub fn reserved_by_running(db: &Db) -> Result<u64> {
    db.conn
        .query_row(
            "SELECT coalesce(sum(reserved_bytes), 0) FROM jobs WHERE state = 'running'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map(|v| v.max(0) as u64)
        .map_err(db.err())
}

/// (state, framework, jobs) over the whole queue.
pub fn counts_by_state(db: &Db) -> Result<Vec<(String, String, u64)>> {
    let mut st = db
        .conn
        .prepare("SELECT state, framework, count(*) FROM jobs GROUP BY 1, 2")
        .map_err(db.err())?;
    let rows = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64)))
        .map_err(db.err())?;
    rows.collect::<rusqlite::Result<_>>().map_err(db.err())
}

/// (framework, peak bytes) of the last finished job of each framework that has a peak.
pub fn last_peaks(db: &Db) -> Result<Vec<(String, u64)>> {
    db.labelled_amounts(
        "SELECT framework, peak_bytes FROM jobs j WHERE peak_bytes IS NOT NULL AND finished_at =
             (SELECT max(finished_at) FROM jobs k WHERE k.framework = j.framework AND k.peak_bytes IS NOT NULL)",
    )
}

#[derive(Debug, Serialize)]
pub struct JobStats {
    pub framework: String,
    pub jobs: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub oom_killed: u64,
    pub timed_out: u64,
    pub max_peak_bytes: Option<u64>,
    pub max_reserved_bytes: Option<u64>,
    /// Highest peak / reservation of a finished job: how close jobs run to their limit.
    pub max_peak_over_reserved: Option<f64>,
}

/// Per framework: how many jobs ended how, and how close they ran to their limit.
pub fn stats_by_framework(db: &Db) -> Result<Vec<JobStats>> {
    let mut st = db
        .conn
        .prepare(
            "SELECT framework, count(*),
                    sum(state = 'succeeded'), sum(state = 'failed'), sum(state = 'oom_killed'), sum(state = 'timed_out'),
                    max(peak_bytes), max(reserved_bytes),
                    max(CASE WHEN peak_bytes IS NOT NULL AND reserved_bytes > 0
                             THEN CAST(peak_bytes AS REAL) / reserved_bytes END)
             FROM jobs GROUP BY framework ORDER BY framework",
        )
        .map_err(db.err())?;
    let u = |v: Option<i64>| v.map(|x| x.max(0) as u64);
    let rows = st
        .query_map([], |x| {
            Ok(JobStats {
                framework: x.get(0)?,
                jobs: x.get::<_, i64>(1)? as u64,
                succeeded: x.get::<_, i64>(2)? as u64,
                failed: x.get::<_, i64>(3)? as u64,
                oom_killed: x.get::<_, i64>(4)? as u64,
                timed_out: x.get::<_, i64>(5)? as u64,
                max_peak_bytes: u(x.get(6)?),
                max_reserved_bytes: u(x.get(7)?),
                max_peak_over_reserved: x.get(8)?,
            })
        })
        .map_err(db.err())?;
    rows.collect::<rusqlite::Result<_>>().map_err(db.err())
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
