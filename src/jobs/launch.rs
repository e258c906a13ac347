//! What the worker hands a job's thread, and what every job inherits.
//!
//! Owns the [`Launch`] (the job, its reservation, its limit mechanism and
//! its stop flag), the stop reasons, and the environment allow-list that a
//! local job and a Slurm job share. The runners are [`super::run`] (this
//! box) and [`super::slurm`].

use std::path::PathBuf;
use std::sync::atomic::AtomicU8;
use std::sync::Arc;

use super::limit::Mechanism;
use super::queue::Job;
use crate::config::Config;

/// Why the worker wants a job to stop.
pub const STOP_NONE: u8 = 0;
pub const STOP_CANCEL: u8 = 1;
pub const STOP_SHUTDOWN: u8 = 2;

/// What the worker hands a job thread.
pub struct Launch {
    pub cfg: Config,
    pub job: Job,
    pub reserved: u64,
    pub mechanism: Mechanism,
    pub cgroup_parent: Option<PathBuf>,
    pub stop: Arc<AtomicU8>,
}

/// What a job inherits from the worker: only these (PATH, HOME, LANG,
/// LC_*, TZ, TMPDIR). Everything else, exchange and storage keys among it,
/// stays out; a job gets its profile's and spec's variables, its secrets
/// and mdkeep's `MDKEEP_*` job variables on top.
pub fn inherited_env() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| ["PATH", "HOME", "LANG", "TZ", "TMPDIR"].contains(&k.as_str()) || k.starts_with("LC_"))
        .collect()
}
