//! The Slurm runner: the same queue, specs, export and results, with
//! execution handed to Slurm.
//!
//! Owns the conversation with Slurm: `sbatch --parsable` with the job's
//! reservation as `--mem`, its timeout as `--time`, its output files and
//! working folder; tracking with `scontrol show job` while Slurm remembers
//! the job and `sacct -c` (the jobcomp file) after; peaks from the batch
//! script's own record (`/usr/bin/time -f %M`, else the job cgroup's peak)
//! or `sstat`'s samples, whichever is higher; `scancel` for a cancel. Slurm's
//! scheduling and cgroups replace the local budget and limits. Slurm keeps
//! a job's exported environment in its state folder, so sbatch runs with
//! `--export=NONE`: the job's whole environment (the same allow-list as a
//! local job, its profile's and spec's variables, `MDKEEP_*` and its
//! secrets) goes in a 0600 file in the job's folder, which the batch script
//! loads and deletes before the job starts. None of it is in the script's
//! text or in sbatch's environment.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::launch::{inherited_env, Launch, STOP_CANCEL, STOP_SHUTDOWN};
use super::queue::{Finish, Outcome};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::state::Db;

/// A thread that stops watching a Slurm job that goes on running (the
/// worker is shutting down) says so with this message; the row stays
/// `running` and the next worker re-attaches.
pub const DETACHED: &str = "detached: the Slurm job goes on; the next worker re-attaches";

const SCRIPT: &str = r#"#!/bin/bash
# Written by mdkeep: runs the job's argv (the script's arguments) and records
# its peak memory, since Slurm samples only once a second.
# sbatch ran with --export=NONE. The first argument is the job's folder; its
# job.env holds the job's whole environment as NAME=value entries separated
# by NUL, exported without evaluation, then deleted.
MDKEEP_JOB_DIR="$1"
shift
if [ -f "$MDKEEP_JOB_DIR/job.env" ]; then
  while IFS= read -r -d '' kv; do export "$kv"; done < "$MDKEEP_JOB_DIR/job.env"
  rm -f "$MDKEEP_JOB_DIR/job.env"
fi
if [ -x /usr/bin/time ]; then
  /usr/bin/time -f %M -o "$MDKEEP_JOB_DIR/peak_kb" -- "$@"
  rc=$?
else
  "$@"
  rc=$?
fi
for f in /sys/fs/cgroup/memory/slurm*/uid_*/job_${SLURM_JOB_ID}/memory.max_usage_in_bytes \
         /sys/fs/cgroup/system.slice/slurmstepd.scope/job_${SLURM_JOB_ID}/memory.peak; do
  if [ -r "$f" ]; then cat "$f" > "$MDKEEP_JOB_DIR/cgroup_peak_bytes"; break; fi
done
exit $rc
"#;

/// A Slurm command with the configured SLURM_CONF and binary folder, and
/// only the environment a job may inherit: sbatch exports its own
/// environment to the job (and Slurm keeps it in its state folder).
pub fn command(cfg: &Config, name: &str) -> Command {
    let s = &cfg.jobs.slurm;
    let mut c = Command::new(s.bin_dir.as_ref().map(|d| d.join(name)).unwrap_or_else(|| name.into()));
    c.env_clear().envs(inherited_env());
    if let Some(conf) = &s.conf {
        c.env("SLURM_CONF", cfg.resolve(conf));
    }
    c
}

