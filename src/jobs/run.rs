//! Running one job: its folder, its data, its process group, its limit.
//!
//! Owns everything between a claim and a [`Finish`]: exporting the data
//! the spec asks for, building argv from the framework's template, starting
//! the process in its own group (and memory and pids cgroups) and sandbox
//! ([`super::isolate`]), capping its logs, watching it (exit, timeout,
//! cancel, memory, max_pids), killing the whole group at
//! the end, and writing `result.json`. Admission is the worker's business.

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::isolate::{self, Sandbox};
use super::launch::{inherited_env, Launch, STOP_CANCEL, STOP_SHUTDOWN};
use super::limit::{self, Group, Limits, Mechanism};
use super::queue::{Finish, Outcome};
use super::spec::resolve_secrets;
use super::tree::{JobTree, Usage};
use crate::config::{DataLimit, LimitMode, Runner};
use crate::error::{Error, Result};
use crate::export::{self, Format};
use crate::state::Db;

fn fail(message: String) -> Finish {
    Finish {
        outcome: Outcome::Failed,
        exit_code: None,
        peak_bytes: None,
        message,
    }
}

/// Run the job to its end; never panics on the job's account.
pub fn run(l: Launch) -> Finish {
    let dir = PathBuf::from(&l.job.dir);
    let f = match prepare(&l, &dir) {
        Ok(p) if l.cfg.jobs.runner == Runner::Slurm => match super::slurm::submit(&l, &dir, &p.argv, &p.env) {
            Ok(sid) => super::slurm::track(&l, &dir, sid),
            Err(e) => fail(e.to_string()),
        },
        Ok(p) => execute(&l, &dir, p),
        Err(e) => fail(e.to_string()),
    };
    ended(&l, &dir, f)
}

/// Watch a Slurm job that an earlier worker submitted, to its end.
pub fn reattach(l: Launch, slurm_id: i64) -> Finish {
    let dir = PathBuf::from(&l.job.dir);
    let f = super::slurm::track(&l, &dir, slurm_id);
    ended(&l, &dir, f)
}

/// `result.json` for a run that ended; a Slurm job left running has none yet.
fn ended(l: &Launch, dir: &Path, f: Finish) -> Finish {
    if f.message != super::slurm::DETACHED {
        write_result(l, dir, &f);
    }
    f
}

struct Prepared {
    argv: Vec<String>,
    env: Vec<(String, String)>,
}

