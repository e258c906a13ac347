//! The `[alerts]` section: where alerts go (`[[alerts.targets]]`), which
//! rules fire and at what thresholds (`[alerts.rules]`), and how often a
//! firing alert is repeated.
//!
//! Owns only the declarations, their defaults and their checks;
//! `crate::alerts` acts on them.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Span;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Evaluate rules and send alerts at all (the daemon, `alerts check`).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// A firing alert is sent again at most this often while it holds.
    #[serde(default = "default_repeat")]
    pub repeat: Span,
    /// The daemon evaluates the rules after each task and at least this often.
    #[serde(default = "default_interval")]
    pub interval: Span,
    /// One delivery attempt gives up after this long.
    #[serde(default = "default_timeout")]
    pub timeout: Span,
    /// Attempts per message and target (with backoff: 1s, 2s, 4s, ...).
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// The name messages give this box (unset: its hostname).
    #[serde(default)]
    pub host: Option<String>,
    /// The dashboard's address in messages (unset: http://<http.bind>/).
    #[serde(default)]
    pub dashboard: Option<String>,
    #[serde(default)]
    pub rules: AlertRules,
    /// Where alerts go; none: they are only recorded (`alerts ls`, the dashboard).
    #[serde(default)]
    pub targets: Vec<AlertTarget>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            enabled: true,
            repeat: default_repeat(),
            interval: default_interval(),
            timeout: default_timeout(),
            attempts: default_attempts(),
            host: None,
            dashboard: None,
            rules: AlertRules::default(),
            targets: Vec::new(),
        }
    }
}

/// `[alerts.rules]`: each rule's threshold; 0 or false turns a rule off.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRules {
    /// `maintain` failed this many scheduled runs in a row.
    #[serde(default = "default_maintain_failures")]
    pub maintain_failures: u32,
    /// One failure (the same step on the same file) has repeated across runs this many hours.
    #[serde(default = "default_repeat_failure_hours")]
    pub repeat_failure_hours: u64,
    /// The quota cannot be met.
    #[serde(default = "yes")]
    pub quota_unmet: bool,
    /// A root's free space runs out within this many days at the report's growth rate.
    #[serde(default = "default_disk_full_days")]
    pub disk_full_days: f64,
    /// An object-store tier has been unreachable this many minutes.
    #[serde(default = "default_store_minutes")]
    pub store_unreachable_minutes: u64,
    /// Turns the store rule off when false.
    #[serde(default = "yes")]
    pub store_unreachable: bool,
    /// A job failed, was OOM-killed or timed out (one alert per job).
    #[serde(default = "yes")]
    pub jobs: bool,
    /// A quality-finding kind a dataset did not have appears.
    #[serde(default = "yes")]
    pub quality_new_kind: bool,
    /// The daemon turns unhealthy (a stopped worker or scheduler).
    #[serde(default = "yes")]
    pub daemon_unhealthy: bool,
    /// `lake check` finds the lake, the catalog and the disk disagree.
    #[serde(default = "yes")]
    pub lake_check: bool,
}

impl Default for AlertRules {
    fn default() -> Self {
        AlertRules {
            maintain_failures: default_maintain_failures(),
            repeat_failure_hours: default_repeat_failure_hours(),
            quota_unmet: true,
            disk_full_days: default_disk_full_days(),
            store_unreachable_minutes: default_store_minutes(),
            store_unreachable: true,
            jobs: true,
            quality_new_kind: true,
            daemon_unhealthy: true,
            lake_check: true,
        }
    }
}

/// The kinds of target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// POST the documented JSON body to `url`.
    Webhook,
    /// POST the text to an ntfy topic `url`, with Title and Priority headers.
    Ntfy,
    /// The Telegram Bot API: `chat_id`, the bot token in `token_file` (0600).
    Telegram,
    /// Run `argv` with the alert's JSON on stdin, in the jobs' clean environment.
    Command,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Webhook => "webhook",
            TargetKind::Ntfy => "ntfy",
            TargetKind::Telegram => "telegram",
            TargetKind::Command => "command",
        }
    }
}

/// A Telegram chat id: a number (`-1001234`) or a `@channel` name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ChatId {
    Number(i64),
    Name(String),
}

/// One `[[alerts.targets]]` table.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertTarget {
    pub kind: TargetKind,
    /// How logs, `/metrics` and `alerts test NAME` call it (default: its kind).
    #[serde(default)]
    pub name: Option<String>,
    /// webhook and ntfy: where to POST (http://; https:// goes through curl).
    #[serde(default)]
    pub url: Option<String>,
    /// telegram: the chat to write to.
    #[serde(default)]
    pub chat_id: Option<ChatId>,
    /// telegram: a file (mode 0600) holding the bot token.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// telegram: the Bot API's base address.
    #[serde(default = "default_telegram_api")]
    pub api: String,
    /// command: the program and its arguments.
    #[serde(default)]
    pub argv: Vec<String>,
}

impl AlertTarget {
    /// Its name: `name`, else its kind.
    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.kind.as_str().to_string())
    }

    /// What this kind lacks, if anything: (key, message).
    pub fn missing(&self) -> Option<(&'static str, String)> {
        let empty = |s: &Option<String>| s.as_deref().is_none_or(|v| v.trim().is_empty());
        match self.kind {
            TargetKind::Webhook | TargetKind::Ntfy if empty(&self.url) => {
                Some(("url", format!("a {} target needs a url", self.kind.as_str())))
            }
            TargetKind::Webhook | TargetKind::Ntfy => {
                let url = self.url.as_deref().unwrap_or_default();
                (!url.starts_with("http://") && !url.starts_with("https://"))
                    .then(|| ("url", "must start with http:// or https://".to_string()))
            }
            TargetKind::Telegram if self.chat_id.is_none() => {
                Some(("chat_id", "a telegram target needs a chat_id".into()))
            }
            TargetKind::Telegram if self.token_file.is_none() => Some((
                "token_file",
                "a telegram target needs a token_file (the bot token, mode 0600)".into(),
            )),
            TargetKind::Command if self.argv.is_empty() => Some(("argv", "a command target needs an argv".into())),
            _ => None,
        }
    }
}

fn yes() -> bool {
    true
}
fn default_repeat() -> Span {
    "12h".parse().expect("valid")
}
fn default_interval() -> Span {
    "5m".parse().expect("valid")
}
fn default_timeout() -> Span {
    "5s".parse().expect("valid")
}
fn default_attempts() -> u32 {
    3
}
fn default_maintain_failures() -> u32 {
    3
}
fn default_repeat_failure_hours() -> u64 {
    24
}
fn default_disk_full_days() -> f64 {
    7.0
}
fn default_store_minutes() -> u64 {
    15
}
fn default_telegram_api() -> String {
    "https://api.telegram.org".into()
}
