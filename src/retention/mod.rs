//! `retention`: drop partitions older than a dataset's `keep`.
//!
//! Owns the cut: reference time = min(now, newest row of the dataset), so a
//! single future-dated row can never purge everything, and a stalled
//! collector does not age data it no longer refreshes. Whole partitions
//! that ended before the cut go; one that straddles it stays, unless the
//! dataset sets `trim = true`: then it is rewritten (journaled, like a
//! compaction) without its expired rows.
//! A drop is journaled: catalog rows leave in one transaction, then the
//! files (a pinned file goes to the trash). A dataset with a `rollup`
//! loses a partition only once [`crate::rollup::is_rolled_up`] says its
//! current rows have verified candles; until then the partition waits,
//! listed with why (`waiting_for_rollup`, or `rollup_failed` with the
//! rollup's attempts and last error, which is also a failure of the run).

use std::time::Instant;

use crate::progress::Silent;
use serde::Serialize;

use crate::catalog::{self, guarded_clock, rfc3339, Action};
use crate::config::{Config, DatasetConfig};
use crate::engine::journal::{self, NewEntry, RecoveryReport, State};
use crate::engine::rewrite::{rewrite_isolating, Rewrite};
use crate::engine::SeriesPlan;
use crate::error::Result;
use crate::failpoint;
use crate::state::{db_err, Db};

#[derive(Debug, Clone, Serialize)]
pub struct Expired {
    pub dataset: String,
    pub tier: String,
    pub partition: String,
    pub files: Vec<String>,
    pub rows: u64,
    pub bytes: u64,
    pub reason: String,
}

/// A partition that straddles the cut, rewritten without its expired rows
/// (datasets with `trim = true`).
#[derive(Debug, Clone, Serialize)]
pub struct Trim {
    /// The partition, as a drop would name it.
    #[serde(flatten)]
    pub target: Expired,
    #[serde(skip)]
    cut_ns: i64,
    #[serde(skip)]
    series: SeriesPlan,
}

/// An expired partition that stays because its rollup keeps failing.
#[derive(Debug, Clone, Serialize)]
pub struct RollupBlocked {
    #[serde(flatten)]
    pub target: Expired,
    #[serde(flatten)]
    pub failure: crate::rollup::RollupFailure,
}

#[derive(Debug, Default, Serialize)]
pub struct RetentionPlan {
    pub drops: Vec<Expired>,
    /// Straddling partitions to rewrite without their expired rows.
    pub trims: Vec<Trim>,
    /// Expired, but kept until their rollup is written and verified (their
    /// `reason` says so); the next rollup builds their candles.
    pub waiting_for_rollup: Vec<Expired>,
    /// Expired, but kept because their rollup failed on their current rows
    /// (each with how often and why): they stay until a person looks.
    pub rollup_failed: Vec<RollupBlocked>,
    /// Per dataset: the guarded clock and the cut (RFC 3339).
    pub reference_time: std::collections::BTreeMap<String, String>,
    pub cut: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Default, Serialize)]
pub struct RetentionMetrics {
    pub dry_run: bool,
    pub partitions_dropped: u64,
    pub partitions_trimmed: u64,
    pub rows_trimmed: u64,
    pub files_removed: u64,
    pub rows_removed: u64,
    pub bytes_removed: u64,
    pub pinned_to_trash: u64,
    /// Dropped partitions whose files could not all go yet (a store that is
    /// down, a file that cannot be deleted): deferred, retried every run.
    pub deferred: u64,
    /// Trims that could not run (each skipped; its rows stay for the next
    /// run), and expired partitions kept because their rollup failed, with
    /// their file, series or partition and reason.
    pub failures: Vec<crate::error::Failure>,
    pub seconds: f64,
    pub recovered: RecoveryReport,
}

pub fn plan(cfg: &Config, db: &Db, dataset: Option<&str>) -> Result<RetentionPlan> {
    let mut out = RetentionPlan::default();
    for (name, ds) in &cfg.datasets {
        let Some(keep) = ds.keep else { continue };
        if dataset.is_some_and(|d| d != name) {
            continue;
        }
        let files = catalog::files(db, Some(name))?;
        let Some(reference) = guarded_clock(&files) else {
            continue;
        };
        let cut = reference.saturating_sub(keep.0.as_nanos() as i64);
        out.reference_time.insert(name.clone(), rfc3339(reference));
        out.cut.insert(name.clone(), rfc3339(cut));
        let mut parts: std::collections::BTreeMap<(String, String), Vec<_>> = Default::default();
        for f in files {
            parts
                .entry((f.tier.clone(), f.file.partition.clone()))
                .or_default()
                .push(f);
        }
        for ((tier, partition), files) in parts {
            let Some((_, end)) = crate::layout::PartitionKey::of(ds, &partition).range(ds) else {
                continue;
            };
            // The rows must be old too: a misfiled row newer than the cut keeps the partition.
            let newest_row = files.iter().map(|f| f.file.max_ts).max().unwrap_or(end);
            let oldest_row = files.iter().map(|f| f.file.min_ts).min().unwrap_or(end);
            // Whole partitions go; one that straddles the cut is trimmed if the dataset asks.
            let whole = end <= cut && newest_row < cut;
            let trim = ds.trim && oldest_row < cut;
            if !(whole || trim) {
                continue;
            }
            let e = Expired {
                dataset: name.clone(),
                tier: tier.clone(),
                partition: partition.clone(),
                rows: files.iter().map(|f| f.file.rows).sum(),
                bytes: files.iter().map(|f| f.file.bytes).sum(),
                files: files.iter().map(|f| f.file.relpath.clone()).collect(),
                reason: if whole {
                    format!("ended before {} (keep = {keep})", rfc3339(cut))
                } else {
                    format!("straddles {} (keep = {keep}, trim = true)", rfc3339(cut))
                },
            };
            if waits_for_rollup(db, ds, &e.partition, e.rows)? {
                match crate::rollup::failure_of(db, name, &e.partition, e.rows)? {
                    Some(failure) => out.rollup_failed.push(RollupBlocked { target: e, failure }),
                    None => out.waiting_for_rollup.push(Expired {
                        reason: format!("{}; kept until its candles are verified (not rolled up yet)", e.reason),
                        ..e
                    }),
                }
            } else if whole {
                out.drops.push(e);
            } else {
                let inputs = files.into_iter().map(|f| f.file).collect();
                out.trims.push(Trim {
                    series: SeriesPlan::one_partition(ds, &tier, &partition, inputs, e.reason.clone()),
                    cut_ns: cut,
                    target: e,
                });
            }
        }
    }
    Ok(out)
}

