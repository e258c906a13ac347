//! What a job may not see: the worker's environment, its credentials,
//! the configs and the state database.
//!
//! Owns the rule "a job reads only what it was given": the worker makes
//! itself non-dumpable (its `/proc/<pid>/environ` and fds are then closed to
//! a same-uid process), a root worker runs each job as `jobs.run_as`
//! (default [`NOBODY`]) with the job's folder handed to that user, and,
//! where the kernel has Landlock, every job is sandboxed so that it cannot
//! read the configs, the secrets file, the HTTP token or the state folder,
//! nor reach the worker through `/proc` (Landlock's ptrace scoping), even as
//! the worker's own user. Everything the child runs between fork and exec is
//! prepared here beforehand; [`Sandbox::enter`] only makes syscalls.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::error::{Error, Result};

/// The user a root worker runs jobs as when `jobs.run_as` is unset.
pub const NOBODY: (u32, u32) = (65534, 65534);

/// Make this process non-dumpable: `/proc/<pid>/environ`, `mem` and `fd/`
/// of the worker become unreadable to its jobs (and no core dump holds its
/// keys). A job's own processes are dumpable again after exec.
pub fn harden_worker() -> bool {
    // SAFETY: prctl with integer arguments; no memory is passed.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 }
}

/// What the worker does for its jobs' isolation as it starts: become
/// non-dumpable, and say in the log what a job will run as.
pub fn worker_start(cfg: &Config) {
    if !harden_worker() {
        tracing::warn!("cannot make the worker non-dumpable: a job of its user may read its environment");
    }
    match run_as(cfg) {
        Ok(Some((uid, gid))) => tracing::info!(uid, gid, "jobs run as jobs.run_as"),
        Ok(None) if euid() == 0 => tracing::warn!("jobs.run_as names root: jobs run as root"),
        Ok(None) if cfg.jobs.run_as.is_some() => {
            tracing::warn!("jobs.run_as is ignored: only a root worker can run jobs as another user")
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "jobs will fail until jobs.run_as is fixed"),
    }
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// The uid and gid jobs run as: `jobs.run_as` (a user name, `uid` or
/// `uid:gid`) when the worker is root, [`NOBODY`] when it is unset; None
/// when jobs keep the worker's own user (a non-root worker cannot switch).
pub fn run_as(cfg: &Config) -> Result<Option<(u32, u32)>> {
    if euid() != 0 {
        return Ok(None);
    }
    let Some(spec) = cfg.jobs.run_as.as_deref() else {
        return Ok(Some(NOBODY));
    };
    let (uid, gid) = parse_user(spec)?;
    Ok((uid != 0).then_some((uid, gid)))
}

/// `name`, `uid` or `uid:gid` as (uid, gid); a bare uid's gid is its user's, else the uid.
pub fn parse_user(spec: &str) -> Result<(u32, u32)> {
    let bad = |why: &str| Error::Invalid(format!("jobs.run_as = {spec:?}: {why}"));
    if let Some((u, g)) = spec.split_once(':') {
        let u = u.parse().map_err(|_| bad("uid:gid must be two numbers"))?;
        let g = g.parse().map_err(|_| bad("uid:gid must be two numbers"))?;
        return Ok((u, g));
    }
    if let Ok(uid) = spec.parse::<u32>() {
        return Ok((
            uid,
            lookup(|pw| unsafe { libc::getpwuid_r(uid, pw.0, pw.1, pw.2, pw.3) }).map_or(uid, |p| p.1),
        ));
    }
    let name = CString::new(spec).map_err(|_| bad("not a user name"))?;
    lookup(|pw| unsafe { libc::getpwnam_r(name.as_ptr(), pw.0, pw.1, pw.2, pw.3) })
        .ok_or_else(|| bad("no such user (give uid:gid)"))
}

type PwArgs = (
    *mut libc::passwd,
    *mut libc::c_char,
    libc::size_t,
    *mut *mut libc::passwd,
);

/// Run a `getpw*_r` call with its buffers; (uid, gid) of the entry found.
fn lookup(call: impl Fn(PwArgs) -> libc::c_int) -> Option<(u32, u32)> {
    // SAFETY: passwd is plain data; the call fills it from `buf`, both live here.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    let rc = call((&mut pw, buf.as_mut_ptr(), buf.len(), &mut out));
    (rc == 0 && !out.is_null()).then_some((pw.pw_uid, pw.pw_gid))
}

/// Hand `dir` and everything under it (not following links) to `uid:gid`.
pub fn chown_tree(dir: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid)).map_err(Error::io("chown", dir))?;
    let meta = std::fs::symlink_metadata(dir).map_err(Error::io("stat", dir))?;
    if meta.is_dir() {
        for e in std::fs::read_dir(dir).map_err(Error::io("read folder", dir))? {
            chown_tree(&e.map_err(Error::io("read folder", dir))?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Let `uid:gid` reach `dir`: a folder above it that the user cannot pass
/// gets search permission for others (o+x, never o+r) when this worker owns
/// it; one of another owner is an error naming it.
pub fn reach(dir: &Path, uid: u32, gid: u32) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for up in dir.ancestors().skip(1) {
        let meta = std::fs::metadata(up).map_err(Error::io("stat", up))?;
        let mode = meta.mode();
        let passes = (meta.uid() == uid && mode & 0o100 != 0)
            || (meta.uid() != uid && meta.gid() == gid && mode & 0o010 != 0)
            || (meta.uid() != uid && meta.gid() != gid && mode & 0o001 != 0);
        if passes {
            continue;
        }
        if meta.uid() != euid() {
            return Err(Error::Invalid(format!(
                "jobs run as uid {uid} (jobs.run_as), which cannot pass {} (mode {:o}): give it o+x",
                up.display(),
                mode & 0o7777
            )));
        }
        let to = (mode & 0o7777) | 0o001;
        std::fs::set_permissions(up, std::fs::Permissions::from_mode(to)).map_err(Error::io("chmod", up))?;
        tracing::info!(folder = %up.display(), mode = format!("{to:o}"), "o+x so that jobs.run_as reaches its job folders");
    }
    Ok(())
}

/// The paths no job may read: the configs folder, the config file, the
/// secrets files, the HTTP token and the state folder.
pub fn private_paths(cfg: &Config) -> Vec<PathBuf> {
    let mut v = vec![cfg.root.join("configs"), cfg.resolve(&cfg.jobs.secrets_file)];
    if let Some(dir) = cfg.state_db().parent() {
        v.push(dir.to_path_buf());
    }
    if Path::new(&cfg.source).is_absolute() {
        v.push(PathBuf::from(&cfg.source));
    }
    if let Some(t) = &cfg.http.token_file {
        v.push(cfg.resolve(t));
    }
    for t in cfg.tiers.values() {
        if let Some(f) = t.s3.as_ref().and_then(|s| s.secrets_file.as_ref()) {
            v.push(cfg.resolve(f));
        }
    }
    v
}

// Landlock's ABI (linux/landlock.h).
const ACCESS_READ_FILE: u64 = 1 << 2;
const ACCESS_READ_DIR: u64 = 1 << 3;
const RULE_PATH_BENEATH: libc::c_int = 1;

#[repr(C, packed)]
struct PathBeneath {
    allowed_access: u64,
    parent_fd: i32,
}

/// What the child applies to itself just before exec.
#[derive(Default)]
pub struct Sandbox {
    /// Credentials to switch to, after the worker has joined the job's cgroups.
    pub user: Option<(u32, u32)>,
    /// A Landlock ruleset (none where the kernel has no Landlock).
    ruleset: Option<OwnedFd>,
    /// The folders above a private path.
    above: Vec<PathBuf>,
}

impl Sandbox {
    /// The sandbox of a job whose folder is `job_dir`: `user` to switch to,
    /// and a Landlock ruleset allowing reads everywhere but `private`.
    pub fn new(user: Option<(u32, u32)>, private: &[PathBuf], job_dir: &Path) -> Sandbox {
        let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let job_dir = real(job_dir);
        // A path that holds the job's own folder cannot be hidden from it.
        let private: Vec<PathBuf> = private
            .iter()
            .map(|p| real(p))
            .filter(|p| !job_dir.starts_with(p))
            .collect();
        // The folders whose entries are allowed one by one: above a private
        // path, and not themselves under one.
        let mut above: Vec<PathBuf> = private
            .iter()
            .flat_map(|p| p.ancestors().skip(1))
            .filter(|a| !private.iter().any(|p| a.starts_with(p)))
            .map(Path::to_path_buf)
            .collect();
        above.sort();
        above.dedup();
        Sandbox {
            user,
            ruleset: ruleset(&private, &above),
            above,
        }
    }

    /// Whether Landlock hides the private paths from the job.
    pub fn landlocked(&self) -> bool {
        self.ruleset.is_some()
    }

    /// Whether a file made in `dir` after the job started would be hidden
    /// from it (`dir` is above a private path, so only its entries of now are allowed).
    pub fn hides_new_files_in(&self, dir: &Path) -> bool {
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        self.landlocked() && self.above.contains(&dir)
    }

    /// Between fork and exec: drop to the job's user, then lock the
    /// filesystem view. Only async-signal-safe syscalls.
    pub fn enter(&self) -> std::io::Result<()> {
        let check = |rc: libc::c_long| {
            if rc < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(())
            }
        };
        if let Some((uid, gid)) = self.user {
            let groups = [gid as libc::gid_t];
            // SAFETY: plain syscalls; `groups` lives on this stack frame.
            unsafe {
                check(libc::setgroups(1, groups.as_ptr()) as libc::c_long)?;
                check(libc::setgid(gid) as libc::c_long)?;
                check(libc::setuid(uid) as libc::c_long)?;
            }
        }
        if let Some(fd) = &self.ruleset {
            // SAFETY: prctl and landlock_restrict_self take integers only.
            unsafe {
                check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) as libc::c_long)?;
                check(libc::syscall(libc::SYS_landlock_restrict_self, fd.as_raw_fd(), 0u32))?;
            }
        }
        Ok(())
    }
}

