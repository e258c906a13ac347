//! `tier`: move old partitions to colder tiers with heavier compression.
//!
//! Owns deciding which partition goes where (from the catalog, against a
//! guarded clock: min(now, newest row of the dataset), so a future-dated
//! row cannot age everything at once) and carrying the moves out. A move is
//! a journaled rewrite into the colder root at its zstd level and file size,
//! verified by row count and a checksum of the key columns re-read from the
//! written files, swapped in the catalog in one transaction; only then is
//! the source removed (a pinned source goes to the trash). Partitions that
//! still need compaction are left for `compact`.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::progress::Progress;
use serde::Serialize;

use crate::catalog::{files as catalog_files, Action, CatalogFile};
use crate::config::Config;
use crate::engine::journal::{self, RecoveryReport};
use crate::engine::rewrite::{peak_rss, rewrite_isolating, Rewrite, RewriteTotals};
use crate::engine::{PlanFile, SeriesPlan};
use crate::error::Result;
use crate::state::{now_ns, Db};
use crate::time::rfc3339;

#[derive(Debug, Clone, Serialize)]
pub struct Move {
    pub dataset: String,
    pub partition: String,
    pub from: String,
    pub to: String,
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
    pub reason: String,
    /// The destination already holds files of this partition: after the
    /// move, they are merged with the moved ones, so no key counts twice.
    pub merge_after: bool,
    #[serde(skip)]
    series: SeriesPlan,
}

#[derive(Debug, Clone, Serialize)]
pub struct Blocked {
    pub dataset: String,
    pub tier: String,
    pub partition: String,
    pub reason: String,
}

#[derive(Debug, Default, Serialize)]
pub struct TierPlan {
    pub moves: Vec<Move>,
    /// Old enough to move, but not movable yet.
    pub blocked: Vec<Blocked>,
    /// The guarded clock per dataset (RFC 3339).
    pub reference_time: BTreeMap<String, String>,
}

#[derive(Debug, Default, Serialize)]
pub struct TierMetrics {
    pub dry_run: bool,
    pub moves: u64,
    #[serde(flatten)]
    pub totals: RewriteTotals,
    pub seconds: f64,
    pub peak_memory_bytes: u64,
    pub recovered: RecoveryReport,
    pub blocked: Vec<Blocked>,
    /// Moves that failed because a store could not be reached (after
    /// retries); their partitions stay where they were.
    pub failed: Vec<Failed>,
    /// Every move that failed or file quarantined, with its reason.
    pub failures: Vec<crate::error::Failure>,
}

impl TierMetrics {
    /// How the moves ended: a store that could not be reached first (what
    /// could move moved), else as the failures say.
    pub fn outcome(&self) -> crate::outcome::Outcome {
        match self.store_failure() {
            Some(why) => crate::outcome::Outcome::StoreUnreachable(format!("moved {}; {why}", self.moves)),
            None => crate::outcome::Outcome::of_failures(&self.failures),
        }
    }

