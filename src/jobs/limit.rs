//! Per-job memory limits: cgroup v2, cgroup v1, or an RSS watchdog.
//!
//! Owns finding which mechanism this process may use (by trying to make a
//! memory group next to its own), creating one group per job, reading its
//! peak and OOM-kill count, killing what is left in it, and summing a
//! process group's RSS from /proc for the watchdog. When to kill for
//! memory is the runner's decision.

use std::fs::{self, File};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::LimitMode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mechanism {
    Cgroup2,
    Cgroup1,
    Watchdog,
}

impl Mechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::Cgroup2 => "cgroup2",
            Mechanism::Cgroup1 => "cgroup1",
            Mechanism::Watchdog => "watchdog",
        }
    }
}

/// The folder holding this process's own group in the v2 hierarchy.
fn own_v2() -> Option<PathBuf> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    for base in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        let b = Path::new(base);
        if b.join("cgroup.controllers").exists() {
            return Some(b.join(rel.trim_start_matches('/')));
        }
    }
    None
}

/// The folder holding this process's own group in the v1 memory hierarchy.
fn own_v1() -> Option<PathBuf> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = text.lines().find_map(|l| {
        let mut it = l.splitn(3, ':');
        let (_, ctrl, path) = (it.next()?, it.next()?, it.next()?);
        ctrl.split(',').any(|c| c == "memory").then_some(path)
    })?;
    let dir = Path::new("/sys/fs/cgroup/memory").join(rel.trim_start_matches('/'));
    dir.join("memory.limit_in_bytes").exists().then_some(dir)
}

/// Where job groups go for `m`, if this process can make one there.
fn parent_for(m: Mechanism) -> Option<PathBuf> {
    let (parent, probe_file) = match m {
        Mechanism::Cgroup2 => (own_v2()?, "memory.max"),
        Mechanism::Cgroup1 => (own_v1()?, "memory.limit_in_bytes"),
        Mechanism::Watchdog => return None,
    };
    let probe = parent.join(format!("mdkeep-probe-{}", std::process::id()));
    fs::create_dir(&probe).ok()?;
    let ok = probe.join(probe_file).exists();
    let _ = fs::remove_dir(&probe);
    ok.then_some(parent)
}

/// The mechanism in force for `mode`, and where its groups go.
pub fn detect(mode: LimitMode) -> (Mechanism, Option<PathBuf>) {
    let order: &[Mechanism] = match mode {
        LimitMode::Auto => &[Mechanism::Cgroup2, Mechanism::Cgroup1],
        LimitMode::Cgroup2 => &[Mechanism::Cgroup2],
        LimitMode::Cgroup1 => &[Mechanism::Cgroup1],
        LimitMode::Watchdog => &[],
    };
    for &m in order {
        if let Some(p) = parent_for(m) {
            return (m, Some(p));
        }
        if mode != LimitMode::Auto {
            tracing::warn!(
                mechanism = m.as_str(),
                "cannot create a memory cgroup here; using the RSS watchdog"
            );
        }
    }
    (Mechanism::Watchdog, None)
}

/// One job's memory group (absent under the watchdog).
pub struct Group {
    pub mechanism: Mechanism,
    dir: Option<PathBuf>,
    procs: Option<File>,
}

impl Group {
    /// Make the job's group with `limit` bytes (memory and, on v1, memory+swap).
    pub fn create(mechanism: Mechanism, parent: Option<&Path>, job: i64, limit: u64) -> std::io::Result<Group> {
        let Some(parent) = parent.filter(|_| mechanism != Mechanism::Watchdog) else {
            return Ok(Group {
                mechanism: Mechanism::Watchdog,
                dir: None,
                procs: None,
            });
        };
        let dir = parent.join(group_name(std::process::id() as i64, job));
        if dir.exists() {
            kill_all_in(&dir);
            let _ = fs::remove_dir(&dir);
        }
        fs::create_dir(&dir)?;
        let set = |f: &str, v: &str| fs::write(dir.join(f), v);
        match mechanism {
            Mechanism::Cgroup2 => {
                set("memory.max", &limit.to_string())?;
                let _ = set("memory.swap.max", "0");
                let _ = set("memory.oom.group", "1");
            }
            Mechanism::Cgroup1 => {
                set("memory.limit_in_bytes", &limit.to_string())?;
                // Swap must not stretch the limit; the file exists only with swap accounting.
                let _ = set("memory.memsw.limit_in_bytes", &limit.to_string());
            }
            Mechanism::Watchdog => unreachable!(),
        }
        let procs = fs::OpenOptions::new().write(true).open(dir.join("cgroup.procs"))?;
        Ok(Group {
            mechanism,
            dir: Some(dir),
            procs: Some(procs),
        })
    }

