//! What an export knows about the quality of the data it hands over: the
//! findings of the partitions it reads (checked first when nobody had),
//! and the refusal when a job requires its data clean.

use std::collections::{BTreeMap, BTreeSet};

use crate::catalog::CatalogFile;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::quality::{self, FindingRow, Kind, QualityFilter};
use crate::state::Db;

/// The kinds `data.require_clean` refuses by default: faults still in the
/// data (what storage put right, duplicates, order and filing, is not one).
pub fn default_clean_kinds() -> Vec<Kind> {
    Kind::ALL.into_iter().filter(|k| !k.is_repaired()).collect()
}

/// The findings of the partitions of `chosen` (series → files), after
/// checking those no check has seen.
pub fn findings_of(
    cfg: &Config,
    db: &Db,
    dataset: &str,
    chosen: &BTreeMap<String, Vec<CatalogFile>>,
) -> Result<Vec<FindingRow>> {
    let partitions: BTreeSet<String> = chosen.values().flatten().map(|f| f.file.partition.clone()).collect();
    quality::demand::check_partitions(cfg, db, dataset, &partitions)?;
    quality::list(
        db,
        &QualityFilter {
            dataset: Some(dataset.to_string()),
            partitions: Some(partitions),
            ..Default::default()
        },
    )
}

/// Refuse (exit 65) when any finding is of one of `kinds`; the message
/// names each partition and kind with its rows.
pub fn require_clean(dataset: &str, findings: &[FindingRow], kinds: &[Kind]) -> Result<()> {
    let bad: Vec<String> = findings
        .iter()
        .filter(|f| kinds.contains(&f.kind))
        .map(|f| format!("{} {} ({} rows from {})", f.partition_key, f.kind, f.rows, f.first_ts))
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    Err(Error::Unclean {
        dataset: dataset.to_string(),
        findings: bad.join("; "),
    })
}
