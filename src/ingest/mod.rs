//! `ingest`: bring outside data into the layout.
//!
//! Owns conforming foreign batches to a dataset's schema (checked before any
//! byte is written), splitting them by time partition into new files through
//! the safe write path, and cataloging what was written. Reading particular
//! foreign formats lives in [`freqtrade`] and [`parquet_files`].

pub mod freqtrade;
pub mod parquet_files;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::array::{AsArray, RecordBatch, UInt32Array};
use arrow::compute::{cast, take};
use arrow::datatypes::{DataType, Int64Type};
use serde::Serialize;

use crate::catalog;
use crate::config::{Config, DatasetConfig};
use crate::error::{Error, Result};
use crate::layout;
use crate::parquet_io::{unit_ns, DataFileWriter, WriteOptions, WrittenFile};
use crate::state::Db;

/// Buffered row groups across all open partition files; beyond it the
/// largest is flushed, so memory does not grow with the number of partitions.
const SINK_MEMORY: usize = 64 << 20;

#[derive(Debug, Default, Serialize)]
pub struct IngestReport {
    pub sources: Vec<SourceReport>,
    pub skipped: Vec<Skipped>,
    pub files_written: u64,
    pub rows: u64,
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct SourceReport {
    pub source: String,
    pub dataset: String,
    pub partition: String,
    pub rows: u64,
    pub files: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Skipped {
    pub source: String,
    pub reason: String,
}

/// Writes conformed batches of one series into per-time-partition files
/// named `<stem>.parquet`. Files are never published over another: an
/// ingest stem carries a hash of the source's bytes, so re-ingesting the
/// same source finds its files already there and writes nothing, while two
/// sources with the same name keep every row.
pub struct PartitionSink<'a> {
    root: PathBuf,
    ds: &'a DatasetConfig,
    fixed: Vec<(String, String)>,
    stem: String,
    opts: WriteOptions,
    open: BTreeMap<String, DataFileWriter>,
    /// Checks the rows as they pass (ingest's own sources).
    checker: Option<crate::quality::Checker>,
    /// Latest time seen, ns: a row before it is out of order.
    latest: i64,
}

impl<'a> PartitionSink<'a> {
    /// `fixed` holds a value for each of the dataset's `partition_by` columns.
    pub fn try_new(cfg: &Config, ds: &'a DatasetConfig, fixed: Vec<(String, String)>, stem: &str) -> Result<Self> {
        for col in &ds.partition_by {
            let v = fixed.iter().find(|(k, _)| k == col).map(|(_, v)| v).ok_or_else(|| {
                Error::Invalid(format!(
                    "dataset `{}` needs a value for partition column `{col}`",
                    ds.name
                ))
            })?;
            layout::check_partition_value(v)?;
        }
        let fixed = ds
            .partition_by
            .iter()
            .map(|c| {
                (
                    c.clone(),
                    fixed.iter().find(|(k, _)| k == c).expect("checked").1.clone(),
                )
            })
            .collect();
        layout::check_segment("file name", stem)?;
        let (tier, root) = cfg.hot_tier();
        Ok(PartitionSink {
            root,
            ds,
            fixed,
            stem: stem.to_string(),
            opts: WriteOptions::zstd(cfg.tiers[tier].zstd_level),
            open: BTreeMap::new(),
            checker: None,
            latest: i64::MIN,
        })
    }

    /// Check the rows of `source` as they are written (see `quality`).
    pub fn checked(mut self, source: &Path) -> Self {
        self.checker =
            crate::quality::Checker::new(self.ds, &layout::partition_key(&self.fixed), crate::time::now_ns());
        if let Some(q) = self.checker.as_mut() {
            q.set_file(Some(source));
        }
        self
    }

    /// Mark the files as sorted by (time, key) without duplicates, as
    /// compaction would leave them: for writers that know it (rollup).
    pub fn sorted(mut self) -> Self {
        self.opts.compacted = true;
        self
    }

