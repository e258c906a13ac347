//! The rules: which conditions hold now, computed from the state database
//! (schedules, deferred work, jobs, quality findings), the quota plan, the
//! report's forecast, a listing of each object store, the lake check and
//! the daemon's health.
//!
//! Owns each rule's threshold test and its message: short, naming the
//! thing and the next step. A rule that cannot be evaluated (an error) is
//! left out of the scope, so its open alerts are neither resolved nor
//! repeated; a rule turned off is in scope with no conditions, so its open
//! alerts resolve.

use std::time::Duration;

use super::{state, Condition};
use crate::config::units::human_bytes;
use crate::config::Config;
use crate::error::Result;
use crate::jobs::queue::{self, Lifecycle};
use crate::state::Db;

pub const MAINTAIN: &str = "maintain_failures";
pub const REPEAT: &str = "repeat_failure_hours";
pub const QUOTA: &str = "quota_unmet";
pub const DISK: &str = "disk_full_days";
pub const STORE: &str = "store_unreachable";
pub const JOBS: &str = "jobs";
pub const QUALITY: &str = "quality_new_kind";
pub const DAEMON: &str = "daemon_unhealthy";
pub const LAKE: &str = "lake_check";

const HOUR_NS: i64 = 3_600_000_000_000;

/// What [`evaluate`] found.
#[derive(Debug, Default)]
pub struct Evaluation {
    pub conditions: Vec<Condition>,
    /// The rules evaluated (see the module's doc).
    pub scope: Vec<&'static str>,
    /// Marks to store once reconciled: (name, ns).
    pub marks: Vec<(&'static str, i64)>,
}

impl Evaluation {
    /// Run one rule when `on`; true when it was evaluated.
    fn rule(&mut self, name: &'static str, on: bool, f: impl FnOnce() -> Result<Vec<Condition>>) -> bool {
        if !on {
            self.scope.push(name);
            return false;
        }
        match f() {
            Ok(c) => {
                self.scope.push(name);
                self.conditions.extend(c);
                true
            }
            Err(e) => {
                tracing::warn!(rule = name, error = %e, "alert rule not evaluated");
                false
            }
        }
    }
}

/// The conditions that hold at `now`. `daemon`: the daemon's problems, when
/// the caller knows them.
pub fn evaluate(cfg: &Config, db: &Db, daemon: Option<&[String]>, now: i64) -> Result<Evaluation> {
    let r = &cfg.alerts.rules;
    let mut ev = Evaluation::default();
    ev.rule(MAINTAIN, r.maintain_failures > 0, || maintain(db, r.maintain_failures));
    ev.rule(REPEAT, r.repeat_failure_hours > 0, || {
        repeated(db, r.repeat_failure_hours, now)
    });
    ev.rule(QUOTA, r.quota_unmet, || quota(cfg, db));
    ev.rule(DISK, r.disk_full_days > 0.0, || disk(cfg, db, r.disk_full_days));
    ev.rule(STORE, r.store_unreachable, || stores(cfg, r.store_unreachable_minutes));
    // Jobs: each one that ended badly since the last look (a minute of
    // overlap; a job already alerted is not alerted again). The first look
    // reaches back an hour.
    let since = state::mark(db, JOBS)?.unwrap_or(now - HOUR_NS);
    if ev.rule(JOBS, r.jobs, || jobs(db, since)) {
        ev.marks.push((JOBS, now - 60_000_000_000));
    }
    // Quality: kinds present on the rule's first look are the baseline.
    let baseline = state::mark(db, QUALITY)?.is_none();
    if ev.rule(QUALITY, r.quality_new_kind, || quality(db, baseline)) {
        ev.marks.push((QUALITY, now));
    }
    if let Some(problems) = daemon {
        ev.rule(DAEMON, r.daemon_unhealthy, || Ok(unhealthy(problems)));
    }
    ev.rule(LAKE, r.lake_check, || lake(cfg, db));
    Ok(ev)
}

/// At most `n` characters of `s`, with an ellipsis when cut.
pub fn short(s: &str, n: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut out: String = s.chars().take(n).collect();
    out.push('…');
    out
}

/// `2026-03-01 02:15 UTC`, for messages.
pub fn when(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns)
        .format("%Y-%m-%d %H:%M UTC")
        .to_string()
}

