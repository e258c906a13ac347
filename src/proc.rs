//! Facts about other processes, read from `/proc`.
//!
//! Owns the one liveness check that locks, reservations, journals and the
//! job worker use for a recorded pid.

/// Whether process `pid` exists (this process always does).
pub fn alive(pid: i64) -> bool {
    pid == std::process::id() as i64 || (pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists())
}

/// A process that has `path` open for writing, if any this process can see
/// (its own uid's, or all as root): a collector still writing a file whose
/// mtime looks old (a stalled writer, a clock that jumped forward).
pub fn writer_of(path: &std::path::Path) -> Option<i64> {
    let target = std::fs::canonicalize(path).ok()?;
    for proc_entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = proc_entry.file_name().to_str().and_then(|s| s.parse::<i64>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(proc_entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).ok().as_deref() != Some(target.as_path()) {
                continue;
            }
            let info =
                std::fs::read_to_string(proc_entry.path().join("fdinfo").join(fd.file_name())).unwrap_or_default();
            let flags = info
                .lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|v| i64::from_str_radix(v.trim(), 8).ok())
                .unwrap_or(0);
            // O_WRONLY or O_RDWR.
            if flags & 0o3 != 0 {
                return Some(pid);
            }
        }
    }
    None
}
