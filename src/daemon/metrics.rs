//! Prometheus' text format for `/metrics`.
//!
//! Owns the families and how each is computed. What grows with the data
//! (catalog totals, quota usage, free space, bytes processed) is
//! [`render_data`], which the daemon runs after each task and keeps as a
//! snapshot; a scrape adds [`render_live`] (jobs, budget, schedules: small
//! tables; one top-level listing per object-store tier, so `store_up` is
//! current) and the snapshot's age, so it costs the same whatever the size
//! of the data.

use std::fmt::Write;

use crate::config::Config;
use crate::error::Result;
use crate::state::Db;

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// `{k="v",…}` with Prometheus' escapes.
fn labels(keys: &[&str], vals: &[String]) -> String {
    let parts: Vec<String> = keys
        .iter()
        .zip(vals)
        .map(|(k, v)| format!("{k}=\"{}\"", esc(v)))
        .collect();
    format!("{{{}}}", parts.join(","))
}

fn write_family(out: &mut String, name: &str, kind: &str, help: &str, samples: Vec<(String, f64)>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, v) in samples {
        let _ = writeln!(out, "{name}{labels} {v}");
    }
}

/// The snapshot's age, as a family of its own.
pub fn render_age(age_seconds: Option<f64>) -> String {
    let mut out = String::new();
    write_family(
        &mut out,
        "mdkeep_metrics_snapshot_age_seconds",
        "gauge",
        "Age of the data families' snapshot (refreshed after each task); -1 before the first.",
        vec![(String::new(), age_seconds.unwrap_or(-1.0))],
    );
    out
}

/// The families whose cost grows with the data: catalog totals, quota
/// usage (a walk of every tier root), free space and bytes processed. The daemon renders them after each task, not per scrape.
pub fn render_data(cfg: &Config) -> Result<String> {
    let db = Db::open_existing(&cfg.state_db())?;
    let mut out = String::new();
    catalog_families(&db, &mut out)?;
    quota_families(cfg, &db, &mut out)?;
    write_family(
        &mut out,
        "mdkeep_bytes_processed_total",
        "counter",
        "Bytes compacted, tiered, rolled up, trimmed, deleted (retention) and evicted.",
        crate::catalog::bytes_processed(&db)?
            .into_iter()
            .map(|(action, b)| (labels(&["action"], &[action]), b as f64))
            .collect(),
    );
    Ok(out)
}

/// Per dataset and tier: bytes, files and rows; quality findings per kind.
fn catalog_families(db: &Db, out: &mut String) -> Result<()> {
    let mut family =
        |name: &str, kind: &str, help: &str, samples: Vec<(String, f64)>| write_family(out, name, kind, help, samples);
    let lab = labels;
    let totals = crate::catalog::totals(db)?;
    let per_tier = |f: &dyn Fn(&crate::catalog::Totals) -> u64| -> Vec<(String, f64)> {
        totals
            .iter()
            .map(|t| {
                (
                    lab(&["dataset", "tier"], &[t.dataset.clone(), t.tier.clone()]),
                    f(t) as f64,
                )
            })
            .collect()
    };
    family(
        "mdkeep_dataset_bytes",
        "gauge",
        "Bytes of cataloged files per dataset and tier.",
        per_tier(&|t| t.bytes),
    );
    family(
        "mdkeep_dataset_files",
        "gauge",
        "Cataloged files per dataset and tier.",
        per_tier(&|t| t.files),
    );
    family(
        "mdkeep_dataset_rows",
        "gauge",
        "Rows of cataloged files per dataset and tier.",
        per_tier(&|t| t.rows),
    );
    let quality = crate::quality::findings::totals(db)?;
    family(
        "mdkeep_quality_findings",
        "gauge",
        "Partitions with a data-quality finding, per dataset and kind (see `mdkeep quality`).",
        quality
            .iter()
            .map(|(d, k, parts, _)| (lab(&["dataset", "kind"], &[d.clone(), k.to_string()]), *parts as f64))
            .collect(),
    );
    family(
        "mdkeep_quality_rows",
        "gauge",
        "Rows named by data-quality findings, per dataset and kind.",
        quality
            .iter()
            .map(|(d, k, _, rows)| (lab(&["dataset", "kind"], &[d.clone(), k.to_string()]), *rows as f64))
            .collect(),
    );
    Ok(())
}

/// Usage against each limit, and free space per root and store.
fn quota_families(cfg: &Config, db: &Db, out: &mut String) -> Result<()> {
    let mut family =
        |name: &str, kind: &str, help: &str, samples: Vec<(String, f64)>| write_family(out, name, kind, help, samples);
    let lab = labels;
    let plan = crate::quota::plan(cfg, db, None)?;
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
    Ok(())
}

