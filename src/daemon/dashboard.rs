//! The dashboard: read-only pages for a browser, and their JSON twins.
//!
//! - `/`: the retention report, the same page `mdkeep report --format html`
//!   writes, under the shared header, after what is deferred (retried every
//!   run) when anything is. `/api/report` is the report's JSON.
//! - `/jobs` (and `/api/jobs`, the same list as `jobs ls --json`), with each
//!   job's `/jobs/<id>/log` (the last 64 KiB of its output, text) and
//!   `/jobs/<id>/result.json`.
//! - `/quality` and `/coverage`, with `/api/quality` and `/api/coverage`.
//! - The alerts firing and the alert targets failing open `/`, above the report.
//!
//! Owns the routes. The report comes from [`super::app::ReportCache`]; all
//! markup is the report's ([`crate::report::page`]).

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::app::{blocking, AppState};
use crate::error::{Error, Result};
use crate::report::{self, header::Header, page};
use crate::state::Db;

/// How much of a job's output `/jobs/<id>/log` answers with.
pub const LOG_TAIL: u64 = 64 * 1024;

/// The dashboard's routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(index))
        .route("/api/report", get(api_report))
        .route("/jobs", get(jobs))
        .route("/api/jobs", get(api_jobs))
        .route("/jobs/{id}/log", get(job_log))
        .route("/jobs/{id}/result.json", get(job_result))
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
    match blocking(s, move |s| {
        let db = Db::open_existing(&s.cfg.state_db())?;
        let head: Header = report::header::gather(&s.cfg, &db)?;
        Ok(page::document(title, Some(&head), &body(s, &db)?))
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

fn job_views(db: &Db) -> Result<Vec<crate::jobs::queue::JobView>> {
    Ok(crate::jobs::queue::list(db, None)?.iter().map(|j| j.view()).collect())
}

async fn jobs(State(s): State<Arc<AppState>>) -> Response {
    page_with(s, "mdkeep jobs", |_, db| Ok(page::jobs(&job_views(db)?))).await
}

async fn api_jobs(State(s): State<Arc<AppState>>) -> Response {
    json_with(s, |_, db| to_json(&job_views(db)?)).await
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

/// A job's folder, or 404 when there is no such job.
async fn job_dir(s: Arc<AppState>, id: i64) -> std::result::Result<std::path::PathBuf, Response> {
    blocking(s, move |s| {
        let db = Db::open_existing(&s.cfg.state_db())?;
        match crate::jobs::queue::get(&db, id) {
            Ok(j) => Ok(Some(std::path::PathBuf::from(j.dir))),
            Err(Error::Job { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    })
    .await?
    .ok_or_else(|| (StatusCode::NOT_FOUND, format!("no job {id}\n")).into_response())
}

async fn job_log(State(s): State<Arc<AppState>>, UrlPath(id): UrlPath<i64>) -> Response {
    let dir = match job_dir(s, id).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    match tokio::task::spawn_blocking(move || log_tail(&dir)).await {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

async fn job_result(State(s): State<Arc<AppState>>, UrlPath(id): UrlPath<i64>) -> Response {
    let dir = match job_dir(s, id).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    match tokio::fs::read(dir.join("result.json")).await {
        Ok(bytes) => json(bytes),
        Err(_) => (StatusCode::NOT_FOUND, format!("job {id} has no result.json yet\n")).into_response(),
    }
}

/// The end of a job's output, at most [`LOG_TAIL`] bytes in all: the tails
/// of `stdout.log` and `stderr.log`, each under a heading. When both are
/// long each gets half; a short one leaves the rest to the other.
pub fn log_tail(dir: &Path) -> String {
    let files = ["stdout.log", "stderr.log"].map(|n| dir.join(n));
    let sizes = files
        .each_ref()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0));
    let err_take = sizes[1].min((LOG_TAIL / 2).max(LOG_TAIL.saturating_sub(sizes[0])));
    let takes = [sizes[0].min(LOG_TAIL - err_take), err_take];
    let mut out = String::new();
    for ((p, size), take) in files.iter().zip(sizes).zip(takes) {
        let name = p.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
        if take < size {
            out.push_str(&format!("==> {name} (last {take} of {size} bytes) <==\n"));
        } else {
            out.push_str(&format!("==> {name} ({size} bytes) <==\n"));
        }
        out.push_str(&tail(p, take));
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// The last `n` bytes of a file, as text (an absent file is empty).
fn tail(path: &Path, n: u64) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let mut buf = Vec::new();
    if f.seek(SeekFrom::End(-(n as i64))).is_ok() {
        let _ = f.take(n).read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_tail_is_at_most_64_kib_and_keeps_both_ends() {
        let dir = tempfile::tempdir().unwrap();
        // Short logs come whole.
        std::fs::write(dir.path().join("stdout.log"), "out\n").unwrap();
        let t = log_tail(dir.path());
        assert!(
            t.contains("==> stdout.log (4 bytes) <==\nout\n") && t.contains("==> stderr.log (0 bytes)"),
            "{t}"
        );
        // Two long logs share the budget; each keeps its end.
        let long = |c: char| format!("{}END-{c}\n", c.to_string().repeat(100_000));
        std::fs::write(dir.path().join("stdout.log"), long('o')).unwrap();
        std::fs::write(dir.path().join("stderr.log"), long('e')).unwrap();
        let t = log_tail(dir.path());
        assert!(t.len() < LOG_TAIL as usize + 200, "{}", t.len());
        assert!(t.contains("END-o") && t.contains("END-e"));
        assert!(
            t.contains(&format!("(last {} of 100006 bytes)", LOG_TAIL / 2)),
            "{}",
            &t[..80]
        );
    }
}
