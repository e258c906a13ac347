//! Facts about other processes, read from `/proc`.
//!
//! Owns the liveness checks that locks, reservations, journals and the job
//! worker use for a recorded process. A bare pid names nothing for long
//! (pids are reused, and another PID namespace has its own): a process is
//! identified by its pid and its start time (`/proc/<pid>/stat` field 22,
//! clock ticks since boot), and [`same`] checks both.

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

/// When process `pid` started, in clock ticks since boot (`/proc/<pid>/stat`
/// field 22); None when there is no such process.
pub fn start_time(pid: i64) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 2 (the command) is in parentheses and may hold spaces or ')':
    // the fields after the last ')' start at field 3.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// Whether the process recorded as (`pid`, `start`) still runs: a process
/// with that pid exists and started at that time. A reused pid, or a pid
/// recorded in another PID namespace, is not the same process.
pub fn same(pid: i64, start: u64) -> bool {
    start_time(pid) == Some(start)
}

/// This process's start time.
pub fn my_start_time() -> u64 {
    start_time(std::process::id() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_with_another_start_time_is_another_process() {
        let me = std::process::id() as i64;
        let start = start_time(me).expect("this process has a start time");
        assert!(same(me, start));
        assert!(!same(me, start + 1), "a reused pid is not the recorded process");
        assert!(!same(0, start));
        assert_eq!(start_time(-1), None);
    }
}
