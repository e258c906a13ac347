//! Loading and validating `configs/mdkeep.toml`.
//!
//! Owns: where the config comes from (file, embedded default, environment
//! overrides), how a bad key is reported, and resolving relative paths
//! against the root. Does not own what a setting *does*; each capability
//! reads its own section.

mod alerts;
mod daemon;
mod dataset;
mod jobs;
mod lake;
mod quality;
pub mod s3;
pub mod units;
mod validate;

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

pub use alerts::{AlertRules, AlertTarget, AlertsConfig, ChatId, TargetKind};
pub use daemon::{DaemonConfig, HttpConfig, OnShutdown, ScheduleConfig, Task, WhenBusy};
pub use dataset::{timeframe_ns, ColumnEncoding, ColumnSpec, ColumnType, DatasetConfig, Granularity, RollupConfig};
pub use jobs::{DataLimit, FrameworkProfile, JobsConfig, LimitMode, Runner, SlurmConfig};
pub use lake::LakeConfig;
pub use quality::{DataKind, OnBadRows, QualityConfig};
pub use s3::S3Config;
pub use units::{ByteSize, SizeOrPercent, Span};

use crate::error::{Error, Result};

/// The config shipped in the binary; `init` writes it out, and it is used
/// as is when the root has no `configs/mdkeep.toml`.
pub const DEFAULT_CONFIG: &str = include_str!("../../configs/mdkeep.toml");

/// Relative location of the default config under the root.
pub const DEFAULT_CONFIG_PATH: &str = "configs/mdkeep.toml";

const ENV_PREFIX: &str = "MDKEEP__";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The folder relative paths resolve against. Not a config key.
    #[serde(skip)]
    pub root: PathBuf,
    /// Where this config came from, for messages.
    #[serde(skip)]
    pub source: String,
    pub paths: Paths,
    pub tiers: IndexMap<String, TierConfig>,
    pub scan: ScanConfig,
    pub compaction: CompactionConfig,
    #[serde(default)]
    pub quota: QuotaConfig,
    pub jobs: JobsConfig,
    #[serde(default)]
    pub daemon: DaemonConfig,
    #[serde(default)]
    pub http: HttpConfig,
    /// The scrub that re-reads written files against their checksums.
    #[serde(default)]
    pub verify: VerifyConfig,
    /// The DuckLake catalog readers attach (`crate::lake`).
    #[serde(default)]
    pub lake: LakeConfig,
    /// Where alerts go and which rules fire (`crate::alerts`).
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// Named maintenance tasks and when they run (`mdkeep daemon`).
    #[serde(default)]
    pub schedule: IndexMap<String, ScheduleConfig>,
    pub datasets: IndexMap<String, DatasetConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Paths {
    pub state_db: PathBuf,
    pub quarantine: PathBuf,
    pub tmp: PathBuf,
    pub trash: PathBuf,
    pub jobs: PathBuf,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TierConfig {
    /// A folder, or `s3://bucket/prefix` for a tier on object storage.
    pub root: PathBuf,
    pub zstd_level: i32,
    pub target_file_size: ByteSize,
    /// How to reach the store, for an `s3://` root.
    #[serde(default)]
    pub s3: Option<S3Config>,
    /// Above this many bytes in this tier, `quota` evicts its oldest
    /// partitions. The one quota a store tier can have: its free space is
    /// not measurable.
    #[serde(default)]
    pub max_bytes: Option<ByteSize>,
}

impl TierConfig {
    pub fn is_store(&self) -> bool {
        s3::is_remote(&self.root)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScanConfig {
    pub settle_time: Span,
    pub threads: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CompactionConfig {
    pub memory_limit: ByteSize,
    pub small_file_fraction: f64,
    pub row_group_rows: usize,
    pub keep: Keep,
    pub threads: usize,
    pub trash_grace: Span,
}

/// Disk limits. Usage counts every byte mdkeep keeps: data roots, state,
/// scratch, trash and quarantine.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    /// Above this, `quota` warns.
    #[serde(default)]
    pub soft_total: Option<ByteSize>,
    /// Above this, `quota` evicts partitions (lowest dataset priority, then oldest, first).
    #[serde(default)]
    pub hard_total: Option<ByteSize>,
    /// Free space each root's filesystem must keep. When one is short, only
    /// partitions on that filesystem are evicted, at most `max_evict_per_run`.
    #[serde(default)]
    pub min_free: Option<SizeOrPercent>,
    /// The most one run evicts from a filesystem short of `min_free`: a size,
    /// or a share of mdkeep's data on that filesystem.
    #[serde(default = "default_max_evict")]
    pub max_evict_per_run: SizeOrPercent,
    /// Above a soft limit, `quota` tiers early: partitions move once their
    /// age passes `tier_after` × this factor.
    #[serde(default = "default_early_tier_factor")]
    pub early_tier_factor: f64,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig {
            soft_total: None,
            hard_total: None,
            min_free: None,
            max_evict_per_run: default_max_evict(),
            early_tier_factor: default_early_tier_factor(),
        }
    }
}

fn default_max_evict() -> SizeOrPercent {
    SizeOrPercent::Percent(10.0)
}
fn default_early_tier_factor() -> f64 {
    0.5
}

/// `mdkeep verify`: how fast it reads and how often a file is read again.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyConfig {
    /// Read rate in bytes per second (0: unbounded).
    #[serde(default = "default_verify_rate")]
    pub rate: ByteSize,
    /// A file verified more recently than this is not read again.
    #[serde(default = "default_verify_every")]
    pub every: Span,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        VerifyConfig {
            rate: default_verify_rate(),
            every: default_verify_every(),
        }
    }
}

