//! The `[daemon]`, `[http]` and `[schedule.<task>]` sections.
//!
//! Owns only the declarations and their defaults; `crate::scheduler` and
//! `crate::daemon` act on them.

use serde::{Deserialize, Serialize};

use super::Span;

/// The tasks a schedule may name (`[schedule.<task>]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Task {
    Scan,
    Compact,
    Rollup,
    Retention,
    Tier,
    Quota,
    Maintain,
    Report,
    Verify,
}

impl Task {
    pub const ALL: [Task; 9] = [
        Task::Scan,
        Task::Compact,
        Task::Rollup,
        Task::Retention,
        Task::Tier,
        Task::Quota,
        Task::Maintain,
        Task::Report,
        Task::Verify,
    ];

    /// The name a schedule and the state database use.
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Scan => "scan",
            Task::Compact => "compact",
            Task::Rollup => "rollup",
            Task::Retention => "retention",
            Task::Tier => "tier",
            Task::Quota => "quota",
            Task::Maintain => "maintain",
            Task::Report => "report",
            Task::Verify => "verify",
        }
    }

    /// Every task's name, comma-separated, for error messages.
    pub fn names() -> String {
        Task::ALL.map(Task::as_str).join(", ")
    }
}

impl std::str::FromStr for Task {
    type Err = String;
    fn from_str(s: &str) -> Result<Task, String> {
        Task::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("not a task; tasks are {}", Task::names()))
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// After downtime, the latest missed run of a task still starts if it
    /// is at most this late; older ones are skipped (and recorded).
    #[serde(default = "default_deadline")]
    pub starting_deadline: Span,
    /// On SIGTERM: `interrupt` running jobs (marked interrupted, re-queued
    /// when they have retries) or let them `finish` within `shutdown_grace`.
    #[serde(default)]
    pub on_shutdown: OnShutdown,
    #[serde(default = "default_grace")]
    pub shutdown_grace: Span,
    /// A maintenance task reserves `compaction.memory_limit` from
    /// `jobs.memory_budget` before it starts. When jobs hold too much:
    /// `wait` for room, or `shrink` to run with what is left (at least 16MiB).
    #[serde(default)]
    pub when_busy: WhenBusy,
    /// The `report` task writes data/reports/retention-<date>.html and
    /// .json; this many of each are kept.
    #[serde(default = "default_keep_reports")]
    pub keep_reports: usize,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            starting_deadline: default_deadline(),
            on_shutdown: OnShutdown::default(),
            shutdown_grace: default_grace(),
            when_busy: WhenBusy::default(),
            keep_reports: default_keep_reports(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnShutdown {
    #[default]
    Interrupt,
    Finish,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WhenBusy {
    #[default]
    Wait,
    Shrink,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address of /healthz, /metrics and /status; empty turns it off.
    #[serde(default = "default_bind")]
    pub bind: String,
    /// Connections served at once; at the cap, the one idle longest is closed.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A request's headers must arrive within this.
    #[serde(default = "default_header_timeout")]
    pub header_timeout: Span,
    /// A request must be answered within this, or it gets 503.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: Span,
    /// A file (mode 0600) holding the bearer token every page but
    /// `/healthz` then asks for (`Authorization: Bearer <token>`); meant for
    /// a `bind` other than 127.0.0.1. Unset: no token.
    #[serde(default)]
    pub token_file: Option<std::path::PathBuf>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            bind: default_bind(),
            max_connections: default_max_connections(),
            header_timeout: default_header_timeout(),
            request_timeout: default_request_timeout(),
            token_file: None,
        }
    }
}

fn default_max_connections() -> usize {
    64
}
fn default_header_timeout() -> Span {
    "5s".parse().expect("valid")
}
fn default_request_timeout() -> Span {
    "30s".parse().expect("valid")
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// 5 fields (min hour day month weekday; 0 or 7 = Sunday) or 6-7 with seconds first.
    pub cron: String,
    /// IANA zone of the cron's wall clock (default UTC).
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn default_deadline() -> Span {
    "1h".parse().expect("valid")
}
fn default_grace() -> Span {
    "30s".parse().expect("valid")
}
fn default_keep_reports() -> usize {
    14
}
fn default_bind() -> String {
    "127.0.0.1:7878".into()
}
fn yes() -> bool {
    true
}
