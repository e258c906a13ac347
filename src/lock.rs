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
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(Error::io("create folder", dir))?;
        }
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(Error::io("open", &path))?;
        let started = Instant::now();
        loop {
            // SAFETY: flock on a descriptor we own; no memory is involved.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                break;
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK) && err.raw_os_error() != Some(libc::EINTR) {
                return Err(Error::io("lock", &path)(err));
            }
            match &wait {
                Wait::For(limit) if started.elapsed() >= *limit => {
                    return Err(Error::Busy(format!(
                        "another mdkeep is changing data ({}); waited {}s for {} (try --wait)",
                        holder(&mut file),
                        limit.as_secs(),
                        path.display()
                    )));
                }
                Wait::Until(stop) if stop() => return Ok(None),
                _ => std::thread::sleep(RETRY),
            }
        }
        let run = format!("r{:x}-{}", now_ns(), std::process::id());
        let note = format!(
            "run={run} pid={} command={what} since={}\n",
            std::process::id(),
            crate::time::rfc3339(now_ns())
        );
        // Who holds it, for those who wait; the lock itself is the flock.
        let _ = file
            .set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| file.write_all(note.as_bytes()));
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
        // Nobody holds it once we let go; closing the file would release
        // the flock too, but say so explicitly.
        let _ = self.file.set_len(0);
        // SAFETY: as above.
        unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_UN) };
    }
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
}
