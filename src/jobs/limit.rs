//! Per-job memory limits: cgroup v2, cgroup v1, or an RSS watchdog.
//!
//! Owns finding which mechanism this process may use (taking over a
//! delegated v2 subtree, see [`super::cgroup2`], or trying to make a v1
//! memory group next to its own), creating one group per job with its
//! memory and pids limits (a v1 `pids` group beside it where v2 gives no
//! `pids.max`), reading its usage, peak, OOM-kill and refused-fork counts,
//! and killing what is left in it. Finding a job's processes without a group is
//! [`super::tree`]'s; when to kill for memory is the runner's decision.

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

/// The folder holding this process's own group in the v1 hierarchy of
/// `controller`, if it is mounted there and has `file`.
fn own_v1(controller: &str, file: &str) -> Option<PathBuf> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = text.lines().find_map(|l| {
        let mut it = l.splitn(3, ':');
        let (_, ctrl, path) = (it.next()?, it.next()?, it.next()?);
        ctrl.split(',').any(|c| c == controller).then_some(path)
    })?;
    let dir = Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(rel.trim_start_matches('/'));
    dir.join(file).exists().then_some(dir)
}

/// Where v1 `pids` groups of jobs go: beside this process's own group.
fn own_v1_pids() -> Option<PathBuf> {
    own_v1("pids", "cgroup.procs")
}

