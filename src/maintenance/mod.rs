//! `maintain`: scan → compact → rollup → retention → tier → quota, under the data lock.
//!
//! Owns the order of the steps and that every step runs: a step that fails
//! is listed with its reason and the next one goes on. When a root is below
//! its free-space floor, the steps that free space (retention, tier, quota)
//! run before compaction. Each step is its own module. Rollup runs before
//! retention so expiring trades have their candles first.

use crate::progress::Progress;
use serde::Serialize;

use crate::catalog::scan::{scan, ScanReport};
use crate::compaction::{self, Metrics};
use crate::config::{Config, Task};
use crate::engine::deferred::{self, Deferred};
use crate::error::{Failure, Result};
use crate::lock::DataLock;
use crate::outcome::Outcome;
use crate::quota::{self, QuotaReport};
use crate::retention::{self, RetentionMetrics};
use crate::rollup::{self, RollupMetrics};
use crate::state::Db;
use crate::tiering::{self, TierMetrics};

#[derive(Debug, Default, Serialize)]
pub struct MaintainReport {
    pub dry_run: bool,
    /// The steps in the order they ran.
    pub order: Vec<Step>,
    /// A root was below `quota.min_free`: the steps that free space ran first.
    pub low_space: bool,
    pub scan: Option<ScanReport>,
    pub compact: Metrics,
    pub rollup: RollupMetrics,
    pub retention: RetentionMetrics,
    pub tier: TierMetrics,
    pub quota: QuotaReport,
    /// Every file, series or step that failed, with its step and reason.
    pub failures: Vec<Failure>,
    /// What is left deferred after the run (a rewrite whose inputs could not
    /// all be retired, a trash entry that could not be purged), with its
    /// step, file, reason and since when: retried every run.
    pub deferred: Vec<Deferred>,
}

impl MaintainReport {
    pub fn quota_unmet(&self) -> bool {
        self.quota.plan.unmet.is_some()
    }

    /// How it ended, the first that applies: an I/O failure (a full disk);
    /// the quota cannot be met; a store was unreachable; done, with failures
    /// (files quarantined or skipped, work deferred); done.
    pub fn outcome(&self) -> Outcome {
        match Outcome::of_run(&self.failures, self.deferred.len()) {
            io @ Outcome::Io(_) => io,
            _ if self.quota_unmet() => Outcome::QuotaUnmet(self.quota.plan.unmet.clone().unwrap_or_default()),
            _ if self.tier.store_failure().is_some() => {
                Outcome::StoreUnreachable(self.tier.store_failure().unwrap_or_default())
            }
            other => other,
        }
    }

    /// The documented exit code of [`outcome`](Self::outcome).
    pub fn exit_code(&self) -> i32 {
        self.outcome().code()
    }
}

/// One step of a maintain run; its JSON name is the command's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    Scan,
    Compact,
    Rollup,
    Retention,
    Tier,
    Quota,
}

impl Step {
    /// Its name: the task of the same name's.
    pub fn as_str(self) -> &'static str {
        Task::from(self).as_str()
    }
}

impl From<Step> for Task {
    fn from(s: Step) -> Task {
        match s {
            Step::Scan => Task::Scan,
            Step::Compact => Task::Compact,
            Step::Rollup => Task::Rollup,
            Step::Retention => Task::Retention,
            Step::Tier => Task::Tier,
            Step::Quota => Task::Quota,
        }
    }
}

const NORMAL_ORDER: [Step; 6] = [
    Step::Scan,
    Step::Compact,
    Step::Rollup,
    Step::Retention,
    Step::Tier,
    Step::Quota,
];
const LOW_SPACE_ORDER: [Step; 6] = [
    Step::Scan,
    Step::Rollup,
    Step::Retention,
    Step::Tier,
    Step::Quota,
    Step::Compact,
];

/// Whether any local root has less free space than `quota.min_free`.
fn below_floor(cfg: &Config) -> bool {
    let Some(min_free) = cfg.quota.min_free else {
        return false;
    };
    cfg.tier_roots()
        .into_iter()
        .filter(|(_, root)| !crate::store::is_remote(root))
        .filter_map(|(_, root)| crate::fsutil::root_space(cfg, &root))
        .any(|(free, size)| free < min_free.resolve(size))
}