    /// Replace a file of the same name: only for derived data recomputed
    /// in full from its sources (a rollup's candles of one period).
    pub fn replacing(mut self) -> Self {
        self.opts.replace = true;
        self
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let ts_idx = batch
            .schema()
            .index_of(&self.ds.time_column)
            .map_err(Error::arrow(&self.root))?;
        let ts = cast(batch.column(ts_idx), &DataType::Int64).map_err(Error::arrow(&self.root))?;
        let ts = ts.as_primitive::<Int64Type>();
        let scale = unit_ns(self.ds.time_unit());
        // Group row indices by period; rows stay in their input order.
        let mut groups: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        let mut last: Option<(i64, i64, String)> = None;
        for (i, v) in ts.values().iter().enumerate() {
            let ns = v.saturating_mul(scale);
            if ns < self.latest {
                if let Some(q) = self.checker.as_mut() {
                    let src = std::path::PathBuf::from(q.file().unwrap_or_default());
                    q.note(crate::quality::Kind::OutOfOrder, None, batch, i, &src);
                }
            }
            self.latest = self.latest.max(ns);
            let period = match &last {
                Some((lo, hi, p)) if ns >= *lo && ns < *hi => p.clone(),
                _ => {
                    let p = self.ds.period_of(ns);
                    let (lo, hi) = self.ds.period_range(&p).unwrap_or((ns, ns + 1));
                    last = Some((lo, hi, p.clone()));
                    p
                }
            };
            groups.entry(period).or_default().push(i as u32);
        }
        for (period, idx) in groups {
            let part = if idx.len() == batch.num_rows() {
                batch.clone()
            } else {
                let idx = UInt32Array::from(idx);
                let cols = batch
                    .columns()
                    .iter()
                    .map(|c| take(c, &idx, None))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(Error::arrow(&self.root))?;
                RecordBatch::try_new(batch.schema(), cols).map_err(Error::arrow(&self.root))?
            };
            if let Some(q) = self.checker.as_mut() {
                let mut values = self.fixed.clone();
                values.push((self.ds.time_partition.clone(), period.clone()));
                q.observe(&layout::partition_key(&values), &part)?;
            }
            if !self.open.contains_key(&period) {
                let mut values = self.fixed.clone();
                values.push((self.ds.time_partition.clone(), period.clone()));
                let dir = layout::partition_dir(&self.root, self.ds, &values)?;
                if self.opts.columns.is_empty() {
                    self.opts = self.opts.clone().fit(&batch.schema(), Some(&part), Some(self.ds));
                }
                let w =
                    DataFileWriter::try_new(&dir.join(format!("{}.parquet", self.stem)), batch.schema(), &self.opts)?;
                self.open.insert(period.clone(), w);
            }
            self.open.get_mut(&period).expect("just opened").write(&part)?;
        }
        self.honour_budget()
    }

    fn honour_budget(&mut self) -> Result<()> {
        while self.open.values().map(|w| w.in_progress_size()).sum::<usize>() > SINK_MEMORY {
            let biggest = self
                .open
                .values_mut()
                .max_by_key(|w| w.in_progress_size())
                .expect("non-empty");
            biggest.flush()?;
        }
        Ok(())
    }

    /// Finish every file; each appears under its final name only now. A
    /// name already taken holds the same source's rows (the stem names the
    /// source's bytes): that file is left as it is and not returned.
    pub fn close(self) -> Result<Vec<WrittenFile>> {
        Ok(self.close_checked()?.0)
    }