    /// What did not move because a store was unreachable, in one line.
    pub fn store_failure(&self) -> Option<String> {
        let first = self.failed.first()?;
        Some(format!(
            "{} partition moves to {} failed, the partitions stay where they were: {}",
            self.failed.len(),
            first.to,
            first.error
        ))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Failed {
    pub dataset: String,
    pub partition: String,
    pub to: String,
    pub error: String,
}

pub fn plan(cfg: &Config, db: &Db, dataset: Option<&str>) -> Result<TierPlan> {
    plan_scaled(cfg, db, dataset, 1.0)
}

/// The plan with every `tier_after` threshold multiplied by `scale`: a
/// quota above its soft limit tiers early with a scale below 1.
pub fn plan_scaled(cfg: &Config, db: &Db, dataset: Option<&str>, scale: f64) -> Result<TierPlan> {
    let mut out = TierPlan::default();
    let now = now_ns();
    for (name, ds) in &cfg.datasets {
        if dataset.is_some_and(|d| d != name) || ds.tier_after.is_empty() {
            continue;
        }
        let Some(newest) = crate::catalog::newest_row(db, name)? else {
            continue;
        };
        let reference = now.min(newest);
        out.reference_time.insert(name.clone(), rfc3339(reference));
        let mut parts: BTreeMap<(String, String), Vec<CatalogFile>> = BTreeMap::new();
        for f in catalog_files(db, Some(name))? {
            parts
                .entry((f.tier.clone(), f.file.partition.clone()))
                .or_default()
                .push(f);
        }
        let held: std::collections::BTreeSet<(String, String)> = parts.keys().cloned().collect();
        for ((tier, partition), files) in parts {
            let Some((_, end)) = crate::layout::PartitionKey::of(ds, &partition).range(ds) else {
                continue;
            };
            let age = reference.saturating_sub(end).max(0);
            let Some((target, after)) = destination(cfg, ds, &tier, age, scale) else {
                // Staying: files that two moves left overlapping are merged in place.
                out.moves.extend(overlap_merge(cfg, ds, &tier, &partition, files));
                continue;
            };
            let block = |reason: &str| Blocked {
                dataset: name.clone(),
                tier: tier.clone(),
                partition: partition.clone(),
                reason: reason.into(),
            };
            if files.iter().any(|f| f.drift) {
                out.blocked.push(block("a file's schema differs from the dataset's"));
                continue;
            }
            if files.iter().any(|f| f.misfiled || !f.compacted) {
                out.blocked.push(block("not compacted yet: run `mdkeep compact` first"));
                continue;
            }
            let early = if scale < 1.0 {
                format!(" × {scale}, early: above a soft quota")
            } else {
                String::new()
            };
            let reason = format!(
                "ended {:.1} days ago (≥ {after}{early}) → {target}",
                age as f64 / 86_400e9
            );
            let mut mv = Move::of(ds, &tier, target, &partition, files, reason);
            mv.merge_after = held.contains(&(target.to_string(), partition.clone()));
            out.moves.push(mv);
        }
    }
    Ok(out)
}

/// The coldest tier whose threshold (× `scale`) a partition `age` ns old
/// has passed, if it is colder than `tier`, with that threshold.
fn destination<'a>(
    cfg: &Config,
    ds: &'a crate::config::DatasetConfig,
    tier: &str,
    age: i64,
    scale: f64,
) -> Option<(&'a str, &'a crate::config::Span)> {
    let threshold = |a: &crate::config::Span| (a.0.as_nanos() as f64 * scale) as u128;
    let (target, after) = ds.tier_after.iter().rev().find(|(_, a)| age as u128 >= threshold(a))?;
    let (from_i, to_i) = (cfg.tiers.get_index_of(tier)?, cfg.tiers.get_index_of(target)?);
    (to_i > from_i).then_some((target.as_str(), after))
}

/// A merge in place of a colder tier's partition whose files overlap in
/// time: two moves into it (data that arrived again after it moved) would
/// otherwise count a key twice. Hot partitions are compaction's.
fn overlap_merge(
    cfg: &Config,
    ds: &crate::config::DatasetConfig,
    tier: &str,
    partition: &str,
    files: Vec<CatalogFile>,
) -> Option<Move> {
    if cfg.tiers.get_index_of(tier).unwrap_or(0) == 0 || files.len() < 2 {
        return None;
    }
    if files.iter().any(|f| f.drift || f.misfiled) || !overlapping(&files) {
        return None;
    }
    let reason = "its files overlap in time (data that arrived after a move): merged in place".to_string();
    Some(Move::of(ds, tier, tier, partition, files, reason))
}

/// Whether any two files' time ranges overlap (one rewrite's outputs never do).
fn overlapping(files: &[CatalogFile]) -> bool {
    let mut ranges: Vec<(i64, i64)> = files.iter().map(|f| (f.file.min_ts, f.file.max_ts)).collect();
    ranges.sort_unstable();
    ranges.windows(2).any(|w| w[1].0 < w[0].1)
}

impl Move {
    fn of(
        ds: &crate::config::DatasetConfig,
        from: &str,
        to: &str,
        partition: &str,
        files: Vec<CatalogFile>,
        reason: String,
    ) -> Move {
        let inputs: Vec<PlanFile> = files.into_iter().map(|f| f.file).collect();
        let series = SeriesPlan::one_partition(ds, from, partition, inputs, reason.clone());
        let p = &series.partitions[0];
        Move {
            dataset: ds.name.clone(),
            partition: partition.to_string(),
            from: from.to_string(),
            to: to.to_string(),
            files: p.files,
            rows: p.rows,
            bytes: p.bytes,
            reason,
            merge_after: false,
            series,
        }
    }
}

/// After a move into a partition the destination already held: merge all
/// of its files there in place (a journaled, verified rewrite like the
/// move), so a key that arrived again is kept once. A crash in between
/// leaves overlapping files, which the next plan merges.
fn merge_destination(
    cfg: &Config,
    db: &mut Db,
    mv: &Move,
    budget: usize,
    progress: &dyn Progress,
    m: &mut TierMetrics,
) -> Result<()> {
    let ds = cfg.dataset(&mv.dataset)?;
    let files = crate::catalog::partition_files(db, &mv.dataset, &mv.to, &mv.partition)?;
    if files.len() < 2 {
        return Ok(());
    }
    let reason = "merged with what the destination already held".to_string();
    let merge = Move::of(ds, &mv.to, &mv.to, &mv.partition, files, reason);
    let how = Rewrite::verified(Action::Tier, &mv.to, None);
    let (merged, failures) = rewrite_isolating(cfg, db, &merge.series, &how, budget, progress, "tier");
    m.failures.extend(failures);
    if let Some(s) = merged {
        m.totals += s;
    }
    Ok(())
}

/// Carry out the moves, one partition at a time (each is its own atomic rewrite).
pub fn execute(cfg: &Config, db: &mut Db, plan: &TierPlan, progress: &dyn Progress) -> Result<TierMetrics> {
    let started = Instant::now();
    let mut m = TierMetrics {
        recovered: journal::recover(cfg, db)?,
        blocked: plan.blocked.clone(),
        ..Default::default()
    };
    progress.set_length(plan.moves.iter().map(|mv| mv.rows).sum());
    let budget = cfg.compaction.memory_limit.0 as usize;
    let mut down: BTreeMap<String, String> = BTreeMap::new();
    for mv in &plan.moves {
        let fail = |error: String| Failed {
            dataset: mv.dataset.clone(),
            partition: mv.partition.clone(),
            to: mv.to.clone(),
            error,
        };
        // One unreachable store costs one retry window, not one per partition.
        if let Some(e) = down.get(&mv.to) {
            m.failed.push(fail(e.clone()));
            continue;
        }
        let how = Rewrite::verified(Action::Tier, &mv.to, None);
        let (moved, failures) = rewrite_isolating(cfg, db, &mv.series, &how, budget, progress, "tier");
        if let Some(f) = failures.iter().find(|f| f.code == 69) {
            tracing::error!(dataset = %mv.dataset, partition = %mv.partition, to = %mv.to, error = %f.reason, "tier move failed; the partition stays where it was");
            down.insert(mv.to.clone(), f.reason.clone());
            m.failed.push(fail(f.reason.clone()));
        }
        m.failures.extend(failures);
        if let Some(s) = moved {
            m.moves += 1;
            m.totals += s;
            if mv.merge_after {
                merge_destination(cfg, db, mv, budget, progress, &mut m)?;
            }
        }
    }
    crate::engine::release::settle(cfg, &db.conn)?;
    progress.finish();
    m.seconds = started.elapsed().as_secs_f64();
    m.peak_memory_bytes = peak_rss();
    Ok(m)
}
