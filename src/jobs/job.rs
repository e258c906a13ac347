//! A job as the queue keeps it: its fields, how it ended ([`Outcome`]),
//! its lifecycle with the times of each step ([`Lifecycle`]) and the view
//! `jobs ls`/`show` print ([`JobView`]). The rows are read and written by
//! `jobs::queue` alone.

use serde::Serialize;

use super::spec::JobSpec;
use crate::time::rfc3339;

/// How a finished job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed,
    Cancelled,
    TimedOut,
    OomKilled,
    Interrupted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
            Outcome::TimedOut => "timed_out",
            Outcome::OomKilled => "oom_killed",
            Outcome::Interrupted => "interrupted",
        }
    }
    pub(super) fn parse(s: &str) -> Option<Outcome> {
        Some(match s {
            "succeeded" => Outcome::Succeeded,
            "failed" => Outcome::Failed,
            "cancelled" => Outcome::Cancelled,
            "timed_out" => Outcome::TimedOut,
            "oom_killed" => Outcome::OomKilled,
            "interrupted" => Outcome::Interrupted,
            _ => return None,
        })
    }
}

/// A job's lifecycle; each stage carries its timestamps (ns since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Queued {
        queued_at: i64,
    },
    Running {
        queued_at: i64,
        started_at: i64,
    },
    Done {
        queued_at: i64,
        started_at: Option<i64>,
        finished_at: i64,
        outcome: Outcome,
    },
}

impl Lifecycle {
    pub fn is_queued(&self) -> bool {
        matches!(self, Lifecycle::Queued { .. })
    }
    pub fn is_running(&self) -> bool {
        matches!(self, Lifecycle::Running { .. })
    }
    pub fn is_done(&self) -> bool {
        matches!(self, Lifecycle::Done { .. })
    }
    pub fn state(&self) -> &'static str {
        match self {
            Lifecycle::Queued { .. } => "queued",
            Lifecycle::Running { .. } => "running",
            Lifecycle::Done { outcome, .. } => outcome.as_str(),
        }
    }
    fn times(&self) -> (i64, Option<i64>, Option<i64>) {
        match *self {
            Lifecycle::Queued { queued_at } => (queued_at, None, None),
            Lifecycle::Running { queued_at, started_at } => (queued_at, Some(started_at), None),
            Lifecycle::Done {
                queued_at,
                started_at,
                finished_at,
                ..
            } => (queued_at, started_at, Some(finished_at)),
        }
    }
}

/// A job row as commands and the runner see it.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub name: String,
    pub framework: String,
    pub group: String,
    pub spec: JobSpec,
    pub spec_dir: String,
    pub fingerprint: String,
    pub priority: i64,
    pub retries: u32,
    pub attempts: u32,
    pub life: Lifecycle,
    pub reserved_bytes: u64,
    pub peak_bytes: Option<u64>,
    pub limit_mechanism: Option<String>,
    pub exit_code: Option<i32>,
    pub pgid: Option<i64>,
    /// The start time of the process group's leader (`crate::proc::start_time`).
    pub pgid_start: Option<i64>,
    pub worker_pid: Option<i64>,
    /// The run id of the worker lock its worker held.
    pub worker_run: Option<String>,
    pub cancel_requested: bool,
    pub timeout_ms: i64,
    pub message: Option<String>,
    pub dir: String,
    /// Set when the Slurm runner submitted it.
    pub slurm_id: Option<i64>,
    /// The fingerprint and rows of the data its export handed over.
    pub data_fingerprint: Option<String>,
    pub data_rows: Option<u64>,
    /// The lake snapshot that named the files it read.
    pub data_snapshot: Option<i64>,
}

/// The stable JSON shape of `jobs show --json` and each `jobs ls --json` element.
#[derive(Debug, Serialize)]
pub struct JobView {
    pub id: i64,
    pub name: String,
    pub framework: String,
    pub group: String,
    pub state: &'static str,
    pub priority: i64,
    pub attempts: u32,
    pub retries: u32,
    pub reserved_memory_bytes: u64,
    pub peak_memory_bytes: Option<u64>,
    pub limit_mechanism: Option<String>,
    pub queued_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub exit_code: Option<i32>,
    pub message: Option<String>,
    pub dir: String,
    pub slurm_id: Option<i64>,
    /// The fingerprint of the data the job read (`export::manifest`).
    pub data_fingerprint: Option<String>,
    pub data_rows: Option<u64>,
    /// The lake snapshot that named the files it read (`data.snapshot` reads it again).
    pub data_snapshot: Option<i64>,
}

impl Job {
    pub fn view(&self) -> JobView {
        let (q, s, f) = self.life.times();
        JobView {
            id: self.id,
            name: self.name.clone(),
            framework: self.framework.clone(),
            group: self.group.clone(),
            state: self.life.state(),
            priority: self.priority,
            attempts: self.attempts,
            retries: self.retries,
            reserved_memory_bytes: self.reserved_bytes,
            peak_memory_bytes: self.peak_bytes,
            limit_mechanism: self.limit_mechanism.clone(),
            queued_at: rfc3339(q),
            started_at: s.map(rfc3339),
            finished_at: f.map(rfc3339),
            exit_code: self.exit_code,
            message: self.message.clone(),
            dir: self.dir.clone(),
            slurm_id: self.slurm_id,
            data_fingerprint: self.data_fingerprint.clone(),
            data_rows: self.data_rows,
            data_snapshot: self.data_snapshot,
        }
    }
}
