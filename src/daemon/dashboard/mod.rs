//! The dashboard: read-only pages for a browser, and their JSON twins.
//!
//! - `/`: the retention report, the same page `mdkeep report --format html`
//!   writes, under the shared header, after what is deferred (retried every
//!   run) when anything is. `/api/report` is the report's JSON.
//! - `/jobs` and the pages of each job and of a comparison: [`jobs`].
//! - `/quality` and `/coverage`, with `/api/quality` and `/api/coverage`.
//! - The alerts firing and the alert targets failing open `/`, above the report.
//!
//! Owns the routes. The report comes from [`super::app::ReportCache`]; all
//! markup is the report's ([`crate::report::page`],
//! [`crate::report::jobs_page`]).

mod jobs;

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::app::{blocking, AppState};
use crate::error::{Error, Result};
use crate::report::{self, header::Header, page};
use crate::state::Db;

pub use jobs::{log_tail, LOG_TAIL};

/// The dashboard's routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(index))
        .route("/api/report", get(api_report))
        .merge(jobs::routes())
        .route("/quality", get(quality))
        .route("/api/quality", get(api_quality))
        .route("/coverage", get(coverage))
        .route("/api/coverage", get(api_coverage))
}

fn html(text: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Nothing but the page itself: no script, no request out.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
            ),
        ],
        text,
    )
        .into_response()
}

fn json(text: impl Into<axum::body::Body>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], text.into()).into_response()
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Invalid(e.to_string()))
}

/// A page: `body(cfg, db)` under the header, in the shared shell.
async fn page_with(
    s: Arc<AppState>,
    title: &'static str,
    body: impl FnOnce(&AppState, &Db) -> Result<String> + Send + 'static,
) -> Response {
    page_at(s, title.to_string(), "", body).await
}

/// [`page_with`] for a page `up` (`../`) below the top, with its own title.
async fn page_at(
    s: Arc<AppState>,
    title: String,
    up: &'static str,
    body: impl FnOnce(&AppState, &Db) -> Result<String> + Send + 'static,
) -> Response {
    match blocking(s, move |s| {
        let db = Db::open_existing(&s.cfg.state_db())?;
        let head: Header = report::header::gather(&s.cfg, &db)?;
        Ok(page::document_at(&title, Some(&head), &body(s, &db)?, up))
    })
    .await
    {
        Ok(text) => html(text),
        Err(r) => r,
    }
}

/// A JSON twin: `value(cfg, db)`, serialized.
async fn json_with(
    s: Arc<AppState>,
    value: impl FnOnce(&AppState, &Db) -> Result<String> + Send + 'static,
) -> Response {
    match blocking(s, move |s| value(s, &Db::open_existing(&s.cfg.state_db())?)).await {
        Ok(text) => json(text),
        Err(r) => r,
    }
}

async fn index(State(s): State<Arc<AppState>>) -> Response {
    page_with(s, "mdkeep report", |s, db| {
        let alerts = page::alerts(&crate::alerts::state::list(db, 0)?, &crate::alerts::state::targets(db)?);
        let deferred = page::deferred(&crate::engine::deferred::list(db)?);
        Ok(format!("{alerts}{deferred}{}", s.report.get(&s.cfg, db)?.0))
    })
    .await
}

async fn api_report(State(s): State<Arc<AppState>>) -> Response {
    json_with(s, |s, db| Ok(s.report.get(&s.cfg, db)?.1.to_string())).await
}

async fn quality(State(s): State<Arc<AppState>>) -> Response {
    page_with(s, "mdkeep data quality", |_, db| {
        Ok(page::quality(&crate::quality::overview(db, &Default::default(), 0)?))
    })
    .await
}

async fn api_quality(State(s): State<Arc<AppState>>) -> Response {
    json_with(s, |_, db| {
        to_json(&crate::quality::overview(db, &Default::default(), 0)?)
    })
    .await
}

async fn coverage(State(s): State<Arc<AppState>>) -> Response {
    page_with(s, "mdkeep coverage", |s, db| {
        Ok(page::coverage(&crate::coverage::index(&s.cfg, db, None)?))
    })
    .await
}

async fn api_coverage(State(s): State<Arc<AppState>>) -> Response {
    json_with(s, |s, db| to_json(&crate::coverage::index(&s.cfg, db, None)?)).await
}
