//! Deciding what to rewrite, from the catalog alone (no file is read).
//!
//! A partition is rewritten when it holds a file mdkeep has not compacted
//! (order and duplicates unknown), misfiled rows, two or more small files,
//! or files whose time ranges overlap. Because rows are routed by their own
//! time, a rewrite also takes in every partition of the same series that
//! the rewritten files' time ranges touch, so a key is deduplicated across
//! the partition boundary. The plan is a value: printing it is a dry run.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::catalog::{self, CatalogFile};
use crate::config::Config;
use crate::engine::{PartitionPlan, SeriesPlan};
use crate::error::Result;
use crate::state::Db;

#[derive(Debug, Default, Serialize)]
pub struct Plan {
    pub series: Vec<SeriesPlan>,
    pub partitions_skipped: u64,
    /// Files left alone because their schema differs from their dataset's.
    pub skipped_drift: Vec<String>,
}

impl Plan {
    pub fn partitions_rewritten(&self) -> u64 {
        self.series.iter().map(|s| s.partitions.len() as u64).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

/// Which series to consider.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub dataset: Option<String>,
    /// `col=value` pairs; a time-partition column limits which partitions seed a rewrite.
    pub values: Vec<(String, String)>,
}

/// (dataset, tier, series) → period → files.
type Groups = BTreeMap<(String, String, String), BTreeMap<String, Vec<CatalogFile>>>;

pub fn plan(cfg: &Config, db: &Db, filter: &Filter) -> Result<Plan> {
    if let Some(d) = &filter.dataset {
        cfg.dataset(d)?;
    }
    let mut out = Plan::default();
    let groups = group(cfg, db, filter, &mut out)?;
    for ((dataset, tier, series), parts) in groups {
        let ds = &cfg.datasets[&dataset];
        let target = cfg.tiers.get(&tier).map(|t| t.target_file_size.0).unwrap_or(128 << 20);
        let small = (target as f64 * cfg.compaction.small_file_fraction) as u64;
        let period_filter: Vec<&String> = filter
            .values
            .iter()
            .filter(|(k, _)| k == &ds.time_partition)
            .map(|(_, v)| v)
            .collect();
        let mut reasons: BTreeMap<String, Vec<String>> = parts
            .iter()
            .filter(|(period, _)| period_filter.is_empty() || period_filter.contains(period))
            .map(|(period, files)| (period.clone(), reasons_for(files, small)))
            .filter(|(_, r)| !r.is_empty())
            .collect();
        if reasons.is_empty() {
            out.partitions_skipped += parts.len() as u64;
            continue;
        }
        let chosen = with_neighbours(ds, &parts, &mut reasons);
        out.partitions_skipped += (parts.len() - chosen.len()) as u64;
        let mut sp = SeriesPlan {
            dataset: dataset.clone(),
            tier: tier.clone(),
            series,
            partitions: Vec::new(),
            inputs: Vec::new(),
        };
        for p in &chosen {
            let files = &parts[p];
            sp.partitions.push(PartitionPlan {
                partition: files[0].file.partition.clone(),
                files: files.len() as u64,
                rows: files.iter().map(|f| f.file.rows).sum(),
                bytes: files.iter().map(|f| f.file.bytes).sum(),
                reasons: reasons.remove(p).unwrap_or_default(),
            });
            sp.inputs.extend(files.iter().map(|f| f.file.clone()));
        }
        out.series.push(sp);
    }
    Ok(out)
}

/// The cataloged files the filter selects, by series and period; drifted
/// files are listed in `out` and left out.
fn group(cfg: &Config, db: &Db, filter: &Filter, out: &mut Plan) -> Result<Groups> {
    let mut groups = Groups::new();
    // A file of a rewrite not settled yet is never picked again (its rows
    // are in that rewrite's outputs, or still in its inputs).
    let unsettled = crate::engine::deferred::unsettled_paths(&db.conn).map_err(db.err())?;
    for row in catalog::files(db, filter.dataset.as_deref())? {
        let (dataset, tier) = (row.dataset.clone(), row.tier.clone());
        if unsettled.contains_key(&(tier.clone(), row.file.relpath.clone())) {
            continue;
        }
        let Some(ds) = cfg.datasets.get(&dataset) else { continue };
        // A store tier only receives files a move already compacted;
        // rewriting there would download and upload whole partitions.
        if cfg.tiers.get(&tier).is_some_and(|t| t.is_store()) {
            continue;
        }
        let key = crate::layout::PartitionKey::of(ds, &row.file.partition);
        let (series_vals, period) = (key.values, key.period.unwrap_or_default());
        let series_ok = filter
            .values
            .iter()
            .filter(|(k, _)| k != &ds.time_partition)
            .all(|(k, v)| series_vals.iter().any(|(a, b)| a == k && b == v));
        if !series_ok {
            continue;
        }
        if row.drift {
            out.skipped_drift.push(format!("{tier}:{}", row.file.relpath));
            continue;
        }
        groups
            .entry((dataset, tier, key.series))
            .or_default()
            .entry(period)
            .or_default()
            .push(row);
    }
    Ok(groups)
}

/// Why one partition's files need a rewrite (none: they do not).
fn reasons_for(files: &[CatalogFile], small: u64) -> Vec<String> {
    let mut r = Vec::new();
    let fresh = files.iter().filter(|f| !f.compacted).count();
    if fresh > 0 {
        r.push(format!(
            "{fresh} file(s) not yet compacted (order and duplicates unknown)"
        ));
    }
    if files.iter().any(|f| f.misfiled) {
        r.push("rows outside the partition's time range".into());
    }
    let n_small = files.iter().filter(|f| f.file.bytes < small).count();
    if files.len() > 1 && n_small >= 2 {
        r.push(format!(
            "{n_small} files smaller than {}",
            crate::config::units::human_bytes(small)
        ));
    }
    let mut ranges: Vec<(i64, i64)> = files.iter().map(|f| (f.file.min_ts, f.file.max_ts)).collect();
    ranges.sort();
    if ranges.windows(2).any(|w| w[0].1 > w[1].0) {
        r.push("overlapping time ranges".into());
    }
    r
}

/// The partitions with reasons, and the neighbours that the rewritten
/// files' rows belong to (each given its reason), until none is added.
fn with_neighbours(
    ds: &crate::config::DatasetConfig,
    parts: &BTreeMap<String, Vec<CatalogFile>>,
    reasons: &mut BTreeMap<String, Vec<String>>,
) -> BTreeSet<String> {
    let mut chosen: BTreeSet<String> = reasons.keys().cloned().collect();
    loop {
        let spans: Vec<(i64, i64)> = chosen
            .iter()
            .flat_map(|p| parts[p].iter().map(|f| (f.file.min_ts, f.file.max_ts)))
            .collect();
        let add: Vec<String> = parts
            .keys()
            .filter(|p| !chosen.contains(*p))
            .filter(|p| {
                ds.period_range(p)
                    .is_some_and(|(s, e)| spans.iter().any(|&(lo, hi)| lo < e && hi >= s))
            })
            .cloned()
            .collect();
        if add.is_empty() {
            return chosen;
        }
        for p in add {
            reasons
                .entry(p.clone())
                .or_default()
                .push("holds rows near a rewritten neighbour's (deduplicated across the boundary)".into());
            chosen.insert(p);
        }
    }
}