    /// [`close`](Self::close), with the findings per partition when checked.
    pub fn close_checked(mut self) -> Result<(Vec<WrittenFile>, Option<Findings>)> {
        let found = self.checker.as_mut().map(|q| q.finish());
        let mut out = Vec::new();
        for w in self.open.into_values() {
            match w.close() {
                Ok(f) => out.push(f),
                Err(Error::Io { source, path, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => {
                    tracing::info!(path = %path.display(), "already ingested; kept as it is");
                }
                Err(e) => return Err(e),
            }
        }
        Ok((out, found))
    }
}

/// Findings per partition key.
pub type Findings = BTreeMap<String, Vec<crate::quality::Finding>>;

/// Record what ingest's checks found, for each partition whose only files
/// are the ones just written (other files there were not read: those
/// partitions stay for an on-demand check).
fn record_findings(db: &Db, ds: &DatasetConfig, root: &Path, files: &[WrittenFile], found: &Findings) -> Result<()> {
    let mut rows: BTreeMap<String, u64> = BTreeMap::new();
    let mut mine: BTreeMap<String, u64> = BTreeMap::new();
    for f in files {
        let rel = f.path.strip_prefix(root).unwrap_or(&f.path);
        if let Some(l) = layout::locate(rel) {
            *mine.entry(l.partition_key()).or_default() += 1;
            *rows.entry(l.partition_key()).or_default() += f.rows;
        }
    }
    let whole: Findings = found
        .iter()
        .filter(|(p, _)| {
            mine.get(*p)
                .is_some_and(|&n| catalog::files_in_partition(db, &ds.name, p).is_ok_and(|all| all == n))
        })
        .map(|(p, f)| (p.clone(), f.clone()))
        .collect();
    crate::quality::findings::record(
        &db.conn,
        &ds.name,
        &whole,
        &rows,
        crate::quality::findings::Origin::Check,
        &BTreeMap::new(),
    )
    .map_err(db.err())
}

/// Catalog files mdkeep itself just wrote under the hot tier (no settle
/// time: we know they are complete) and record the ingest in the history.
pub fn register(cfg: &Config, db: &mut Db, source: &Path, ds: &DatasetConfig, files: &[WrittenFile]) -> Result<()> {
    let (tier, root) = cfg.hot_tier();
    let tx = db.conn.transaction().map_err(crate::state::db_err(&db.path))?;
    let dberr = crate::state::db_err(&db.path);
    for f in files {
        let entry = catalog::scan::entry_for_written(&root, tier, &ds.name, &ds.time_column, f)?;
        catalog::upsert(&tx, &entry).map_err(&dberr)?;
        catalog::record(
            &tx,
            &catalog::HistoryEvent {
                action: catalog::Action::Ingest,
                dataset: Some(&ds.name),
                partition: Some(&entry.partition),
                path: Some(&entry.relpath),
                rows: Some(entry.rows),
                bytes: Some(entry.bytes),
                reason: Some(&source.display().to_string()),
            },
        )
        .map_err(&dberr)?;
    }
    tx.commit()
        .map_err(&dberr)
        .map(|()| drop(crate::lake::after_change(cfg, &db.conn)))
}

/// One series to import: where it came from and where it goes.
pub struct Series<'a> {
    pub ds: &'a DatasetConfig,
    pub source: &'a Path,
    /// Values of the dataset's `partition_by` columns.
    pub fixed: Vec<(String, String)>,
}

/// Stream `batches` (already conformed) of one series into the layout and
/// catalog the result.
pub fn ingest_series(
    cfg: &Config,
    db: &mut Db,
    series: Series,
    batches: impl Iterator<Item = Result<RecordBatch>>,
    report: &mut IngestReport,
) -> Result<()> {
    let Series { ds, source, fixed } = series;
    let partition = layout::partition_key(&fixed);
    let stem = format!("{}-{}", stem_for(source), source_hash(source, &ds.name, &fixed));
    let mut sink = PartitionSink::try_new(cfg, ds, fixed, &stem)?.checked(source);
    for b in batches {
        sink.write(&b?)?;
    }
    let (files, found) = sink.close_checked()?;
    register(cfg, db, source, ds, &files)?;
    if let Some(found) = found {
        record_findings(db, ds, &cfg.hot_tier().1, &files, &found)?;
    }
    let rows: u64 = files.iter().map(|f| f.rows).sum();
    report.files_written += files.len() as u64;
    report.rows += rows;
    report.bytes += files.iter().map(|f| f.bytes).sum::<u64>();
    report.sources.push(SourceReport {
        source: source.display().to_string(),
        dataset: ds.name.clone(),
        partition,
        rows,
        files: files.iter().map(|f| f.path.display().to_string()).collect(),
    });
    Ok(())
}

/// 12 hex digits naming a source's bytes, dataset and partition values (or,
/// when it cannot be read again, this moment): outputs of different sources
/// never share a name, and the same source always gets the same one.
fn source_hash(source: &Path, dataset: &str, fixed: &[(String, String)]) -> String {
    use std::hash::Hasher;
    use std::io::Read;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    h.write(dataset.as_bytes());
    for (k, v) in fixed {
        h.write(k.as_bytes());
        h.write(v.as_bytes());
    }
    match std::fs::File::open(source) {
        Ok(mut f) => {
            let mut buf = vec![0u8; 1 << 16];
            loop {
                match f.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => h.write(&buf[..n]),
                    Err(_) => {
                        h.write_i64(crate::state::now_ns());
                        break;
                    }
                }
            }
        }
        Err(_) => h.write_i64(crate::state::now_ns()),
    }
    format!("{:012x}", h.finish() & 0xffff_ffff_ffff)
}

/// Stem for files derived from `source`: its name, made safe for a path segment.
pub fn stem_for(source: &Path) -> String {
    let name = source.file_name().and_then(|n| n.to_str()).unwrap_or("source");
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("ingest-{safe}")
}
