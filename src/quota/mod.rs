//! `quota`: keep disk use within limits.
//!
//! Owns measuring usage (every byte mdkeep keeps: data roots, state, tmp,
//! trash, quarantine, job folders; real file sizes, not catalog sums), free
//! space on each root's filesystem, and choosing evictions: whole
//! partitions, lowest dataset `priority` first, then oldest; never a
//! `keep_forever` dataset nor a partition holding a pinned file. A
//! filesystem short of `min_free` loses only its own partitions, at most
//! `max_evict_per_run` a run, and never one whose rows are not yet in
//! verified candles (free space others took is no reason to lose trades). Evictions go
//! through the same journaled drop as retention; finished jobs' exports past
//! `jobs.keep_exports` are deleted too. When the limit still cannot be met
//! the report says so and the command fails; it is never silent.

use std::collections::BTreeMap;

use crate::progress::Silent;
use serde::Serialize;

use crate::catalog::files as catalog_files;
use crate::config::units::human_bytes;
use crate::config::Config;
use crate::engine::journal::{self, dir_bytes};
use crate::engine::PlanFile;
use crate::error::Result;
use crate::retention::{drop_partitions, Expired, RetentionMetrics};
use crate::state::Db;
use crate::tiering::{self, TierMetrics, TierPlan};

