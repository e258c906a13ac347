//! The routes: `/healthz`, `/metrics` (Prometheus text), `/status` (JSON),
//! the dashboard's pages ([`super::dashboard`]), and the bearer token
//! every route but `/healthz` asks for when `http.token_file` is set.
//!
//! Owns what each of its own routes answers. `/healthz` is honest: 503 with the reasons when
//! the scheduler or the job worker has stopped, or the state database
//! cannot be read. `/metrics` is the data snapshot the daemon refreshes
//! after each task plus the live families (see [`super::metrics`]).
//! `/status` reads the state database when asked. Anything blocking runs on
//! a blocking thread. Accepting and bounding connections is
//! [`super::server`]'s.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;

use super::app::{blocking, AppState};
use super::metrics;
use crate::state::Db;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .route("/status", get(status))
        .merge(super::dashboard::routes())
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), authorize))
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// 401 unless the request carries the token (when one is set).
async fn authorize(
    State(s): State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(token) = &s.token else {
        return next.run(req).await;
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if same(given.as_bytes(), token.as_bytes()) {
        return next.run(req).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "a bearer token is required (http.token_file)\n",
    )
        .into_response()
}

/// Equal bytes, in a time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn healthz(State(s): State<Arc<AppState>>) -> Response {
    let mut problems = s.health.problems();
    let readable = blocking(s, |s| Db::open_existing(&s.cfg.state_db())?.check_readable()).await;
    if readable.is_err() {
        problems.push("the state database cannot be read".into());
    }
    if problems.is_empty() {
        return "ok\n".into_response();
    }
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("unhealthy: {}\n", problems.join("; ")),
    )
        .into_response()
}

async fn serve_metrics(State(s): State<Arc<AppState>>) -> Response {
    let snapshot = s.snapshot.lock().expect("not poisoned").clone();
    match blocking(s, |s| metrics::render_live(&s.cfg)).await {
        Ok(live) => {
            let (data, age) = match snapshot {
                Some((text, at)) => (text, Some(at.elapsed().as_secs_f64())),
                None => (Arc::from(""), None),
            };
            let page = format!("{data}{live}{}", metrics::render_age(age));
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], page).into_response()
        }
        Err(r) => r,
    }
}

/// `/status`'s `alerts`: what is firing (or held) and the targets that are failing.
fn alerts_status(db: &Db) -> crate::error::Result<serde_json::Value> {
    let firing = crate::alerts::state::list(db, 0)?;
    let failing: Vec<_> = crate::alerts::state::targets(db)?
        .into_iter()
        .filter(|t| t.failures > 0)
        .collect();
    Ok(json!({ "firing": firing, "failing_targets": failing }))
}

async fn status(State(s): State<Arc<AppState>>) -> Response {
    match blocking(s, |s| {
        let db = Db::open_existing(&s.cfg.state_db())?;
        let schedules = crate::scheduler::list(&s.cfg, &db)?;
        // Bounded: the running jobs (at most what the budget admits) and a count.
        let running: Vec<_> = crate::jobs::queue::list(&db, Some("running"))?
            .iter()
            .map(|j| j.view())
            .collect();
        Ok(json!({
            "version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "uptime_seconds": s.started.elapsed().as_secs(),
            "healthy": s.health.problems().is_empty(),
            "problems": s.health.problems(),
            "budget_bytes": s.cfg.jobs.memory_budget.0,
            "budget_in_use_bytes": crate::jobs::budget::in_use(&db)?,
            "schedules": schedules,
            "running_jobs": running,
            "queued_jobs": crate::jobs::queue::count(&db, "queued")?,
            "deferred": crate::engine::deferred::list(&db)?,
            "alerts": alerts_status(&db)?,
            "lake": crate::lake::status::status(&s.cfg),
        }))
    })
    .await
    {
        Ok(v) => ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response(),
        Err(r) => r,
    }
}