/// Whether `partition` (holding `rows`) of `ds` must stay until its rows are
/// in verified candles; retention and quota both ask.
pub fn waits_for_rollup(db: &Db, ds: &DatasetConfig, partition: &str, rows: u64) -> Result<bool> {
    Ok(match &ds.rollup {
        Some(r) => !crate::rollup::is_rolled_up(db, r, &ds.name, partition, rows)?,
        None => false,
    })
}

pub fn execute(cfg: &Config, db: &mut Db, plan: &RetentionPlan) -> Result<RetentionMetrics> {
    let started = Instant::now();
    let mut m = RetentionMetrics {
        recovered: journal::recover(cfg, db)?,
        ..Default::default()
    };
    drop_partitions(cfg, db, &plan.drops, Action::Retention, &mut m)?;
    // Kept for good reason, but not silently: each is listed until its rollup succeeds.
    m.failures.extend(plan.rollup_failed.iter().map(|b| {
        let why = format!(
            "expired, kept: its rollup failed {} times since {}: {}",
            b.failure.attempts, b.failure.since, b.failure.last_error
        );
        crate::error::Failure::skipped(
            "retention",
            format!("{} {}", b.target.dataset, b.target.partition),
            &why,
        )
    }));
    let budget = cfg.compaction.memory_limit.0 as usize;
    for t in &plan.trims {
        let how = Rewrite::verified(Action::Trim, &t.target.tier, Some(t.cut_ns));
        // One trim that cannot run (a bad input goes to quarantine and the
        // trim is retried without it) never stops the others.
        let (done, failures) = rewrite_isolating(cfg, db, &t.series, &how, budget, &Silent, "retention");
        m.failures.extend(failures);
        let Some(r) = done else { continue };
        // The candles were built from every row; the trim must not make the
        // partition look un-rolled-up and have its remaining rows rolled up
        // again into partial candles.
        crate::rollup::shrink_source_rows(db, &t.target.dataset, &t.target.partition, t.target.rows, r.rows_out)?;
        m.partitions_trimmed += 1;
        m.rows_trimmed += r.rows_trimmed;
        m.rows_removed += r.rows_trimmed;
        m.bytes_removed += r.bytes_in.saturating_sub(r.bytes_out);
    }
    crate::engine::release::settle(cfg, &db.conn)?;
    m.seconds = started.elapsed().as_secs_f64();
    Ok(m)
}

/// Drop whole partitions through the journal: catalog rows leave in one
/// transaction, then the files (pinned ones to the trash). `action` names
/// the policy in the journal and the history (`retention`, `evict`).
pub fn drop_partitions(
    cfg: &Config,
    db: &mut Db,
    drops: &[Expired],
    action: Action,
    m: &mut RetentionMetrics,
) -> Result<()> {
    let dberr = db_err(&db.path);
    for d in drops {
        let inputs: Vec<(String, u64, u64)> = d.files.iter().map(|f| (f.clone(), 0, 0)).collect();
        let jid = journal::begin(
            cfg,
            &db.conn,
            &NewEntry {
                kind: action,
                dataset: &d.dataset,
                tier: &d.tier,
                out_tier: &d.tier,
                series: &d.partition,
                inputs: &inputs,
            },
        )?;
        let tx = db.conn.unchecked_transaction().map_err(&dberr)?;
        for f in &d.files {
            catalog::remove(&tx, &d.tier, f).map_err(&dberr)?;
        }
        crate::quality::findings::forget_if_gone(&tx, &d.dataset, &d.partition).map_err(&dberr)?;
        catalog::record(
            &tx,
            &catalog::HistoryEvent {
                action,
                dataset: Some(&d.dataset),
                partition: Some(&d.partition),
                rows: Some(d.rows),
                bytes: Some(d.bytes),
                reason: Some(&d.reason),
                ..Default::default()
            },
        )
        .map_err(&dberr)?;
        journal::set_state(&tx, jid, State::Committed).map_err(&dberr)?;
        tx.commit().map_err(&dberr)?;
        crate::lake::after_change(cfg, &db.conn);
        failpoint::hit(failpoint::RETENTION_AFTER_COMMIT);
        // Out of the catalog already: a file (or an object on a store that
        // is down) that cannot go now is deferred and retried every run.
        let (retired, left) = journal::finish(cfg, &db.conn, jid, &d.tier, &d.tier)?;
        m.pinned_to_trash += retired.trashed;
        if let Some(left) = left {
            m.deferred += 1;
            m.failures.push(left.failure("retention"));
        }
        m.partitions_dropped += 1;
        m.files_removed += d.files.len() as u64;
        m.rows_removed += d.rows;
        m.bytes_removed += d.bytes;
    }
    Ok(())
}