fn default_verify_rate() -> ByteSize {
    "32MiB".parse().expect("valid")
}
fn default_verify_every() -> Span {
    "7d".parse().expect("valid")
}

/// Which duplicate survives compaction: the copy that arrived last or
/// first. Arrival is a file's mtime when mdkeep first cataloged it, and a
/// file mdkeep writes carries the latest arrival of its inputs, so rewrites,
/// tier moves and trims never change the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Keep {
    Newest,
    Oldest,
}

impl Keep {
    /// A merge input's priority (the higher wins a duplicate) for rows that
    /// arrived at `arrival_ns`.
    pub fn priority(self, arrival_ns: i64) -> i64 {
        match self {
            Keep::Newest => arrival_ns,
            Keep::Oldest => arrival_ns.saturating_neg(),
        }
    }
}

impl Config {
    /// Load from `explicit` if given, else `<root>/configs/mdkeep.toml` if it
    /// exists, else the embedded default; then apply `MDKEEP__*` overrides
    /// from `env` and validate.
    pub fn load(
        root: &Path,
        explicit: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config> {
        let default_path = root.join(DEFAULT_CONFIG_PATH);
        let (text, source) = match explicit {
            Some(p) => {
                let p = if p.is_absolute() { p.to_path_buf() } else { root.join(p) };
                (
                    std::fs::read_to_string(&p).map_err(Error::io("read config", &p))?,
                    p.display().to_string(),
                )
            }
            None if default_path.exists() => (
                std::fs::read_to_string(&default_path).map_err(Error::io("read config", &default_path))?,
                default_path.display().to_string(),
            ),
            None => (DEFAULT_CONFIG.to_string(), "<embedded default config>".to_string()),
        };
        Self::from_str_with_env(&text, &source, root, env)
    }

    pub fn from_str_with_env(
        text: &str,
        source: &str,
        root: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config> {
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| Error::Config {
            source_name: source.to_string(),
            key: toml_error_line(text, &e),
            message: e.message().to_string(),
        })?;
        let overridden = apply_env(&mut table, env)?;
        let mut cfg: Config = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let key = error_key(&e);
            let source_name = overridden
                .iter()
                .find(|(k, _)| key.starts_with(k.as_str()))
                .map(|(_, var)| format!("environment variable {var}"))
                .unwrap_or_else(|| source.to_string());
            Error::Config {
                source_name,
                key,
                message: e.inner().message().to_string(),
            }
        })?;
        cfg.root = root.to_path_buf();
        cfg.source = source.to_string();
        for (name, ds) in cfg.datasets.iter_mut() {
            ds.name = name.clone();
        }
        validate::validate(&cfg)?;
        Ok(cfg)
    }

    /// Resolve a config path against the root.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() || s3::is_remote(p) {
            p.to_path_buf()
        } else {
            self.root.join(p)
        }
    }

    pub fn state_db(&self) -> PathBuf {
        self.resolve(&self.paths.state_db)
    }
    pub fn quarantine_dir(&self) -> PathBuf {
        self.resolve(&self.paths.quarantine)
    }
    pub fn tmp_dir(&self) -> PathBuf {
        self.resolve(&self.paths.tmp)
    }
    /// Where the daemon's report task (and `demo`, `report --write-dated`) writes.
    pub fn reports_dir(&self) -> PathBuf {
        self.resolve(Path::new("data/reports"))
    }
    pub fn trash_dir(&self) -> PathBuf {
        self.resolve(&self.paths.trash)
    }
    pub fn jobs_dir(&self) -> PathBuf {
        self.resolve(&self.paths.jobs)
    }
    pub fn lake_path(&self) -> PathBuf {
        self.resolve(&self.lake.path)
    }

    /// Local tier names and their resolved roots, hottest first (store
    /// tiers are walked by listing, see [`Config::store_tiers`]).
    pub fn tier_roots(&self) -> Vec<(String, PathBuf)> {
        self.tiers
            .iter()
            .filter(|(_, t)| !t.is_store())
            .map(|(n, t)| (n.clone(), self.resolve(&t.root)))
            .collect()
    }

    /// Names of the tiers on object storage.
    pub fn store_tiers(&self) -> Vec<String> {
        self.tiers
            .iter()
            .filter(|(_, t)| t.is_store())
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The tier collectors write to and users query.
    pub fn hot_tier(&self) -> (&str, PathBuf) {
        let (name, t) = self.tiers.first().expect("validated: at least one tier");
        (name, self.resolve(&t.root))
    }

    pub fn dataset(&self, name: &str) -> Result<&DatasetConfig> {
        self.datasets
            .get(name)
            .ok_or_else(|| Error::UnknownDataset(name.to_string()))
    }

    /// Which duplicate of `ds`'s rows survives: its own `keep_duplicate`,
    /// else `compaction.keep`.
    pub fn keep_rule(&self, ds: &DatasetConfig) -> Keep {
        ds.keep_duplicate.unwrap_or(self.compaction.keep)
    }

    /// The root of a named tier.
    pub fn tier_root(&self, tier: &str) -> Result<PathBuf> {
        self.tiers
            .get(tier)
            .map(|t| self.resolve(&t.root))
            .ok_or_else(|| Error::Invalid(format!("unknown tier `{tier}` (declared under [tiers])")))
    }

    /// The dataset stored under folder `path` of a tier root.
    pub fn dataset_by_path(&self, path: &str) -> Option<&DatasetConfig> {
        self.datasets.values().find(|d| d.path == path)
    }
}