#[derive(Debug, Default, Clone, Serialize)]
pub struct Usage {
    /// Local tier roots, on disk.
    pub tiers: BTreeMap<String, u64>,
    /// Store tiers, from the catalog (not in `total`, which is local disk).
    pub stores: BTreeMap<String, u64>,
    /// Per dataset, over every tier root.
    pub datasets: BTreeMap<String, u64>,
    pub state: u64,
    pub tmp: u64,
    pub trash: u64,
    pub quarantine: u64,
    /// Job folders (exports, logs, results).
    pub jobs: u64,
    pub total: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RootFree {
    pub tier: String,
    pub free: u64,
    pub size: u64,
    pub min_free: u64,
    /// The filesystem (device number); tiers sharing one share its free space.
    pub filesystem: u64,
}

/// A limit that is exceeded: `what` is `total` or `dataset <name>`.
#[derive(Debug, Clone, Serialize)]
pub struct Exceeded {
    pub what: String,
    pub usage: u64,
    pub limit: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct QuotaPlan {
    pub usage: Usage,
    pub soft_total: Option<u64>,
    pub hard_total: Option<u64>,
    pub soft_exceeded: bool,
    /// Every soft limit (total or per dataset) that usage is above.
    pub soft: Vec<Exceeded>,
    /// Every hard limit (total or per dataset) that usage is above.
    pub hard: Vec<Exceeded>,
    pub roots: Vec<RootFree>,
    /// Bytes that must go to meet the hard total and min_free.
    pub to_free: u64,
    /// Above a soft limit: the moves of tiering early (thresholds ×
    /// `quota.early_tier_factor`).
    pub early_tier: Option<TierPlan>,
    pub evictions: Vec<Expired>,
    /// Finished jobs' exported data past `jobs.keep_exports`.
    pub expired_exports: Vec<crate::jobs::ExpiredExport>,
    /// Why the limits cannot be met, when they cannot.
    pub unmet: Option<String>,
    #[serde(skip)]
    dataset: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct QuotaReport {
    pub dry_run: bool,
    #[serde(flatten)]
    pub plan: QuotaPlan,
    pub tiered_early: Option<TierMetrics>,
    pub evicted: RetentionMetrics,
    pub usage_after: Option<Usage>,
}

pub fn usage(cfg: &Config) -> Usage {
    let mut u = Usage::default();
    for (tier, root) in cfg.tier_roots() {
        u.tiers.insert(tier, dir_bytes(&root));
        for (name, ds) in &cfg.datasets {
            *u.datasets.entry(name.clone()).or_default() += dir_bytes(&root.join(&ds.path));
        }
    }
    u.state = cfg.state_db().parent().map(dir_bytes).unwrap_or(0);
    u.tmp = dir_bytes(&cfg.tmp_dir());
    u.trash = dir_bytes(&cfg.trash_dir());
    u.quarantine = dir_bytes(&cfg.quarantine_dir());
    u.jobs = dir_bytes(&cfg.jobs_dir());
    u.total = u.tiers.values().sum::<u64>() + u.state + u.tmp + u.trash + u.quarantine + u.jobs;
    u
}

/// Local usage, plus the store tiers' bytes from the catalog (their free
/// space is not measurable; their bytes also count towards datasets).
pub fn usage_with_stores(cfg: &Config, db: &Db) -> Result<Usage> {
    let mut u = usage(cfg);
    let stores = cfg.store_tiers();
    for tier in &stores {
        u.stores.entry(tier.clone()).or_default();
    }
    for t in crate::catalog::totals(db)?
        .into_iter()
        .filter(|t| stores.contains(&t.tier))
    {
        *u.stores.entry(t.tier).or_default() += t.bytes;
        *u.datasets.entry(t.dataset).or_default() += t.bytes;
    }
    Ok(u)
}

fn is_store(cfg: &Config, tier: &str) -> bool {
    cfg.tiers.get(tier).is_some_and(|t| t.is_store())
}

use crate::fsutil::{root_device, root_space};

pub fn plan(cfg: &Config, db: &Db, dataset: Option<&str>) -> Result<QuotaPlan> {
    let mut p = limits_and_evictions(cfg, db, dataset)?;
    if p.soft_exceeded {
        // Early moves are for the datasets over a soft limit, or all when the total is.
        let total_over = p.soft.iter().any(|e| e.what == "total");
        let mut early = TierPlan::default();
        for name in cfg.datasets.keys() {
            let wanted = total_over || p.soft.iter().any(|e| e.what == format!("dataset {name}"));
            if wanted && dataset.is_none_or(|d| d == name) {
                let t = tiering::plan_scaled(cfg, db, Some(name), cfg.quota.early_tier_factor)?;
                early.moves.extend(t.moves);
                early.blocked.extend(t.blocked);
                early.reference_time.extend(t.reference_time);
            }
        }
        p.early_tier = Some(early);
    }
    Ok(p)
}

/// Usage against every limit, and the evictions the hard ones need.
fn limits_and_evictions(cfg: &Config, db: &Db, dataset: Option<&str>) -> Result<QuotaPlan> {
    let mut p = limits(cfg, db, dataset)?;
    p.expired_exports = crate::jobs::expired_exports(cfg, db)?;
    let short = shortages(&p);
    p.to_free = p.to_free.max(short.iter().map(|s| s.bytes).sum());
    if p.to_free == 0 && p.hard.is_empty() {
        return Ok(p);
    }
    let (mut candidates, unrolled) = eviction_candidates(cfg, db, dataset)?;
    let mut unmet = Vec::new();
    hard_evictions(cfg, &mut p, &mut candidates, dataset, &mut unmet);
    free_space_evictions(cfg, &mut p, &mut candidates, &unrolled, short, &mut unmet);
    if !unmet.is_empty() {
        p.unmet = Some(unmet.join("; "));
    }
    Ok(p)
}

/// Usage against every limit and every filesystem's floor; no eviction chosen yet.
fn limits(cfg: &Config, db: &Db, dataset: Option<&str>) -> Result<QuotaPlan> {
    let q = &cfg.quota;
    let mut p = QuotaPlan {
        usage: usage_with_stores(cfg, db)?,
        soft_total: q.soft_total.map(|b| b.0),
        hard_total: q.hard_total.map(|b| b.0),
        dataset: dataset.map(str::to_string),
        ..Default::default()
    };
    let over = |what: String, usage: u64, limit: Option<u64>| {
        limit
            .filter(|l| usage > *l)
            .map(|limit| Exceeded { what, usage, limit })
    };
    p.soft.extend(over("total".into(), p.usage.total, p.soft_total));
    p.hard.extend(over("total".into(), p.usage.total, p.hard_total));
    for (name, ds) in &cfg.datasets {
        let used = p.usage.datasets.get(name).copied().unwrap_or(0);
        p.soft
            .extend(over(format!("dataset {name}"), used, ds.soft_limit.map(|b| b.0)));
        p.hard
            .extend(over(format!("dataset {name}"), used, ds.hard_limit.map(|b| b.0)));
    }
    for (name, t) in &cfg.tiers {
        let used = p.usage.stores.get(name).copied().unwrap_or(0);
        p.hard
            .extend(over(format!("tier {name}"), used, t.max_bytes.map(|b| b.0)));
    }
    p.soft_exceeded = !p.soft.is_empty();
    if let Some(h) = p.hard_total {
        p.to_free = p.usage.total.saturating_sub(h);
    }
    if let Some(min_free) = q.min_free {
        for (tier, root) in cfg.tier_roots() {
            let (Some((free, size)), Some(filesystem)) = (root_space(cfg, &root), root_device(cfg, &root)) else {
                continue;
            };
            p.roots.push(RootFree {
                tier,
                free,
                size,
                min_free: min_free.resolve(size),
                filesystem,
            });
        }
    }
    Ok(p)
}

/// Evictions for the hard limits: each dataset's, each store tier's, then
/// the total, in candidate order; what cannot be met goes to `unmet`.
fn hard_evictions(
    cfg: &Config,
    p: &mut QuotaPlan,
    candidates: &mut Vec<Expired>,
    dataset: Option<&str>,
    unmet: &mut Vec<String>,
) {
    // Evict what `pick` selects, in candidate order, until `over` bytes of
    // it are gone (counting earlier evictions); say so when that falls short.
    let mut evict = |what: String, over: u64, pick: &dyn Fn(&Expired) -> bool, stays: &str| {
        let already: u64 = p.evictions.iter().filter(|e| pick(e)).map(|e| e.bytes).sum();
        let freed = already
            + take_within(
                candidates,
                &mut p.evictions,
                over.saturating_sub(already),
                u64::MAX,
                pick,
            );
        if freed < over {
            unmet.push(format!(
                "{what}{} must be freed but only {} can be evicted ({stays} stay)",
                human_bytes(over),
                human_bytes(freed)
            ));
        }
    };
    // Per-dataset hard limits first: only that dataset's partitions, oldest first.
    for (name, ds) in &cfg.datasets {
        let Some(limit) = ds.hard_limit.map(|b| b.0) else {
            continue;
        };
        if dataset.is_some_and(|d| d != name) {
            continue;
        }
        let used = p.usage.datasets.get(name).copied().unwrap_or(0);
        evict(
            format!("dataset {name}: "),
            used.saturating_sub(limit),
            &|e| &e.dataset == name,
            "pinned files",
        );
    }
    // A store tier's cap: only its own partitions.
    for (name, t) in cfg.tiers.iter().filter(|(_, t)| t.is_store()) {
        let Some(limit) = t.max_bytes.map(|b| b.0) else {
            continue;
        };
        let used = p.usage.stores.get(name).copied().unwrap_or(0);
        evict(
            format!("tier {name}: "),
            used.saturating_sub(limit),
            &|e| &e.tier == name,
            "pinned files",
        );
    }
    // Then the total, in the declared order over every dataset; only local
    // partitions free local disk.
    let hard_over = p.hard_total.map_or(0, |h| p.usage.total.saturating_sub(h));
    evict(
        String::new(),
        hard_over,
        &|e| !is_store(cfg, &e.tier),
        "keep_forever datasets and pinned files",
    );
}

/// Evictions for free space: a short filesystem loses only its own
/// partitions (never unverified rollups), and at most `max_evict_per_run`.
fn free_space_evictions(
    cfg: &Config,
    p: &mut QuotaPlan,
    candidates: &mut Vec<Expired>,
    unrolled: &Unrolled,
    short: Vec<Short>,
    unmet: &mut Vec<String>,
) {
    let q = &cfg.quota;
    for sh in short {
        let mine: u64 = sh
            .tiers
            .iter()
            .map(|t| p.usage.tiers.get(t).copied().unwrap_or(0))
            .sum();
        let cap = q.max_evict_per_run.resolve(mine);
        let on_fs = |e: &Expired| {
            sh.tiers.contains(&e.tier) && !unrolled.contains(&(e.dataset.clone(), e.tier.clone(), e.partition.clone()))
        };
        let already: u64 = p.evictions.iter().filter(|e| on_fs(e)).map(|e| e.bytes).sum();
        let freed = already
            + take_within(
                candidates,
                &mut p.evictions,
                sh.bytes.saturating_sub(already),
                cap.saturating_sub(already),
                on_fs,
            );
        if freed < sh.bytes {
            unmet.push(format!(
                "the filesystem of {} is {} short of min_free; {} can go this run (quota.max_evict_per_run {}, keep_forever datasets, pinned files and unverified rollups stay)",
                sh.tiers.join(", "),
                human_bytes(sh.bytes),
                human_bytes(freed),
                human_bytes(cap)
            ));
        }
    }
}

/// (dataset, tier, partition) of partitions whose rollup is not verified.
type Unrolled = std::collections::HashSet<(String, String, String)>;

/// A filesystem short of `min_free`: its tiers and the bytes missing.
struct Short {
    tiers: Vec<String>,
    bytes: u64,
}

/// Every filesystem whose free space is below its `min_free`, once each.
fn shortages(p: &QuotaPlan) -> Vec<Short> {
    let mut by_fs: BTreeMap<u64, Short> = BTreeMap::new();
    for r in &p.roots {
        let s = by_fs.entry(r.filesystem).or_insert(Short {
            tiers: Vec::new(),
            bytes: r.min_free.saturating_sub(r.free),
        });
        s.tiers.push(r.tier.clone());
    }
    by_fs.into_values().filter(|s| s.bytes > 0).collect()
}

/// Whole partitions that may be evicted, in eviction order: lowest dataset
/// priority first, then oldest. Never keep_forever, never pinned.
/// Also returns the candidates whose rows are not yet in verified candles,
/// which a hard limit the user set may take but free space may not.
fn eviction_candidates(cfg: &Config, db: &Db, dataset: Option<&str>) -> Result<(Vec<Expired>, Unrolled)> {
    let mut parts: BTreeMap<(String, String, String), Vec<PlanFile>> = BTreeMap::new();
    for f in catalog_files(db, dataset)? {
        parts
            .entry((f.dataset, f.tier, f.file.partition.clone()))
            .or_default()
            .push(f.file);
    }
    let mut candidates: Vec<(i64, i64, Expired)> = Vec::new();
    let mut unrolled = Unrolled::new();
    for ((dataset, tier, partition), files) in parts {
        let Some(ds) = cfg.datasets.get(&dataset) else { continue };
        if ds.keep_forever {
            continue;
        }
        let mut pinned = false;
        for f in &files {
            pinned |= crate::engine::pins::is_pinned(&db.conn, &tier, &f.relpath).map_err(db.err())?;
        }
        if pinned {
            continue;
        }
        let rows: u64 = files.iter().map(|f| f.rows).sum();
        if crate::retention::waits_for_rollup(db, ds, &partition, rows)? {
            unrolled.insert((dataset.clone(), tier.clone(), partition.clone()));
        }
        let end = crate::layout::PartitionKey::of(ds, &partition)
            .range(ds)
            .map(|(_, e)| e)
            .unwrap_or(i64::MAX);
        candidates.push((
            ds.priority,
            end,
            Expired {
                dataset,
                tier,
                partition,
                rows,
                bytes: files.iter().map(|f| f.bytes).sum(),
                files: files.into_iter().map(|f| f.relpath).collect(),
                reason: format!("quota: priority {}, oldest first", ds.priority),
            },
        ));
    }
    candidates.sort_by_key(|(prio, end, e)| (*prio, *end, e.partition.clone()));
    Ok((candidates.into_iter().map(|(_, _, e)| e).collect(), unrolled))
}

/// Move candidates matching `pick`, in order, into `out` until `need` bytes
/// are freed, but never past `cap` bytes: stop at the first candidate that
/// would cross it, so the order (priority, then oldest) is kept. Returns the
/// bytes taken.
fn take_within(
    candidates: &mut Vec<Expired>,
    out: &mut Vec<Expired>,
    need: u64,
    cap: u64,
    pick: impl Fn(&Expired) -> bool,
) -> u64 {
    let mut freed = 0;
    let mut i = 0;
    while freed < need && i < candidates.len() {
        if !pick(&candidates[i]) {
            i += 1;
            continue;
        }
        if freed + candidates[i].bytes > cap {
            break;
        }
        let e = candidates.remove(i);
        freed += e.bytes;
        out.push(e);
    }
    freed
}

impl QuotaReport {
    /// Met, or why not.
    pub fn outcome(&self) -> crate::outcome::Outcome {
        match &self.plan.unmet {
            Some(why) => crate::outcome::Outcome::QuotaUnmet(why.clone()),
            None => crate::outcome::Outcome::Done,
        }
    }
}

pub fn execute(cfg: &Config, db: &mut Db, mut plan: QuotaPlan) -> Result<QuotaReport> {
    let mut evicted = RetentionMetrics {
        recovered: journal::recover(cfg, db)?,
        ..Default::default()
    };
    for e in &plan.soft {
        tracing::warn!(limit = %e.what, usage = e.usage, soft = e.limit, "soft quota exceeded: tiering early");
    }
    let mut tiered_early = None;
    if let Some(early) = plan.early_tier.take() {
        if !early.moves.is_empty() {
            tiered_early = Some(tiering::execute(cfg, db, &early, &Silent)?);
            // Moves changed what lies where: evictions are chosen afresh,
            // while the report keeps the soft limits that started the moves.
            let mut fresh = limits_and_evictions(cfg, db, plan.dataset.as_deref())?;
            (fresh.soft, fresh.soft_exceeded) = (std::mem::take(&mut plan.soft), true);
            plan = fresh;
        }
        plan.early_tier = Some(early);
    }
    drop_partitions(cfg, db, &plan.evictions, crate::catalog::Action::Evict, &mut evicted)?;
    for e in &plan.expired_exports {
        crate::jobs::remove_export(e)?;
    }
    let after = usage_with_stores(cfg, db)?;
    let mut report = QuotaReport {
        dry_run: false,
        plan,
        tiered_early,
        evicted,
        usage_after: Some(after),
    };
    if let (Some(h), Some(a)) = (report.plan.hard_total, &report.usage_after) {
        if a.total > h && report.plan.unmet.is_none() {
            report.plan.unmet = Some(format!(
                "usage {} is still above the hard limit {}",
                human_bytes(a.total),
                human_bytes(h)
            ));
        }
    }
    if let Some(why) = &report.plan.unmet {
        tracing::error!(%why, "quota cannot be met");
    }
    Ok(report)
}
