//! Sending one message to the `[[alerts.targets]]`: a JSON webhook, an
//! ntfy topic, the Telegram Bot API, or a command.
//!
//! Owns each kind's request and the retries: every attempt has
//! `alerts.timeout`, and a failed one is tried again after 1s, 2s, 4s, …
//! up to `alerts.attempts` in all. Never panics; a failure is a
//! [`Delivery`] with a reason that names no address and no token (the
//! Telegram token is read from its 0600 file for each message, and is
//! never logged).

use std::process::Command;
use std::time::Duration;

use serde::Serialize;

use super::{http, AlertState, Notice, Origin};
use crate::config::{AlertTarget, ChatId, Config, TargetKind};

/// How one target took one message.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub target: String,
    pub kind: &'static str,
    /// `Err(reason)`: no URL and no token in it.
    #[serde(rename = "error", serialize_with = "as_error")]
    pub result: Result<(), String>,
    pub attempts: u32,
}

fn as_error<S: serde::Serializer>(r: &Result<(), String>, s: S) -> Result<S::Ok, S::Error> {
    match r {
        Ok(()) => s.serialize_none(),
        Err(e) => s.serialize_some(e),
    }
}

/// Send `n` to every target (or the one named `only`), one after another.
pub fn to_all(cfg: &Config, origin: &Origin, n: &Notice, only: Option<&str>) -> Vec<Delivery> {
    cfg.alerts
        .targets
        .iter()
        .filter(|t| only.is_none_or(|o| t.name() == o))
        .map(|t| to_one(cfg, origin, t, n))
        .collect()
}

/// One target, with retries and backoff.
pub fn to_one(cfg: &Config, origin: &Origin, t: &AlertTarget, n: &Notice) -> Delivery {
    let timeout = cfg.alerts.timeout.0;
    let attempts = cfg.alerts.attempts.max(1);
    let mut result = Err(String::from("not tried"));
    let mut tried = 0;
    for i in 0..attempts {
        if i > 0 {
            std::thread::sleep(Duration::from_secs(1 << (i - 1).min(5)));
        }
        tried += 1;
        result = attempt(cfg, origin, t, n, timeout);
        if result.is_ok() {
            break;
        }
    }
    Delivery {
        target: t.name(),
        kind: t.kind.as_str(),
        result,
        attempts: tried,
    }
}

fn attempt(cfg: &Config, origin: &Origin, t: &AlertTarget, n: &Notice, timeout: Duration) -> Result<(), String> {
    let body = origin.body(n);
    let json = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
    match t.kind {
        TargetKind::Webhook => http::post(
            t.url.as_deref().unwrap_or_default(),
            &[("Content-Type", "application/json".to_string())],
            &json,
            timeout,
        ),
        TargetKind::Ntfy => {
            let (priority, tags) = match n.state {
                AlertState::Firing => ("high", "warning"),
                AlertState::Resolved => ("default", "white_check_mark"),
                AlertState::Test => ("low", "test_tube"),
            };
            let mut headers = vec![
                ("Content-Type", "text/plain; charset=utf-8".to_string()),
                ("Title", origin.title(n)),
                ("Priority", priority.to_string()),
                ("Tags", tags.to_string()),
            ];
            if !origin.dashboard.is_empty() {
                headers.push(("Click", origin.dashboard.clone()));
            }
            http::post(
                t.url.as_deref().unwrap_or_default(),
                &headers,
                origin.text(n).as_bytes(),
                timeout,
            )
        }
        TargetKind::Telegram => telegram(cfg, origin, t, n, timeout),
        TargetKind::Command => command(cfg, t, &json, timeout),
    }
}

/// POST `<api>/bot<token>/sendMessage` with {chat_id, text}.
fn telegram(cfg: &Config, origin: &Origin, t: &AlertTarget, n: &Notice, timeout: Duration) -> Result<(), String> {
    let file = t.token_file.as_deref().ok_or("no token_file")?;
    // The 0600 rule of every secrets file; the error names the file only.
    let token = crate::fsutil::read_private(&cfg.resolve(file))?;
    let token = token.trim();
    if token.is_empty() || token.contains(['/', '?', '#', ' ']) {
        return Err(format!("{} does not hold a bot token", file.display()));
    }
    let chat = match &t.chat_id {
        Some(ChatId::Number(n)) => serde_json::Value::from(*n),
        Some(ChatId::Name(s)) => serde_json::Value::from(s.clone()),
        None => return Err("no chat_id".into()),
    };
    let body = serde_json::json!({
        "chat_id": chat,
        "text": origin.text(n),
        "disable_web_page_preview": true,
    });
    let url = format!("{}/bot{token}/sendMessage", t.api.trim_end_matches('/'));
    http::post(
        &url,
        &[("Content-Type", "application/json".to_string())],
        body.to_string().as_bytes(),
        timeout,
    )
    // Nothing of the URL goes out in the reason; scrub the token all the same.
    .map_err(|e| e.replace(token, "<token>"))
}

/// Run `argv` with the alert's JSON on stdin, in the jobs' clean
/// environment; exit 0 within the timeout is delivered.
fn command(cfg: &Config, t: &AlertTarget, json: &[u8], timeout: Duration) -> Result<(), String> {
    let (prog, args) = t.argv.split_first().ok_or("no argv")?;
    let mut input = json.to_vec();
    input.push(b'\n');
    let (status, err) = http::run_fed(
        Command::new(prog).args(args).current_dir(&cfg.root),
        &input,
        timeout,
        &format!("cannot run {prog}"),
    )?;
    if status.success() {
        Ok(())
    } else {
        let last = err.lines().last().unwrap_or("").trim().to_string();
        Err(format!(
            "{prog} exited {}{}",
            status.code().map_or("by a signal".into(), |c| c.to_string()),
            if last.is_empty() {
                String::new()
            } else {
                format!(": {}", super::rules::short(&last, 160))
            }
        ))
    }
}