fn output(cfg: &Config, name: &str, args: &[&str]) -> Result<String> {
    let o = command(cfg, name)
        .args(args)
        .output()
        .map_err(|e| Error::Invalid(format!("cannot run {name}: {e}")))?;
    if !o.status.success() {
        return Err(Error::Invalid(format!(
            "{name} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// The most memory one node of the partition has, in bytes (`sinfo %m`).
pub fn max_node_memory(cfg: &Config) -> Result<Option<u64>> {
    let mut args = vec!["-h", "-o", "%m"];
    if let Some(part) = &cfg.jobs.slurm.partition {
        args.extend(["-p", part.as_str()]);
    }
    let text = output(cfg, "sinfo", &args)?;
    Ok(text
        .lines()
        .filter_map(|l| l.trim().trim_end_matches('+').parse::<u64>().ok())
        .max()
        .map(|mb| mb << 20))
}

/// `12345K`, `1.5G`, `800M` as bytes.
fn parse_mem(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let v: f64 = num.parse().ok()?;
    let mult = match unit {
        "" | "B" => 1.0,
        "K" => 1024.0,
        "M" => 1048576.0,
        "G" => 1073741824.0,
        "T" => 1099511627776.0,
        _ => return None,
    };
    Some((v * mult) as u64)
}

/// Submit the prepared job; returns its Slurm id.
pub fn submit(l: &Launch, dir: &Path, argv: &[String], env: &[(String, String)]) -> Result<i64> {
    let cfg = &l.cfg;
    let script = dir.join("job.sbatch");
    crate::fsutil::write_atomic(&script, SCRIPT.as_bytes())?;
    let mb = l.reserved.div_ceil(1 << 20).max(1);
    // minutes:seconds, so a timeout under a minute stays one.
    let secs = (l.job.timeout_ms.max(1000) as u64).div_ceil(1000);
    let time = format!("{}:{:02}", secs / 60, secs % 60);
    let mut args: Vec<String> = vec![
        "--parsable".into(),
        format!("--job-name=mdkeep-{}-{}", l.job.id, l.job.name),
        format!("--mem={mb}M"),
        format!("--time={time}"),
        format!("--output={}", dir.join("stdout.log").display()),
        format!("--error={}", dir.join("stderr.log").display()),
        format!("--chdir={}", dir.display()),
        "--export=NONE".into(),
    ];
    if let Some(p) = &cfg.jobs.slurm.partition {
        args.push(format!("--partition={p}"));
    }
    args.extend(cfg.jobs.slurm.extra_args.iter().cloned());
    args.push(script.display().to_string());
    args.push(dir.display().to_string());
    args.extend(argv.iter().cloned());
    let mut job_env = inherited_env();
    job_env.extend(env.iter().cloned());
    write_env(&dir.join("job.env"), &job_env)?;
    let o = command(cfg, "sbatch").args(&args).output().map_err(|e| Error::Job {
        id: l.job.id,
        message: format!("cannot run sbatch: {e}"),
    })?;
    if !o.status.success() {
        return Err(Error::Job {
            id: l.job.id,
            message: format!("sbatch refused it: {}", String::from_utf8_lossy(&o.stderr).trim()),
        });
    }
    let text = String::from_utf8_lossy(&o.stdout);
    let id: i64 = text
        .trim()
        .split(';')
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::Job {
            id: l.job.id,
            message: format!("sbatch said `{}`, not a job id", text.trim()),
        })?;
    let db = Db::open_existing(&cfg.state_db())?;
    super::queue::set_slurm_id(&db, l.job.id, id)?;
    tracing::info!(job = l.job.id, slurm_id = id, mem_mb = mb, "submitted to Slurm");
    Ok(id)
}

/// The job's environment as NUL-separated `NAME=value`, readable by its
/// owner only from the moment the file exists.
fn write_env(path: &Path, secrets: &[(String, String)]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    if secrets.is_empty() {
        return Ok(());
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(Error::io("create", path))?;
    for (k, v) in secrets {
        f.write_all(format!("{k}={v}\0").as_bytes())
            .map_err(Error::io("write", path))?;
    }
    f.sync_all().map_err(Error::io("sync", path))
}

/// (state, exit code) of a Slurm job, from scontrol, else the jobcomp file.
fn state(cfg: &Config, sid: i64) -> Option<(String, Option<i32>)> {
    let id = sid.to_string();
    if let Ok(text) = output(cfg, "scontrol", &["show", "job", "-o", &id]) {
        let field = |k: &str| {
            text.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .map(str::to_string)
        };
        if let Some(st) = field("JobState=") {
            let code = field("ExitCode=").and_then(|c| c.split(':').next()?.parse().ok());
            return Some((st, code));
        }
    }
    let text = output(cfg, "sacct", &["-c", "-n", "-P", "-j", &id, "-o", "State,ExitCode"]).ok()?;
    let line = text.lines().find(|l| !l.trim().is_empty())?;
    let mut parts = line.split('|');
    let st = parts.next()?.split_whitespace().next()?.to_string();
    let code = parts.next().and_then(|c| c.split(':').next()?.parse().ok());
    Some((st, code))
}

fn terminal(state: &str) -> Option<Outcome> {
    Some(match state {
        "COMPLETED" => Outcome::Succeeded,
        "FAILED" | "BOOT_FAIL" | "DEADLINE" => Outcome::Failed,
        "OUT_OF_MEMORY" => Outcome::OomKilled,
        "TIMEOUT" => Outcome::TimedOut,
        "CANCELLED" => Outcome::Cancelled,
        "NODE_FAIL" | "PREEMPTED" => Outcome::Interrupted,
        _ => return None,
    })
}

/// The job's own record of its peak, else its cgroup's.
fn recorded_peak(dir: &Path) -> Option<u64> {
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
    if let Some(kb) = read("peak_kb").and_then(|t| t.lines().rev().find_map(|l| l.trim().parse::<u64>().ok())) {
        return Some(kb * 1024);
    }
    read("cgroup_peak_bytes").and_then(|t| t.trim().parse().ok())
}

/// Watch Slurm job `sid` to its end (or until the worker shuts down).
pub fn track(l: &Launch, dir: &Path, sid: i64) -> Finish {
    let cfg = &l.cfg;
    let poll = cfg
        .jobs
        .slurm
        .poll
        .0
        .clamp(Duration::from_millis(100), Duration::from_secs(30));
    let mut sampled = 0u64;
    let mut cancel_sent = false;
    let mut unknown = 0;
    loop {
        match l.stop.load(Ordering::Relaxed) {
            STOP_CANCEL if !cancel_sent => {
                let _ = output(cfg, "scancel", &[&sid.to_string()]);
                cancel_sent = true;
            }
            STOP_SHUTDOWN => {
                return Finish {
                    outcome: Outcome::Interrupted,
                    exit_code: None,
                    peak_bytes: None,
                    message: DETACHED.into(),
                }
            }
            _ => {}
        }
        match state(cfg, sid) {
            Some((st, code)) => {
                unknown = 0;
                if let Some(outcome) = terminal(&st) {
                    // sstat's once-a-second samples can only miss the peak, never exceed it.
                    let peak = recorded_peak(dir).unwrap_or(0).max(sampled);
                    tracing::info!(job = l.job.id, slurm_id = sid, state = %st, peak, "Slurm job ended");
                    return Finish {
                        outcome,
                        exit_code: code,
                        peak_bytes: (peak > 0).then_some(peak),
                        message: format!("Slurm job {sid}: {st}"),
                    };
                }
                if st == "RUNNING" {
                    if let Ok(t) = output(
                        cfg,
                        "sstat",
                        &["-n", "-P", "-a", "-j", &sid.to_string(), "-o", "MaxRSS"],
                    ) {
                        sampled = sampled.max(t.lines().filter_map(parse_mem).max().unwrap_or(0));
                    }
                }
            }
            None => {
                unknown += 1;
                if unknown > 30 {
                    return Finish {
                        outcome: Outcome::Failed,
                        exit_code: None,
                        peak_bytes: None,
                        message: format!("Slurm no longer knows job {sid}"),
                    };
                }
            }
        }
        std::thread::sleep(poll);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_and_states() {
        assert_eq!(parse_mem("1024K"), Some(1 << 20));
        assert_eq!(parse_mem("1.5G"), Some(1610612736));
        assert_eq!(parse_mem(""), None);
        assert_eq!(terminal("OUT_OF_MEMORY"), Some(Outcome::OomKilled));
        assert_eq!(terminal("PREEMPTED"), Some(Outcome::Interrupted));
        assert_eq!(terminal("RUNNING"), None);
        assert_eq!(terminal("PENDING"), None);
    }
}
