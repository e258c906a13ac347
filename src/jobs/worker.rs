//! The job worker: admission under one memory budget, one framework at a time.
//!
//! Owns the decisions: which framework is active, when to stop admitting it
//! so another gets its turn (its queue drained, or another framework's
//! oldest job waited longer than `jobs.fairness_window`), whether a job's
//! reservation fits what is left of the budget, re-queueing after an
//! interruption, and recovering jobs whose worker died. Running a job is
//! [`super::run`]'s business. One worker runs at a time: it holds
//! [`WorkerLock`], an `flock` the kernel releases when it dies, and records
//! that lock's run id on every job it claims.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::launch::{Launch, STOP_CANCEL, STOP_SHUTDOWN};
use super::limit::{self, Mechanism};
use super::queue::{self, Finish, Job, Outcome};
use super::run;
use crate::config::{Config, Runner};
use crate::error::Result;
use crate::lock::WorkerLock;
use crate::shutdown::Shutdown;
use crate::state::{now_ns, Db};

/// How often the worker looks at the queue when nothing wakes it.
const POLL: Duration = Duration::from_millis(100);
/// An idle worker queries the queue at least this often even when the
/// state database seems untouched.
const IDLE_RECHECK: Duration = Duration::from_secs(2);

/// Size and mtime of the state database and its WAL: a submission, a cancel
/// or any other write changes them.
type DbSignature = Option<(std::time::SystemTime, u64, Option<(std::time::SystemTime, u64)>)>;

fn db_signature(path: &std::path::Path) -> DbSignature {
    let stat = |p: &std::path::Path| {
        std::fs::metadata(p)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())))
    };
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let (m, len) = stat(path)?;
    Some((m, len, stat(std::path::Path::new(&wal))))
}

#[derive(Debug, Default, Serialize)]
pub struct WorkReport {
    pub mechanism: String,
    pub started: u64,
    pub finished: HashMap<String, u64>,
    pub recovered: u64,
    pub requeued: u64,
}

struct Running {
    group: String,
    reserved: u64,
    stop: Arc<AtomicU8>,
    handle: JoinHandle<()>,
}

impl Running {
    /// A thread that carries `job` to its end with `body` (a fresh run, or
    /// watching a Slurm job again) and reports the [`Finish`] on `tx`.
    fn start(
        cfg: &Config,
        job: Job,
        reserved: u64,
        mechanism: Mechanism,
        parent: &Option<PathBuf>,
        tx: &Sender<(i64, Finish)>,
        body: impl FnOnce(Launch) -> Finish + Send + 'static,
    ) -> Result<Running> {
        let stop = Arc::new(AtomicU8::new(0));
        let (id, group, dir) = (job.id, job.group.clone(), job.dir.clone());
        let launch = Launch {
            cfg: cfg.clone(),
            job,
            reserved,
            mechanism,
            cgroup_parent: parent.clone(),
            stop: stop.clone(),
        };
        let tx = tx.clone();
        let handle = std::thread::Builder::new()
            .name(format!("job-{id}"))
            .spawn(move || {
                let _ = tx.send((id, body(launch)));
            })
            .map_err(crate::error::Error::io("start a job thread", &dir))?;
        Ok(Running {
            group,
            reserved,
            stop,
            handle,
        })
    }
}

/// The reservation of `job` now: max(declared or the profile's default,
/// the learned peak raised by the margin, what it was given before).
pub fn reservation(cfg: &Config, db: &Db, job_spec: &super::spec::JobSpec, floor: u64) -> Result<u64> {
    let profile = &cfg.jobs.frameworks[&job_spec.framework];
    let declared = job_spec.memory.map(|m| m.0).unwrap_or(profile.memory.0);
    let mut peaks = queue::recent_peaks(db, &job_spec.framework, &job_spec.fingerprint(), 20)?;
    let learned = if peaks.is_empty() {
        0
    } else {
        peaks.sort_unstable();
        // The 90th percentile, nearest rank.
        let i = ((peaks.len() as f64 * 0.9).ceil() as usize).clamp(1, peaks.len()) - 1;
        (peaks[i] as f64 * (1.0 + cfg.jobs.margin)) as u64
    };
    Ok(declared.max(learned).max(floor))
}