/// Apply `MDKEEP__SECTION__KEY=value` overrides. Values are read as TOML
/// (numbers, booleans, arrays) and fall back to plain strings, so both
/// `MDKEEP__SCAN__THREADS=4` and `MDKEEP__JOBS__MEMORY_BUDGET=5GiB` work.
/// Returns the dotted keys that were overridden, with their variables.
fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<(String, String)>> {
    let mut done = Vec::new();
    let mut vars: Vec<(String, String)> = env.into_iter().filter(|(k, _)| k.starts_with(ENV_PREFIX)).collect();
    vars.sort();
    for (var, raw) in vars {
        let parts: Vec<String> = var[ENV_PREFIX.len()..]
            .split("__")
            .map(|s| s.to_ascii_lowercase())
            .collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(Error::Config {
                source_name: format!("environment variable {var}"),
                key: parts.join("."),
                message: "empty segment in variable name".into(),
            });
        }
        set_dotted(table, &parts, &raw).map_err(|message| Error::Config {
            source_name: format!("environment variable {var}"),
            key: parts.join("."),
            message,
        })?;
        done.push((parts.join("."), var));
    }
    Ok(done)
}

/// Set `parts` (a dotted key) in `table` to `raw` read as a TOML value (a
/// bare word is a string), creating sections on the way.
pub(crate) fn set_dotted(table: &mut toml::Table, parts: &[String], raw: &str) -> std::result::Result<(), String> {
    let value = format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let mut cur = table;
    for seg in &parts[..parts.len() - 1] {
        let entry = cur
            .entry(seg.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{seg}` is a value, not a section"))?;
    }
    cur.insert(parts[parts.len() - 1].clone(), value);
    Ok(())
}

/// The dotted key a deserialization error is about, including the unknown
/// field's own name, which serde only puts in the message.
fn error_key(e: &serde_path_to_error::Error<toml::de::Error>) -> String {
    let mut key = e.path().to_string();
    let msg = e.inner().message();
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        if let Some(field) = rest.split('`').next() {
            // Some paths already end at the unknown field; others stop at its table.
            key = if key == "." || key.is_empty() {
                field.to_string()
            } else if key == field || key.ends_with(&format!(".{field}")) {
                key
            } else {
                format!("{key}.{field}")
            };
        }
    }
    if key == "." {
        key = "(top level)".into();
    }
    key
}