    /// A descriptor the child writes its own pid to before exec.
    pub fn procs_fd(&self) -> Option<RawFd> {
        self.procs.as_ref().map(|f| f.as_raw_fd())
    }

    fn read(&self, f: &str) -> Option<String> {
        fs::read_to_string(self.dir.as_ref()?.join(f)).ok()
    }

    /// The group's own peak, where the kernel keeps one.
    pub fn peak(&self) -> Option<u64> {
        let f = match self.mechanism {
            Mechanism::Cgroup2 => "memory.peak",
            Mechanism::Cgroup1 => "memory.max_usage_in_bytes",
            Mechanism::Watchdog => return None,
        };
        self.read(f)?.trim().parse().ok()
    }

    /// Whether the kernel killed something in the group for memory.
    pub fn oom_killed(&self) -> bool {
        let (f, key) = match self.mechanism {
            Mechanism::Cgroup2 => ("memory.events", "oom_kill"),
            Mechanism::Cgroup1 => ("memory.oom_control", "oom_kill"),
            Mechanism::Watchdog => return false,
        };
        self.read(f)
            .and_then(|t| {
                t.lines().find_map(|l| {
                    let mut it = l.split_whitespace();
                    (it.next() == Some(key)).then(|| it.next().and_then(|v| v.parse::<u64>().ok()))?
                })
            })
            .is_some_and(|n| n > 0)
    }

    /// Kill every process left in the group, then remove it.
    pub fn remove(mut self) {
        self.procs = None;
        if let Some(dir) = self.dir.take() {
            kill_all_in(&dir);
            for _ in 0..50 {
                if fs::remove_dir(&dir).is_ok() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}

fn kill_all_in(dir: &Path) {
    if fs::write(dir.join("cgroup.kill"), "1").is_ok() {
        return;
    }
    if let Ok(t) = fs::read_to_string(dir.join("cgroup.procs")) {
        for pid in t.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            // SAFETY: kill(2) with a pid read from the group; no memory is touched.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// A job's group is named by its worker too: several mdkeep roots (or
/// test runs) share one parent group, and job ids repeat across them.
fn group_name(worker_pid: i64, job: i64) -> String {
    format!("mdkeep-{worker_pid}-job-{job}")
}

/// Remove a leftover group of `job` run by the dead `worker_pid`, killing what is in it.
pub fn remove_leftover(parent: Option<&Path>, worker_pid: i64, job: i64) {
    if let Some(p) = parent {
        let dir = p.join(group_name(worker_pid, job));
        if dir.exists() {
            kill_all_in(&dir);
            let _ = fs::remove_dir(&dir);
        }
    }
}

/// Write the calling process's pid to `fd` (a `cgroup.procs`): safe to call
/// between fork and exec, as it allocates nothing.
pub fn join_from_child(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: getpid and write are async-signal-safe; the buffer is on the stack.
    let pid = unsafe { libc::getpid() };
    let mut buf = [0u8; 16];
    let mut n = pid as u32;
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let len = buf.len() - i;
    let w = unsafe { libc::write(fd, buf[i..].as_ptr().cast(), len) };
    if w < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Total resident memory of the processes in process group `pgid`, and how many there are.
pub fn group_rss(pgid: i32) -> (u64, usize) {
    let page = page_size();
    let (mut total, mut n) = (0u64, 0usize);
    let Ok(rd) = fs::read_dir("/proc") else { return (0, 0) };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = fs::read_to_string(format!("/proc/{name}/stat")) else {
            continue;
        };
        // Fields after the command name, which may hold spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // rest[0] is field 3 (state): pgrp is field 5, rss field 24.
        if f.len() > 21 && f[2].parse::<i32>().ok() == Some(pgid) {
            total += f[21].parse::<u64>().unwrap_or(0) * page;
            n += 1;
        }
    }
    (total, n)
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
    }
}

/// Signal a whole process group.
pub fn signal_group(pgid: i32, sig: i32) {
    if pgid > 1 {
        // SAFETY: kill(2) on a negative pid signals the group; no memory is touched.
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_group_rss_is_counted() {
        // SAFETY: getpgrp has no preconditions.
        let pgid = unsafe { libc::getpgrp() };
        let (rss, n) = group_rss(pgid);
        assert!(n >= 1 && rss > 0, "{rss} bytes in {n} processes");
    }

    #[test]
    fn detection_never_fails() {
        let (m, parent) = detect(LimitMode::Auto);
        assert_eq!(m == Mechanism::Watchdog, parent.is_none());
        assert_eq!(detect(LimitMode::Watchdog).0, Mechanism::Watchdog);
    }
}