/// A ruleset that handles reading: every folder may be listed, and
/// everything may be read except what lies under a `private` path. Landlock
/// only allows, so each folder above a private path has its other entries
/// allowed one by one. None without Landlock (kernel < 5.13, or disabled).
fn ruleset(private: &[PathBuf], above: &[PathBuf]) -> Option<OwnedFd> {
    if private.is_empty() {
        return None;
    }
    let handled: u64 = ACCESS_READ_FILE | ACCESS_READ_DIR;
    // SAFETY: landlock_create_ruleset reads `handled` (the ABI 1 prefix of
    // struct landlock_ruleset_attr) and returns a new descriptor.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &handled as *const u64,
            std::mem::size_of::<u64>(),
            0u32,
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just returned this descriptor to us alone.
    let ruleset = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // Listing any folder is allowed (names only, no contents).
    allow(&ruleset, Path::new("/"), ACCESS_READ_DIR).ok()?;
    for dir in above {
        let Ok(rd) = std::fs::read_dir(dir) else { continue };
        for e in rd.flatten() {
            let path = e.path();
            if above.contains(&path) || private.contains(&path) {
                continue;
            }
            let dir_like = e.file_type().is_ok_and(|t| t.is_dir());
            let access = if dir_like { handled } else { ACCESS_READ_FILE };
            if let Err(err) = allow(&ruleset, &path, access) {
                tracing::debug!(path = %path.display(), error = %err, "landlock rule");
            }
        }
    }
    Some(ruleset)
}

/// Allow `access` beneath `path` (the entry itself, a link not followed).
fn allow(ruleset: &OwnedFd, path: &Path, access: u64) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW)
        .open(path)?;
    let attr = PathBeneath {
        allowed_access: access,
        parent_fd: f.as_raw_fd(),
    };
    // SAFETY: the kernel reads `attr` (packed, as the ABI wants) during the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset.as_raw_fd(),
            RULE_PATH_BENEATH,
            &attr as *const PathBeneath,
            0u32,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_as_parses_names_and_numbers() {
        assert_eq!(parse_user("65534:65534").unwrap(), (65534, 65534));
        assert_eq!(parse_user("root").unwrap(), (0, 0));
        assert_eq!(parse_user("1234").unwrap().0, 1234);
        let e = parse_user("no-such-user-here").unwrap_err().to_string();
        assert!(e.contains("jobs.run_as") && e.contains("no-such-user-here"), "{e}");
        assert!(parse_user("1:x").is_err());
    }
}