fn prepare(l: &Launch, dir: &Path) -> Result<Prepared> {
    let job = &l.job;
    // The job's folder is its owner's alone: exports, logs and results may
    // hold what the job computed from private data. Each run starts from an
    // empty one: what an earlier attempt left (its export, its metrics) must
    // not end up in this run's result.json.
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io("clear", dir)(e)),
            _ => {}
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(Error::io("create folder", dir))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(Error::io("chmod", dir))?;
    }
    let artifacts = dir.join("artifacts");
    std::fs::create_dir_all(&artifacts).map_err(Error::io("create folder", &artifacts))?;
    let data_dir = dir.join("data");
    let profile = &l.cfg.jobs.frameworks[&job.framework];
    let mut vars: Vec<(String, String)> = vec![
        ("job_dir".into(), dir.display().to_string()),
        ("data_dir".into(), data_dir.display().to_string()),
        ("artifacts".into(), artifacts.display().to_string()),
        ("result".into(), artifacts.join("metrics.json").display().to_string()),
        ("spec_dir".into(), job.spec_dir.clone()),
        ("python".into(), profile.python.clone()),
    ];
    if let Some(d) = &job.spec.data {
        export_data(l, dir, d, &data_dir, &mut vars)?;
    }
    for (k, v) in &job.spec.args {
        vars.push((k.clone(), v.clone()));
    }
    let template = if job.spec.argv.is_empty() {
        &profile.command
    } else {
        &job.spec.argv
    };
    if template.is_empty() {
        return Err(Error::Job {
            id: job.id,
            message: format!("framework `{}` has no command template", job.framework),
        });
    }
    let argv = template
        .iter()
        .map(|a| {
            fill(a, &vars).map_err(|name| Error::Job {
                id: job.id,
                message: format!("argv needs `{{{name}}}`: set args.{name} in the spec"),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut env: Vec<(String, String)> = vars
        .iter()
        .filter(|(k, _)| ["job_dir", "data_dir", "artifacts", "result", "spec_dir"].contains(&k.as_str()))
        .map(|(k, v)| (format!("MDKEEP_{}", k.to_ascii_uppercase()), v.clone()))
        .collect();
    env.push(("MDKEEP_JOB_ID".into(), job.id.to_string()));
    env.extend(profile.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.extend(job.spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.extend(resolve_secrets(&l.cfg, &job.spec.secrets)?);
    Ok(Prepared { argv, env })
}

/// Export the job's data into `data_dir`, record its quality and manifest
/// (refusing data that no longer has a pinned fingerprint), and add the
/// `{timeframe}`, `{from}`, `{to}` and `{timerange}` variables.
fn export_data(
    l: &Launch,
    dir: &Path,
    d: &super::spec::DataNeeds,
    data_dir: &Path,
    vars: &mut Vec<(String, String)>,
) -> Result<()> {
    let job = &l.job;
    let profile = &l.cfg.jobs.frameworks[&job.framework];
    let format_name = d.format.clone().unwrap_or_else(|| profile.data_format.clone());
    let format = <Format as clap::ValueEnum>::from_str(&format_name, true).map_err(|_| Error::Job {
        id: job.id,
        message: format!("unknown data format `{format_name}`"),
    })?;
    let req = d.request(format, data_dir.to_path_buf())?;
    let (from, to) = (req.from, req.to);
    let db = Db::open_existing(&l.cfg.state_db())?;
    let r = export::export(&l.cfg, &db, &req, &crate::engine::pins::PinOwner::job(job.id)).map_err(|e| Error::Job {
        id: job.id,
        message: format!("data export: {e}"),
    })?;
    tracing::info!(
        job = job.id,
        rows = r.rows,
        files = r.files.len(),
        findings = r.quality.len(),
        "exported the job's data"
    );
    // What the job was given, with the quality of those partitions.
    let record = dir.join("data_quality.json");
    let text = serde_json::to_string_pretty(&r.quality).unwrap_or_default();
    std::fs::write(&record, text).map_err(Error::io("write", &record))?;
    if let Some(m) = &r.manifest {
        let path = dir.join(MANIFEST);
        let text = serde_json::to_vec_pretty(m).map_err(|e| Error::Invalid(e.to_string()))?;
        crate::fsutil::write_atomic(&path, &text)?;
        super::queue::record_data(&db, job.id, m)?;
        if let Some(pinned) = &d.fingerprint {
            super::check_pinned(&db, pinned, m).map_err(|e| Error::Job {
                id: job.id,
                message: e.to_string(),
            })?;
        }
    }
    let day = |t: Option<i64>| {
        t.map(|t| chrono::DateTime::from_timestamp_nanos(t).format("%Y%m%d").to_string())
            .unwrap_or_default()
    };
    vars.push(("timeframe".into(), d.timeframe.clone().unwrap_or_default()));
    vars.push(("from".into(), d.from.clone().unwrap_or_default()));
    vars.push(("to".into(), d.to.clone().unwrap_or_default()));
    vars.push(("timerange".into(), format!("{}-{}", day(from), day(to))));
    Ok(())
}

/// Replace `{name}` from `vars`; Err(name) for one that is missing.
fn fill(s: &str, vars: &[(String, String)]) -> std::result::Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find('}') else {
            out.push_str(&rest[i..]);
            return Ok(out);
        };
        let name = &rest[i + 1..i + j];
        // Only `{identifier}` is a placeholder: JSON and shell braces in a
        // command (`printf '{"n": 1}'`, `${HOME}`) pass through as written.
        let ident = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ident || out.ends_with('$') {
            out.push('{');
            rest = &rest[i + 1..];
            continue;
        }
        match vars.iter().rev().find(|(k, _)| k == name) {
            Some((_, v)) => out.push_str(v),
            None => return Err(name.to_string()),
        }
        rest = &rest[i + j + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Copy a pipe into a file up to `cap` bytes, then drain and drop the rest.
fn pump(mut from: impl Read + Send + 'static, path: PathBuf, cap: u64) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let Ok(mut f) = std::fs::File::create(&path) else {
            return;
        };
        let mut buf = [0u8; 64 * 1024];
        let mut written = 0u64;
        let mut truncated = false;
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let room = cap.saturating_sub(written) as usize;
            let take = n.min(room);
            if take > 0 && f.write_all(&buf[..take]).is_ok() {
                written += take as u64;
            }
            if take < n && !truncated {
                truncated = true;
                let _ = writeln!(f, "\n[mdkeep: output truncated at {cap} bytes]");
            }
        }
        let _ = f.sync_all();
    })
}

/// The job's sandbox: its user (the job's folder handed to it, HOME
/// there) and a Landlock view without the private paths (TMPDIR in its
/// folder when files made later in the usual one would be hidden).
fn sandbox_for(l: &Launch, dir: &Path, p: &mut Prepared) -> Result<Sandbox> {
    let user = isolate::run_as(&l.cfg)?;
    let sandbox = Sandbox::new(user, &isolate::private_paths(&l.cfg), dir);
    let tmp = std::env::var_os("TMPDIR").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    if sandbox.hides_new_files_in(&tmp) {
        let own = dir.join("tmp");
        std::fs::create_dir_all(&own).map_err(Error::io("create folder", &own))?;
        p.env.push(("TMPDIR".into(), own.display().to_string()));
    }
    if let Some((uid, gid)) = user {
        isolate::reach(dir, uid, gid)?;
        isolate::chown_tree(dir, uid, gid)?;
        p.env.push(("HOME".into(), dir.display().to_string()));
    }
    Ok(sandbox)
}

/// The job's memory group, and its pids limit wherever the kernel can
/// hold it (a v1 `pids` group unless `jobs.limit = "watchdog"`).
fn group_for(l: &Launch) -> Group {
    let job = &l.job;
    let limits = Limits {
        memory: l.reserved,
        pids: l.cfg.jobs.max_pids,
    };
    let mut group = match Group::create(l.mechanism, l.cgroup_parent.as_deref(), job.id, &limits) {
        Ok(g) => g,
        Err(e) => {
            tracing::warn!(job = job.id, error = %e, "cannot create the job's memory group; using the RSS watchdog");
            Group::create(Mechanism::Watchdog, None, job.id, &limits).expect("the watchdog needs no group")
        }
    };
    if l.cfg.jobs.limit != LimitMode::Watchdog && !group.kernel_pids() {
        group.add_v1_pids(job.id, limits.pids);
    }
    group
}

fn execute(l: &Launch, dir: &Path, mut p: Prepared) -> Finish {
    let job = &l.job;
    let limit = l.reserved;
    let sandbox = match sandbox_for(l, dir, &mut p) {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };
    let user = sandbox.user;
    let group = group_for(l);
    let data_limit = data_limit(l, &group);
    let mut child = match spawn(dir, &p, &group, sandbox, data_limit) {
        Ok(c) => c,
        Err(e) => {
            group.remove();
            let who = user
                .map(|(uid, _)| format!(" as uid {uid} (jobs.run_as)"))
                .unwrap_or_default();
            return fail(format!("cannot start `{}`{who}: {e}", p.argv[0]));
        }
    };
    let pgid = child.id() as i32;
    if let Ok(db) = Db::open_existing(&l.cfg.state_db()) {
        let start = crate::proc::start_time(pgid as i64);
        let _ = super::queue::set_pgid(&db, job.id, pgid as i64, start);
    }
    tracing::info!(
        job = job.id,
        pid = pgid,
        mechanism = group.mechanism.as_str(),
        limit,
        "job started"
    );
    let cap = l.cfg.jobs.log_cap.0;
    let pumps = [
        pump(child.stdout.take().expect("piped"), dir.join("stdout.log"), cap),
        pump(child.stderr.take().expect("piped"), dir.join("stderr.log"), cap),
    ];
    // Every process of the job, including children that left its process
    // group or session and came back to this (subreaper) worker as orphans.
    let mut tree = JobTree::new(pgid, &dir.display().to_string());
    let (status, reason, peak_sampled) = watch(l, &mut child, &mut tree, &group);
    // Nothing the job started outlives it, wherever it went.
    group.kill_all();
    let left = tree.kill_all(Duration::from_secs(5));
    if left > 0 {
        tracing::warn!(job = job.id, left, "processes of the job survived SIGKILL");
    }
    for p in pumps {
        let _ = p.join();
    }
    let peak = peak_sampled.max(group.peak().unwrap_or(0));
    let kernel_oom = group.oom_killed();
    let reason = reason.or_else(|| pids_refused(l, &group));
    group.remove();
    let exit_code = status.and_then(|s| s.code());
    let signal = status.and_then(|s| s.signal());
    let (outcome, message) = match (reason, kernel_oom) {
        (Some(r), _) => r,
        (None, true) => (
            Outcome::OomKilled,
            format!("killed by the kernel at the {limit}-byte cgroup limit"),
        ),
        (None, false) => match (exit_code, signal) {
            (Some(0), _) => (Outcome::Succeeded, "exited 0".into()),
            // An allocation past the per-process cap failed, and the job died of it.
            (c, s) if data_limit.is_some_and(|cap| peak >= cap / 2) => (
                Outcome::OomKilled,
                format!(
                    "{} after an allocation past its RLIMIT_DATA of {} bytes (jobs.data_limit) failed",
                    c.map(|c| format!("exited {c}"))
                        .or(s.map(|s| format!("killed by signal {s}")))
                        .unwrap_or_default(),
                    data_limit.unwrap_or(0)
                ),
            ),
            (Some(c), _) => (Outcome::Failed, format!("exited {c}")),
            (None, Some(s)) => (Outcome::Failed, format!("killed by signal {s}")),
            (None, None) => (Outcome::Failed, "lost track of the process".into()),
        },
    };
    tracing::info!(job = job.id, state = outcome.as_str(), peak, "job ended");
    Finish {
        outcome,
        exit_code,
        peak_bytes: Some(peak),
        message,
    }
}

/// Start the job's command in `dir`, in a process group of its own, with
/// only the environment it is given, joined to `group` before it runs,
/// then inside its `sandbox` (its user, its filesystem view).
fn spawn(
    dir: &Path,
    p: &Prepared,
    group: &Group,
    sandbox: Sandbox,
    data_limit: Option<u64>,
) -> std::io::Result<std::process::Child> {
    let mut cmd = Command::new(&p.argv[0]);
    cmd.args(&p.argv[1..])
        .current_dir(dir)
        .env_clear()
        .envs(inherited_env())
        .envs(p.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let fds = [group.procs_fd(), group.pids_procs_fd()];
    // SAFETY: the closure runs between fork and exec and only calls
    // async-signal-safe functions (open, write, close, setrlimit, getpid,
    // set*id, prctl, landlock).
    unsafe {
        cmd.pre_exec(move || {
            limit::prefer_for_oom_kill();
            if let Some(bytes) = data_limit {
                limit::cap_data(bytes)?;
            }
            // Joined while still the worker's user: the groups are the worker's.
            for fd in fds.into_iter().flatten() {
                limit::join_from_child(fd)?;
            }
            sandbox.enter()?;
            // After the user switch, which clears it: the job dies with the
            // thread that watches it, even on kill -9 of the worker.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn()
}

/// Sample the job until it ends, stopping it (TERM, then KILL after the
/// grace; KILL at once past a watchdog memory limit) once it must stop:
/// its exit status, why it was stopped, and the peak memory sampled. Under
/// the watchdog, quick looks fill the gaps between full samples.
fn watch(
    l: &Launch,
    child: &mut std::process::Child,
    tree: &mut JobTree,
    group: &Group,
) -> (Option<std::process::ExitStatus>, Option<(Outcome, String)>, u64) {
    let interval = l.cfg.jobs.watchdog_interval.0.min(Duration::from_millis(250));
    let grace = l.cfg.jobs.kill_grace.0;
    let deadline = Instant::now() + Duration::from_millis(l.job.timeout_ms.max(0) as u64);
    let mut peak_sampled = 0u64;
    let mut reason: Option<(Outcome, String)> = None;
    let mut term_sent: Option<Instant> = None;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) => {}
            Err(_) => break None,
        }
        let usage = tree.sample();
        peak_sampled = peak_sampled.max(usage.rss).max(group.current().unwrap_or(0));
        if reason.is_none() {
            reason = stop_reason(l, group, usage, deadline);
        }
        let close = reason.is_none() && group.mechanism == Mechanism::Watchdog;
        if close {
            // Between full samples, quick looks (every 2ms near the limit).
            let (peak, over) = watch_closely(l, child, tree, interval);
            peak_sampled = peak_sampled.max(peak);
            reason = over;
        }
        if let Some((outcome, _)) = &reason {
            match term_sent {
                // Past a memory limit, as the kernel's OOM kill: no grace.
                None if *outcome == Outcome::OomKilled && group.mechanism == Mechanism::Watchdog => {
                    tree.signal(libc::SIGKILL);
                    group.kill_all();
                    term_sent = Some(Instant::now());
                }
                None => {
                    tree.signal(libc::SIGTERM);
                    term_sent = Some(Instant::now());
                }
                Some(t) if t.elapsed() >= grace => {
                    tree.signal(libc::SIGKILL);
                    group.kill_all();
                }
                Some(_) => {}
            }
            std::thread::sleep(interval.min(Duration::from_millis(20)));
            continue;
        }
        if !close {
            std::thread::sleep(interval);
        }
    };
    (status, reason, peak_sampled)
}

/// The watchdog's quick look until the next full sample (`span`): the
/// RSS of the processes the last full sample found, every 10ms, and every
/// 2ms past half the limit, while the job runs. Its peak, and the stop
/// reason once it passes the limit.
fn watch_closely(
    l: &Launch,
    child: &mut std::process::Child,
    tree: &JobTree,
    span: Duration,
) -> (u64, Option<(Outcome, String)>) {
    let until = Instant::now() + span;
    let limit = l.reserved;
    let mut peak = 0;
    while Instant::now() < until {
        if !matches!(child.try_wait(), Ok(None)) {
            break;
        }
        let rss = tree.quick_rss();
        peak = peak.max(rss);
        if rss > limit {
            let why = format!("RSS {rss} bytes passed the {limit}-byte limit (watchdog)");
            return (peak, Some((Outcome::OomKilled, why)));
        }
        std::thread::sleep(Duration::from_millis(if rss > limit / 2 { 2 } else { 10 }));
    }
    (peak, None)
}

/// The per-process RLIMIT_DATA a job's processes get, if any: its
/// reservation plus a quarter, where `jobs.data_limit` asks for one.
fn data_limit(l: &Launch, group: &Group) -> Option<u64> {
    let on = match l.cfg.jobs.data_limit {
        DataLimit::Off => false,
        DataLimit::Always => true,
        DataLimit::Watchdog => group.mechanism == Mechanism::Watchdog,
    };
    on.then(|| l.reserved + l.reserved / 4)
}

/// Why the runner must stop a job now, if it must: past its limit (the
/// watchdog's sum, or the kernel's kill in the job's group), past its
/// deadline, cancelled, or its worker is stopping.
fn stop_reason(l: &Launch, group: &Group, usage: Usage, deadline: Instant) -> Option<(Outcome, String)> {
    let (limit, rss) = (l.reserved, usage.rss);
    if group.mechanism == Mechanism::Watchdog && rss > limit {
        return Some((
            Outcome::OomKilled,
            format!("RSS {rss} bytes passed the {limit}-byte limit (watchdog)"),
        ));
    }
    // The watchdog's count holds wherever the kernel's pids.max does not reach.
    let max = l.cfg.jobs.max_pids;
    if usage.tasks > max {
        return Some((
            Outcome::Failed,
            format!(
                "{} processes and threads passed jobs.max_pids = {max} (watchdog)",
                usage.tasks
            ),
        ));
    }
    if let Some(r) = pids_refused(l, group) {
        return Some(r);
    }
    if group.oom_killed() {
        // v1 has no memory.oom.group: the rest of the job goes too.
        return Some((
            Outcome::OomKilled,
            format!("killed by the kernel at the {limit}-byte cgroup limit"),
        ));
    }
    if Instant::now() >= deadline {
        return Some((Outcome::TimedOut, format!("timed out after {} ms", l.job.timeout_ms)));
    }
    match l.stop.load(Ordering::Relaxed) {
        STOP_CANCEL => Some((Outcome::Cancelled, "cancelled".into())),
        STOP_SHUTDOWN => Some((Outcome::Interrupted, "the worker shut down".into())),
        _ => None,
    }
}

/// A job the kernel refused a fork at `pids.max` fails, saying so (it may
/// have ended on its own, or gone on without the process it wanted).
fn pids_refused(l: &Launch, group: &Group) -> Option<(Outcome, String)> {
    let n = group.pids_refused();
    (n > 0).then(|| {
        (
            Outcome::Failed,
            format!(
                "{n} forks refused at jobs.max_pids = {} (cgroup pids.max)",
                l.cfg.jobs.max_pids
            ),
        )
    })
}

/// The data manifest in a job's folder (`export::manifest`).
pub const MANIFEST: &str = "data.manifest.json";

/// `result.json`: the same fields for every framework, plus what the
/// framework's own stable outputs report, and the data's fingerprint.
fn write_result(l: &Launch, dir: &Path, f: &Finish) {
    let metrics = super::adapters::metrics(&l.job.framework, dir);
    let data: Option<crate::export::manifest::Manifest> = std::fs::read(dir.join(MANIFEST))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let v = serde_json::json!({
        "job_id": l.job.id,
        "name": l.job.name,
        "framework": l.job.framework,
        "state": f.outcome.as_str(),
        "exit_code": f.exit_code,
        "peak_memory_bytes": f.peak_bytes,
        "reserved_memory_bytes": l.reserved,
        "message": f.message,
        "metrics": metrics,
        "data_fingerprint": data.as_ref().map(|m| &m.fingerprint),
        "data_rows": data.as_ref().map(|m| m.rows),
        "data_snapshot": data.as_ref().and_then(|m| m.snapshot),
    });
    let text = serde_json::to_vec_pretty(&v).unwrap_or_default();
    if let Err(e) = crate::fsutil::write_atomic(&dir.join("result.json"), &text) {
        tracing::warn!(job = l.job.id, error = %e, "cannot write result.json");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_and_name_what_is_missing() {
        let vars = vec![("a".to_string(), "1".to_string()), ("b".to_string(), "x y".to_string())];
        assert_eq!(fill("{a}/{b}.json", &vars).unwrap(), "1/x y.json");
        assert_eq!(fill("plain", &vars).unwrap(), "plain");
        assert_eq!(fill("{nope}", &vars).unwrap_err(), "nope");
        // JSON and shell braces are not placeholders (the command example prints JSON).
        assert_eq!(fill("printf '{\"n\": {a}}'", &vars).unwrap(), "printf '{\"n\": 1}'");
        assert_eq!(fill("${HOME} {}", &vars).unwrap(), "${HOME} {}");
    }
}
