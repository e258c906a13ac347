//! Checking a loaded config: every rule that serde's types cannot say.
//!
//! Owns the refusals and their keys: tiers (names, roots, stores, nesting),
//! limits (quota, compaction), schedules (task names, cron through the
//! `scheduler::cron` leaf) and datasets (columns, keys, tier ages, rollup,
//! partitions). Each error names the key.

use super::{dataset, ColumnType, Config, DatasetConfig, RollupConfig, SizeOrPercent, Span, Task};
use crate::error::{Error, Result};

/// An error about `key`, from the config's source.
fn bad(cfg: &Config, key: String, message: String) -> Error {
    Error::Config {
        source_name: cfg.source.clone(),
        key,
        message,
    }
}

pub(super) fn validate(cfg: &Config) -> Result<()> {
    tiers(cfg)?;
    limits(cfg)?;
    schedules(cfg)?;
    alerts(cfg)?;
    for (name, ds) in &cfg.datasets {
        dataset_rules(cfg, name, ds)?;
    }
    Ok(())
}

/// Every target has what its kind needs, and a name of its own.
fn alerts(cfg: &Config) -> Result<()> {
    let a = &cfg.alerts;
    if a.attempts == 0 {
        return Err(bad(cfg, "alerts.attempts".into(), "must be at least 1".into()));
    }
    if a.rules.disk_full_days < 0.0 || a.rules.disk_full_days.is_nan() {
        return Err(bad(
            cfg,
            "alerts.rules.disk_full_days".into(),
            "must be 0 (off) or more".into(),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, t) in a.targets.iter().enumerate() {
        if let Some((key, message)) = t.missing() {
            return Err(bad(cfg, format!("alerts.targets[{i}].{key}"), message));
        }
        let name = t.name();
        if name.trim().is_empty() || name.contains(['"', '\\', '\n']) {
            return Err(bad(
                cfg,
                format!("alerts.targets[{i}].name"),
                "must be a plain, non-empty name".into(),
            ));
        }
        if !seen.insert(name.clone()) {
            return Err(bad(
                cfg,
                format!("alerts.targets[{i}].name"),
                format!("two targets are called `{name}`; give each a name"),
            ));
        }
    }
    Ok(())
}

fn tiers(cfg: &Config) -> Result<()> {
    let bad = |key: String, message: String| bad(cfg, key, message);
    if cfg.tiers.is_empty() {
        return Err(bad(
            "tiers".into(),
            "at least one tier (the hot one) is required".into(),
        ));
    }
    for (name, t) in &cfg.tiers {
        crate::names::check_segment("tier", name).map_err(|e| bad(format!("tiers.{name}"), e.to_string()))?;
        if t.is_store() {
            super::s3::parse_url(&t.root.to_string_lossy()).map_err(|m| bad(format!("tiers.{name}.root"), m))?;
            if cfg.tiers.get_index_of(name) == Some(0) {
                return Err(bad(
                    format!("tiers.{name}.root"),
                    "the hot tier must be a local folder (collectors write there)".into(),
                ));
            }
        } else if t.s3.is_some() {
            return Err(bad(
                format!("tiers.{name}.s3"),
                "only a tier whose root is an s3:// URL takes [s3] settings".into(),
            ));
        }
        if !(1..=22).contains(&t.zstd_level) {
            return Err(bad(
                format!("tiers.{name}.zstd_level"),
                "must be between 1 and 22".into(),
            ));
        }
    }
    let roots = cfg.tier_roots();
    for (i, (a, ra)) in roots.iter().enumerate() {
        for (b, rb) in &roots[i + 1..] {
            if ra.starts_with(rb) || rb.starts_with(ra) {
                return Err(bad(
                    format!("tiers.{b}.root"),
                    format!("repeats or nests with tiers.{a}.root: a file would belong to two tiers"),
                ));
            }
        }
    }
    Ok(())
}

fn limits(cfg: &Config) -> Result<()> {
    let bad = |key: String, message: String| bad(cfg, key, message);
    if let Some(SizeOrPercent::Percent(p)) = cfg.quota.min_free {
        if p > 50.0 {
            return Err(bad(
                "quota.min_free".into(),
                "above 50% would evict data to free space other programs use".into(),
            ));
        }
    }
    let c = &cfg.compaction;
    if c.memory_limit.0 < 16 << 20 {
        return Err(bad("compaction.memory_limit".into(), "must be at least 16MiB".into()));
    }
    if !(0.0..=1.0).contains(&c.small_file_fraction) {
        return Err(bad(
            "compaction.small_file_fraction".into(),
            "must be between 0 and 1".into(),
        ));
    }
    if c.row_group_rows < 1024 {
        return Err(bad("compaction.row_group_rows".into(), "must be at least 1024".into()));
    }
    if !(cfg.quota.early_tier_factor > 0.0 && cfg.quota.early_tier_factor <= 1.0) {
        return Err(bad(
            "quota.early_tier_factor".into(),
            "must be above 0 and at most 1".into(),
        ));
    }
    Ok(())
}

fn schedules(cfg: &Config) -> Result<()> {
    let bad = |key: String, message: String| bad(cfg, key, message);
    for (task, sc) in &cfg.schedule {
        task.parse::<Task>().map_err(|m| bad(format!("schedule.{task}"), m))?;
        crate::scheduler::cron::CronExpr::parse(&sc.cron, sc.timezone.as_deref())
            .map_err(|m| bad(format!("schedule.{task}.cron"), m))?;
    }
    Ok(())
}

fn dataset_rules(cfg: &Config, name: &str, ds: &DatasetConfig) -> Result<()> {
    let bad = |key: String, message: String| bad(cfg, key, message);
    let k = |f: &str| format!("datasets.{name}.{f}");
    crate::names::check_segment("dataset", name).map_err(|e| bad(format!("datasets.{name}"), e.to_string()))?;
    crate::names::check_segment("dataset path", &ds.path).map_err(|e| bad(k("path"), e.to_string()))?;
    quality_rules(ds).map_err(|(key, m)| bad(k(&format!("quality.{key}")), m))?;
    column_rules(ds).map_err(|(key, m)| bad(k(&key), m))?;
    tier_rules(cfg, ds).map_err(|(key, m)| bad(k(&key), m))?;
    if let Some(r) = &ds.rollup {
        rollup(cfg, ds, r)?;
    }
    for p in ds.partition_by.iter().chain([&ds.time_partition]) {
        crate::names::check_segment("partition column", p).map_err(|e| bad(k("partition_by"), e.to_string()))?;
        if ds.column(p).is_some() {
            return Err(bad(
                k("partition_by"),
                format!("`{p}` is a data column; partition columns come from the path"),
            ));
        }
    }
    Ok(())
}

/// A rule broken, by the key under the dataset and why.
type Broken = std::result::Result<(), (String, String)>;

/// Encodings, bloom filters, the time column and the key name real columns
/// of the right type.
fn column_rules(ds: &DatasetConfig) -> Broken {
    for (col, e) in &ds.encodings {
        match ds.column(col) {
            None => return Err((format!("encodings.{col}"), format!("no column `{col}` in `columns`"))),
            Some(c) if !e.fits(&c.ty.to_arrow()) => {
                return Err((
                    format!("encodings.{col}"),
                    format!("{e:?} does not fit a {} column", c.ty),
                ))
            }
            Some(_) => {}
        }
    }
    if let Some(col) = ds.bloom.iter().find(|c| ds.column(c).is_none()) {
        return Err(("bloom".into(), format!("no column `{col}` in `columns`")));
    }
    match ds.column(&ds.time_column) {
        Some(c) if matches!(c.ty, ColumnType::Timestamp(_)) => {}
        Some(_) => {
            return Err((
                "time_column".into(),
                format!("column `{}` is not a timestamp", ds.time_column),
            ))
        }
        None => {
            return Err((
                "time_column".into(),
                format!("`{}` is not among `columns`", ds.time_column),
            ))
        }
    }
    if ds.key.is_empty() {
        return Err(("key".into(), "at least one key column is required".into()));
    }
    match ds.key.iter().find(|key| ds.column(key).is_none()) {
        Some(key) => Err(("key".into(), format!("`{key}` is not among `columns`"))),
        None => Ok(()),
    }
}

/// Tier ages name colder tiers in order; limits and trims fit the dataset.
fn tier_rules(cfg: &Config, ds: &DatasetConfig) -> Broken {
    for t in ds.tier_after.keys() {
        match cfg.tiers.get_index_of(t) {
            None => {
                return Err((
                    "tier_after".into(),
                    format!("`{t}` is not a tier declared under [tiers]"),
                ))
            }
            Some(0) => return Err(("tier_after".into(), format!("`{t}` is the hot tier; data starts there"))),
            Some(_) => {}
        }
    }
    let ages: Vec<Span> = ds.tier_thresholds(cfg).into_iter().map(|(_, a)| a).collect();
    if ages.windows(2).any(|w| w[0] > w[1]) {
        return Err(("tier_after".into(), "ages must grow from warmer to colder tiers".into()));
    }
    if ds.keep_forever && ds.hard_limit.is_some() {
        return Err((
            "hard_limit".into(),
            "a keep_forever dataset is never evicted, so it cannot have a hard_limit".into(),
        ));
    }
    if ds.trim && ds.keep.is_none() {
        return Err((
            "trim".into(),
            "trim needs `keep`, the age after which rows expire".into(),
        ));
    }
    Ok(())
}

fn rollup(cfg: &Config, ds: &DatasetConfig, r: &RollupConfig) -> Result<()> {
    let bad = |key: String, message: String| bad(cfg, key, message);
    let k = |f: &str| format!("datasets.{}.{f}", ds.name);
    let into = cfg.datasets.get(&r.into).ok_or_else(|| {
        bad(
            k("rollup.into"),
            format!("`{}` is not a dataset declared under [datasets]", r.into),
        )
    })?;
    if !into.partition_by.iter().any(|c| c == "timeframe") {
        return Err(bad(
            k("rollup.into"),
            format!("dataset `{}` needs a `timeframe` partition column", r.into),
        ));
    }
    for c in ["open", "high", "low", "close", "volume"] {
        if into.column(c).is_none() {
            return Err(bad(
                k("rollup.into"),
                format!("dataset `{}` has no `{c}` column", r.into),
            ));
        }
    }
    for c in [&r.price, &r.amount] {
        if ds.column(c).is_none() {
            return Err(bad(k("rollup"), format!("`{c}` is not among `columns`")));
        }
    }
    if r.timeframes.is_empty() {
        return Err(bad(k("rollup.timeframes"), "at least one timeframe is required".into()));
    }
    for tf in &r.timeframes {
        if dataset::timeframe_ns(tf).is_none() {
            return Err(bad(
                k("rollup.timeframes"),
                format!("`{tf}` is not a timeframe like 1m, 5m, 1h or 1d"),
            ));
        }
    }
    Ok(())
}

/// `quality`: a positive finite jump and a real first day.
fn quality_rules(ds: &DatasetConfig) -> std::result::Result<(), (&'static str, String)> {
    let q = &ds.quality;
    if !(q.max_jump.is_finite() && q.max_jump > 0.0) {
        return Err((
            "max_jump",
            format!("must be a positive fraction (0.2 is 20 %), not {}", q.max_jump),
        ));
    }
    crate::time::parse_time(&q.earliest).map_err(|e| ("earliest", e.to_string()))?;
    Ok(())
}