fn toml_error_line(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => format!(
            "(syntax, line {})",
            text[..span.start.min(text.len())].lines().count().max(1)
        ),
        None => "(syntax)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config> {
        Config::from_str_with_env(
            text,
            "test.toml",
            Path::new("/r"),
            env.iter().map(|(a, b)| (a.to_string(), b.to_string())),
        )
    }

    #[test]
    fn default_config_loads() {
        let c = load(DEFAULT_CONFIG, &[]).unwrap();
        assert_eq!(c.hot_tier().0, "hot");
        assert_eq!(c.hot_tier().1, Path::new("/r/data/processed"));
        assert_eq!(c.datasets["trades"].key, vec!["trade_id"]);
        // trades, ohlcv and book; the futures series Freqtrade needs besides candles.
        let names: Vec<&str> = c.datasets.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["trades", "ohlcv", "mark", "index", "premium", "funding", "book"]
        );
    }

    #[test]
    fn env_overrides_sizes_and_numbers() {
        let c = load(
            DEFAULT_CONFIG,
            &[("MDKEEP__JOBS__MEMORY_BUDGET", "3GiB"), ("MDKEEP__SCAN__THREADS", "4")],
        )
        .unwrap();
        assert_eq!(c.jobs.memory_budget.0, 3 << 30);
        assert_eq!(c.scan.threads, 4);
    }

    #[test]
    fn unknown_key_is_named() {
        let text = DEFAULT_CONFIG.replace("settle_time =", "settle_tme =");
        let e = load(&text, &[]).unwrap_err().to_string();
        assert!(e.contains("test.toml") && e.contains("scan.settle_tme"), "{e}");
        assert!(!e.contains("settle_tme.settle_tme"), "the key is named once: {e}");
        let e = load(DEFAULT_CONFIG, &[("MDKEEP__SCAN__BOGUS", "1")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("MDKEEP__SCAN__BOGUS") && e.contains("scan.bogus"), "{e}");
    }

    #[test]
    fn tier_thresholds_follow_tier_order_not_env_order() {
        // The environment sorts COLD before WARM; the tiers still decide the order.
        let c = load(
            DEFAULT_CONFIG,
            &[
                ("MDKEEP__DATASETS__BOOK__TIER_AFTER__COLD", "10d"),
                ("MDKEEP__DATASETS__BOOK__TIER_AFTER__WARM", "1d"),
            ],
        )
        .unwrap();
        let t = c.datasets["book"].tier_thresholds(&c);
        assert_eq!(
            t.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            vec!["warm", "cold"]
        );
        let bad = [("MDKEEP__DATASETS__BOOK__TIER_AFTER__WARM", "30d")];
        assert!(load(DEFAULT_CONFIG, &bad)
            .unwrap_err()
            .to_string()
            .contains("datasets.book.tier_after"));
    }

    #[test]
    fn bad_value_is_named() {
        let text = DEFAULT_CONFIG.replace("memory_budget = \"5GiB\"", "memory_budget = \"5 parsecs\"");
        let e = load(&text, &[]).unwrap_err().to_string();
        assert!(e.contains("jobs.memory_budget") && e.contains("parsecs"), "{e}");
        let text = DEFAULT_CONFIG.replace("key = [\"trade_id\"]", "key = [\"tid\"]");
        let e = load(&text, &[]).unwrap_err().to_string();
        assert!(e.contains("datasets.trades.key"), "{e}");
    }
}
