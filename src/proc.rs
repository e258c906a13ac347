//! Facts about other processes, read from `/proc`.
//!
//! Owns the one liveness check that locks, reservations, journals and the
//! job worker use for a recorded pid.

/// Whether process `pid` exists (this process always does).
pub fn alive(pid: i64) -> bool {
    pid == std::process::id() as i64 || (pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists())
}