/// Where job groups go for `m`, if this process can make one there.
fn parent_for(m: Mechanism) -> Option<PathBuf> {
    let (parent, probe_file) = match m {
        Mechanism::Cgroup2 => {
            let own = super::cgroup2::own_group()?;
            match super::cgroup2::delegate(&own, std::process::id()) {
                Ok(d) => {
                    for step in &d.steps {
                        tracing::info!(step, "cgroup v2 delegation");
                    }
                    (d.parent, "memory.max")
                }
                Err(why) => {
                    tracing::debug!(why, "no cgroup v2 memory groups");
                    return None;
                }
            }
        }
        Mechanism::Cgroup1 => (own_v1("memory", "memory.limit_in_bytes")?, "memory.limit_in_bytes"),
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

/// What a job's group holds it to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of memory (and, on v1, memory plus swap; v2 gets no swap).
    pub memory: u64,
    /// Processes and threads (`pids.max`, v2 or v1).
    pub pids: u64,
}

/// One job's memory group (absent under the watchdog), and its v1 `pids`
/// group where v2 gives it no `pids.max`.
pub struct Group {
    pub mechanism: Mechanism,
    dir: Option<PathBuf>,
    procs: Option<File>,
    pids_dir: Option<PathBuf>,
    pids_procs: Option<File>,
}

impl Group {
    /// Make the job's group under `parent` with its limits in place, and open
    /// its `cgroup.procs` for the child to join before exec.
    pub fn create(mechanism: Mechanism, parent: Option<&Path>, job: i64, limits: &Limits) -> std::io::Result<Group> {
        let Some(parent) = parent.filter(|_| mechanism != Mechanism::Watchdog) else {
            return Ok(Group {
                mechanism: Mechanism::Watchdog,
                dir: None,
                procs: None,
                pids_dir: None,
                pids_procs: None,
            });
        };
        let dir = parent.join(group_name(std::process::id() as i64, job));
        if dir.exists() {
            kill_all_in(&dir);
            let _ = fs::remove_dir(&dir);
        }
        fs::create_dir(&dir)?;
        let set = |f: &str, v: &str| fs::write(dir.join(f), v);
        let memory = limits.memory.to_string();
        match mechanism {
            Mechanism::Cgroup2 => {
                set("memory.max", &memory)?;
                // Absent without swap accounting; otherwise swap must not stretch the limit.
                super::cgroup2::write_optional(&dir, "memory.swap.max", "0")?;
                super::cgroup2::write_optional(&dir, "pids.max", &limits.pids.to_string())?;
                // An OOM kill takes the whole job, not one of its processes.
                super::cgroup2::write_optional(&dir, "memory.oom.group", "1")?;
            }
            Mechanism::Cgroup1 => {
                set("memory.limit_in_bytes", &memory)?;
                // Swap must not stretch the limit; the file exists only with swap accounting.
                let _ = set("memory.memsw.limit_in_bytes", &memory);
            }
            Mechanism::Watchdog => unreachable!(),
        }
        // The kernel makes cgroup.procs with the folder (O_CREAT only opens
        // it there); a test's folder laid out like a cgroupfs gets a plain file.
        let procs = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("cgroup.procs"))?;
        Ok(Group {
            mechanism,
            dir: Some(dir),
            procs: Some(procs),
            pids_dir: None,
            pids_procs: None,
        })
    }

    /// Whether the kernel holds the job to `pids.max`: its v2 group has the
    /// file, or it has a v1 `pids` group.
    pub fn kernel_pids(&self) -> bool {
        self.pids_dir.is_some()
            || (self.mechanism == Mechanism::Cgroup2 && self.dir.as_ref().is_some_and(|d| d.join("pids.max").exists()))
    }

    /// Add a v1 `pids` group holding the job to `max` (cgroup v1, or a v2
    /// group without the pids controller): false, and the reason logged,
    /// where there is none to make (the watchdog's count remains).
    pub fn add_v1_pids(&mut self, job: i64, max: u64) -> bool {
        let Some(parent) = own_v1_pids() else { return false };
        let dir = parent.join(group_name(std::process::id() as i64, job));
        if dir.exists() {
            kill_all_in(&dir);
            let _ = fs::remove_dir(&dir);
        }
        let made = fs::create_dir(&dir).and_then(|()| {
            fs::write(dir.join("pids.max"), max.to_string())?;
            fs::OpenOptions::new().write(true).open(dir.join("cgroup.procs"))
        });
        match made {
            Ok(f) => {
                self.pids_procs = Some(f);
                self.pids_dir = Some(dir);
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, dir = %dir.display(), "no cgroup v1 pids group");
                let _ = fs::remove_dir(&dir);
                false
            }
        }
    }

    /// Forks the kernel refused at `pids.max` (v2 or v1 `pids.events`).
    pub fn pids_refused(&self) -> u64 {
        let v2 = self.dir.as_ref().filter(|_| self.mechanism == Mechanism::Cgroup2);
        [v2, self.pids_dir.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|d| fs::read_to_string(d.join("pids.events")).ok())
            .flat_map(|t| {
                t.lines()
                    .filter_map(|l| l.strip_prefix("max ")?.trim().parse::<u64>().ok())
                    .collect::<Vec<_>>()
            })
            .sum()
    }

    /// A descriptor the child writes its own pid to before exec, for its v1 `pids` group.
    pub fn pids_procs_fd(&self) -> Option<RawFd> {
        self.pids_procs.as_ref().map(|f| f.as_raw_fd())
    }

    /// The group's folder (none under the watchdog).
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// A descriptor the child writes its own pid to before exec.
    pub fn procs_fd(&self) -> Option<RawFd> {
        self.procs.as_ref().map(|f| f.as_raw_fd())
    }

    fn read_u64(&self, f: &str) -> Option<u64> {
        fs::read_to_string(self.dir.as_ref()?.join(f)).ok()?.trim().parse().ok()
    }

    /// The group's own peak, where the kernel keeps one (v2 from 5.19, v1).
    pub fn peak(&self) -> Option<u64> {
        match self.mechanism {
            Mechanism::Cgroup2 => self.read_u64("memory.peak"),
            Mechanism::Cgroup1 => self.read_u64("memory.max_usage_in_bytes"),
            Mechanism::Watchdog => None,
        }
    }

    /// The group's memory in use now, for a sampled peak where the kernel keeps none.
    pub fn current(&self) -> Option<u64> {
        match self.mechanism {
            Mechanism::Cgroup2 => self.read_u64("memory.current"),
            Mechanism::Cgroup1 => self.read_u64("memory.usage_in_bytes"),
            Mechanism::Watchdog => None,
        }
    }

    /// Whether the kernel killed something in the group for memory.
    pub fn oom_killed(&self) -> bool {
        let (f, key) = match self.mechanism {
            Mechanism::Cgroup2 => ("memory.events", "oom_kill"),
            Mechanism::Cgroup1 => ("memory.oom_control", "oom_kill"),
            Mechanism::Watchdog => return false,
        };
        let Some(dir) = &self.dir else { return false };
        fs::read_to_string(dir.join(f))
            .ok()
            .and_then(|t| {
                t.lines().find_map(|l| {
                    let mut it = l.split_whitespace();
                    (it.next() == Some(key)).then(|| it.next().and_then(|v| v.parse::<u64>().ok()))?
                })
            })
            .is_some_and(|n| n > 0)
    }

    /// Kill every process in the group.
    pub fn kill_all(&self) {
        for dir in [&self.dir, &self.pids_dir].into_iter().flatten() {
            kill_all_in(dir);
        }
    }

    /// Kill every process left in the group, then remove it.
    pub fn remove(mut self) {
        self.procs = None;
        self.pids_procs = None;
        for dir in [self.dir.take(), self.pids_dir.take()].into_iter().flatten() {
            kill_all_in(&dir);
            for _ in 0..50 {
                match fs::remove_dir(&dir) {
                    // Busy while its killed processes are still exiting.
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        std::thread::sleep(std::time::Duration::from_millis(20))
                    }
                    _ => break,
                }
            }
        }
    }
}