/// Run the worker until `shutdown` stops it or, with `once`, until the
/// queue is empty and nothing runs. While it drains, nothing new is
/// admitted but the running jobs go on (a daemon shutting down with
/// `on_shutdown = "finish"`); stopping interrupts them.
pub fn work(cfg: &Config, db: &mut Db, once: bool, shutdown: &Shutdown) -> Result<WorkReport> {
    let (stop, drain) = (|| shutdown.is_stopping(), || shutdown.is_draining());
    let lock = WorkerLock::acquire(cfg)?;
    let me = lock.run().to_string();
    let (mechanism, parent, mut report) = start_up(cfg);
    let adopt = recover(cfg, db, parent.as_deref(), &mut report)?;
    let (tx, rx) = channel::<(i64, Finish)>();
    let mut running: HashMap<i64, Running> = HashMap::new();
    // Slurm jobs of a worker that is gone still run: watch them again, never resubmit.
    for (job, sid) in adopt {
        queue::adopt(db, job.id, &me)?;
        tracing::info!(job = job.id, slurm_id = sid, "re-attached to a running Slurm job");
        let (id, reserved) = (job.id, job.reserved_bytes);
        let r = Running::start(cfg, job, reserved, mechanism, &parent, &tx, move |l| {
            run::reattach(l, sid)
        })?;
        running.insert(id, r);
        report.recovered += 1;
    }
    let mut active: Option<String> = None;
    let mut shutting_down = false;
    let (mut last_sig, mut last_look) = (None, Instant::now());
    loop {
        if stop() && !shutting_down {
            shutting_down = true;
            tracing::info!(
                running = running.len(),
                "stopping: no new jobs; interrupting the running ones"
            );
            for r in running.values() {
                r.stop.store(STOP_SHUTDOWN, Ordering::Relaxed);
            }
        }
        // Idle and nothing written to the state database since the last look:
        // nothing can have changed, so skip the queries (idle CPU near 0).
        let sig = db_signature(&db.path);
        let quiet =
            running.is_empty() && !once && !shutting_down && sig == last_sig && last_look.elapsed() < IDLE_RECHECK;
        if !quiet {
            (last_sig, last_look) = (sig, Instant::now());
            for id in queue::cancel_requests(db)? {
                if let Some(r) = running.get(&id) {
                    r.stop.store(STOP_CANCEL, Ordering::Relaxed);
                }
            }
            // Stopping is a later phase of draining: neither admits.
            if !drain() {
                let w = Worker {
                    run: &me,
                    mechanism,
                    parent: &parent,
                    tx: &tx,
                };
                admit(cfg, db, &w, &mut running, &mut active, &mut report)?;
            }
        }
        if running.is_empty() && (drain() || (once && queue::queued(db)?.is_empty())) {
            break;
        }
        if let Ok((id, f)) = rx.recv_timeout(POLL) {
            finish(cfg, db, id, f, &mut running, &mut report)?;
            while let Ok((id, f)) = rx.try_recv() {
                finish(cfg, db, id, f, &mut running, &mut report)?;
            }
        }
    }
    Ok(report)
}

/// The limit mechanism and cgroup parent this worker uses, after becoming
/// the subreaper of the jobs' orphans; its report so far.
fn start_up(cfg: &Config) -> (Mechanism, Option<PathBuf>, WorkReport) {
    let (mechanism, parent) = limit::detect(cfg.jobs.limit);
    // Its environment and files stay out of its jobs' reach.
    super::isolate::worker_start(cfg);
    // Orphans of a job (setsid, double fork) come back here, not to init,
    // so the runner can count and kill them.
    if !super::tree::become_subreaper() {
        tracing::warn!("cannot become a child subreaper: a job's orphans escape the watchdog");
    }
    tracing::info!(
        mechanism = mechanism.as_str(),
        budget = cfg.jobs.memory_budget.0,
        "job worker started"
    );
    let slurm = cfg.jobs.runner == Runner::Slurm;
    let report = WorkReport {
        mechanism: if slurm {
            "slurm".into()
        } else {
            mechanism.as_str().into()
        },
        ..Default::default()
    };
    (mechanism, parent, report)
}

/// What admission needs of the worker itself.
struct Worker<'a> {
    /// The run id of its [`WorkerLock`].
    run: &'a str,
    mechanism: Mechanism,
    parent: &'a Option<PathBuf>,
    tx: &'a Sender<(i64, Finish)>,
}

