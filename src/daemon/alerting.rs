//! The daemon's alerts: [`crate::alerts::check`] on a thread of its own,
//! after each task ends and every `alerts.interval`.
//!
//! Owns that thread and how it is woken. A task only sends a wake-up on a
//! channel and goes on: evaluation and delivery (retries, timeouts, a
//! receiver that hangs) never hold up a task or the scheduler. Wake-ups
//! that arrive during a check are merged into one more check.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;

use super::app::Health;
use crate::config::Config;
use crate::state::Db;

/// Wakes the alerts thread; dropping every one ends it.
#[derive(Clone)]
pub struct Alerter {
    tx: Sender<()>,
}

impl Alerter {
    /// Start the thread (and a first check), unless `alerts.enabled` is off.
    pub fn spawn(cfg: &Config, health: Arc<Health>) -> Option<Alerter> {
        if !cfg.alerts.enabled {
            return None;
        }
        let (tx, rx) = mpsc::channel::<()>();
        let cfg = cfg.clone();
        let spawned = std::thread::Builder::new().name("mdkeep-alerts".into()).spawn(move || {
            let interval = cfg.alerts.interval.0.max(std::time::Duration::from_secs(1));
            loop {
                check_once(&cfg, &health);
                match rx.recv_timeout(interval) {
                    Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                // Merge the wake-ups that came meanwhile.
                while rx.try_recv().is_ok() {}
            }
        });
        match spawned {
            Ok(_) => Some(Alerter { tx }),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the alerts thread; no alerts will be sent");
                None
            }
        }
    }

    /// Ask for a check soon; never blocks.
    pub fn poke(&self) {
        let _ = self.tx.send(());
    }
}

fn check_once(cfg: &Config, health: &Health) {
    let problems = health.problems();
    let run = || -> crate::error::Result<crate::alerts::CheckReport> {
        let db = Db::open_existing(&cfg.state_db())?;
        crate::alerts::check(cfg, &db, Some(&problems))
    };
    // A panic in a rule must not end the thread.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(Ok(r)) if !r.sent.is_empty() || !r.failed.is_empty() => {
            tracing::info!(sent = r.sent.len(), failed = r.failed.len(), "alerts checked");
        }
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot check alerts"),
        Err(_) => tracing::error!("an alerts check panicked; the next one runs as usual"),
    }
}