fn maintain(db: &Db, n: u32) -> Result<Vec<Condition>> {
    let Some(t) = crate::scheduler::status_rows(db)?
        .into_iter()
        .find(|t| t.task == "maintain")
    else {
        return Ok(Vec::new());
    };
    if t.failures < i64::from(n) {
        return Ok(Vec::new());
    }
    let last = crate::scheduler::last_run(db, "maintain")?
        .map(|(_, _, result)| result)
        .unwrap_or_default();
    let reason = short(last.strip_prefix("error: ").unwrap_or(&last), 240);
    let since = t
        .last_success_ns
        .map(|ns| format!(" (last success {})", when(ns)))
        .unwrap_or_default();
    Ok(vec![Condition::new(
        "maintain".into(),
        MAINTAIN,
        "maintain".into(),
        format!(
            "maintain failed {} runs in a row{since} — {reason}. Next: `mdkeep schedule ls` and the daemon's log.",
            t.failures
        ),
    )])
}

/// Deferred work (a retire, a roll-back, a purge) failing on the same file
/// for `hours` or more.
fn repeated(db: &Db, hours: u64, now: i64) -> Result<Vec<Condition>> {
    let limit = (hours as i64).saturating_mul(HOUR_NS);
    let mut out = Vec::new();
    for d in crate::engine::deferred::list(db)? {
        let Ok(since) = crate::time::parse_time(&d.since) else {
            continue;
        };
        if now.saturating_sub(since) < limit {
            continue;
        }
        out.push(Condition::new(
            format!("repeat:{}:{}", d.kind, d.id),
            REPEAT,
            format!("{} {}", d.step, d.file),
            format!(
                "{} of {} has failed every run since {}: {}. Next: the dashboard lists it under Deferred; `mdkeep maintain` retries it.",
                d.step,
                d.file,
                when(since),
                short(&d.reason, 200)
            ),
        ));
    }
    Ok(out)
}

fn quota(cfg: &Config, db: &Db) -> Result<Vec<Condition>> {
    let plan = crate::quota::plan(cfg, db, None)?;
    Ok(plan
        .unmet
        .map(|why| {
            Condition::new(
                "quota".into(),
                QUOTA,
                "quota".into(),
                format!(
                    "the quota cannot be met: {}. Next: `mdkeep quota --dry-run`; raise the limits, shorten retention or add a tier.",
                    short(&why, 240)
                ),
            )
        })
        .into_iter()
        .collect())
}

/// Roots whose free space (above `quota.min_free`) runs out within `days`
/// at the report's growth rate, or already has.
fn disk(cfg: &Config, db: &Db, days: f64) -> Result<Vec<Condition>> {
    let r = crate::report::build_with(
        cfg,
        db,
        "30d".parse().expect("valid span"),
        crate::report::Reads::CachesOnly,
    )?;
    let mut out = Vec::new();
    for f in &r.forecast {
        let Some(tiers) = f.limit.strip_prefix("min_free ") else {
            continue;
        };
        let left = match (f.reached, f.days_until) {
            (true, _) => 0.0,
            (false, Some(d)) => d,
            (false, None) => continue,
        };
        if left >= days {
            continue;
        }
        let what = if f.reached {
            format!("free space on {tiers} is below quota.min_free")
        } else {
            format!(
                "free space on {tiers} runs out in {left:.1} days at {}/day (the report's growth)",
                human_bytes(f.growth_bytes_per_day.max(0.0) as u64)
            )
        };
        out.push(Condition::new(
            format!("disk:{tiers}"),
            DISK,
            format!("disk {tiers}"),
            format!("{what}. Next: `mdkeep report` shows the forecast; shorten retention, tier sooner or free space."),
        ));
    }
    Ok(out)
}

