//! The alerts' rows in the state database: the one module that runs SQL on
//! `alerts`, `alert_targets` and `alert_marks` (migration 17).
//!
//! Owns what is remembered across restarts: when each alert's condition
//! started, when it was last sent, when it ended and whether its
//! "resolved" went out; each target's consecutive failures; and how far
//! the one-shot rules have looked (marks).

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::Condition;
use crate::error::Result;
use crate::state::Db;
use crate::time::rfc3339;

/// One row of `alerts`.
#[derive(Debug, Clone)]
pub struct AlertRow {
    pub key: String,
    pub rule: String,
    pub subject: String,
    pub message: String,
    pub since: i64,
    pub once: bool,
    pub fired_at: Option<i64>,
    pub last_sent: Option<i64>,
    pub sends: i64,
    pub resolved_at: Option<i64>,
    pub resolved_sent: Option<i64>,
}

const COLUMNS: &str =
    "key, rule, subject, message, since, once, fired_at, last_sent, sends, resolved_at, resolved_sent";

fn from_row(r: &rusqlite::Row) -> rusqlite::Result<AlertRow> {
    Ok(AlertRow {
        key: r.get(0)?,
        rule: r.get(1)?,
        subject: r.get(2)?,
        message: r.get(3)?,
        since: r.get(4)?,
        once: r.get::<_, i64>(5)? != 0,
        fired_at: r.get(6)?,
        last_sent: r.get(7)?,
        sends: r.get(8)?,
        resolved_at: r.get(9)?,
        resolved_sent: r.get(10)?,
    })
}

fn query(db: &Db, sql: &str, p: impl rusqlite::Params) -> Result<Vec<AlertRow>> {
    let mut st = db.conn.prepare(sql).map_err(db.err())?;
    let rows = st.query_map(p, from_row).map_err(db.err())?;
    rows.collect::<rusqlite::Result<_>>().map_err(db.err())
}

/// The alert kept under `key`, if any.
pub fn get(db: &Db, key: &str) -> Result<Option<AlertRow>> {
    db.conn
        .query_row(&format!("SELECT {COLUMNS} FROM alerts WHERE key = ?1"), [key], from_row)
        .optional()
        .map_err(db.err())
}

/// Alerts still open: their condition holds, or their "resolved" (or a
/// one-shot's only message) has not gone out yet.
pub fn open(db: &Db) -> Result<Vec<AlertRow>> {
    query(
        db,
        &format!("SELECT {COLUMNS} FROM alerts WHERE resolved_at IS NULL OR resolved_sent IS NULL ORDER BY since, key"),
        [],
    )
}

/// A condition seen for the first time (or again after it ended): its row
/// starts over. `quiet`: recorded as already sent (a baseline), nothing goes out.
pub fn start(db: &Db, c: &Condition, now: i64, quiet: bool) -> Result<()> {
    let sent = quiet.then_some(now);
    db.conn
        .execute(
            "INSERT OR REPLACE INTO alerts (key, rule, subject, message, since, once, fired_at, last_sent, sends,
                 resolved_at, resolved_sent)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, 0, ?8, ?8)",
            params![
                c.key,
                c.rule,
                c.subject,
                c.message,
                now,
                c.once,
                sent,
                // A quiet one-shot is done at once.
                (quiet && c.once).then_some(now)
            ],
        )
        .map_err(db.err())?;
    Ok(())
}

/// The latest text of a condition that still holds.
pub fn update_text(db: &Db, key: &str, subject: &str, message: &str) -> Result<()> {
    db.conn
        .execute(
            "UPDATE alerts SET subject = ?2, message = ?3 WHERE key = ?1",
            params![key, subject, message],
        )
        .map_err(db.err())?;
    Ok(())
}

/// The condition ended; its "resolved" is yet to go out.
pub fn resolve(db: &Db, key: &str, now: i64) -> Result<()> {
    db.conn
        .execute(
            "UPDATE alerts SET resolved_at = ?2, resolved_sent = NULL WHERE key = ?1",
            params![key, now],
        )
        .map_err(db.err())?;
    Ok(())
}

/// Forget an alert that never went out (its condition ended while held).
pub fn forget(db: &Db, key: &str) -> Result<()> {
    db.conn
        .execute("DELETE FROM alerts WHERE key = ?1", [key])
        .map_err(db.err())?;
    Ok(())
}

/// A firing message went out (to at least one target, or there is none).
/// A one-shot is done with it.
pub fn sent_firing(db: &Db, key: &str, now: i64) -> Result<()> {
    db.conn
        .execute(
            "UPDATE alerts SET fired_at = coalesce(fired_at, ?2), last_sent = ?2, sends = sends + 1,
                 resolved_at = CASE WHEN once = 1 THEN ?2 ELSE resolved_at END,
                 resolved_sent = CASE WHEN once = 1 THEN ?2 ELSE resolved_sent END
             WHERE key = ?1",
            params![key, now],
        )
        .map_err(db.err())?;
    Ok(())
}

