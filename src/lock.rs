//! The data lock: one owner at a time for every change to the data.
//!
//! Owns `data/state/mdkeep.lock`, an OS file lock (`flock`) that the CLI's
//! data-changing commands (`scan`, `compact`, `tier`, `rollup`, `retention`,
//! `quota`, `maintain`, `ingest`) and the daemon's tasks hold for a whole
//! run. The kernel releases it when its holder dies, and it works across
//! PID namespaces (a CLI on the host beside a daemon in a container), where
//! a pid means nothing. Two tasks of one process conflict too: each opens
//! the file anew, and `flock` locks belong to an open file, not a process.
//!
//! The job worker's lock ([`WorkerLock`]) and a run's lease ([`RunLease`],
//! what an export's pins belong to) are `flock`s of the same kind.
//!
//! Each acquisition gets a run id that is never reused. Journals record it
//! as their owner, so recovery, which runs only under the lock, can tell a
//! rewrite of the current run from one whose writer is gone.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::state::now_ns;

/// How often a waiting acquirer tries again.
const RETRY: Duration = Duration::from_millis(50);

/// The run id of the lock this process holds, if any.
static HELD: Mutex<Option<String>> = Mutex::new(None);

/// The run id under which this process now changes data, if it holds the lock.
pub fn held_run() -> Option<String> {
    HELD.lock().expect("lock").clone()
}

/// The data lock, held until dropped (or until the process dies).
#[derive(Debug)]
pub struct DataLock {
    file: File,
    run: String,
    path: PathBuf,
}

/// How long to wait for the lock.
pub enum Wait<'a> {
    /// Up to this long, then fail with [`Error::Busy`] naming the holder.
    For(Duration),
    /// Until it is free, or until `stop` says to give up (a daemon task).
    Until(&'a dyn Fn() -> bool),
}

impl DataLock {
    /// The lock file of a config's state folder.
    pub fn path(cfg: &Config) -> PathBuf {
        cfg.state_db()
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
            .join("mdkeep.lock")
    }

    /// Take the lock for `what` (shown to anyone who waits for it). `Ok(None)`
    /// only when a [`Wait::Until`] was told to stop.
    pub fn acquire(cfg: &Config, what: &str, wait: Wait) -> Result<Option<DataLock>> {
        let path = Self::path(cfg);
        let started = Instant::now();
        let Some((file, run)) = take(&path, what, "another mdkeep is changing data", &wait)? else {
            return Ok(None);
        };
        *HELD.lock().expect("lock") = Some(run.clone());
        tracing::debug!(%run, what, waited_ms = started.elapsed().as_millis() as u64, "data lock taken");
        Ok(Some(DataLock { file, run, path }))
    }

    /// Take the lock, waiting up to `wait`.
    pub fn acquire_for(cfg: &Config, what: &str, wait: Duration) -> Result<DataLock> {
        Ok(Self::acquire(cfg, what, Wait::For(wait))?.expect("a timed wait never stops early"))
    }

    /// This acquisition's run id.
    pub fn run(&self) -> &str {
        &self.run
    }

    pub fn file(&self) -> &Path {
        &self.path
    }
}

impl Drop for DataLock {
    fn drop(&mut self) {
        let mut held = HELD.lock().expect("lock");
        if held.as_deref() == Some(self.run.as_str()) {
            *held = None;
        }
        release(&self.file);
    }
}

/// A new run id, never reused: the time, this process and its start time.
fn new_run() -> String {
    format!(
        "r{:x}-{}-{}",
        now_ns(),
        std::process::id(),
        crate::proc::my_start_time()
    )
}

/// Take an exclusive `flock` on `path` (created if needed) for `what`, and
/// write who holds it into the file: the open file and the new run id.
/// `busy` starts the error when a timed wait runs out.
fn take(path: &Path, what: &str, busy: &str, wait: &Wait) -> Result<Option<(File, String)>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(Error::io("create folder", dir))?;
    }
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(Error::io("open", path))?;
    let started = Instant::now();
    loop {
        // SAFETY: flock on a descriptor we own; no memory is involved.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) && err.raw_os_error() != Some(libc::EINTR) {
            return Err(Error::io("lock", path)(err));
        }
        match wait {
            Wait::For(limit) if started.elapsed() >= *limit => {
                return Err(Error::Busy(format!(
                    "{busy} ({}); waited {}s for {} (try --wait)",
                    holder(&mut file),
                    limit.as_secs(),
                    path.display()
                )));
            }
            Wait::Until(stop) if stop() => return Ok(None),
            _ => std::thread::sleep(RETRY),
        }
    }
    let run = new_run();
    let note = format!(
        "run={run} pid={} start={} command={what} since={}\n",
        std::process::id(),
        crate::proc::my_start_time(),
        crate::time::rfc3339(now_ns())
    );
    // Who holds it, for those who wait; the lock itself is the flock.
    let _ = file
        .set_len(0)
        .and_then(|_| file.rewind())
        .and_then(|_| file.write_all(note.as_bytes()));
    Ok(Some((file, run)))
}

/// Let go of a lock taken by [`take`].
fn release(file: &File) {
    // Nobody holds it once we let go; closing the file would release the
    // flock too, but say so explicitly.
    let _ = file.set_len(0);
    // SAFETY: flock on a descriptor we own.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
}

/// The job worker's lock: one worker per queue, as an `flock` on
/// `data/state/jobs-worker.lock`, so the kernel releases it when the worker
/// dies and two workers in two PID namespaces never both hold it. Its run
/// id is what the worker records on the jobs it runs.
#[derive(Debug)]
pub struct WorkerLock {
    file: File,
    run: String,
}

