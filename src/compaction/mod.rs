//! `compact`: rewrite small, unsorted, duplicated or misfiled files into
//! sorted, deduplicated zstd files of a target size, crash-safely.
//!
//! A planner: [`plan`] reads only the catalog and returns a printable plan
//! (the dry run); [`execute`] hands each series to the engine's journaled
//! rewrite ([`crate::engine::rewrite`]): record inputs → write outputs
//! (temp, fsync, rename, fsync folder) → verify row counts → swap catalog
//! rows in one transaction → retire inputs (pinned ones to the trash).
//! Memory is bounded by `compaction.memory_limit`, shared by the parallel
//! series workers.

pub mod plan;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

pub use crate::engine::SeriesPlan;
pub use plan::{plan, Filter, Plan};

use crate::config::Config;
use crate::engine::journal::{self, RecoveryReport};
use crate::engine::rewrite::{peak_rss, rewrite_isolating, Rewrite, RewriteTotals};
use crate::error::{Failure, Result};
use crate::progress::Progress;
use crate::state::Db;

#[derive(Debug, Default, Serialize)]
pub struct Metrics {
    pub dry_run: bool,
    pub series_rewritten: u64,
    pub partitions_skipped: u64,
    #[serde(flatten)]
    pub totals: RewriteTotals,
    pub seconds: f64,
    /// Peak resident memory of this process (VmHWM).
    pub peak_memory_bytes: u64,
    pub recovered: RecoveryReport,
    pub skipped_drift: Vec<String>,
    /// Files quarantined and series skipped; the rest of the run went on.
    pub failures: Vec<Failure>,
    /// This process's time on the lake and waiting out its reader grace.
    pub lake: crate::lake::cost::LakeCost,
}

/// Carry out a plan. Recovery of interrupted rewrites runs first; held
/// inputs' old names go after the reader grace, before it returns.
pub fn execute(cfg: &Config, db: &mut Db, plan: &Plan, progress: &dyn Progress) -> Result<Metrics> {
    let mut m = execute_unsettled(cfg, db, plan, progress)?;
    crate::engine::release::settle(cfg, &db.conn)?;
    m.lake = crate::lake::cost::so_far();
    Ok(m)
}

/// [`execute`], leaving the reader grace to the caller
/// ([`crate::engine::release::settle`]): `maintain` lets it pass during
/// the steps that follow.
pub fn execute_unsettled(cfg: &Config, db: &mut Db, plan: &Plan, progress: &dyn Progress) -> Result<Metrics> {
    let started = Instant::now();
    let mut m = Metrics {
        recovered: journal::recover(cfg, db)?,
        partitions_skipped: plan.partitions_skipped,
        skipped_drift: plan.skipped_drift.clone(),
        ..Default::default()
    };
    progress.set_length(plan.series.iter().flat_map(|s| &s.inputs).map(|f| f.rows).sum());
    let workers = match cfg.compaction.threads {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
        n => n,
    }
    .min(plan.series.len())
    .max(1);
    let budget = cfg.compaction.memory_limit.0 as usize / workers;
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Result<RewriteTotals>>> = Mutex::new(Vec::new());
    let failures: Mutex<Vec<Failure>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                let db = match Db::open(&cfg.state_db()) {
                    Ok(db) => db,
                    Err(e) => return results.lock().expect("lock").push(Err(e)),
                };
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(sp) = plan.series.get(i) else { break };
                    let (r, failed) =
                        rewrite_isolating(cfg, &db, sp, &Rewrite::compact(&sp.tier), budget, progress, "compact");
                    failures.lock().expect("lock").extend(failed);
                    if let Some(t) = r {
                        results.lock().expect("lock").push(Ok(t));
                    }
                }
            });
        }
    });
    for r in results.into_inner().expect("lock") {
        m.totals += r?;
        m.series_rewritten += 1;
    }
    m.failures = failures.into_inner().expect("lock");
    // Each rewrite synced only its own files: one full comparison per run
    // catches anything a failed sync left behind.
    crate::lake::after_change(cfg, &db.conn);
    progress.finish();
    m.seconds = started.elapsed().as_secs_f64();
    m.peak_memory_bytes = peak_rss();
    Ok(m)
}

/// The metrics a dry run reports: what would be read, nothing written.
pub fn dry_run_metrics(plan: &Plan) -> Metrics {
    let inputs = plan.series.iter().flat_map(|s| &s.inputs);
    Metrics {
        dry_run: true,
        series_rewritten: plan.series.len() as u64,
        partitions_skipped: plan.partitions_skipped,
        totals: RewriteTotals {
            partitions_rewritten: plan.partitions_rewritten(),
            files_in: inputs.clone().count() as u64,
            rows_in: inputs.clone().map(|f| f.rows).sum(),
            bytes_in: inputs.map(|f| f.bytes).sum(),
            ..Default::default()
        },
        skipped_drift: plan.skipped_drift.clone(),
        ..Default::default()
    }
}
