//! The jobs' routes: `/jobs` (sortable by a metric: `?sort=total_return`,
//! `&order=asc`) and `/api/jobs` (the same list as `jobs ls --json`), a
//! job's page `/jobs/<id>` with its `/jobs/<id>/log` (the last 64 KiB of
//! its output, text) and `/jobs/<id>/result.json`, and the comparison of
//! runs `/jobs/compare?ids=1,2,3` with its twin `/api/jobs/compare`.
//!
//! Owns these routes and the log tail. The figures are
//! [`crate::jobs::glance`]'s, the markup [`crate::report::jobs_page`]'s.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::{html, json, json_with, page_at, page_with, to_json};
use crate::daemon::app::{blocking, AppState};
use crate::error::Error;
use crate::jobs::glance;
use crate::report::{header::gather, jobs_page, page};
use crate::state::Db;

/// How much of a job's output `/jobs/<id>/log` answers with.
pub const LOG_TAIL: u64 = 64 * 1024;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/jobs", get(jobs))
        .route("/api/jobs", get(api_jobs))
        .route("/jobs/compare", get(compare))
        .route("/api/jobs/compare", get(api_compare))
        .route("/jobs/{id}", get(job_page))
        .route("/jobs/{id}/log", get(job_log))
        .route("/jobs/{id}/result.json", get(job_result))
}

/// The query string's `key=value` pairs (`,` and spaces may come encoded).
fn query(uri: &Uri) -> BTreeMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let v = v
                .replace("%2C", ",")
                .replace("%2c", ",")
                .replace("%20", " ")
                .replace('+', " ");
            (k.to_string(), v)
        })
        .collect()
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response()
}

/// The list, sorted as `?sort=` and `?order=asc` ask.
async fn jobs(State(s): State<Arc<AppState>>, uri: Uri) -> Response {
    let q = query(&uri);
    let sort = q.get("sort").filter(|k| !k.is_empty()).cloned();
    let asc = q.get("order").is_some_and(|o| o == "asc");
    if let Some(k) = &sort {
        if !glance::SORT_KEYS.contains(&k.as_str()) {
            return bad_request(format!(
                "cannot sort jobs by `{k}`: use one of {}",
                glance::SORT_KEYS.join(", ")
            ));
        }
    }
    page_with(s, "mdkeep jobs", move |_, db| {
        let mut list = glance::summaries(db, None)?;
        if let Some(k) = &sort {
            glance::sort(&mut list, k, asc)?;
        }
        Ok(jobs_page::list(&list, sort.as_deref().map(|k| (k, asc))))
    })
    .await
}

async fn api_jobs(State(s): State<Arc<AppState>>) -> Response {
    json_with(s, |_, db| to_json(&glance::summaries(db, None)?)).await
}

/// `/jobs/<id>`: 404 when there is no such job.
async fn job_page(State(s): State<Arc<AppState>>, UrlPath(id): UrlPath<i64>) -> Response {
    let page = blocking(s, move |s| {
        let db = Db::open_existing(&s.cfg.state_db())?;
        let d = match glance::detail(&db, id) {
            Ok(d) => d,
            Err(Error::Job { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let head = gather(&s.cfg, &db)?;
        let log = log_tail(Path::new(&d.job.dir));
        let body = jobs_page::detail(&d, &log);
        Ok(Some(page::document_at(
            &format!("mdkeep job {id}"),
            Some(&head),
            &body,
            "../",
        )))
    })
    .await;
    match page {
        Ok(Some(text)) => html(text),
        Ok(None) => (StatusCode::NOT_FOUND, format!("no job {id}\n")).into_response(),
        Err(r) => r,
    }
}

/// The ids of `?ids=1,2,3`, or why a request without them is refused.
fn compare_ids(uri: &Uri) -> std::result::Result<Vec<i64>, String> {
    let text = query(uri).remove("ids").unwrap_or_default();
    match glance::parse_ids(&text) {
        Ok(ids) if !ids.is_empty() => Ok(ids),
        Ok(_) => Err("name the jobs to compare: /jobs/compare?ids=1,2".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// A comparison, or 404 naming a job that does not exist.
async fn comparison(s: Arc<AppState>, ids: Vec<i64>) -> std::result::Result<glance::Comparison, Response> {
    blocking(s, move |s| {
        let db = Db::open_existing(&s.cfg.state_db())?;
        match glance::compare(&db, &ids) {
            Ok(c) => Ok(Ok(c)),
            Err(Error::Job { id, .. }) => Ok(Err(id)),
            Err(e) => Err(e),
        }
    })
    .await?
    .map_err(|id| (StatusCode::NOT_FOUND, format!("no job {id}\n")).into_response())
}

async fn compare(State(s): State<Arc<AppState>>, uri: Uri) -> Response {
    let ids = match compare_ids(&uri) {
        Ok(ids) => ids,
        Err(why) => return bad_request(why),
    };
    let c = match comparison(s.clone(), ids.clone()).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let names: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    let title = format!("mdkeep compare {}", names.join(", "));
    page_at(s, title, "../", move |_, _| Ok(jobs_page::compare(&c))).await
}

async fn api_compare(State(s): State<Arc<AppState>>, uri: Uri) -> Response {
    let ids = match compare_ids(&uri) {
        Ok(ids) => ids,
        Err(why) => return bad_request(why),
    };
    match comparison(s, ids).await {
        Ok(c) => match to_json(&c) {
            Ok(text) => json(text),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
        },
        Err(r) => r,
    }
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