impl WorkerLock {
    /// Take the lock, or fail at once with [`Error::Busy`] naming the holder.
    pub fn acquire(cfg: &Config) -> Result<WorkerLock> {
        let path = DataLock::path(cfg).with_file_name("jobs-worker.lock");
        let (file, run) = take(
            &path,
            "jobs work",
            "the job worker is already running",
            &Wait::For(Duration::ZERO),
        )?
        .expect("a timed wait never stops early");
        tracing::debug!(%run, "job worker lock taken");
        Ok(WorkerLock { file, run })
    }

    /// This worker's run id.
    pub fn run(&self) -> &str {
        &self.run
    }
}

impl Drop for WorkerLock {
    fn drop(&mut self) {
        release(&self.file);
    }
}

/// A run's lease: a process that records something under a run id (the
/// pins of an `mdkeep export`) holds an `flock` on
/// `data/state/runs/<run>.lock` while it runs. Whether the run is alive is
/// then the kernel's answer ([`run_alive`]), in any PID namespace, and a
/// reused pid cannot keep a dead run's records alive.
#[derive(Debug)]
pub struct RunLease {
    file: File,
    run: String,
    path: PathBuf,
}

fn runs_dir(cfg: &Config) -> PathBuf {
    DataLock::path(cfg).with_file_name("runs")
}

impl RunLease {
    /// Start a run for `what` and hold its lease until dropped.
    pub fn take(cfg: &Config, what: &str) -> Result<RunLease> {
        let dir = runs_dir(cfg);
        std::fs::create_dir_all(&dir).map_err(Error::io("create folder", &dir))?;
        let run = new_run();
        // Locked before it has its name: nobody sees the lease unheld.
        let tmp = dir.join(format!(".{run}.tmp"));
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(Error::io("create", &tmp))?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            let e = std::io::Error::last_os_error();
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::io("lock", &tmp)(e));
        }
        let _ = (&file).write_all(format!("pid={} command={what}\n", std::process::id()).as_bytes());
        let path = dir.join(format!("{run}.lock"));
        std::fs::rename(&tmp, &path).map_err(Error::io("rename", &tmp))?;
        Ok(RunLease { file, run, path })
    }

    /// This run's id.
    pub fn run(&self) -> &str {
        &self.run
    }
}

impl Drop for RunLease {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        // SAFETY: flock on a descriptor we own.
        unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// Whether run `run`'s lease is still held. A lease nobody holds (its
/// holder died) is removed. When the answer cannot be read, the run counts
/// as alive: what it holds is kept rather than released under it.
pub fn run_alive(cfg: &Config, run: &str) -> bool {
    if run.is_empty() || run.contains('/') || run.starts_with('.') {
        return false;
    }
    let path = runs_dir(cfg).join(format!("{run}.lock"));
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
        Err(_) => return true,
    };
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        let _ = std::fs::remove_file(&path);
        return false;
    }
    // EWOULDBLOCK: its holder runs; any other error: cannot tell, so alive.
    true
}

/// What the holder wrote into the lock file.
fn holder(file: &mut File) -> String {
    let mut s = String::new();
    let _ = file.rewind().and_then(|_| file.read_to_string(&mut s));
    match s.trim() {
        "" => "holder unknown".to_string(),
        t => t.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_waits_then_is_told_who_holds_it() {
        let d = tempfile::tempdir().unwrap();
        let cfg = Config::load(d.path(), None, std::iter::empty()).unwrap();
        let a = DataLock::acquire_for(&cfg, "compact", Duration::ZERO).unwrap();
        assert_eq!(held_run().as_deref(), Some(a.run()));
        let e = DataLock::acquire_for(&cfg, "tier", Duration::from_millis(120)).unwrap_err();
        assert_eq!(e.exit_code(), 75);
        assert!(e.to_string().contains("command=compact"), "{e}");
        let stop = || true;
        assert!(DataLock::acquire(&cfg, "scan", Wait::Until(&stop)).unwrap().is_none());
        let first = a.run().to_string();
        drop(a);
        assert_eq!(held_run(), None);
        let b = DataLock::acquire_for(&cfg, "tier", Duration::ZERO).unwrap();
        assert_ne!(b.run(), first, "run ids are never reused");
    }

    #[test]
    fn one_worker_at_a_time_whatever_its_pid_and_a_lease_lives_with_its_holder() {
        let d = tempfile::tempdir().unwrap();
        let cfg = Config::load(d.path(), None, std::iter::empty()).unwrap();
        let a = WorkerLock::acquire(&cfg).unwrap();
        // Same pid, another holder: the pid proves nothing, the flock decides.
        let e = WorkerLock::acquire(&cfg).unwrap_err();
        assert_eq!(e.exit_code(), 75);
        assert!(e.to_string().contains(&format!("run={}", a.run())), "{e}");
        drop(a);
        WorkerLock::acquire(&cfg).unwrap();

        let lease = RunLease::take(&cfg, "export").unwrap();
        let run = lease.run().to_string();
        assert!(run_alive(&cfg, &run));
        drop(lease);
        assert!(!run_alive(&cfg, &run));
        // A lease file whose holder died (kill -9 leaves it, unlocked).
        let dead = runs_dir(&cfg).join("rdead.lock");
        std::fs::write(&dead, "pid=7\n").unwrap();
        assert!(!run_alive(&cfg, "rdead"));
        assert!(!dead.exists(), "a dead run's lease is removed");
        assert!(!run_alive(&cfg, "../mdkeep"));
    }
}
