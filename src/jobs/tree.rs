//! A job's processes, wherever they went: its descendants, and the
//! orphans that came back to the worker.
//!
//! Owns making the worker a child subreaper (so that a job's child that
//! calls `setsid()`, or a double fork, is reparented to the worker and not
//! to init), finding every process that belongs to a job (the descendants
//! of its main process, its process group, and orphans that carry the job's
//! `MDKEEP_JOB_DIR`), summing their RSS and counting their tasks for the
//! watchdog, signalling them and reaping the ones that end as the worker's
//! children. A process is
//! known by its pid and start time, so a reused pid is never taken for it.

use std::collections::{HashMap, HashSet};
use std::fs;

/// Make this process the reaper of its descendants' orphans (Linux ≥ 3.4).
pub fn become_subreaper() -> bool {
    // SAFETY: prctl with an integer argument; no memory is passed.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 }
}

/// One line of `/proc/<pid>/stat`, the fields this module reads.
#[derive(Debug, Clone, Copy)]
struct Stat {
    pid: i32,
    ppid: i32,
    pgrp: i32,
    zombie: bool,
    start: u64,
    rss_pages: u64,
    threads: u64,
}

fn stat(pid: &str) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields follow the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state): ppid 4, pgrp 5, num_threads 20, starttime 22, rss 24.
    (f.len() > 21).then_some(())?;
    Some(Stat {
        pid: pid.parse().ok()?,
        ppid: f[1].parse().ok()?,
        pgrp: f[2].parse().ok()?,
        zombie: f[0] == "Z" || f[0] == "X",
        start: f[19].parse().ok()?,
        rss_pages: f[21].parse().ok()?,
        threads: f[17].parse().ok()?,
    })
}

fn all_processes() -> Vec<Stat> {
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let name = name.to_str()?;
            name.bytes().all(|b| b.is_ascii_digit()).then(|| stat(name))?
        })
        .collect()
}

/// Whether `pid`'s environment holds `entry` (`KEY=value`) exactly.
fn environ_has(pid: i32, entry: &[u8]) -> bool {
    let path = format!("/proc/{pid}/environ");
    let env = match fs::read(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => as_owner_of(pid, || fs::read(&path)),
        other => other,
    };
    env.is_ok_and(|env| env.split(|&b| b == 0).any(|e| e == entry))
}

/// Run `read` with this thread's filesystem uid and gid set to those of
/// `pid`'s owner, then set them back. A root worker without CAP_SYS_PTRACE
/// (a container's default set) may not read the environment of a job that
/// runs as `jobs.run_as`; the kernel lets a caller whose fs uid and gid
/// match the target's. setfsuid and setfsgid change the calling thread only.
fn as_owner_of<T>(pid: i32, read: impl FnOnce() -> std::io::Result<T>) -> std::io::Result<T> {
    let denied = || std::io::Error::from(std::io::ErrorKind::PermissionDenied);
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    // "Uid:\treal\teffective\tsaved\tfs": all four must agree for the check to pass.
    let ids = |key: &str| -> Option<u32> {
        let line = status.lines().find_map(|l| l.strip_prefix(key))?;
        let v: Vec<u32> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        (v.len() == 4 && v.iter().all(|&x| x == v[0])).then_some(v[0])
    };
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let (Some(uid), Some(gid), true) = (ids("Uid:"), ids("Gid:"), root) else {
        return Err(denied());
    };
    // SAFETY: raw setfsgid/setfsuid syscalls on this thread; they take and return ids only.
    let (old_gid, old_uid) = unsafe {
        let g = libc::syscall(libc::SYS_setfsgid, gid);
        let u = libc::syscall(libc::SYS_setfsuid, uid);
        (g, u)
    };
    let out = read();
    // SAFETY: as above, restoring the ids this thread had.
    unsafe {
        libc::syscall(libc::SYS_setfsuid, old_uid as u32);
        libc::syscall(libc::SYS_setfsgid, old_gid as u32);
    }
    out
}

/// What one look at the job's processes found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub rss: u64,
    pub processes: usize,
    /// Processes and threads, as `pids.max` counts them.
    pub tasks: u64,
}

/// The processes of one job.
pub struct JobTree {
    main: i32,
    /// The main process's start time, read while it cannot have been reaped.
    main_start: Option<u64>,
    marker: Vec<u8>,
    me: i32,
    /// pid → start time of every process seen as the job's, alive or not.
    known: HashMap<i32, u64>,
    members: Vec<Stat>,
}

impl JobTree {
    /// The job whose main process is `main` (not yet waited for) and whose
    /// environment carries `MDKEEP_JOB_DIR=<job_dir>`.
    pub fn new(main: i32, job_dir: &str) -> JobTree {
        JobTree {
            main,
            main_start: stat(&main.to_string()).map(|s| s.start),
            marker: format!("MDKEEP_JOB_DIR={job_dir}").into_bytes(),
            me: std::process::id() as i32,
            known: HashMap::new(),
            members: Vec::new(),
        }
    }

