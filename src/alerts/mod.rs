//! Alerts that reach a person with no monitoring server on the box.
//!
//! Owns the cycle: [`rules::evaluate`] says which conditions hold now (from
//! the state database, the stores and the daemon's health); [`reconcile`]
//! compares them with the alerts remembered in [`state`] and says what to
//! send (an alert fires once when its condition starts, repeats at most
//! every `alerts.repeat` while it holds, and is "resolved" when it ends);
//! [`deliver`] sends it to every `[[alerts.targets]]` with a timeout and
//! bounded retries. [`check`] does all three, under a lock so a CLI and the
//! daemon never send the same message twice. Blocking: the daemon runs it
//! on a thread of its own, never on a task's.
//!
//! No secret or token is ever part of a message, an error or a log line:
//! targets are named by their `name`, never by their address.

pub mod deliver;
pub mod http;
pub mod rules;
pub mod state;

use std::time::Duration;

use serde::Serialize;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::state::Db;
use crate::time::{now_ns, rfc3339};

/// A condition that holds now.
#[derive(Debug, Clone)]
pub struct Condition {
    /// Stable across evaluations: `maintain`, `job:12`, `store:archive`.
    pub key: String,
    /// The rule's name (its `[alerts.rules]` key).
    pub rule: &'static str,
    /// The thing it is about: `maintain`, `job 12 (sweep)`, `tier archive`.
    pub subject: String,
    /// One line naming the thing and the next step.
    pub message: String,
    /// The condition must hold this long before the alert fires.
    pub hold: Duration,
    /// One-shot (a job that failed): sent once, never repeated or resolved.
    pub once: bool,
    /// Sent again every `alerts.repeat` while it holds.
    pub repeat: bool,
    /// Recorded as sent without sending (a baseline on a rule's first look).
    pub quiet: bool,
}

impl Condition {
    pub fn new(key: String, rule: &'static str, subject: String, message: String) -> Condition {
        Condition {
            key,
            rule,
            subject,
            message,
            hold: Duration::ZERO,
            once: false,
            repeat: true,
            quiet: false,
        }
    }
}

/// Whether a message says an alert holds, has ended, or is a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Firing,
    Resolved,
    Test,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
            AlertState::Test => "test",
        }
    }
}

/// One message to send.
#[derive(Debug, Clone)]
pub struct Notice {
    pub key: String,
    pub rule: String,
    pub subject: String,
    pub state: AlertState,
    /// When the condition started (ns).
    pub since: i64,
    pub message: String,
}

impl Notice {
    fn of(row: &state::AlertRow, state: AlertState) -> Notice {
        Notice {
            key: row.key.clone(),
            rule: row.rule.clone(),
            subject: row.subject.clone(),
            state,
            since: row.since,
            message: row.message.clone(),
        }
    }
}

/// The webhook's JSON body, and what a command target reads on stdin.
/// Documented in the README; scripts rely on its shape.
#[derive(Debug, Clone, Serialize)]
pub struct Body {
    pub host: String,
    pub rule: String,
    pub subject: String,
    /// `firing`, `resolved` or `test`.
    pub state: AlertState,
    /// RFC 3339: when the condition started.
    pub since: String,
    pub message: String,
    /// The dashboard's address, or "" when the daemon serves none.
    pub dashboard: String,
}

/// Where messages say they come from and where to look.
#[derive(Debug, Clone)]
pub struct Origin {
    pub host: String,
    pub dashboard: String,
}

impl Origin {
    pub fn of(cfg: &Config) -> Origin {
        let host = cfg.alerts.host.clone().unwrap_or_else(hostname);
        let dashboard = match &cfg.alerts.dashboard {
            Some(d) => d.clone(),
            None if cfg.http.bind.trim().is_empty() => String::new(),
            None => format!("http://{}/", cfg.http.bind.trim()),
        };
        Origin { host, dashboard }
    }

    pub fn body(&self, n: &Notice) -> Body {
        Body {
            host: self.host.clone(),
            rule: n.rule.clone(),
            subject: n.subject.clone(),
            state: n.state,
            since: rfc3339(n.since),
            message: n.message.clone(),
            dashboard: self.dashboard.clone(),
        }
    }

