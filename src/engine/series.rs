//! What a planner hands the engine: one series' input files and the
//! partitions they make up.
//!
//! Owns the plan's shapes only; compaction, tiering, retention and rollup
//! fill them, [`super::rewrite`] carries them out.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct PlanFile {
    pub relpath: String,
    pub partition: String,
    pub rows: u64,
    pub bytes: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    #[serde(skip)]
    pub mtime_ns: i64,
    /// When its rows arrived (see `catalog::FileEntry::arrival_ns`): what
    /// `keep` ranks duplicates by.
    #[serde(skip)]
    pub arrival_ns: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PartitionPlan {
    pub partition: String,
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SeriesPlan {
    pub dataset: String,
    pub tier: String,
    /// `exchange=x/symbol=y[/timeframe=z]`.
    pub series: String,
    pub partitions: Vec<PartitionPlan>,
    pub inputs: Vec<PlanFile>,
}

impl SeriesPlan {
    /// Take a removed input out of its partition's figures.
    pub fn forget_input(&mut self, f: &PlanFile) {
        if let Some(p) = self.partitions.iter_mut().find(|p| p.partition == f.partition) {
            p.files = p.files.saturating_sub(1);
            p.rows = p.rows.saturating_sub(f.rows);
            p.bytes = p.bytes.saturating_sub(f.bytes);
        }
    }

    /// One whole partition as its own rewrite (a tier move, a trim).
    pub fn one_partition(
        ds: &crate::config::DatasetConfig,
        tier: &str,
        partition: &str,
        inputs: Vec<PlanFile>,
        reason: String,
    ) -> SeriesPlan {
        SeriesPlan {
            dataset: ds.name.clone(),
            tier: tier.to_string(),
            series: crate::layout::PartitionKey::of(ds, partition).series,
            partitions: vec![PartitionPlan {
                partition: partition.to_string(),
                files: inputs.len() as u64,
                rows: inputs.iter().map(|f| f.rows).sum(),
                bytes: inputs.iter().map(|f| f.bytes).sum(),
                reasons: vec![reason],
            }],
            inputs,
        }
    }
}