    /// Find the job's processes now, and what they hold.
    pub fn sample(&mut self) -> Usage {
        let procs = all_processes();
        let mut children: HashMap<i32, Vec<usize>> = HashMap::new();
        for (i, p) in procs.iter().enumerate() {
            children.entry(p.ppid).or_default().push(i);
        }
        let mut queue: Vec<usize> = Vec::new();
        for (i, p) in procs.iter().enumerate() {
            let seen = self.known.get(&p.pid) == Some(&p.start);
            // A pid is not reused while it names a live process group.
            let own =
                (p.pid == self.main && Some(p.start) == self.main_start) || (self.main > 1 && p.pgrp == self.main);
            // An orphan handed back to this worker: the job's if it carries the job's folder.
            let returned = p.ppid == self.me && p.pid != self.main && environ_has(p.pid, &self.marker);
            if seen || own || returned {
                queue.push(i);
            }
        }
        let mut found: HashSet<usize> = HashSet::new();
        while let Some(i) = queue.pop() {
            if found.insert(i) {
                queue.extend(children.get(&procs[i].pid).into_iter().flatten().copied());
            }
        }
        self.members = found.into_iter().map(|i| procs[i]).collect();
        let page = page_size();
        let mut usage = Usage::default();
        for p in &self.members {
            self.known.insert(p.pid, p.start);
            if !p.zombie {
                usage.rss += p.rss_pages * page;
                usage.processes += 1;
                usage.tasks += p.threads.max(1);
            }
        }
        self.reap();
        usage
    }

    /// The RSS of the processes found by the last [`sample`](Self::sample),
    /// read again now with one small read each (`/proc/<pid>/statm`): the
    /// watchdog's quick look while a job nears its limit.
    pub fn quick_rss(&self) -> u64 {
        let page = page_size();
        self.members
            .iter()
            .filter(|p| !p.zombie)
            .filter_map(|p| std::fs::read_to_string(format!("/proc/{}/statm", p.pid)).ok())
            .filter_map(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map(|pages| pages * page)
            .sum()
    }

    /// Signal every process of the job found by the last [`sample`](Self::sample),
    /// and its process group.
    pub fn signal(&self, sig: i32) {
        for p in self
            .members
            .iter()
            .filter(|p| !p.zombie && p.pid > 1 && p.pid != self.me)
        {
            // SAFETY: kill(2) on a pid this worker found as the job's; no memory is touched.
            unsafe {
                libc::kill(p.pid, sig);
            }
        }
        crate::jobs::limit::signal_group(self.main, sig);
    }

    /// Kill every process of the job and wait (up to `patience`) until none is left.
    pub fn kill_all(&mut self, patience: std::time::Duration) -> usize {
        let until = std::time::Instant::now() + patience;
        loop {
            let left = self.sample().processes;
            if left == 0 || std::time::Instant::now() >= until {
                return left;
            }
            self.signal(libc::SIGKILL);
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Collect the exit status of the job's orphans that ended as this
    /// worker's children (the main process is its runner's to wait for).
    fn reap(&self) {
        for p in self
            .members
            .iter()
            .filter(|p| p.zombie && p.ppid == self.me && p.pid != self.main)
        {
            // SAFETY: waitpid on one pid with WNOHANG; the status is written to a local.
            unsafe {
                let mut status = 0;
                libc::waitpid(p.pid, &mut status, libc::WNOHANG);
            }
        }
    }
}

/// Kill every process, anywhere, that carries `MDKEEP_JOB_DIR=<job_dir>`:
/// what a dead worker's job left behind once its orphans went to init.
pub fn kill_marked(job_dir: &str) -> usize {
    let marker = format!("MDKEEP_JOB_DIR={job_dir}").into_bytes();
    let me = std::process::id() as i32;
    let mut n = 0;
    for p in all_processes() {
        if p.pid != me && !p.zombie && environ_has(p.pid, &marker) {
            // SAFETY: kill(2) on a pid whose environment names the dead job's folder.
            unsafe {
                libc::kill(p.pid, libc::SIGKILL);
            }
            n += 1;
        }
    }
    n
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn an_escaped_grandchild_is_found_summed_and_killed() {
        assert!(become_subreaper());
        let dir = format!("/tmp/mdkeep-tree-test-{}", std::process::id());
        // The child escapes its process group and session, then double-forks:
        // the grandchild is an orphan that comes back to this process.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "setsid sh -c 'sleep 30 & exit 0'; sleep 30"])
            .env("MDKEEP_JOB_DIR", &dir)
            .process_group(0)
            .spawn()
            .unwrap();
        let main = child.id() as i32;
        let mut tree = JobTree::new(main, &dir);
        let mut seen = Usage::default();
        for _ in 0..200 {
            seen = tree.sample();
            if seen.processes >= 3 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(seen.processes >= 3 && seen.rss > 0, "{seen:?}");
        assert!(
            tree.members.iter().any(|p| p.ppid == tree.me && p.pid != main),
            "no orphan came back to the subreaper: {:?}",
            tree.members
        );
        assert_eq!(tree.kill_all(std::time::Duration::from_secs(5)), 0);
        let _ = child.wait();
        assert_eq!(kill_marked(&dir), 0, "a marked process outlived the kill");
    }
}
