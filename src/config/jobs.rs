//! The `[jobs]` section: the memory budget, how limits are enforced, and
//! one profile per framework.
//!
//! Owns only the declarations and their defaults; the queue and the runner
//! in `crate::jobs` act on them.

use std::path::PathBuf;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::{ByteSize, Span};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobsConfig {
    /// Memory all running jobs may reserve together.
    pub memory_budget: ByteSize,
    /// A learned peak is raised by this share before it becomes a reservation.
    #[serde(default = "default_margin")]
    pub margin: f64,
    /// How a job's limit is enforced: auto, cgroup2, cgroup1 or watchdog.
    #[serde(default)]
    pub limit: LimitMode,
    /// Processes and threads one job may have (cgroup `pids.max`, else the watchdog's count).
    #[serde(default = "default_max_pids")]
    pub max_pids: u64,
    /// How often the RSS watchdog sums a job's processes (at most 250ms).
    #[serde(default = "default_watchdog_interval")]
    pub watchdog_interval: Span,
    /// Where each job process gets a hard RLIMIT_DATA of its reservation
    /// plus a quarter: `watchdog` (only where no kernel group limits the
    /// job, the default), `always` or `off`.
    #[serde(default)]
    pub data_limit: DataLimit,
    /// SIGTERM, then SIGKILL after this long.
    #[serde(default = "default_kill_grace")]
    pub kill_grace: Span,
    /// When another framework's oldest job has waited this long, the
    /// active framework stops being admitted so the other gets its turn.
    #[serde(default = "default_fairness")]
    pub fairness_window: Span,
    /// stdout and stderr are each kept up to this size.
    #[serde(default = "default_log_cap")]
    pub log_cap: ByteSize,
    /// Timeout of a job whose spec sets none.
    #[serde(default = "default_timeout")]
    pub default_timeout: Span,
    /// A finished job's exported data (`data/jobs/<id>/data`) is deleted this
    /// long after it ended (by `quota`); its logs and results stay.
    #[serde(default = "default_keep_exports")]
    pub keep_exports: Span,
    /// The user jobs run as when the worker is root: a name, `uid` or
    /// `uid:gid` (unset: nobody, 65534:65534; `root` keeps root).
    #[serde(default)]
    pub run_as: Option<String>,
    /// Secrets a spec may reference by name (TOML `NAME = "value"`, mode 0600).
    #[serde(default = "default_secrets")]
    pub secrets_file: PathBuf,
    /// Per framework: command template, default memory, parallelism.
    #[serde(default)]
    pub frameworks: IndexMap<String, FrameworkProfile>,
    /// Where jobs run: `local` (this box, within memory_budget) or `slurm`.
    #[serde(default)]
    pub runner: Runner,
    #[serde(default)]
    pub slurm: SlurmConfig,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Runner {
    #[default]
    Local,
    Slurm,
}

/// `[jobs.slurm]`: how the Slurm runner reaches the cluster.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmConfig {
    /// SLURM_CONF for every Slurm command (default: Slurm's own).
    #[serde(default)]
    pub conf: Option<PathBuf>,
    /// Folder of sbatch, squeue, scontrol, sacct, sstat, scancel, sinfo (default: PATH).
    #[serde(default)]
    pub bin_dir: Option<PathBuf>,
    /// `--partition` of every submission (default: the cluster's default).
    #[serde(default)]
    pub partition: Option<String>,
    /// Extra sbatch arguments, e.g. ["--qos=low", "--cpus-per-task=2"].
    #[serde(default)]
    pub extra_args: Vec<String>,
    /// How often a job's state is asked of Slurm.
    #[serde(default = "default_slurm_poll")]
    pub poll: Span,
    /// Keep one framework at a time across the cluster (true), or let Slurm
    /// schedule every framework together (false).
    #[serde(default = "yes")]
    pub one_framework: bool,
    /// Jobs submitted to Slurm at once.
    #[serde(default = "default_max_submitted")]
    pub max_submitted: usize,
}

impl Default for SlurmConfig {
    fn default() -> Self {
        SlurmConfig {
            conf: None,
            bin_dir: None,
            partition: None,
            extra_args: Vec::new(),
            poll: default_slurm_poll(),
            one_framework: true,
            max_submitted: default_max_submitted(),
        }
    }
}

fn default_slurm_poll() -> Span {
    "1s".parse().expect("valid")
}
fn default_max_submitted() -> usize {
    32
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitMode {
    /// cgroup v2 where a memory group can be made, else v1, else the watchdog.
    #[default]
    Auto,
    Cgroup2,
    Cgroup1,
    Watchdog,
}

/// When a job's processes get a per-process RLIMIT_DATA (`jobs.data_limit`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DataLimit {
    /// Only under the watchdog, where no kernel memory group holds the job.
    #[default]
    Watchdog,
    Always,
    Off,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FrameworkProfile {
    /// argv template. `{name}` is replaced by a spec's `args.name` or by
    /// python, data_dir, job_dir, artifacts, result, spec_dir, timeframe,
    /// from, to, timerange.
    /// Empty for `command`, whose specs give their own argv.
    #[serde(default)]
    pub command: Vec<String>,
    /// Reservation of a job that declares none and has no learned peak.
    pub memory: ByteSize,
    /// Jobs of this framework that may run at once.
    #[serde(default = "one")]
    pub max_parallel: usize,
    /// Format of the data exported for its jobs (see `mdkeep export --format`).
    #[serde(default = "default_format")]
    pub data_format: String,
    /// The interpreter behind `{python}` in a command: the framework's venv.
    #[serde(default = "default_python")]
    pub python: String,
    /// Variables this framework's jobs get (a job's environment starts empty
    /// but for PATH, HOME, LANG, LC_*, TZ and TMPDIR).
    #[serde(default)]
    pub env: IndexMap<String, String>,
}

fn default_margin() -> f64 {
    0.2
}
fn default_keep_exports() -> Span {
    "7d".parse().expect("valid")
}
fn default_max_pids() -> u64 {
    4096
}
fn default_watchdog_interval() -> Span {
    "100ms".parse().expect("valid")
}
fn default_kill_grace() -> Span {
    "5s".parse().expect("valid")
}
fn default_fairness() -> Span {
    "30m".parse().expect("valid")
}
fn default_log_cap() -> ByteSize {
    "16MiB".parse().expect("valid")
}
fn default_timeout() -> Span {
    "6h".parse().expect("valid")
}
fn default_secrets() -> PathBuf {
    "configs/secrets.toml".into()
}
fn default_python() -> String {
    "python3".into()
}
fn one() -> usize {
    1
}
fn default_format() -> String {
    "parquet".into()
}