/// Object-store tiers that do not answer a listing; the alert fires once
/// one has not answered for `minutes`.
fn stores(cfg: &Config, minutes: u64) -> Result<Vec<Condition>> {
    let mut out = Vec::new();
    for tier in cfg.store_tiers() {
        let probe = crate::store::stores()
            .tier(&tier)
            .map_err(|e| e.to_string())
            .and_then(|st| st.probe());
        let Err(e) = probe else {
            continue;
        };
        let url = cfg.tiers[&tier].root.display().to_string();
        let mut c = Condition::new(
            format!("store:{tier}"),
            STORE,
            format!("tier {tier}"),
            format!(
                "object-store tier {tier} ({url}) is unreachable: {}. Next: check the network and the store; data due there waits in the warmer tiers.",
                short(&e, 200)
            ),
        );
        c.hold = Duration::from_secs(minutes.saturating_mul(60));
        out.push(c);
    }
    Ok(out)
}

/// One one-shot alert per job that ended failed, OOM-killed or timed out.
fn jobs(db: &Db, since: i64) -> Result<Vec<Condition>> {
    let mut out = Vec::new();
    for j in queue::ended_badly_since(db, since)? {
        let Lifecycle::Done {
            outcome,
            started_at,
            finished_at,
            ..
        } = j.life
        else {
            continue;
        };
        let what = match outcome {
            queue::Outcome::OomKilled => "was killed at its memory limit (OOM)".to_string(),
            queue::Outcome::TimedOut => "timed out".to_string(),
            _ => match j.exit_code {
                Some(c) => format!("failed (exit {c})"),
                None => "failed".to_string(),
            },
        };
        let ran = started_at
            .map(|s| format!(" after {}", super::human_age(finished_at.saturating_sub(s))))
            .unwrap_or_default();
        let peak = j.peak_bytes.map(human_bytes).unwrap_or_else(|| "unknown".into());
        let note = j
            .message
            .as_deref()
            .map(|m| format!(": {}", short(m, 160)))
            .unwrap_or_default();
        let mut c = Condition::new(
            format!("job:{}", j.id),
            JOBS,
            format!("job {} ({})", j.id, j.name),
            format!(
                "job {} `{}` ({}) {what}{ran}, peak {peak} of {} reserved{note}. Next: `mdkeep jobs show {}`; its log is at /jobs/{}/log.",
                j.id,
                j.name,
                j.framework,
                human_bytes(j.reserved_bytes),
                j.id,
                j.id
            ),
        );
        c.once = true;
        c.repeat = false;
        out.push(c);
    }
    Ok(out)
}

/// Each (dataset, kind) of finding: sent when it appears, "resolved" when
/// gone, never repeated.
fn quality(db: &Db, baseline: bool) -> Result<Vec<Condition>> {
    let mut out = Vec::new();
    for (dataset, kind, parts, rows) in crate::quality::findings::totals(db)? {
        let mut c = Condition::new(
            format!("quality:{dataset}:{kind}"),
            QUALITY,
            format!("{dataset} {kind}"),
            format!(
                "a new data-quality finding in {dataset}: {kind} ({parts} partitions, {rows} rows). Next: `mdkeep quality --dataset {dataset}`."
            ),
        );
        c.repeat = false;
        c.quiet = baseline;
        out.push(c);
    }
    Ok(out)
}

fn unhealthy(problems: &[String]) -> Vec<Condition> {
    if problems.is_empty() {
        return Vec::new();
    }
    vec![Condition::new(
        "daemon".into(),
        DAEMON,
        "daemon".into(),
        format!(
            "the daemon is unhealthy: {}. Next: restart it (systemctl restart mdkeep, or the container) and read its log.",
            short(&problems.join("; "), 240)
        ),
    )]
}

/// The lake, the catalog and the disk disagree (held 10 minutes, so a
/// rewrite in flight is not an alert).
fn lake(cfg: &Config, db: &Db) -> Result<Vec<Condition>> {
    if !cfg.lake.enabled || !cfg.lake_path().exists() {
        return Ok(Vec::new());
    }
    let r = crate::lake::check::check(cfg, db)?;
    let Some(first) = r.differences.first() else {
        return Ok(Vec::new());
    };
    let mut c = Condition::new(
        "lake".into(),
        LAKE,
        "lake".into(),
        format!(
            "lake check found {} differences, first: {} {} ({}). Next: `mdkeep lake check`, then `mdkeep lake rebuild`.",
            r.differences.len(),
            first.kind,
            first.path,
            short(&first.detail, 120)
        ),
    );
    c.hold = Duration::from_secs(600);
    Ok(vec![c])
}
