//! cgroup v2 done the way systemd's delegation expects.
//!
//! Owns taking over a delegated subtree (`Delegate=yes` gives the service
//! its own group, e.g. `/system.slice/mdkeep.service`): the kernel's
//! "no internal processes" rule lets a group hand controllers to its
//! children only while it holds no process itself, so the worker first
//! moves itself into a leaf (`…/mdkeep.service/daemon`), then enables
//! `+memory +pids` in the group's `cgroup.subtree_control`. Job groups are
//! then made beside the leaf. Every path is taken from a mount point and a
//! group folder given by the caller, so a test can lay out a temporary
//! folder like a delegated cgroupfs and read back what was written.

use std::fs;
use std::path::{Path, PathBuf};

/// The leaf the worker moves into.
pub const LEAF: &str = "daemon";

/// This process's group folder in the v2 hierarchy, if one is mounted.
pub fn own_group() -> Option<PathBuf> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .iter()
        .map(Path::new)
        .find(|b| b.join("cgroup.controllers").exists())
        .map(|b| b.join(rel.trim_start_matches('/')))
}

fn words(path: &Path) -> std::io::Result<Vec<String>> {
    Ok(fs::read_to_string(path)?
        .split_whitespace()
        .map(str::to_string)
        .collect())
}

/// What taking over the subtree did, in order, for the log and the tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Delegation {
    /// Where job groups go.
    pub parent: PathBuf,
    pub steps: Vec<String>,
}

/// Take over the subtree at `own` for process `pid`: jobs' groups may then
/// be made under the returned parent with `memory.max` and `pids.max`.
/// Err says why not (the caller falls back to v1 or the watchdog).
pub fn delegate(own: &Path, pid: u32) -> Result<Delegation, String> {
    let at = |f: &str| own.join(f);
    let controllers =
        words(&at("cgroup.controllers")).map_err(|e| format!("{}: {e}", at("cgroup.controllers").display()))?;
    if !controllers.iter().any(|c| c == "memory") {
        return Err(format!(
            "the memory controller is not delegated to {} (cgroup.controllers: {:?}); \
             under systemd, set Delegate=yes",
            own.display(),
            controllers.join(" ")
        ));
    }
    let want: Vec<&str> = ["memory", "pids"]
        .into_iter()
        .filter(|c| controllers.iter().any(|have| have == c))
        .collect();
    // Already set up: this process sits in our own leaf of a group that
    // hands out the controllers (a second worker start in the same process).
    if own.file_name().is_some_and(|n| n == LEAF) {
        if let Some(up) = own.parent() {
            if words(&up.join("cgroup.subtree_control")).is_ok_and(|s| want.iter().all(|w| s.iter().any(|h| h == w))) {
                return Ok(Delegation {
                    parent: up.to_path_buf(),
                    steps: Vec::new(),
                });
            }
        }
    }
    let enabled = words(&at("cgroup.subtree_control")).map_err(|e| format!("{}: {e}", own.display()))?;
    let mut d = Delegation {
        parent: own.to_path_buf(),
        steps: Vec::new(),
    };
    let missing: Vec<&str> = want
        .iter()
        .copied()
        .filter(|w| !enabled.iter().any(|h| h == w))
        .collect();
    if missing.is_empty() {
        return Ok(d);
    }
    let leaf = own.join(LEAF);
    match fs::create_dir(&leaf) {
        Ok(()) => d.steps.push(format!("mkdir {}", leaf.display())),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot make the leaf {}: {e}", leaf.display())),
    }
    let procs = leaf.join("cgroup.procs");
    fs::write(&procs, pid.to_string()).map_err(|e| format!("cannot move into {}: {e}", leaf.display()))?;
    d.steps.push(format!("write {} {pid}", procs.display()));
    let line = missing.iter().map(|c| format!("+{c}")).collect::<Vec<_>>().join(" ");
    let ctl = at("cgroup.subtree_control");
    fs::write(&ctl, &line).map_err(|e| {
        format!(
            "cannot enable {line} in {}: {e} (another process still in the group?)",
            ctl.display()
        )
    })?;
    d.steps.push(format!("write {} {line}", ctl.display()));
    Ok(d)
}