fn admit(
    cfg: &Config,
    db: &mut Db,
    w: &Worker,
    running: &mut HashMap<i64, Running>,
    active: &mut Option<String>,
    report: &mut WorkReport,
) -> Result<()> {
    let queued = queue::queued(db)?;
    if queued.is_empty() {
        return Ok(());
    }
    let slurm = cfg.jobs.runner == Runner::Slurm;
    // None: another framework has waited too long, so this one drains.
    let Some(group) = group_to_admit(cfg, &queued, running, active) else {
        return Ok(());
    };
    // Under Slurm, the cluster's own scheduling and cgroups replace the budget.
    let budget = if slurm { u64::MAX } else { cfg.jobs.memory_budget.0 };
    // Maintenance (daemon schedules) holds part of the same budget.
    let maintenance = if slurm {
        0
    } else {
        super::budget::maintenance_reserved(db)?
    };
    let one_framework = !slurm || cfg.jobs.slurm.one_framework;
    for job in queued.iter().filter(|j| !one_framework || j.group == group) {
        let in_use: u64 = running.values().map(|r| r.reserved).sum::<u64>() + maintenance;
        // Slurm takes up to max_submitted jobs in all; locally each framework has its max_parallel.
        let (n_running, max_parallel) = if slurm {
            (running.len(), cfg.jobs.slurm.max_submitted)
        } else {
            (
                running.values().filter(|r| r.group == group).count(),
                cfg.jobs.frameworks[&job.framework].max_parallel,
            )
        };
        if n_running >= max_parallel.max(1) {
            break;
        }
        let reserved = reservation(cfg, db, &job.spec, job.reserved_bytes)?;
        if reserved > budget {
            queue::finish(
                db,
                job.id,
                "queued",
                &Finish {
                    outcome: Outcome::Failed,
                    exit_code: None,
                    peak_bytes: None,
                    message: format!("reservation {reserved} bytes exceeds the {budget}-byte budget"),
                },
                None,
            )?;
            continue;
        }
        // Keep priority order: a job that does not fit waits, and so do those behind it.
        if in_use.saturating_add(reserved) > budget {
            break;
        }
        let label = if slurm { "slurm" } else { w.mechanism.as_str() };
        let Some(_attempt) = queue::claim(db, job.id, reserved, label, w.run)? else {
            continue;
        };
        let job: Job = queue::get(db, job.id)?;
        *active = Some(job.group.clone());
        let id = job.id;
        running.insert(
            id,
            Running::start(cfg, job, reserved, w.mechanism, w.parent, w.tx, run::run)?,
        );
        report.started += 1;
    }
    Ok(())
}

/// The framework whose jobs may start now: the running one, unless another
/// has waited past the fairness window (then none, until it drains);
/// with nothing running, one that waited too long, else the last active one
/// while it has jobs queued, else the first in priority order.
fn group_to_admit(
    cfg: &Config,
    queued: &[Job],
    running: &HashMap<i64, Running>,
    active: &Option<String>,
) -> Option<String> {
    let fairness = cfg.jobs.fairness_window.0.as_nanos() as i64;
    let now = now_ns();
    let waited_too_long = |g: &str| {
        queued
            .iter()
            .filter(|j| j.group != g)
            .filter_map(|j| match j.life {
                queue::Lifecycle::Queued { queued_at } => Some((queued_at, j.group.clone())),
                _ => None,
            })
            .min()
            .filter(|(t, _)| now - t > fairness)
            .map(|(_, g)| g)
    };
    match running.values().next().map(|r| r.group.clone()) {
        Some(g) if waited_too_long(&g).is_some() => None,
        Some(g) => Some(g),
        None => Some(match active.as_deref().and_then(waited_too_long) {
            Some(starved) => starved,
            None => match active.as_ref().filter(|a| queued.iter().any(|j| &j.group == *a)) {
                Some(a) => a.clone(),
                None => queued[0].group.clone(),
            },
        }),
    }
}

