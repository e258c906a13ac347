//! The report's "Data quality" section: stored findings summed by dataset,
//! kind and status (repaired by mdkeep, or in the data now), the partitions with the most flagged rows, and the days of the
//! coverage map that hold a finding. Reads only `quality`'s typed queries;
//! nothing is checked here (the report changes nothing).

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Coverage, Report};
use crate::config::Config;
use crate::error::Result;
use crate::quality::findings::Status;
use crate::quality::{self, QualityFilter};
use crate::state::Db;

/// How many partitions "worst partitions" lists.
const WORST: usize = 10;

#[derive(Debug, Default, Serialize)]
pub struct QualitySummary {
    pub partitions_checked: u64,
    pub by_kind: Vec<QualityTotal>,
    /// The partitions with the most flagged rows, most first.
    pub worst: Vec<WorstPartition>,
}

#[derive(Debug, Serialize)]
pub struct QualityTotal {
    pub dataset: String,
    pub kind: quality::Kind,
    /// `repaired` by mdkeep's rewrites, or `present` in the data now.
    pub status: Status,
    pub partitions: u64,
    pub rows: u64,
}

#[derive(Debug, Serialize)]
pub struct WorstPartition {
    pub dataset: String,
    pub partition: String,
    pub rows: u64,
    pub kinds: Vec<quality::Kind>,
}

/// Fill `r.quality` and mark the coverage days that hold a finding.
pub(super) fn summarise(cfg: &Config, db: &Db, r: &mut Report) -> Result<()> {
    let rows = quality::list(db, &QualityFilter::default())?;
    r.quality.partitions_checked = quality::findings::checked_count(db, None)?;
    let mut totals: BTreeMap<(String, quality::Kind, Status), (u64, u64)> = BTreeMap::new();
    for f in &rows {
        let t = totals.entry((f.dataset.clone(), f.kind, f.status)).or_default();
        t.0 += 1;
        t.1 += f.rows;
    }
    r.quality.by_kind = totals
        .into_iter()
        .map(|((dataset, kind, status), (partitions, rows))| QualityTotal {
            dataset,
            kind,
            status,
            partitions,
            rows,
        })
        .collect();
    let mut worst: BTreeMap<(String, String), (u64, Vec<quality::Kind>)> = BTreeMap::new();
    let mut marks: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for f in &rows {
        let w = worst.entry((f.dataset.clone(), f.partition_key.clone())).or_default();
        w.0 += f.rows;
        w.1.push(f.kind);
        if let Ok(ds) = cfg.dataset(&f.dataset) {
            let series = crate::layout::PartitionKey::of(ds, &f.partition_key).series;
            let day = crate::time::rfc3339(f.first_ts_ns)[..10].to_string();
            *marks.entry((f.dataset.clone(), series, day)).or_default() += f.rows;
        }
    }
    let mut worst: Vec<WorstPartition> = worst
        .into_iter()
        .map(|((dataset, partition), (rows, kinds))| WorstPartition {
            dataset,
            partition,
            rows,
            kinds,
        })
        .collect();
    worst.sort_by(|a, b| b.rows.cmp(&a.rows).then_with(|| a.partition.cmp(&b.partition)));
    worst.truncate(WORST);
    r.quality.worst = worst;
    mark(&mut r.coverage, &marks);
    Ok(())
}

fn mark(coverage: &mut [Coverage], marks: &BTreeMap<(String, String, String), u64>) {
    for c in coverage {
        c.findings = marks
            .get(&(c.dataset.clone(), c.series.clone(), c.day.clone()))
            .copied()
            .unwrap_or(0);
    }
}