    /// The one-line text of a message: "mdkeep on jetson: maintain failed
    /// 3 runs in a row … Dashboard: http://…/".
    pub fn text(&self, n: &Notice) -> String {
        let what = match n.state {
            AlertState::Firing => n.message.clone(),
            AlertState::Resolved => format!(
                "resolved after {}: {}",
                human_age(now_ns().saturating_sub(n.since)),
                n.message
            ),
            AlertState::Test => n.message.clone(),
        };
        let dash = if self.dashboard.is_empty() {
            String::new()
        } else {
            format!(" Dashboard: {}", self.dashboard)
        };
        format!("mdkeep on {}: {what}{dash}", self.host)
    }

    /// The short title ntfy shows.
    pub fn title(&self, n: &Notice) -> String {
        match n.state {
            AlertState::Firing => format!("mdkeep on {}: {}", self.host, n.subject),
            AlertState::Resolved => format!("mdkeep on {}: resolved: {}", self.host, n.subject),
            AlertState::Test => format!("mdkeep on {}: test", self.host),
        }
    }
}

/// This box's name (`/proc/sys/kernel/hostname`, else "localhost").
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// `95m` → `1h35m`; for messages.
pub fn human_age(ns: i64) -> String {
    let m = (ns.max(0) / 60_000_000_000) as u64;
    match m {
        0 => "under a minute".into(),
        m if m < 60 => format!("{m}m"),
        m if m < 48 * 60 => format!("{}h{:02}m", m / 60, m % 60),
        m => format!("{}d{}h", m / 1440, (m % 1440) / 60),
    }
}

/// Compare what holds now with what is remembered: start, update, repeat
/// and resolve alerts, and say which messages are due. `scope`: the rules
/// evaluated this time; an open alert of another rule is left as it is.
pub fn reconcile(db: &Db, conds: &[Condition], scope: &[&str], repeat: Duration, now: i64) -> Result<Vec<Notice>> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let repeat_ns = repeat.as_nanos().min(i64::MAX as u128) as i64;
    for c in conds {
        if !seen.insert(c.key.clone()) {
            continue;
        }
        let fresh = |out: &mut Vec<Notice>| -> Result<()> {
            state::start(db, c, now, c.quiet)?;
            if !c.quiet && c.hold.is_zero() {
                out.push(Notice {
                    key: c.key.clone(),
                    rule: c.rule.to_string(),
                    subject: c.subject.clone(),
                    state: AlertState::Firing,
                    since: now,
                    message: c.message.clone(),
                });
            }
            Ok(())
        };
        match state::get(db, &c.key)? {
            None => fresh(&mut out)?,
            // A one-shot is done once sent; anything else has come back.
            Some(row) if row.resolved_at.is_some() => {
                if !row.once {
                    fresh(&mut out)?;
                }
            }
            Some(row) => {
                state::update_text(db, &c.key, &c.subject, &c.message)?;
                let hold = c.hold.as_nanos().min(i64::MAX as u128) as i64;
                let due = match row.last_sent {
                    None => now.saturating_sub(row.since) >= hold,
                    Some(t) => c.repeat && !row.once && now.saturating_sub(t) >= repeat_ns,
                };
                if due {
                    let mut n = Notice::of(&row, AlertState::Firing);
                    n.subject = c.subject.clone();
                    n.message = c.message.clone();
                    out.push(n);
                }
            }
        }
    }
    for row in state::open(db)? {
        if seen.contains(&row.key) {
            continue;
        }
        if row.resolved_at.is_some() {
            // Ended earlier; its "resolved" has not gone out yet.
            out.push(Notice::of(&row, AlertState::Resolved));
        } else if row.once {
            // A one-shot not delivered yet: again.
            out.push(Notice::of(&row, AlertState::Firing));
        } else if scope.contains(&row.rule.as_str()) {
            if row.last_sent.is_some() {
                state::resolve(db, &row.key, now)?;
                out.push(Notice::of(&row, AlertState::Resolved));
            } else {
                // Held, never sent: nothing to take back.
                state::forget(db, &row.key)?;
            }
        }
    }
    Ok(out)
}