fn finish(
    cfg: &Config,
    db: &Db,
    id: i64,
    f: Finish,
    running: &mut HashMap<i64, Running>,
    report: &mut WorkReport,
) -> Result<()> {
    if let Some(r) = running.remove(&id) {
        let _ = r.handle.join();
    }
    if f.message == super::slurm::DETACHED {
        // The Slurm job runs on; its row stays `running` for the next worker.
        return Ok(());
    }
    let job = queue::get(db, id)?;
    let requeue = requeue_reservation(cfg, &job, &f);
    if !queue::finish(db, id, "running", &f, requeue)? {
        tracing::warn!(job = id, "the job had left `running`; its run's end is not recorded");
        return Ok(());
    }
    if requeue.is_some() {
        report.requeued += 1;
    }
    *report.finished.entry(f.outcome.as_str().to_string()).or_default() += 1;
    Ok(())
}

/// Whether a run that ended like `f` goes back to the queue, and with what
/// reservation. An OOM kill is retried only with a larger one.
fn requeue_reservation(cfg: &Config, job: &Job, f: &Finish) -> Option<u64> {
    if job.attempts > job.retries {
        return None;
    }
    match f.outcome {
        Outcome::Interrupted | Outcome::Failed => Some(job.reserved_bytes),
        Outcome::OomKilled => {
            let bigger = (job.reserved_bytes as f64 * 1.5) as u64;
            let bigger = bigger.max(f.peak_bytes.unwrap_or(0)).min(cfg.jobs.memory_budget.0);
            (bigger > job.reserved_bytes).then_some(bigger)
        }
        _ => None,
    }
}

/// Jobs left `running` by a worker that is gone: kill what is left of
/// them, mark them interrupted (which releases their pins), and re-queue
/// those with retries left. Slurm jobs among them are returned instead, to
/// be watched again. This worker holds the worker lock, so every job still
/// `running` now belongs to a worker that is gone, whatever its pid says
/// (a pid may be reused, or belong to another PID namespace).
fn recover(
    cfg: &Config,
    db: &Db,
    parent: Option<&std::path::Path>,
    report: &mut WorkReport,
) -> Result<Vec<(Job, i64)>> {
    let mut adopt = Vec::new();
    for job in queue::list(db, Some("running"))? {
        if let Some(sid) = job.slurm_id {
            adopt.push((job, sid));
            continue;
        }
        if let Some(pgid) = job.pgid {
            if !kill_group_if_same(pgid, job.pgid_start, libc::SIGKILL) {
                tracing::info!(
                    job = job.id,
                    pgid,
                    "its process group is gone (or its pid was reused): not signalled"
                );
            }
        }
        if let Some(w) = job.worker_pid {
            limit::remove_leftover(parent, w, job.id);
        }
        // Its orphans went to init when the worker died; they still carry its folder.
        let stray = super::tree::kill_marked(&job.dir);
        if stray > 0 {
            tracing::warn!(job = job.id, stray, "killed processes a dead worker's job left behind");
        }
        let f = Finish {
            outcome: Outcome::Interrupted,
            exit_code: None,
            peak_bytes: None,
            message: "its worker died while it ran".into(),
        };
        let requeue = requeue_reservation(cfg, &job, &f);
        if !queue::finish(db, job.id, "running", &f, requeue)? {
            continue;
        }
        if requeue.is_some() {
            report.requeued += 1;
        }
        tracing::warn!(
            job = job.id,
            requeued = requeue.is_some(),
            "recovered a job interrupted by a dead worker"
        );
        report.recovered += 1;
    }
    Ok(adopt)
}

/// Send `sig` to process group `pgid` only if its leader is the process
/// recorded: same pid and same start time. A group recorded without a
/// start time, or whose leader is gone or is another process now, is left
/// alone. Whether it was signalled.
fn kill_group_if_same(pgid: i64, start: Option<i64>, sig: i32) -> bool {
    match start {
        Some(start) if crate::proc::same(pgid, start as u64) => {
            limit::signal_group(pgid as i32, sig);
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn recovery_never_signals_a_group_whose_leader_started_at_another_time() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id() as i64;
        let start = crate::proc::start_time(pgid).unwrap() as i64;
        // The recorded pid now names another process: a different start time.
        assert!(!kill_group_if_same(pgid, Some(start + 1), libc::SIGKILL));
        assert!(!kill_group_if_same(pgid, None, libc::SIGKILL));
        std::thread::sleep(Duration::from_millis(100));
        assert!(child.try_wait().unwrap().is_none(), "an unrelated process was killed");
        assert!(kill_group_if_same(pgid, Some(start), libc::SIGKILL));
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }
}
