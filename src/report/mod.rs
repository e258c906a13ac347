//! `report`: what is stored, what was removed and why, what comes next.
//!
//! Owns gathering the figures into one [`Report`] (stable field names, the
//! JSON contract) from the catalog, the data itself ([`gaps`]), the history
//! table, the daily usage snapshots, dry-run plans of retention and quota,
//! the job queue and the stored quality findings ([`quality`]); rendering is [`render`]'s (table, md) and [`html`]'s.
//! It changes nothing: every plan in it is a dry run.

mod cache;
pub mod equity;
pub mod gaps;
pub mod header;
pub mod html;
pub mod jobs_page;
pub mod page;
pub mod quality;
pub mod render;

use std::collections::BTreeMap;

use chrono::Datelike;
use serde::Serialize;

use crate::catalog::files as catalog_files;
pub use crate::catalog::HistoryRow;
use crate::config::Config;
use crate::error::Result;
pub use crate::jobs::queue::JobStats;
use crate::state::{now_ns, Db};
use crate::time::rfc3339;
pub use gaps::{Coverage, Gap};

/// Bumped when a field changes meaning or goes; new fields do not bump it.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub generated_at: String,
    /// The history window (`--since`), as given and as a start time.
    pub since: String,
    pub since_time: String,
    pub datasets: Vec<DatasetTier>,
    pub gaps: Vec<Gap>,
    pub coverage: Vec<Coverage>,
    pub growth: Vec<GrowthPoint>,
    pub history: Vec<HistoryRow>,
    /// Bytes and partitions per action (compact, tier, rollup, trim, retention, evict) in the window.
    pub history_totals: Vec<ActionTotal>,
    pub forecast: Vec<Forecast>,
    pub next_retention: Vec<PlannedDrop>,
    pub next_quota: Vec<PlannedDrop>,
    pub jobs: Vec<JobStats>,
    /// Store tiers (object storage) and whether they answered just now.
    pub stores: Vec<StoreStatus>,
    /// Data-quality findings (as stored; `mdkeep quality` checks the rest).
    pub quality: quality::QualitySummary,
    /// The DuckLake catalog readers attach (null when off or not written yet).
    pub lake: Option<crate::lake::status::LakeStatus>,
}

