//! Checking on demand: partitions no rewrite has checked (data from before
//! the checks existed, or collector files not compacted yet) are read,
//! streaming, file by file, and their findings recorded like a rewrite's.

use std::collections::{BTreeMap, BTreeSet};

use super::findings::{record, Origin};
use super::{Checker, Kind};
use crate::catalog::CatalogFile;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::layout::PartitionKey;
use crate::parquet_io::{conform, open_batches};
use crate::state::Db;

const BATCH_ROWS: usize = 64 * 1024;

/// Check every partition of the catalog that has not been checked since its
/// files changed (of `dataset`, or all); returns how many were checked.
/// A file that cannot be read is skipped with a warning: scan quarantines it.
pub fn check_unchecked(
    cfg: &Config,
    db: &Db,
    dataset: Option<&str>,
    progress: &dyn crate::progress::Progress,
) -> Result<u64> {
    check_some(cfg, db, dataset, None, progress)
}

/// [`check_unchecked`] for the partitions of `dataset` in `only`.
pub fn check_partitions(cfg: &Config, db: &Db, dataset: &str, only: &BTreeSet<String>) -> Result<u64> {
    check_some(cfg, db, Some(dataset), Some(only), &crate::progress::Silent)
}

fn check_some(
    cfg: &Config,
    db: &Db,
    dataset: Option<&str>,
    only: Option<&BTreeSet<String>>,
    progress: &dyn crate::progress::Progress,
) -> Result<u64> {
    let mut todo = super::findings::unchecked(db, dataset)?;
    if let Some(only) = only {
        todo.retain(|(_, p)| only.contains(p));
    }
    if todo.is_empty() {
        return Ok(0);
    }
    progress.set_length(todo.len() as u64);
    let mut files: BTreeMap<(String, String), Vec<CatalogFile>> = BTreeMap::new();
    for f in crate::catalog::files(db, dataset)? {
        files
            .entry((f.dataset.clone(), f.file.partition.clone()))
            .or_default()
            .push(f);
    }
    for (ds_name, partition) in &todo {
        let Ok(ds) = cfg.dataset(ds_name) else { continue };
        let list = files.remove(&(ds_name.clone(), partition.clone())).unwrap_or_default();
        let (found, rows) = check_partition(cfg, ds, partition, &list)?;
        record(&db.conn, ds_name, &found, &rows, Origin::Check, &BTreeMap::new()).map_err(db.err())?;
        progress.inc(1);
    }
    progress.finish();
    Ok(todo.len() as u64)
}

type Checked = (BTreeMap<String, Vec<super::Finding>>, BTreeMap<String, u64>);

/// Read the files of one partition and check them, each on its own.
fn check_partition(
    cfg: &Config,
    ds: &crate::config::DatasetConfig,
    partition: &str,
    files: &[CatalogFile],
) -> Result<Checked> {
    let key = PartitionKey::of(ds, partition);
    let range = key.range(ds);
    let mut rows = BTreeMap::from([(partition.to_string(), 0u64)]);
    let Some(mut checker) = Checker::new(ds, &key.series, crate::time::now_ns()) else {
        return Ok((BTreeMap::from([(partition.to_string(), Vec::new())]), rows));
    };
    for f in files.iter().filter(|f| !f.drift) {
        let path = cfg.tier_root(&f.tier)?.join(&f.file.relpath);
        checker.break_sequence();
        match check_file(ds, partition, range, &path, &mut checker) {
            Ok(n) => *rows.entry(partition.to_string()).or_default() += n,
            Err(e) => tracing::warn!(file = %path.display(), error = %e, "quality: cannot read; skipped"),
        }
    }
    let mut found = checker.finish();
    found.entry(partition.to_string()).or_default();
    Ok((found, rows))
}

/// Stream one file through `checker`; returns its rows.
fn check_file(
    ds: &crate::config::DatasetConfig,
    partition: &str,
    range: Option<(i64, i64)>,
    path: &std::path::Path,
    checker: &mut Checker,
) -> Result<u64> {
    let unit = crate::parquet_io::unit_ns(ds.time_unit());
    let (_, reader) = open_batches(path, BATCH_ROWS)?;
    checker.set_file(Some(path));
    let (mut prev, mut rows) = (i64::MIN, 0u64);
    for b in reader {
        let b = conform(&b.map_err(Error::arrow(path))?, ds, path)?;
        let ts_col = b
            .schema()
            .index_of(&ds.time_column)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        for (i, &t) in super::values::ints(b.column(ts_col))?.values().iter().enumerate() {
            let t = t.saturating_mul(unit);
            if t < prev {
                checker.note(Kind::OutOfOrder, Some(partition), &b, i, path);
            }
            prev = prev.max(t);
            if range.is_some_and(|(s, e)| t < s || t >= e) {
                checker.note(Kind::OutsidePartition, Some(partition), &b, i, path);
            }
        }
        rows += b.num_rows() as u64;
        checker.observe(partition, &b)?;
    }
    Ok(rows)
}