/// What one [`check`] did.
#[derive(Debug, Default, Serialize)]
pub struct CheckReport {
    /// The conditions that hold now (keys).
    pub holding: Vec<String>,
    /// Messages sent: (key, state, targets that took it).
    pub sent: Vec<SentNotice>,
    /// Targets that failed, with why (no address, no token).
    pub failed: Vec<deliver::Delivery>,
}

#[derive(Debug, Serialize)]
pub struct SentNotice {
    pub key: String,
    pub state: AlertState,
    pub delivered_to: Vec<String>,
}

/// Evaluate every rule, reconcile, deliver what is due and record it.
/// `daemon_problems`: the daemon's health, when the caller is the daemon
/// (`None` leaves the health rule's alerts as they are).
pub fn check(cfg: &Config, db: &Db, daemon_problems: Option<&[String]>) -> Result<CheckReport> {
    let _lock = CheckLock::take(cfg)?;
    let started = now_ns();
    let eval = rules::evaluate(cfg, db, daemon_problems, started)?;
    let notices = reconcile(db, &eval.conditions, &eval.scope, cfg.alerts.repeat.0, started)?;
    for (name, value) in &eval.marks {
        state::set_mark(db, name, *value)?;
    }
    let origin = Origin::of(cfg);
    let mut report = CheckReport {
        holding: eval.conditions.iter().map(|c| c.key.clone()).collect(),
        ..Default::default()
    };
    for n in &notices {
        let results = deliver::to_all(cfg, &origin, n, None);
        let now = now_ns();
        let mut took = Vec::new();
        for d in results {
            state::record_delivery(db, &d.target, &d.result, now)?;
            match &d.result {
                Ok(()) => took.push(d.target.clone()),
                Err(e) => tracing::warn!(target_name = %d.target, key = %n.key, error = %e, "alert not delivered"),
            }
            if d.result.is_err() {
                report.failed.push(d);
            }
        }
        // Kept for the next check when every target failed.
        if !took.is_empty() || cfg.alerts.targets.is_empty() {
            match n.state {
                AlertState::Resolved => state::sent_resolved(db, &n.key, now)?,
                _ => state::sent_firing(db, &n.key, now)?,
            }
            tracing::info!(key = %n.key, state = n.state.as_str(), targets = took.len(), "alert sent");
            report.sent.push(SentNotice {
                key: n.key.clone(),
                state: n.state,
                delivered_to: took,
            });
        }
    }
    Ok(report)
}

/// A test message to every target, or the one named `only`.
pub fn test(cfg: &Config, db: &Db, only: Option<&str>) -> Result<Vec<deliver::Delivery>> {
    if let Some(name) = only {
        if !cfg.alerts.targets.iter().any(|t| t.name() == name) {
            let names: Vec<String> = cfg.alerts.targets.iter().map(|t| t.name()).collect();
            return Err(Error::Invalid(format!(
                "no alert target `{name}` (targets: {})",
                if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                }
            )));
        }
    }
    let origin = Origin::of(cfg);
    let n = Notice {
        key: "test".into(),
        rule: "test".into(),
        subject: "test".into(),
        state: AlertState::Test,
        since: now_ns(),
        message: "a test message from `mdkeep alerts test`; alerts reach you here.".into(),
    };
    let results = deliver::to_all(cfg, &origin, &n, only);
    let now = now_ns();
    for d in &results {
        state::record_delivery(db, &d.target, &d.result, now)?;
    }
    Ok(results)
}

/// One check at a time per state database (a CLI's and the daemon's):
/// an exclusive `flock` on `<state db>.alerts.lock`, released on drop.
struct CheckLock(std::fs::File);

impl CheckLock {
    fn take(cfg: &Config) -> Result<CheckLock> {
        use std::os::unix::io::AsRawFd;
        let db = cfg.state_db();
        let path = db.with_file_name(format!(
            "{}.alerts.lock",
            db.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Error::io("open", &path))?;
        // SAFETY: flock on a descriptor this File owns; it outlives the call.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(Error::io("lock", &path)(std::io::Error::last_os_error()));
        }
        Ok(CheckLock(f))
    }
}

impl Drop for CheckLock {
    fn drop(&mut self) {
        use std::os::unix::io::AsRawFd;
        // SAFETY: as above; closing the file would release it too.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

#[cfg(test)]
mod tests;
