//! Backtest jobs: specs, the SQLite queue, the memory-budgeted worker.
//!
//! Owns the jobs capability end to end; each part is its own file:
//! [`spec`] (what a user submits), [`queue`] (rows and lifecycle),
//! [`worker`] (admission, one framework at a time, recovery), [`run`] (one
//! job's process, limit and logs), [`limit`] (memory groups), [`cgroup2`]
//! (taking over a delegated v2 subtree), [`tree`] (a job's processes,
//! wherever they went, for the watchdog), [`isolate`] (what a job may not
//! read: the worker's environment, configs, the state database),
//! [`adapters`] (normalized results), [`glance`] (metrics, equity series
//! and comparisons, for the lists and pages). Data export is
//! `crate::export`'s.

pub mod adapters;
pub mod budget;
pub mod cgroup2;
pub mod glance;
pub mod isolate;
pub mod job;
pub mod launch;
pub mod limit;
pub mod queue;
pub mod run;
pub mod slurm;
pub mod spec;
pub mod tree;
pub mod worker;

use std::path::Path;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::state::Db;
use spec::JobSpec;

/// Queue a job from a spec file, refusing one that could never run: its
/// reservation alone exceeds the budget (local runner) or every Slurm node
/// of the partition (Slurm runner). Returns its id.
pub fn submit(cfg: &Config, db: &Db, spec_path: &Path, sets: &[(String, String)]) -> Result<i64> {
    let spec = JobSpec::load(cfg, spec_path, sets)?;
    let spec_dir = spec_path
        .parent()
        .map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p })
        .unwrap_or(Path::new("."))
        .canonicalize()
        .map_err(Error::io("resolve", spec_path))?;
    submit_spec(cfg, db, &spec, spec_path, &spec_dir)
}

/// Queue job `id`'s spec again (`jobs rerun`), on the same data: the lake
/// snapshot its export read while it is kept, else the data must still
/// have its fingerprint. Returns the new id and which of these applies.
pub fn rerun(cfg: &Config, db: &Db, id: i64) -> Result<(i64, String)> {
    let job = queue::get(db, id)?;
    let origin = std::path::PathBuf::from(format!("the spec of job {id}"));
    let mut spec = job.spec.clone();
    let mut how = "as submitted (its data was not recorded)".to_string();
    if let Some(d) = spec.data.as_mut() {
        match (job.data_snapshot, &job.data_fingerprint) {
            (Some(n), _) if crate::lake::snapshot::is_kept(cfg, n) => {
                d.snapshot = Some(n);
                how = format!("reads lake snapshot {n}, as job {id} did");
            }
            (n, Some(fp)) => {
                d.snapshot = None;
                d.fingerprint = Some(fp.clone());
                how = match n {
                    Some(n) => format!(
                        "lake snapshot {n} is no longer kept (lake.keep_snapshots = {}); the data must still have fingerprint {fp}",
                        cfg.lake.keep_snapshots
                    ),
                    None => format!("the data must still have fingerprint {fp}"),
                };
            }
            _ => {}
        }
    }
    let new = submit_spec(cfg, db, &spec, &origin, Path::new(&job.spec_dir))?;
    Ok((new, how))
}