/// `cgroup.kill` where the kernel has it (≥ 5.14); else SIGKILL to every pid
/// listed, again while a fork race adds new ones.
fn kill_all_in(dir: &Path) {
    let kill = dir.join("cgroup.kill");
    if kill.exists() && fs::write(&kill, "1").is_ok() {
        return;
    }
    let mut last: Vec<i32> = Vec::new();
    for _ in 0..20 {
        let Ok(t) = fs::read_to_string(dir.join("cgroup.procs")) else {
            return;
        };
        let pids: Vec<i32> = t.lines().filter_map(|l| l.trim().parse().ok()).collect();
        if pids.is_empty() || pids == last {
            return;
        }
        for &pid in &pids {
            // SAFETY: kill(2) with a pid read from the group; no memory is touched.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        last = pids;
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// A job's group is named by its worker too: several mdkeep roots (or
/// test runs) share one parent group, and job ids repeat across them.
fn group_name(worker_pid: i64, job: i64) -> String {
    format!("mdkeep-{worker_pid}-job-{job}")
}

/// Remove a leftover group of `job` run by the dead `worker_pid`, killing what is in it.
pub fn remove_leftover(parent: Option<&Path>, worker_pid: i64, job: i64) {
    for p in [parent.map(Path::to_path_buf), own_v1_pids()].into_iter().flatten() {
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

/// Make the calling process the kernel's first choice when memory runs
/// out (`oom_score_adj` 1000: raising it needs no privilege), so a job goes
/// before the daemon, the worker or the trading backend. Safe between fork
/// and exec (open, write and close only); a kernel without the file is
/// left as it is.
pub fn prefer_for_oom_kill() {
    // SAFETY: a NUL-terminated literal path and a stack buffer; open, write
    // and close are async-signal-safe.
    unsafe {
        let fd = libc::open(c"/proc/self/oom_score_adj".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd >= 0 {
            let v = b"1000";
            libc::write(fd, v.as_ptr().cast(), v.len());
            libc::close(fd);
        }
    }
}

/// Cap the calling process's data segment (heap and private mappings) at
/// `bytes` (RLIMIT_DATA, soft and hard): an allocation past it fails in
/// the process itself, however fast it allocates. Safe between fork and exec.
pub fn cap_data(bytes: u64) -> std::io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: bytes as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the struct on the stack; async-signal-safe.
    if unsafe { libc::setrlimit(libc::RLIMIT_DATA, &lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
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
    fn detection_never_fails() {
        let (m, parent) = detect(LimitMode::Auto);
        assert_eq!(m == Mechanism::Watchdog, parent.is_none());
        assert_eq!(detect(LimitMode::Watchdog).0, Mechanism::Watchdog);
    }
}