/// The "resolved" message went out.
pub fn sent_resolved(db: &Db, key: &str, now: i64) -> Result<()> {
    db.conn
        .execute(
            "UPDATE alerts SET resolved_sent = ?2 WHERE key = ?1 AND resolved_at IS NOT NULL",
            params![key, now],
        )
        .map_err(db.err())?;
    Ok(())
}

/// An alert as `alerts ls`, `/status` and the dashboard show it.
#[derive(Debug, Clone, Serialize)]
pub struct AlertView {
    pub key: String,
    pub rule: String,
    pub subject: String,
    /// `firing`, `pending` (held, or not delivered yet) or `resolved`.
    pub state: &'static str,
    pub message: String,
    pub since: String,
    pub last_sent: Option<String>,
    pub sends: i64,
    pub resolved_at: Option<String>,
}

impl AlertRow {
    pub fn view(&self) -> AlertView {
        let state = match (self.resolved_at, self.last_sent) {
            (Some(_), _) => "resolved",
            (None, Some(_)) => "firing",
            (None, None) => "pending",
        };
        AlertView {
            key: self.key.clone(),
            rule: self.rule.clone(),
            subject: self.subject.clone(),
            state,
            message: self.message.clone(),
            since: rfc3339(self.since),
            last_sent: self.last_sent.map(rfc3339),
            sends: self.sends,
            resolved_at: self.resolved_at.map(rfc3339),
        }
    }
}

/// Alerts whose condition holds (firing or pending), oldest first; with
/// `recent`, also the last `recent` that ended, newest first.
pub fn list(db: &Db, recent: usize) -> Result<Vec<AlertView>> {
    let mut out: Vec<AlertView> = query(
        db,
        &format!("SELECT {COLUMNS} FROM alerts WHERE resolved_at IS NULL ORDER BY since, key"),
        [],
    )?
    .iter()
    .map(AlertRow::view)
    .collect();
    let ended = query(
        db,
        &format!("SELECT {COLUMNS} FROM alerts WHERE resolved_at IS NOT NULL ORDER BY resolved_at DESC LIMIT ?1"),
        [recent as i64],
    )?;
    out.extend(ended.iter().map(AlertRow::view));
    Ok(out)
}

/// One target's delivery record.
#[derive(Debug, Clone, Serialize)]
pub struct TargetHealth {
    pub target: String,
    /// Consecutive failed deliveries (0: the last one went through).
    pub failures: i64,
    pub last_error: Option<String>,
    pub last_ok: Option<String>,
    pub last_attempt: Option<String>,
}

/// Record a delivery to `target`: `Ok` clears its failures, `Err` adds one.
/// The error must name no URL and no token (the caller's rule).
pub fn record_delivery(db: &Db, target: &str, result: &std::result::Result<(), String>, now: i64) -> Result<()> {
    let (ok, error) = match result {
        Ok(()) => (true, None),
        Err(e) => (false, Some(e.as_str())),
    };
    db.conn
        .execute(
            "INSERT INTO alert_targets (target, failures, last_error, last_ok, last_attempt)
             VALUES (?1, CASE WHEN ?2 THEN 0 ELSE 1 END, ?3, CASE WHEN ?2 THEN ?4 END, ?4)
             ON CONFLICT (target) DO UPDATE SET
                 failures = CASE WHEN ?2 THEN 0 ELSE alert_targets.failures + 1 END,
                 last_error = CASE WHEN ?2 THEN alert_targets.last_error ELSE excluded.last_error END,
                 last_ok = CASE WHEN ?2 THEN ?4 ELSE alert_targets.last_ok END,
                 last_attempt = ?4",
            params![target, ok, error, now],
        )
        .map_err(db.err())?;
    Ok(())
}

/// Every target's delivery record, by name.
pub fn targets(db: &Db) -> Result<Vec<TargetHealth>> {
    let mut st = db
        .conn
        .prepare("SELECT target, failures, last_error, last_ok, last_attempt FROM alert_targets ORDER BY target")
        .map_err(db.err())?;
    let rows = st
        .query_map([], |r| {
            Ok(TargetHealth {
                target: r.get(0)?,
                failures: r.get(1)?,
                last_error: r.get(2)?,
                last_ok: r.get::<_, Option<i64>>(3)?.map(rfc3339),
                last_attempt: r.get::<_, Option<i64>>(4)?.map(rfc3339),
            })
        })
        .map_err(db.err())?;
    rows.collect::<rusqlite::Result<_>>().map_err(db.err())
}

/// How far a one-shot rule has looked (ns), if it ever has.
pub fn mark(db: &Db, name: &str) -> Result<Option<i64>> {
    db.conn
        .query_row("SELECT value FROM alert_marks WHERE name = ?1", [name], |r| r.get(0))
        .optional()
        .map_err(db.err())
}

pub fn set_mark(db: &Db, name: &str, value: i64) -> Result<()> {
    db.conn
        .execute(
            "INSERT INTO alert_marks (name, value) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            params![name, value],
        )
        .map_err(db.err())?;
    Ok(())
}
