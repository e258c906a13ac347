//! `/healthz`, `/metrics` (Prometheus text) and `/status` (JSON).
//!
//! Owns rendering only: every figure is read from the state database and
//! the disk when asked, on a blocking thread, so the daemon holds no copy
//! that could drift from the catalog.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;

use crate::config::Config;
use crate::error::Result;
use crate::state::Db;

pub struct AppState {
    pub cfg: Config,
    pub started: std::time::Instant,
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .with_state(state)
}

async fn blocking<T: Send + 'static>(
    s: Arc<AppState>,
    f: impl FnOnce(&AppState) -> Result<T> + Send + 'static,
) -> std::result::Result<T, Response> {
    match tokio::task::spawn_blocking(move || f(&s)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err((StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response()),
        Err(e) => Err((StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response()),
    }
}

async fn metrics(State(s): State<Arc<AppState>>) -> Response {
    match blocking(s, |s| render_metrics(&s.cfg)).await {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        Err(r) => r,
    }
}

async fn status(State(s): State<Arc<AppState>>) -> Response {
    match blocking(s, |s| {
        let db = Db::open_existing(&s.cfg.state_db())?;
        let schedules = crate::scheduler::list(&s.cfg, &db)?;
        let jobs = crate::jobs::queue::list(&db, None)?;
        let running: Vec<_> = jobs.iter().filter(|j| j.life.is_running()).map(|j| j.view()).collect();
        Ok(json!({
            "version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "uptime_seconds": s.started.elapsed().as_secs(),
            "budget_bytes": s.cfg.jobs.memory_budget.0,
            "budget_in_use_bytes": crate::jobs::budget::jobs_reserved(&db)? + crate::jobs::budget::maintenance_reserved(&db)?,
            "schedules": schedules,
            "running_jobs": running,
            "queued_jobs": jobs.iter().filter(|j| j.life.is_queued()).count(),
        }))
    })
    .await
    {
        Ok(v) => ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response(),
        Err(r) => r,
    }
}

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Every metric, in Prometheus' text format.
pub fn render_metrics(cfg: &Config) -> Result<String> {
    let db = Db::open_existing(&cfg.state_db())?;
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    let q = |sql: &str| -> Result<Vec<(Vec<String>, f64)>> {
        let mut st = db.conn.prepare(sql).map_err(db.err())?;
        let n = st.column_count();
        let rows = st
            .query_map([], |r| {
                let mut labels = Vec::new();
                for i in 0..n - 1 {
                    labels.push(r.get::<_, Option<String>>(i)?.unwrap_or_default());
                }
                Ok((labels, r.get::<_, Option<f64>>(n - 1)?.unwrap_or(0.0)))
            })
            .map_err(db.err())?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db.err())
    };
    let lab = |keys: &[&str], vals: &[String]| {
        let parts: Vec<String> = keys
            .iter()
            .zip(vals)
            .map(|(k, v)| format!("{k}=\"{}\"", esc(v)))
            .collect();
        format!("{{{}}}", parts.join(","))
    };
    let dt = ["dataset", "tier"];
    let by = |sql: &str, keys: &[&str]| -> Result<Vec<(String, f64)>> {
        Ok(q(sql)?.into_iter().map(|(l, v)| (lab(keys, &l), v)).collect())
    };
    family(
        "mdkeep_dataset_bytes",
        "gauge",
        "Bytes of cataloged files per dataset and tier.",
        by("SELECT dataset, tier, sum(bytes) FROM files GROUP BY 1, 2", &dt)?,
    );
    family(
        "mdkeep_dataset_files",
        "gauge",
        "Cataloged files per dataset and tier.",
        by("SELECT dataset, tier, count(*) FROM files GROUP BY 1, 2", &dt)?,
    );
    family(
        "mdkeep_dataset_rows",
        "gauge",
        "Rows of cataloged files per dataset and tier.",
        by("SELECT dataset, tier, sum(rows) FROM files GROUP BY 1, 2", &dt)?,
    );
    let plan = crate::quota::plan(cfg, &db, None)?;
    let mut ratios = Vec::new();
    if let Some(h) = plan.hard_total {
        ratios.push((
            lab(&["limit"], &["hard_total".into()]),
            plan.usage.total as f64 / h as f64,
        ));
    }
    if let Some(sft) = plan.soft_total {
        ratios.push((
            lab(&["limit"], &["soft_total".into()]),
            plan.usage.total as f64 / sft as f64,
        ));
    }
    for (name, ds) in &cfg.datasets {
        let used = plan.usage.datasets.get(name).copied().unwrap_or(0) as f64;
        if let Some(h) = ds.hard_limit {
            ratios.push((lab(&["limit"], &[format!("{name}.hard_limit")]), used / h.0 as f64));
        }
    }
    family(
        "mdkeep_quota_usage_ratio",
        "gauge",
        "Usage over each configured limit.",
        ratios,
    );
    family(
        "mdkeep_usage_bytes",
        "gauge",
        "Disk usage counted by quota.",
        vec![(String::new(), plan.usage.total as f64)],
    );
    family(
        "mdkeep_root_free_bytes",
        "gauge",
        "Free space on each tier root's filesystem.",
        plan.roots
            .iter()
            .map(|r| (lab(&["tier"], std::slice::from_ref(&r.tier)), r.free as f64))
            .collect(),
    );
    let stores: Vec<(String, f64)> = cfg
        .store_tiers()
        .into_iter()
        .map(|t| {
            let up = crate::store::for_tier(cfg, &t).is_ok_and(|st| st.probe().is_ok());
            (lab(&["tier"], &[t]), if up { 1.0 } else { 0.0 })
        })
        .collect();
    family(
        "mdkeep_store_up",
        "gauge",
        "Whether each object-store tier answered a listing (1) or not (0).",
        stores,
    );
    family(
        "mdkeep_store_bytes",
        "gauge",
        "Bytes cataloged on each object-store tier (its free space is not measurable).",
        plan.usage
            .stores
            .iter()
            .map(|(t, b)| (lab(&["tier"], std::slice::from_ref(t)), *b as f64))
            .collect(),
    );
    family(
        "mdkeep_jobs",
        "gauge",
        "Jobs by state and framework.",
        by(
            "SELECT state, framework, count(*) FROM jobs GROUP BY 1, 2",
            &["state", "framework"],
        )?,
    );
    family(
        "mdkeep_job_last_peak_bytes",
        "gauge",
        "Peak memory of the last finished job of each framework.",
        by(
            "SELECT framework, peak_bytes FROM jobs j WHERE peak_bytes IS NOT NULL AND finished_at =
                 (SELECT max(finished_at) FROM jobs k WHERE k.framework = j.framework AND k.peak_bytes IS NOT NULL)",
            &["framework"],
        )?,
    );
    let in_use = crate::jobs::budget::jobs_reserved(&db)? + crate::jobs::budget::maintenance_reserved(&db)?;
    family(
        "mdkeep_budget_bytes",
        "gauge",
        "jobs.memory_budget.",
        vec![(String::new(), cfg.jobs.memory_budget.0 as f64)],
    );
    family(
        "mdkeep_budget_in_use_bytes",
        "gauge",
        "Memory reserved by running jobs and maintenance.",
        vec![(String::new(), in_use as f64)],
    );
    family(
        "mdkeep_task_last_success_timestamp_seconds",
        "gauge",
        "When each scheduled task last succeeded.",
        by(
            "SELECT task, last_success / 1e9 FROM schedules WHERE last_success IS NOT NULL",
            &["task"],
        )?,
    );
    family(
        "mdkeep_task_last_duration_seconds",
        "gauge",
        "How long each task's last run took.",
        by(
            "SELECT task, last_duration_ms / 1e3 FROM schedules WHERE last_duration_ms IS NOT NULL",
            &["task"],
        )?,
    );
    family(
        "mdkeep_task_failures",
        "gauge",
        "Consecutive failures of each task.",
        by("SELECT task, failures FROM schedules", &["task"])?,
    );
    family(
        "mdkeep_task_skipped_total",
        "counter",
        "Runs skipped (overlap, or missed past the deadline).",
        by("SELECT task, skipped FROM schedules", &["task"])?,
    );
    family(
        "mdkeep_bytes_processed_total",
        "counter",
        "Bytes compacted, tiered, rolled up, trimmed, deleted (retention) and evicted.",
        by(
            "SELECT action, sum(bytes) FROM history
             WHERE action IN ('compact', 'tier', 'rollup', 'trim', 'retention', 'evict') GROUP BY 1",
            &["action"],
        )?,
    );
    Ok(out)
}