#[derive(Debug, Serialize)]
pub struct StoreStatus {
    pub tier: String,
    pub url: String,
    pub reachable: bool,
    /// Why not, when unreachable.
    pub error: Option<String>,
    pub files: u64,
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct DatasetTier {
    pub dataset: String,
    pub tier: String,
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
    /// Uncompressed bytes of the row groups, from the footers.
    pub uncompressed_bytes: u64,
    /// uncompressed / stored.
    pub compression_ratio: f64,
    pub min_ts: Option<String>,
    pub max_ts: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GrowthPoint {
    pub day: String,
    pub dataset: String,
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct ActionTotal {
    pub action: String,
    pub events: u64,
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct Forecast {
    /// `hard_total`, `soft_total`, `<dataset>.hard_limit`, `min_free <tier>`.
    pub limit: String,
    pub usage_bytes: u64,
    pub limit_bytes: u64,
    /// Recent growth: bytes per day over the window (can be negative).
    pub growth_bytes_per_day: f64,
    /// Days until the limit is reached at that rate; null when not growing
    /// or already past (see `reached`).
    pub days_until: Option<f64>,
    pub reached: bool,
}

#[derive(Debug, Serialize)]
pub struct PlannedDrop {
    pub dataset: String,
    pub tier: String,
    pub partition: String,
    pub bytes: u64,
    pub rows: u64,
    pub reason: String,
}

fn day_of(ns: i64) -> String {
    rfc3339(ns)[..10].to_string()
}

/// What building a report may read besides the state database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// A file the caches do not know yet is read once (its footer, its
    /// time column) and remembered: `mdkeep report`.
    Files,
    /// No data file is opened: a file not in the caches counts as covering
    /// its whole range, and its ratio is left out. The dashboard's.
    CachesOnly,
}

/// Build the report; `since` is a span like `30d`.
pub fn build(cfg: &Config, db: &Db, since: crate::config::Span) -> Result<Report> {
    build_with(cfg, db, since, Reads::Files)
}

/// [`build`], reading only what `reads` allows.
pub fn build_with(cfg: &Config, db: &Db, since: crate::config::Span, reads: Reads) -> Result<Report> {
    let now = now_ns();
    let since_ns = now.saturating_sub(since.0.as_nanos() as i64);
    let mut r = Report {
        schema_version: SCHEMA_VERSION,
        generated_at: rfc3339(now),
        since: since.to_string(),
        since_time: rfc3339(since_ns),
        datasets: Vec::new(),
        gaps: Vec::new(),
        coverage: Vec::new(),
        growth: Vec::new(),
        history: Vec::new(),
        history_totals: Vec::new(),
        forecast: Vec::new(),
        next_retention: Vec::new(),
        next_quota: Vec::new(),
        jobs: Vec::new(),
        stores: Vec::new(),
        quality: Default::default(),
        lake: crate::lake::status::status(cfg),
    };
    let down = stores(cfg, db, &mut r)?;
    let facts = cache::Facts::new(cfg, db, reads == Reads::Files);
    for (name, ds) in &cfg.datasets {
        stored(&facts, db, name, ds, &down, &mut r)?;
    }
    growth(db, since_ns, &mut r)?;
    history(db, since_ns, &mut r)?;
    forecast(cfg, db, &mut r)?;
    jobs(db, &mut r)?;
    quality::summarise(cfg, db, &mut r)?;
    Ok(r)
}

/// Probe each store tier; the ones that do not answer (their files are
/// then counted from the catalog, not read).
fn stores(cfg: &Config, db: &Db, r: &mut Report) -> Result<std::collections::HashSet<String>> {
    let mut down = std::collections::HashSet::new();
    for tier in cfg.store_tiers() {
        let probe = crate::store::stores()
            .tier(&tier)
            .map_err(|e| e.to_string())
            .and_then(|st| st.probe());
        let (files, bytes) = crate::catalog::totals(db)?
            .iter()
            .filter(|t| t.tier == tier)
            .fold((0, 0), |(f, b), t| (f + t.files, b + t.bytes));
        if probe.is_err() {
            down.insert(tier.clone());
        }
        r.stores.push(StoreStatus {
            url: cfg.tiers[&tier].root.display().to_string(),
            tier,
            reachable: probe.is_ok(),
            error: probe.err().map(|e| format!("unreachable: {e}")),
            files,
            bytes,
        });
    }
    Ok(down)
}

/// One dataset's stored totals per tier, its gaps and its coverage.
fn stored(
    facts: &cache::Facts,
    db: &Db,
    name: &str,
    ds: &crate::config::DatasetConfig,
    down: &std::collections::HashSet<String>,
    r: &mut Report,
) -> Result<()> {
    // Files on a store that does not answer are counted from the
    // catalog, not read: the report must not wait out its retries.
    let all = catalog_files(db, Some(name))?;
    let files: Vec<_> = all.iter().filter(|f| !down.contains(&f.tier)).cloned().collect();
    let mut tiers: BTreeMap<String, DatasetTier> = BTreeMap::new();
    // Stored bytes of the files whose uncompressed size is known, per tier.
    let mut known: BTreeMap<String, u64> = BTreeMap::new();
    for f in &all {
        let t = tiers.entry(f.tier.clone()).or_insert_with(|| DatasetTier {
            dataset: name.to_string(),
            tier: f.tier.clone(),
            files: 0,
            rows: 0,
            bytes: 0,
            uncompressed_bytes: 0,
            compression_ratio: 0.0,
            min_ts: None,
            max_ts: None,
        });
        t.files += 1;
        t.rows += f.file.rows;
        t.bytes += f.file.bytes;
        if !down.contains(&f.tier) {
            if let Ok(Some(u)) = facts.uncompressed(f) {
                t.uncompressed_bytes += u;
                *known.entry(f.tier.clone()).or_default() += f.file.bytes;
            }
        }
        let lo = rfc3339(f.file.min_ts);
        let hi = rfc3339(f.file.max_ts);
        if t.min_ts.as_ref().is_none_or(|m| lo < *m) {
            t.min_ts = Some(lo);
        }
        if t.max_ts.as_ref().is_none_or(|m| hi > *m) {
            t.max_ts = Some(hi);
        }
    }
    for mut t in tiers.into_values() {
        let bytes = known.get(&t.tier).copied().unwrap_or(0);
        t.compression_ratio = if bytes > 0 {
            t.uncompressed_bytes as f64 / bytes as f64
        } else {
            0.0
        };
        r.datasets.push(t);
    }
    let (g, c) = gaps::analyse(facts, ds, &files)?;
    r.gaps.extend(g);
    r.coverage.extend(c);
    Ok(())
}

/// A value that changes whenever something the report shows changes in the
/// state database: the catalog and history, the quality checks, the jobs.
/// (Free space and the clock move on their own; a cache of the report
/// also keeps an age limit.)
pub fn stamp(db: &Db) -> Result<String> {
    Ok(format!(
        "{}|{}|{}",
        crate::catalog::generation(db)?,
        crate::quality::findings::generation(db)?,
        crate::jobs::queue::generation(db)?
    ))
}

fn growth(db: &Db, since_ns: i64, r: &mut Report) -> Result<()> {
    r.growth = crate::catalog::usage_since(db, &day_of(since_ns))?
        .into_iter()
        .map(|(day, dataset, bytes)| GrowthPoint { day, dataset, bytes })
        .collect();
    Ok(())
}

fn history(db: &Db, since_ns: i64, r: &mut Report) -> Result<()> {
    r.history = crate::catalog::history_since(db, since_ns)?;
    let mut totals: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for h in &r.history {
        let t = totals.entry(h.action.clone()).or_default();
        t.0 += 1;
        t.1 += h.bytes.unwrap_or(0);
    }
    r.history_totals = totals
        .into_iter()
        .map(|(action, (events, bytes))| ActionTotal { action, events, bytes })
        .collect();
    Ok(())
}

/// Bytes per day over the growth points of the window, by least squares
/// over the daily totals (all datasets, or one).
pub fn growth_rate(points: &[GrowthPoint], dataset: Option<&str>) -> f64 {
    let mut by_day: BTreeMap<&str, u64> = BTreeMap::new();
    for p in points.iter().filter(|p| dataset.is_none_or(|d| d == p.dataset)) {
        *by_day.entry(p.day.as_str()).or_default() += p.bytes;
    }
    let pts: Vec<(f64, f64)> = by_day
        .iter()
        .filter_map(|(d, b)| {
            let t = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()?;
            Some((t.num_days_from_ce() as f64, *b as f64))
        })
        .collect();
    if pts.len() < 2 {
        return 0.0;
    }
    let n = pts.len() as f64;
    let (mx, my) = (
        pts.iter().map(|p| p.0).sum::<f64>() / n,
        pts.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx == 0.0 {
        0.0
    } else {
        sxy / sxx
    }
}

/// Days until `usage` growing by `rate` a day reaches `limit`.
pub fn days_until(usage: u64, limit: u64, rate: f64) -> (Option<f64>, bool) {
    if usage >= limit {
        return (None, true);
    }
    if rate <= 0.0 {
        return (None, false);
    }
    (Some((limit - usage) as f64 / rate), false)
}

fn forecast(cfg: &Config, db: &Db, r: &mut Report) -> Result<()> {
    let plan = crate::quota::plan(cfg, db, None)?;
    let total_rate = growth_rate(&r.growth, None);
    let mut push = |limit: String, usage: u64, limit_bytes: u64, rate: f64| {
        let (days_until, reached) = days_until(usage, limit_bytes, rate);
        r.forecast.push(Forecast {
            limit,
            usage_bytes: usage,
            limit_bytes,
            growth_bytes_per_day: rate,
            days_until,
            reached,
        });
    };
    if let Some(h) = plan.hard_total {
        push("hard_total".into(), plan.usage.total, h, total_rate);
    }
    if let Some(sft) = plan.soft_total {
        push("soft_total".into(), plan.usage.total, sft, total_rate);
    }
    for (name, ds) in &cfg.datasets {
        let used = plan.usage.datasets.get(name).copied().unwrap_or(0);
        let rate = growth_rate(&r.growth, Some(name));
        if let Some(h) = ds.hard_limit {
            push(format!("{name}.hard_limit"), used, h.0, rate);
        }
        if let Some(sft) = ds.soft_limit {
            push(format!("{name}.soft_limit"), used, sft.0, rate);
        }
    }
    // Free space shrinks as data grows: the floor is reached when the
    // growth has eaten free − min_free.
    // Roots on one filesystem share one floor: one row, naming them all.
    let mut roots: Vec<(String, &crate::quota::RootFree)> = Vec::new();
    for root in &plan.roots {
        match roots
            .iter_mut()
            .find(|(_, r)| (r.size, r.free, r.min_free) == (root.size, root.free, root.min_free))
        {
            Some((names, _)) => {
                names.push(',');
                names.push_str(&root.tier);
            }
            None => roots.push((root.tier.clone(), root)),
        }
    }
    for (tiers, root) in roots {
        let headroom = root.free.saturating_sub(root.min_free);
        let (days_until, reached) = days_until(0, headroom, total_rate);
        r.forecast.push(Forecast {
            limit: format!("min_free {tiers}"),
            usage_bytes: root.size.saturating_sub(root.free),
            limit_bytes: root.size.saturating_sub(root.min_free),
            growth_bytes_per_day: total_rate,
            days_until,
            reached: reached || root.free < root.min_free,
        });
    }
    let planned = |e: &crate::retention::Expired| PlannedDrop {
        dataset: e.dataset.clone(),
        tier: e.tier.clone(),
        partition: e.partition.clone(),
        bytes: e.bytes,
        rows: e.rows,
        reason: e.reason.clone(),
    };
    let rp = crate::retention::plan(cfg, db, None)?;
    r.next_retention = rp.drops.iter().map(planned).collect();
    r.next_retention.extend(rp.trims.iter().map(|t| planned(&t.target)));
    r.next_quota = plan.evictions.iter().map(planned).collect();
    Ok(())
}

fn jobs(db: &Db, r: &mut Report) -> Result<()> {
    r.jobs = crate::jobs::queue::stats_by_framework(db)?;
    Ok(())
}

/// Write `retention-<date>.html` and `.json` under `dir`, keeping the newest
/// `keep` of each; returns the HTML path.
pub fn write_dated(cfg: &Config, db: &Db, dir: &std::path::Path, keep: usize) -> Result<std::path::PathBuf> {
    let r = build(cfg, db, "30d".parse().expect("valid span"))?;
    std::fs::create_dir_all(dir).map_err(crate::Error::io("create folder", dir))?;
    let date = &r.generated_at[..10];
    let html_path = dir.join(format!("retention-{date}.html"));
    let json_path = dir.join(format!("retention-{date}.json"));
    crate::fsutil::write_atomic(&html_path, html::render(&r).as_bytes())?;
    let json = serde_json::to_vec_pretty(&r).map_err(|e| crate::Error::Invalid(e.to_string()))?;
    crate::fsutil::write_atomic(&json_path, &json)?;
    for ext in ["html", "json"] {
        let mut old: Vec<_> = std::fs::read_dir(dir)
            .map_err(crate::Error::io("list", dir))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == ext)
                    && p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("retention-"))
            })
            .collect();
        old.sort();
        let excess = old.len().saturating_sub(keep.max(1));
        for p in &old[..excess] {
            let _ = std::fs::remove_file(p);
        }
    }
    Ok(html_path)
}
