//! `quota`: keep disk use within limits.
//!
//! Owns measuring usage (every byte mdkeep keeps: data roots, state, tmp,
//! trash, quarantine; real file sizes, not catalog sums), free space on each
//! root's filesystem, and choosing evictions: whole partitions, lowest
//! dataset `priority` first, then oldest; never a `keep_forever` dataset nor
//! a partition holding a pinned file. Evictions go through the same
//! journaled drop as retention. When the limit still cannot be met the
//! report says so and the command fails; it is never silent.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::catalog;
use crate::compaction::plan::{catalog_files, PlanFile};
use crate::config::units::human_bytes;
use crate::config::Config;
use crate::error::Result;
use crate::journal::{self, dir_bytes};
use crate::retention::{drop_partitions, Expired, RetentionMetrics};
use crate::state::Db;

#[derive(Debug, Default, Clone, Serialize)]
pub struct Usage {
    pub tiers: BTreeMap<String, u64>,
    pub state: u64,
    pub tmp: u64,
    pub trash: u64,
    pub quarantine: u64,
    pub total: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RootFree {
    pub tier: String,
    pub free: u64,
    pub size: u64,
    pub min_free: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct QuotaPlan {
    pub usage: Usage,
    pub soft_total: Option<u64>,
    pub hard_total: Option<u64>,
    pub soft_exceeded: bool,
    pub roots: Vec<RootFree>,
    /// Bytes that must go to meet the hard limit and min_free.
    pub to_free: u64,
    pub evictions: Vec<Expired>,
    /// Why the limits cannot be met, when they cannot.
    pub unmet: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct QuotaReport {
    pub dry_run: bool,
    #[serde(flatten)]
    pub plan: QuotaPlan,
    pub evicted: RetentionMetrics,
    pub usage_after: Option<Usage>,
}

pub fn usage(cfg: &Config) -> Usage {
    let mut u = Usage::default();
    for (tier, root) in cfg.tier_roots() {
        u.tiers.insert(tier, dir_bytes(&root));
    }
    u.state = cfg.state_db().parent().map(dir_bytes).unwrap_or(0);
    u.tmp = dir_bytes(&cfg.tmp_dir());
    u.trash = dir_bytes(&cfg.trash_dir());
    u.quarantine = dir_bytes(&cfg.quarantine_dir());
    u.total = u.tiers.values().sum::<u64>() + u.state + u.tmp + u.trash + u.quarantine;
    u
}

/// (free, size) of the filesystem holding `path`.
pub fn fs_space(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frsize = st.f_frsize as u64;
    Some((st.f_bavail as u64 * frsize, st.f_blocks as u64 * frsize))
}

pub fn plan(cfg: &Config, db: &Db, dataset: Option<&str>) -> Result<QuotaPlan> {
    let q = &cfg.quota;
    let mut p = QuotaPlan {
        usage: usage(cfg),
        soft_total: q.soft_total.map(|b| b.0),
        hard_total: q.hard_total.map(|b| b.0),
        ..Default::default()
    };
    p.soft_exceeded = p.soft_total.is_some_and(|s| p.usage.total > s);
    if let Some(h) = p.hard_total {
        p.to_free = p.usage.total.saturating_sub(h);
    }
    if let Some(min_free) = q.min_free {
        for (tier, root) in cfg.tier_roots() {
            let Some((free, size)) = fs_space(if root.exists() { &root } else { &cfg.root }) else {
                continue;
            };
            let want = min_free.resolve(size);
            p.to_free = p.to_free.max(want.saturating_sub(free));
            p.roots.push(RootFree {
                tier,
                free,
                size,
                min_free: want,
            });
        }
    }
    if p.to_free == 0 {
        return Ok(p);
    }
    // Candidates: whole partitions, in eviction order.
    let mut parts: BTreeMap<(String, String, String), Vec<PlanFile>> = BTreeMap::new();
    for f in catalog_files(db, dataset)? {
        parts
            .entry((f.dataset, f.tier, f.file.partition.clone()))
            .or_default()
            .push(f.file);
    }
    let mut candidates: Vec<(i64, i64, Expired)> = Vec::new();
    for ((dataset, tier, partition), files) in parts {
        let Some(ds) = cfg.datasets.get(&dataset) else { continue };
        if ds.keep_forever {
            continue;
        }
        let mut pinned = false;
        for f in &files {
            pinned |= journal::is_pinned(&db.conn, &tier, &f.relpath).map_err(db.err())?;
        }
        if pinned {
            continue;
        }
        let values = catalog::partition_values(&partition);
        let end = values
            .iter()
            .find(|(k, _)| k == &ds.time_partition)
            .and_then(|(_, v)| ds.period_range(v))
            .map(|(_, e)| e)
            .unwrap_or(i64::MAX);
        candidates.push((
            ds.priority,
            end,
            Expired {
                dataset,
                tier,
                partition,
                rows: files.iter().map(|f| f.rows).sum(),
                bytes: files.iter().map(|f| f.bytes).sum(),
                files: files.into_iter().map(|f| f.relpath).collect(),
                reason: format!("quota: priority {}, oldest first", ds.priority),
            },
        ));
    }
    candidates.sort_by_key(|(prio, end, e)| (*prio, *end, e.partition.clone()));
    let mut freed = 0;
    for (_, _, e) in candidates {
        if freed >= p.to_free {
            break;
        }
        freed += e.bytes;
        p.evictions.push(e);
    }
    if freed < p.to_free {
        p.unmet = Some(format!(
            "{} must be freed but only {} can be evicted (keep_forever datasets and pinned files stay)",
            human_bytes(p.to_free),
            human_bytes(freed)
        ));
    }
    Ok(p)
}

pub fn execute(cfg: &Config, db: &mut Db, plan: QuotaPlan) -> Result<QuotaReport> {
    let mut evicted = RetentionMetrics {
        recovered: journal::recover(cfg, db)?,
        ..Default::default()
    };
    if plan.soft_exceeded {
        tracing::warn!(usage = plan.usage.total, soft = ?plan.soft_total, "soft quota exceeded");
    }
    drop_partitions(cfg, db, &plan.evictions, "evict", &mut evicted)?;
    let after = usage(cfg);
    let mut report = QuotaReport {
        dry_run: false,
        plan,
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