/// Run every step. A dry run skips the scan (it writes the catalog) and
/// reports each later step's plan against the catalog as it is. The caller
/// holds the data lock (`_lock`) for the whole run.
pub fn maintain(
    cfg: &Config,
    db: &mut Db,
    _lock: Option<&DataLock>,
    dry_run: bool,
    progress: &dyn Progress,
) -> Result<MaintainReport> {
    let mut r = MaintainReport {
        dry_run,
        ..Default::default()
    };
    if dry_run {
        dry_run_into(cfg, db, &mut r)?;
        r.deferred = deferred::list(db)?;
        return Ok(r);
    }
    r.low_space = below_floor(cfg);
    let order = if r.low_space { LOW_SPACE_ORDER } else { NORMAL_ORDER };
    if r.low_space {
        tracing::warn!("a root is below quota.min_free: retention, tier and quota run before compaction");
    }
    for step in order {
        r.order.push(step);
        if let Err(e) = run_step(cfg, db, step, progress, &mut r) {
            tracing::error!(step = step.as_str(), error = %e, "step failed; the next steps still run");
            r.failures.push(Failure::new(step.as_str(), "", &e, "step failed"));
        }
    }
    // The reader grace of compaction's held inputs passed during the steps
    // after it (retention's and tier's recovery settle it sooner).
    crate::engine::release::settle(cfg, &db.conn)?;
    r.deferred = deferred::list(db)?;
    crate::lake::expire_logged(cfg);
    record_run(db, &r);
    Ok(r)
}

/// The run's end in the history (action `maintain`), whoever ran it, CLI
/// or daemon: the dashboard's header reads its last maintain from there.
fn record_run(db: &Db, r: &MaintainReport) {
    let summary = format!(
        "compacted {} partitions, {} failures",
        r.compact.totals.partitions_rewritten,
        r.failures.len()
    );
    let text = match r.outcome().task_result(summary) {
        Ok(s) => format!("ok: {s}"),
        Err(e) => format!("error: {e}"),
    };
    let ev = crate::catalog::HistoryEvent {
        action: crate::catalog::Action::Maintain,
        reason: Some(&text),
        ..Default::default()
    };
    if let Err(e) = crate::catalog::record(&db.conn, &ev) {
        tracing::warn!(error = %e, "cannot record the maintain run in the history");
    }
}

/// Recovery of interrupted rewrites, then a scan: what every scan a user
/// or the daemon asks for runs (a half-done rewrite's files are settled
/// before they are counted).
pub fn settled_scan(cfg: &Config, db: &mut Db, progress: &dyn Progress) -> Result<ScanReport> {
    let recovered = crate::engine::journal::recover(cfg, db)?;
    let mut report = scan(cfg, db, progress)?;
    report.recovered = recovered;
    Ok(report)
}

fn run_step(cfg: &Config, db: &mut Db, step: Step, progress: &dyn Progress, r: &mut MaintainReport) -> Result<()> {
    match step {
        Step::Scan => {
            let s = settled_scan(cfg, db, progress)?;
            r.failures.extend(
                s.corrupt
                    .iter()
                    .map(|c| Failure::quarantined("scan", c.path.clone(), &c.reason)),
            );
            r.failures.extend(
                s.skipped
                    .iter()
                    .map(|k| Failure::skipped("scan", k.path.clone(), &k.reason)),
            );
            r.scan = Some(s);
        }
        Step::Compact => {
            let plan = compaction::plan(cfg, db, &Default::default())?;
            r.compact = compaction::execute_unsettled(cfg, db, &plan, progress)?;
            r.failures.extend(r.compact.failures.iter().cloned());
        }
        Step::Rollup => {
            let plan = rollup::plan(cfg, db, None)?;
            r.rollup = rollup::execute(cfg, db, &plan, progress)?;
            r.failures.extend(r.rollup.failures.iter().cloned());
        }
        Step::Retention => {
            let plan = retention::plan(cfg, db, None)?;
            r.retention = retention::execute(cfg, db, &plan)?;
            r.failures.extend(r.retention.failures.iter().cloned());
        }
        Step::Tier => {
            let plan = tiering::plan(cfg, db, None)?;
            r.tier = tiering::execute(cfg, db, &plan, progress)?;
            r.failures.extend(
                r.tier
                    .failures
                    .iter()
                    .filter(|f| f.code != crate::exit::STORE_UNAVAILABLE)
                    .cloned(),
            );
        }
        Step::Quota => {
            let plan = quota::plan(cfg, db, None)?;
            r.quota = quota::execute(cfg, db, plan)?;
        }
    }
    Ok(())
}

fn dry_run_into(cfg: &Config, db: &Db, r: &mut MaintainReport) -> Result<()> {
    r.compact = compaction::dry_run_metrics(&compaction::plan(cfg, db, &Default::default())?);
    let up = rollup::plan(cfg, db, None)?;
    r.rollup.dry_run = true;
    r.rollup.partitions = up.items.len() as u64;
    r.rollup.trades = up.items.iter().map(|i| i.rows).sum();
    let rp = retention::plan(cfg, db, None)?;
    r.retention.dry_run = true;
    r.retention.partitions_dropped = rp.drops.len() as u64;
    r.retention.bytes_removed = rp.drops.iter().map(|d| d.bytes).sum();
    let tp = tiering::plan(cfg, db, None)?;
    r.tier.dry_run = true;
    r.tier.moves = tp.moves.len() as u64;
    r.tier.totals.bytes_in = tp.moves.iter().map(|m| m.bytes).sum();
    r.quota = QuotaReport {
        dry_run: true,
        plan: quota::plan(cfg, db, None)?,
        ..Default::default()
    };
    Ok(())
}