/// Write a group file that only some kernels or setups have (`memory.swap.max`
/// without swap accounting): absent is fine, any other failure is not.
pub fn write_optional(dir: &Path, file: &str, value: &str) -> std::io::Result<()> {
    match fs::write(dir.join(file), value) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::limit::{Group, Limits, Mechanism};

    /// A temporary folder laid out like a delegated cgroupfs: the service's
    /// group with the memory and pids controllers offered and none enabled.
    fn delegated(root: &Path) -> PathBuf {
        let svc = root.join("system.slice/mdkeep.service");
        fs::create_dir_all(&svc).unwrap();
        fs::write(svc.join("cgroup.controllers"), "cpuset cpu io memory pids\n").unwrap();
        fs::write(svc.join("cgroup.subtree_control"), "").unwrap();
        fs::write(svc.join("cgroup.procs"), "4242\n").unwrap();
        svc
    }

    #[test]
    fn the_worker_moves_into_a_leaf_before_enabling_controllers() {
        let t = tempfile::tempdir().unwrap();
        let svc = delegated(t.path());
        let d = delegate(&svc, 4242).unwrap();
        assert_eq!(d.parent, svc);
        assert_eq!(
            d.steps,
            vec![
                format!("mkdir {}", svc.join("daemon").display()),
                format!("write {} 4242", svc.join("daemon/cgroup.procs").display()),
                format!("write {} +memory +pids", svc.join("cgroup.subtree_control").display()),
            ]
        );
        assert_eq!(
            fs::read_to_string(svc.join("cgroup.subtree_control")).unwrap(),
            "+memory +pids"
        );
        // Started again from inside the leaf: nothing more to do, jobs still go beside it.
        fs::write(svc.join("cgroup.subtree_control"), "memory pids\n").unwrap();
        fs::write(svc.join("daemon/cgroup.controllers"), "memory pids\n").unwrap();
        let again = delegate(&svc.join("daemon"), 4242).unwrap();
        assert_eq!((again.parent, again.steps.len()), (svc.clone(), 0));
    }

    #[test]
    fn no_memory_controller_is_refused_with_the_fix() {
        let t = tempfile::tempdir().unwrap();
        let svc = delegated(t.path());
        fs::write(svc.join("cgroup.controllers"), "cpu pids\n").unwrap();
        let e = delegate(&svc, 1).unwrap_err();
        assert!(e.contains("memory controller") && e.contains("Delegate=yes"), "{e}");
        assert!(!svc.join("daemon").exists(), "nothing is written when it cannot work");
    }

    #[test]
    fn a_job_group_gets_its_limits_and_is_read_and_killed_by_its_files() {
        let t = tempfile::tempdir().unwrap();
        let svc = delegated(t.path());
        let limits = Limits {
            memory: 64 << 20,
            pids: 512,
        };
        let g = Group::create(Mechanism::Cgroup2, Some(&svc), 7, &limits).unwrap();
        let dir = g.dir().unwrap().to_path_buf();
        assert_eq!(dir.parent(), Some(svc.as_path()));
        let read = |f: &str| fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!(read("memory.max"), (64u64 << 20).to_string());
        assert_eq!(read("memory.swap.max"), "0");
        assert_eq!(read("pids.max"), "512");
        assert_eq!(read("memory.oom.group"), "1");
        // The limits are in place before any process joins: cgroup.procs is
        // opened for the child, and still empty.
        assert_eq!(read("cgroup.procs"), "");
        assert!(g.procs_fd().is_some());

        // OOM is read from memory.events; no memory.peak (kernel < 5.19): no kernel peak.
        fs::write(dir.join("memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n").unwrap();
        assert!(!g.oom_killed());
        fs::write(dir.join("memory.events"), "low 0\nhigh 0\nmax 9\noom 2\noom_kill 1\n").unwrap();
        assert!(g.oom_killed());
        assert_eq!(g.peak(), None);
        fs::write(dir.join("memory.current"), "12345\n").unwrap();
        assert_eq!(g.current(), Some(12345));
        fs::write(dir.join("memory.peak"), "67890\n").unwrap();
        assert_eq!(g.peak(), Some(67890));

        // Without cgroup.kill (kernel < 5.14) every pid in cgroup.procs is killed.
        let mut sleeper = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        fs::write(dir.join("cgroup.procs"), format!("{}\n", sleeper.id())).unwrap();
        g.kill_all();
        let status = sleeper.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL)
        );

        // With it, the kernel's one-write kill is used.
        fs::write(dir.join("cgroup.kill"), "").unwrap();
        g.kill_all();
        assert_eq!(read("cgroup.kill"), "1");
    }
}