/// The families read at each scrape: whether each object store answers, and
/// small tables that change between tasks (jobs, the budget, schedules).
pub fn render_live(cfg: &Config) -> Result<String> {
    let db = Db::open_existing(&cfg.state_db())?;
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, f64)>| {
        write_family(&mut out, name, kind, help, samples)
    };
    let stores: Vec<(String, f64)> = cfg
        .store_tiers()
        .into_iter()
        .map(|t| {
            let up = crate::store::stores().tier(&t).is_ok_and(|st| st.probe().is_ok());
            (labels(&["tier"], &[t]), if up { 1.0 } else { 0.0 })
        })
        .collect();
    family(
        "mdkeep_store_up",
        "gauge",
        "Whether each object-store tier answered a listing (1) or not (0).",
        stores,
    );
    family(
        "mdkeep_jobs",
        "gauge",
        "Jobs by state and framework.",
        crate::jobs::queue::counts_by_state(&db)?
            .into_iter()
            .map(|(state, fw, n)| (labels(&["state", "framework"], &[state, fw]), n as f64))
            .collect(),
    );
    family(
        "mdkeep_job_last_peak_bytes",
        "gauge",
        "Peak memory of the last finished job of each framework.",
        crate::jobs::queue::last_peaks(&db)?
            .into_iter()
            .map(|(fw, peak)| (labels(&["framework"], &[fw]), peak as f64))
            .collect(),
    );
    let in_use = crate::jobs::budget::in_use(&db)?;
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
    task_families(&db, &mut out)?;
    alert_families(cfg, &db, &mut out)?;
    Ok(out)
}

/// Per alert target: consecutive failed deliveries (every configured
/// target, 0 until one fails); per rule: alerts firing.
fn alert_families(cfg: &Config, db: &Db, out: &mut String) -> Result<()> {
    let health = crate::alerts::state::targets(db)?;
    let failures = |name: &str| {
        health
            .iter()
            .find(|h| h.target == name)
            .map_or(0.0, |h| h.failures as f64)
    };
    write_family(
        out,
        "mdkeep_alert_target_failures",
        "gauge",
        "Consecutive failed deliveries to each alert target (0: the last one went through).",
        cfg.alerts
            .targets
            .iter()
            .map(|t| {
                let name = t.name();
                (labels(&["target"], std::slice::from_ref(&name)), failures(&name))
            })
            .collect(),
    );
    let mut firing: std::collections::BTreeMap<String, f64> = std::collections::BTreeMap::new();
    for a in crate::alerts::state::list(db, 0)? {
        if a.state == "firing" {
            *firing.entry(a.rule).or_default() += 1.0;
        }
    }
    write_family(
        out,
        "mdkeep_alerts_firing",
        "gauge",
        "Alerts firing now, per rule (see `mdkeep alerts ls`).",
        firing
            .into_iter()
            .map(|(rule, n)| (labels(&["rule"], &[rule]), n))
            .collect(),
    );
    Ok(())
}

/// Per scheduled task: last success, last duration, failures, skips.
fn task_families(db: &Db, out: &mut String) -> Result<()> {
    let mut family =
        |name: &str, kind: &str, help: &str, samples: Vec<(String, f64)>| write_family(out, name, kind, help, samples);
    let tasks = crate::scheduler::status_rows(db)?;
    let per_task = |f: &dyn Fn(&crate::scheduler::TaskStatus) -> Option<f64>| -> Vec<(String, f64)> {
        tasks
            .iter()
            .filter_map(|t| f(t).map(|v| (labels(&["task"], std::slice::from_ref(&t.task)), v)))
            .collect()
    };
    family(
        "mdkeep_task_last_success_timestamp_seconds",
        "gauge",
        "When each scheduled task last succeeded.",
        per_task(&|t| t.last_success_ns.map(|ns| ns as f64 / 1e9)),
    );
    family(
        "mdkeep_task_last_duration_seconds",
        "gauge",
        "How long each task's last run took.",
        per_task(&|t| t.last_duration_ms.map(|ms| ms as f64 / 1e3)),
    );
    family(
        "mdkeep_task_failures",
        "gauge",
        "Consecutive failures of each task.",
        per_task(&|t| Some(t.failures as f64)),
    );
    family(
        "mdkeep_task_skipped_total",
        "counter",
        "Runs skipped (overlap, or missed past the deadline).",
        per_task(&|t| Some(t.skipped as f64)),
    );
    Ok(())
}
