//! What the daemon's HTTP side shares: the parts' [`Health`], the
//! [`AppState`] every route reads (config, the metrics snapshot, the
//! dashboard's [`ReportCache`], the token), and [`blocking`], which runs a
//! route's blocking work on a blocking thread.
//!
//! Owns that state and the report's cache: the report is built from the
//! catalog and the report caches only ([`Reads::CachesOnly`]: no data file
//! is opened), kept while [`crate::report::stamp`] is unchanged and younger
//! than [`MAX_AGE`], and built again after a scheduled task changed
//! something. The routes are [`super::http`]'s and [`super::dashboard`]'s.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::metrics;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::report::{self, Reads};
use crate::state::Db;

/// What the daemon's parts report about themselves.
#[derive(Debug, Default)]
pub struct Health {
    stopped: Mutex<Vec<String>>,
}

impl Health {
    /// A part stopped for good while the daemon runs on.
    pub fn stopped(&self, why: impl Into<String>) {
        let why = why.into();
        tracing::error!(why, "the daemon is no longer healthy");
        self.stopped.lock().expect("not poisoned").push(why);
    }

    pub fn problems(&self) -> Vec<String> {
        self.stopped.lock().expect("not poisoned").clone()
    }
}

pub struct AppState {
    pub cfg: Config,
    pub started: Instant,
    pub health: Arc<Health>,
    /// The data families, rendered after each task, and when.
    pub(super) snapshot: Mutex<Option<(Arc<str>, Instant)>>,
    /// The dashboard's report.
    pub report: ReportCache,
    /// The bearer token asked of every route but `/healthz`, when set.
    pub(super) token: Option<String>,
}

impl AppState {
    pub fn new(cfg: Config, health: Arc<Health>, token: Option<String>) -> AppState {
        AppState {
            cfg,
            started: Instant::now(),
            health,
            snapshot: Mutex::new(None),
            report: Default::default(),
            token,
        }
    }

    /// After a task: render the metrics' data families again and rebuild
    /// the dashboard's report if the task changed something, on a blocking
    /// thread (it walks the tier roots); the pages serve the old ones
    /// meanwhile.
    pub fn refresh_later(self: &Arc<Self>) {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            me.refresh_metrics();
            me.report.warm(&me.cfg);
        });
    }

    fn refresh_metrics(&self) {
        match metrics::render_data(&self.cfg) {
            Ok(text) => *self.snapshot.lock().expect("not poisoned") = Some((text.into(), Instant::now())),
            Err(e) => tracing::warn!(error = %e, "cannot refresh the metrics snapshot"),
        }
    }
}

pub(super) async fn blocking<T: Send + 'static>(
    s: Arc<AppState>,
    f: impl FnOnce(&AppState) -> Result<T> + Send + 'static,
) -> std::result::Result<T, Response> {
    match tokio::task::spawn_blocking(move || f(&s)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err((StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response()),
        Err(e) => Err((StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response()),
    }
}

/// A cached report is built again past this age even when nothing changed
/// (its forecast and "next" plans depend on the clock).
pub const MAX_AGE: Duration = Duration::from_secs(600);

/// The report as last built: its HTML body and its JSON.
struct Built {
    stamp: String,
    at: Instant,
    body: Arc<str>,
    json: Arc<str>,
}

/// The report's cache.
#[derive(Default)]
pub struct ReportCache {
    built: Mutex<Option<Built>>,
}

impl ReportCache {
    /// The report's HTML body and JSON, built again when the state database
    /// changed or the cache is old. One build at a time; others wait for it.
    pub(super) fn get(&self, cfg: &Config, db: &Db) -> Result<(Arc<str>, Arc<str>)> {
        let stamp = report::stamp(db)?;
        let mut built = self.built.lock().expect("not poisoned");
        if let Some(b) = built.as_ref().filter(|b| b.stamp == stamp && b.at.elapsed() < MAX_AGE) {
            return Ok((b.body.clone(), b.json.clone()));
        }
        let r = report::build_with(cfg, db, "30d".parse().expect("valid span"), Reads::CachesOnly)?;
        let json = serde_json::to_string(&r).map_err(|e| Error::Invalid(e.to_string()))?;
        let b = Built {
            stamp,
            at: Instant::now(),
            body: report::html::body(&r).into(),
            json: json.into(),
        };
        let out = (b.body.clone(), b.json.clone());
        *built = Some(b);
        Ok(out)
    }

    /// Build now if stale, so the next page is served from the cache.
    pub fn warm(&self, cfg: &Config) {
        if let Err(e) = Db::open_existing(&cfg.state_db()).and_then(|db| self.get(cfg, &db)) {
            tracing::warn!(error = %e, "cannot rebuild the dashboard's report");
        }
    }
}