/// [`submit`] of a loaded spec; `spec_path` names it in errors, and
/// relative paths in it are relative to `spec_dir`.
fn submit_spec(cfg: &Config, db: &Db, spec: &JobSpec, spec_path: &Path, spec_dir: &Path) -> Result<i64> {
    use crate::config::units::human_bytes;
    let reserved = worker::reservation(cfg, db, spec, 0)?;
    let never_fits = match cfg.jobs.runner {
        crate::config::Runner::Local => {
            let budget = cfg.jobs.memory_budget.0;
            (reserved > budget).then(|| format!("jobs.memory_budget is {}; it could never run", human_bytes(budget)))
        }
        // What Slurm answers "Requested node configuration is not available" to.
        crate::config::Runner::Slurm => slurm::max_node_memory(cfg)?
            .filter(|node| reserved > *node)
            .map(|node| {
                format!(
                    "no Slurm node of the partition has more than {} \
                 (Slurm: Requested node configuration is not available)",
                    human_bytes(node)
                )
            }),
    };
    if let Some(why) = never_fits {
        return Err(Error::Spec {
            path: spec_path.to_path_buf(),
            key: "memory".into(),
            message: format!("the job needs {} but {why}", human_bytes(reserved)),
        });
    }
    // Data that must be clean, or unchanged, is checked now too.
    if let Some(d) = spec.data.as_ref() {
        if let Some(n) = d.snapshot {
            crate::lake::snapshot::open_kept(cfg, n).map_err(|e| Error::Spec {
                path: spec_path.to_path_buf(),
                key: "data.snapshot".into(),
                message: e.to_string(),
            })?;
        }
        let req = d.request(crate::export::Format::Parquet, cfg.tmp_dir())?;
        if d.require_clean {
            crate::export::check_clean(cfg, db, &req)?;
        }
        if let Some(pinned) = &d.fingerprint {
            let lease = crate::lock::RunLease::take(cfg, "jobs submit")?;
            let owner = crate::engine::pins::PinOwner::run("submit", &lease);
            let now = crate::export::digest(cfg, db, &req, &owner)?;
            check_pinned(db, pinned, &now)?;
        }
    }
    // Secrets must resolve now, not at 3 a.m. when the job starts.
    spec::resolve_secrets(cfg, &spec.secrets)?;
    let timeout = spec.timeout.unwrap_or(cfg.jobs.default_timeout);
    queue::submit(
        db,
        &queue::NewJob {
            spec,
            spec_dir: &spec_dir.display().to_string(),
            reserved_bytes: reserved,
            timeout_ms: timeout.0.as_millis() as i64,
            jobs_dir: &cfg.jobs_dir(),
        },
    )
}

/// Refuse data whose fingerprint is not `pinned`, saying what changed since
/// the newest job that read the pinned data (when one did).
pub fn check_pinned(db: &Db, pinned: &str, now: &crate::export::manifest::Manifest) -> Result<()> {
    if now.fingerprint == pinned {
        return Ok(());
    }
    let diff = match queue::with_data_fingerprint(db, pinned)? {
        Some((id, then)) => {
            let lines: Vec<String> = crate::export::manifest::diff(&then, now)
                .iter()
                .map(|c| format!("\n  {c}"))
                .collect();
            format!("; since job {id} read it:{}", lines.concat())
        }
        None => "; no job recorded that fingerprint, so what changed cannot be said".into(),
    };
    Err(Error::DataChanged {
        dataset: now.dataset.clone(),
        pinned: pinned.to_string(),
        now: now.fingerprint.clone(),
        diff,
    })
}

/// A finished job's exported data, past `jobs.keep_exports`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExpiredExport {
    pub job: i64,
    pub path: std::path::PathBuf,
    pub bytes: u64,
}

/// Exported data of jobs that ended more than `jobs.keep_exports` ago
/// (a running or queued job's data is never listed).
pub fn expired_exports(cfg: &Config, db: &Db) -> Result<Vec<ExpiredExport>> {
    let cutoff = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
        - cfg.jobs.keep_exports.0.as_nanos().min(i64::MAX as u128) as i64;
    let mut out = Vec::new();
    for (job, dir) in queue::ended_before(db, cutoff)? {
        let path = std::path::PathBuf::from(dir).join("data");
        if path.is_dir() {
            let bytes = crate::engine::journal::dir_bytes(&path);
            out.push(ExpiredExport { job, path, bytes });
        }
    }
    Ok(out)
}

/// Delete an expired export; its job's logs and results stay.
pub fn remove_export(e: &ExpiredExport) -> Result<()> {
    std::fs::remove_dir_all(&e.path).map_err(Error::io("delete", &e.path))?;
    tracing::info!(job = e.job, bytes = e.bytes, "deleted a finished job's exported data");
    Ok(())
}
