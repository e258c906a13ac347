//! `export`: hand a slice of a dataset to a backtest framework in its own
//! format.
//!
//! Owns choosing the files (any tier, from the catalog), pinning them while
//! they are read so no compaction or tier move deletes them underneath, and
//! streaming them through the same k-way merge compaction uses, so the rows
//! come out sorted by time and without duplicates even from uncompacted
//! files. Memory is bounded by `compaction.memory_limit`, not by the range
//! asked for. How rows look in each framework's files is [`formats`]'s
//! business.

mod columns;
mod formats;
pub mod manifest;
mod nautilus;
mod npz;
pub mod quality;
mod wide;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow::array::RecordBatch;
use serde::Serialize;

pub use formats::Format;

use crate::catalog::partition_values;
use crate::catalog::{files as catalog_files, CatalogFile};
use crate::config::{Config, DatasetConfig};
use crate::engine::merge::{MergeCtx, MergeInput, Sink};
use crate::engine::pins;
use crate::engine::rewrite::{merge_inputs, merge_shape, MergeOptions, RewriteTotals};
use crate::error::{Error, Result};
use crate::layout;
use crate::state::{db_err, Db};

/// What to export. Times are nanoseconds since the epoch, `from` inclusive,
/// `to` exclusive.
#[derive(Debug, Clone)]
pub struct Request {
    pub dataset: String,
    pub exchange: Option<String>,
    /// Empty: every symbol.
    pub symbols: Vec<String>,
    pub timeframe: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub format: Format,
    pub out: PathBuf,
    /// Decimals of prices and sizes in the nautilus format, which must equal
    /// the backtest's instrument's (default 8, 8).
    pub precision: Option<(u32, u32)>,
    /// Refuse when the data has findings of these kinds (`data.require_clean`).
    pub require_clean: Option<Vec<crate::quality::Kind>>,
    /// Read what this lake snapshot named (`data.snapshot`), not the live files.
    pub snapshot: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportedFile {
    pub path: String,
    /// `exchange=…/symbol=…[/timeframe=…]`, or empty for a file of several series.
    pub series: String,
    pub rows: u64,
    pub bytes: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct ExportReport {
    pub dataset: String,
    pub format: String,
    pub out: String,
    pub files: Vec<ExportedFile>,
    pub rows: u64,
    /// Source files read, per tier.
    pub source_files: BTreeMap<String, u64>,
    pub duplicates_removed: u64,
    pub seconds: f64,
    /// Quality findings of the partitions read.
    pub quality: Vec<crate::quality::FindingRow>,
    /// The fingerprint of the rows exported ([`manifest`]).
    pub data_fingerprint: String,
    /// The lake snapshot that named the files read (`None` without a lake).
    pub snapshot: Option<i64>,
    /// What was read and handed over, partition by partition.
    #[serde(skip)]
    pub manifest: Option<manifest::Manifest>,
}

pub use crate::time::parse_time;

/// The files of each series that the request touches, by series key: the
/// catalog's, or those of the lake snapshot the request names.
fn select(cfg: &Config, db: &Db, req: &Request, ds: &DatasetConfig) -> Result<BTreeMap<String, Vec<CatalogFile>>> {
    let files = match req.snapshot {
        Some(n) => at_snapshot(cfg, db, &req.dataset, n)?,
        None => catalog_files(db, Some(&req.dataset))?,
    };
    let mut out: BTreeMap<String, Vec<CatalogFile>> = BTreeMap::new();
    for f in files {
        if f.drift || !(cfg.tiers.contains_key(&f.tier) || f.tier == TRASH) {
            continue;
        }
        let values = partition_values(&f.file.partition);
        let get = |c: &str| values.iter().find(|(k, _)| k == c).map(|(_, v)| v.as_str());
        if let Some(x) = &req.exchange {
            if get("exchange") != Some(x) {
                continue;
            }
        }
        if !req.symbols.is_empty() && !get("symbol").is_some_and(|s| req.symbols.iter().any(|r| r == s)) {
            continue;
        }
        if let Some(tf) = &req.timeframe {
            if ds.partition_by.iter().any(|c| c == "timeframe") && get("timeframe") != Some(tf) {
                continue;
            }
        }
        if req.from.is_some_and(|from| f.file.max_ts < from) || req.to.is_some_and(|to| f.file.min_ts >= to) {
            continue;
        }
        let series = crate::layout::PartitionKey::of(ds, &f.file.partition).series;
        out.entry(series).or_default().push(f);
    }
    Ok(out)
}

/// The pseudo-tier of a file a lake snapshot names that has been retired
/// since and waits in the trash (its relpath is under `trash/`).
const TRASH: &str = "trash";

/// The files snapshot `n` named, as catalog entries: by tier where they
/// still are under a tier's root, else in the trash. Duplicates rank by
/// the arrival the lake kept, else the catalog's, else the snapshot's time.
fn at_snapshot(cfg: &Config, db: &Db, dataset: &str, n: i64) -> Result<Vec<CatalogFile>> {
    let roots: Vec<(String, String)> = cfg
        .tiers
        .keys()
        .map(|t| Ok((t.clone(), crate::lake::file_path(cfg, t, "")?)))
        .collect::<Result<_>>()?;
    let trash = crate::lake::file_path_in(&cfg.trash_dir(), "");
    let mut out = Vec::new();
    for f in crate::lake::snapshot::files_at(cfg, dataset, n)? {
        let located = roots
            .iter()
            .find_map(|(t, root)| {
                f.path
                    .strip_prefix(root.as_str())
                    .map(|rel| (t.clone(), rel.to_string()))
            })
            .or_else(|| {
                f.path
                    .strip_prefix(trash.as_str())
                    .map(|rel| (TRASH.to_string(), rel.to_string()))
            });
        let Some((tier, relpath)) = located else {
            return Err(Error::Invalid(format!(
                "snapshot {n} names {}, which is under no tier's root nor the trash (did the root move? `mdkeep lake rebuild` starts a new history)",
                f.path
            )));
        };
        let arrival = match f.arrival_ns {
            Some(a) => a,
            None => crate::catalog::arrival_of(db, &tier, &relpath)?.unwrap_or(f.added_ns),
        };
        out.push(CatalogFile {
            dataset: dataset.to_string(),
            tier,
            file: crate::engine::series::PlanFile {
                relpath,
                partition: f.partition,
                rows: f.rows,
                bytes: f.bytes,
                min_ts: f.min_ts,
                max_ts: f.max_ts,
                mtime_ns: 0,
                arrival_ns: arrival,
            },
            drift: false,
            misfiled: false,
            compacted: false,
        });
    }
    Ok(out)
}

/// Where a selected file is read from.
fn source_root(cfg: &Config, tier: &str) -> Result<PathBuf> {
    if tier == TRASH {
        return Ok(cfg.trash_dir());
    }
    cfg.tier_root(tier)
}

/// Refuse a request whose data has findings of the kinds it requires clean
/// (before a job is queued); nothing is pinned or written.
pub fn check_clean(cfg: &Config, db: &Db, req: &Request) -> Result<()> {
    let Some(kinds) = &req.require_clean else { return Ok(()) };
    let ds = cfg.dataset(&req.dataset)?;
    let chosen = select(cfg, db, req, ds)?;
    quality::require_clean(
        &req.dataset,
        &quality::findings_of(cfg, db, &req.dataset, &chosen)?,
        kinds,
    )
}

/// Pins that go when the export ends, however it ends.
struct Pins<'a> {
    db: &'a Db,
    owner: pins::PinOwner,
    files: Vec<(String, String)>,
}

impl Drop for Pins<'_> {
    fn drop(&mut self) {
        for (tier, rel) in &self.files {
            let _ = pins::unpin(&self.db.conn, tier, rel, Some(self.owner.name()));
        }
    }
}

/// Pin the selected files in one transaction with the catalog read, so a
/// rewrite either committed before (and the selection has its outputs) or
/// sees the pins and sends its inputs to the trash instead of deleting them.
fn select_and_pin<'a>(
    cfg: &Config,
    db: &'a Db,
    req: &Request,
    ds: &DatasetConfig,
    owner: &pins::PinOwner,
) -> Result<(BTreeMap<String, Vec<CatalogFile>>, Pins<'a>)> {
    let dberr = db_err(&db.path);
    // A read transaction: the catalog read and the pins see one snapshot.
    let tx = db.conn.unchecked_transaction().map_err(&dberr)?;
    let chosen = select(cfg, db, req, ds)?;
    let mut pins = Pins {
        db,
        owner: owner.clone(),
        files: Vec::new(),
    };
    for f in chosen.values().flatten() {
        let (tier, rel) = pin_key(f);
        pins::pin(&tx, &tier, &rel, owner).map_err(&dberr)?;
        pins.files.push((tier, rel));
    }
    tx.commit().map_err(&dberr)?;
    Ok((chosen, pins))
}

/// What pins a selected file: its tier and relpath, or for a file in the
/// trash (`<tier>/<relpath>[.n]`) the ones it had, which its trash entry keeps.
fn pin_key(f: &CatalogFile) -> (String, String) {
    if f.tier != TRASH {
        return (f.tier.clone(), f.file.relpath.clone());
    }
    let (tier, rel) = f.file.relpath.split_once('/').unwrap_or(("", &f.file.relpath));
    let rel = match rel.rsplit_once('.') {
        Some((base, n)) if n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty() => base,
        _ => rel,
    };
    (tier.to_string(), rel.to_string())
}

/// Passes on the rows of merged batches that fall in the requested range,
/// and adds them to the digest.
struct RangeSink<'a> {
    ctx: &'a MergeCtx<'a>,
    ds: &'a DatasetConfig,
    series: &'a str,
    /// Nanoseconds per unit of the time column.
    unit: i64,
    from: Option<i64>,
    to: Option<i64>,
    digest: &'a RefCell<manifest::Digest>,
    /// `None` when only the digest is wanted ([`digest`]).
    out: Option<Box<dyn columns::SeriesOut>>,
}

impl Sink for RangeSink<'_> {
    fn emit(&mut self, batch: &RecordBatch, _prio: Option<arrow::array::ArrayRef>) -> Result<()> {
        // Merged batches are sorted by time: the range is one contiguous slice.
        let ts = self.ctx.ts_values(batch)?;
        let lo = self.from.map_or(0, |f| ts.partition_point(|&t| t < f));
        let hi = self.to.map_or(ts.len(), |t| ts.partition_point(|&x| x < t));
        if hi > lo {
            let slice = batch.slice(lo, hi - lo);
            let ns: Vec<i64> = ts[lo..hi].iter().map(|t| t.saturating_mul(self.unit)).collect();
            self.digest.borrow_mut().add(self.ds, self.series, &slice, &ns)?;
            if let Some(out) = &mut self.out {
                out.write(&slice)?;
            }
        }
        Ok(())
    }
}

/// The datasets a Freqtrade export of futures candles brings along, so a
/// futures backtest can charge funding: mark, index and premium-index
/// candles, and funding rates.
const FREQTRADE_COMPANIONS: [&str; 4] = ["mark", "index", "premium", "funding"];

/// Run an export. `owner` holds the pins while it reads (a job, or a run's lease).
/// A Freqtrade export of futures candles also writes the same symbols'
/// [`FREQTRADE_COMPANIONS`] that have data, in Freqtrade's `futures/`
/// layout; its manifest covers them.
pub fn export(cfg: &Config, db: &Db, req: &Request, owner: &pins::PinOwner) -> Result<ExportReport> {
    let mut report = export_one(cfg, db, req, owner)?;
    let series: Vec<String> = report.files.iter().map(|f| f.series.clone()).collect();
    for sub in companions(cfg, db, req, &series)? {
        let r = export_one(cfg, db, &sub, owner)?;
        report.files.extend(r.files);
        for (tier, n) in r.source_files {
            *report.source_files.entry(tier).or_default() += n;
        }
        report.quality.extend(r.quality);
        if let (Some(m), Some(other)) = (report.manifest.as_mut(), r.manifest) {
            m.absorb(other);
            report.data_fingerprint = m.fingerprint.clone();
            report.snapshot = m.snapshot;
        }
    }
    Ok(report)
}

/// The companion exports of a Freqtrade export of the `series` keys (see
/// [`export`]): one request per companion dataset with data for their
/// futures symbols.
fn companions(cfg: &Config, db: &Db, req: &Request, series: &[String]) -> Result<Vec<Request>> {
    if req.format != Format::Freqtrade || req.dataset != "ohlcv" {
        return Ok(Vec::new());
    }
    let mut symbols: Vec<String> = series
        .iter()
        .filter_map(|s| {
            partition_values(s)
                .into_iter()
                .find(|(k, _)| k == "symbol")
                .map(|(_, v)| v)
        })
        .filter(|s| formats::is_futures_symbol(s))
        .collect();
    symbols.sort();
    symbols.dedup();
    let mut out = Vec::new();
    if symbols.is_empty() {
        return Ok(out);
    }
    for name in FREQTRADE_COMPANIONS {
        let Some(ds) = cfg.datasets.get(name) else { continue };
        let sub = Request {
            dataset: name.to_string(),
            symbols: symbols.clone(),
            timeframe: None,
            require_clean: None,
            ..req.clone()
        };
        if !select(cfg, db, &sub, ds)?.is_empty() {
            out.push(sub);
        }
    }
    Ok(out)
}

fn export_one(cfg: &Config, db: &Db, req: &Request, owner: &pins::PinOwner) -> Result<ExportReport> {
    let started = Instant::now();
    let ds = cfg.dataset(&req.dataset)?;
    for (what, v) in [
        ("exchange", req.exchange.as_deref()),
        ("timeframe", req.timeframe.as_deref()),
    ] {
        if let Some(v) = v {
            layout::check_segment(what, v)?;
        }
    }
    for s in &req.symbols {
        layout::check_segment("symbol", s)?;
    }
    req.format.check(ds, req)?;
    let (chosen, pins) = select_and_pin(cfg, db, req, ds, owner)?;
    if chosen.is_empty() {
        return Err(Error::Invalid(format!(
            "nothing to export: no cataloged files of `{}` match{} (run `mdkeep ls --dataset {}`)",
            req.dataset,
            describe(req),
            req.dataset
        )));
    }
    crate::failpoint::hit(crate::failpoint::EXPORT_PINNED);
    let snapshot = match req.snapshot {
        Some(n) => Some(n),
        None => {
            let paths = chosen
                .values()
                .flatten()
                .map(|f| crate::lake::file_path(cfg, &f.tier, &f.file.relpath))
                .collect::<Result<Vec<_>>>()?;
            crate::lake::snapshot::naming(cfg, &req.dataset, &paths)
        }
    };
    let findings = quality::findings_of(cfg, db, &req.dataset, &chosen)?;
    if let Some(kinds) = &req.require_clean {
        quality::require_clean(&req.dataset, &findings, kinds)?;
    }
    std::fs::create_dir_all(&req.out).map_err(Error::io("create folder", &req.out))?;
    let result = run_scratch(cfg, ds, req, &chosen, true);
    drop(pins);
    let (files, m, mut manifest) = result?;
    manifest.snapshot = snapshot;
    let mut report = ExportReport {
        dataset: req.dataset.clone(),
        format: req.format.name().to_string(),
        out: req.out.display().to_string(),
        rows: files.iter().filter(|f| !f.series.is_empty()).map(|f| f.rows).sum(),
        files,
        duplicates_removed: m.duplicates_removed,
        quality: findings,
        data_fingerprint: manifest.fingerprint.clone(),
        snapshot,
        manifest: Some(manifest),
        ..Default::default()
    };
    if report.rows == 0 {
        report.rows = report.files.iter().map(|f| f.rows).max().unwrap_or(0);
    }
    for f in chosen.values().flatten() {
        *report.source_files.entry(f.tier.clone()).or_default() += 1;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The manifest an export of `req` would record now, without writing
/// anything: the same selection, pins and merge, with no output.
pub fn digest(cfg: &Config, db: &Db, req: &Request, owner: &pins::PinOwner) -> Result<manifest::Manifest> {
    let ds = cfg.dataset(&req.dataset)?;
    let (chosen, pins) = select_and_pin(cfg, db, req, ds, owner)?;
    let result = run_scratch(cfg, ds, req, &chosen, false);
    drop(pins);
    let mut m = result?.2;
    let series: Vec<String> = chosen.keys().cloned().collect();
    for sub in companions(cfg, db, req, &series)? {
        m.absorb(digest(cfg, db, &sub, owner)?);
    }
    Ok(m)
}

fn describe(req: &Request) -> String {
    let mut s = String::new();
    if let Some(x) = &req.exchange {
        s += &format!(" exchange={x}");
    }
    if !req.symbols.is_empty() {
        s += &format!(" symbol={}", req.symbols.join(","));
    }
    if let Some(tf) = &req.timeframe {
        s += &format!(" timeframe={tf}");
    }
    for (k, t) in [("from", req.from), ("to", req.to)] {
        if let Some(t) = t {
            s += &format!(" {k}={}", crate::time::rfc3339(t));
        }
    }
    s
}

/// [`run`] in a scratch folder of its own, removed when it ends.
fn run_scratch(
    cfg: &Config,
    ds: &DatasetConfig,
    req: &Request,
    chosen: &BTreeMap<String, Vec<CatalogFile>>,
    write: bool,
) -> Result<(Vec<ExportedFile>, RewriteTotals, manifest::Manifest)> {
    let scratch = crate::engine::Scratch::create(cfg.tmp_dir().join(format!(
        "export-{}-{}",
        std::process::id(),
        crate::state::now_ns()
    )))?;
    run(cfg, ds, req, chosen, scratch.path(), write)
}

fn run(
    cfg: &Config,
    ds: &DatasetConfig,
    req: &Request,
    chosen: &BTreeMap<String, Vec<CatalogFile>>,
    scratch: &Path,
    write: bool,
) -> Result<(Vec<ExportedFile>, RewriteTotals, manifest::Manifest)> {
    let (batch_rows, fan_in) = merge_shape(cfg.compaction.memory_limit.0 as usize);
    let digest = RefCell::new(manifest::Digest::default());
    let ctx = MergeCtx::new(ds, batch_rows);
    let unit = crate::parquet_io::unit_ns(ds.time_unit());
    let (from, to) = (req.from.map(|t| t.div_euclid(unit)), req.to.map(|t| t.div_euclid(unit)));
    let mut m = RewriteTotals::default();
    let mut exporter = formats::Exporter::new(req, ds, scratch);
    for (series, files) in chosen {
        let inputs: Vec<MergeInput> = files
            .iter()
            .map(|f| {
                let root = source_root(cfg, &f.tier)?;
                Ok(MergeInput {
                    path: root.join(&f.file.relpath),
                    moved_to: Some(cfg.trash_dir().join(&f.tier).join(&f.file.relpath)),
                    prio: cfg.keep_rule(ds).priority(f.file.arrival_ns),
                    min_ts_ns: f.file.min_ts,
                    max_ts_ns: f.file.max_ts,
                    rows: f.file.rows,
                    filed: None,
                })
            })
            .collect::<Result<_>>()?;
        let values = partition_values(series);
        // An unsorted input restarts the merge: the series file starts over with it.
        let sub = scratch.join(format!("s{}", exporter.count()));
        std::fs::create_dir_all(&sub).map_err(Error::io("create folder", &sub))?;
        let make = || {
            // A restart starts the series' digest over too.
            digest.borrow_mut().reset(series);
            Ok(RangeSink {
                ctx: &ctx,
                ds,
                series,
                unit,
                from,
                to,
                digest: &digest,
                out: if write {
                    Some(exporter.series(series, &values)?)
                } else {
                    None
                },
            })
        };
        let (sink, _) = merge_inputs(&MergeOptions::new(&ctx, &sub, fan_in), inputs, &mut m, make, |s| {
            drop(s);
            Ok(())
        })?;
        if let Some(out) = sink.out {
            exporter.finish_series(out)?;
        }
    }
    let files: Vec<(String, Vec<CatalogFile>)> = chosen.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let manifest = digest.into_inner().manifest(&req.dataset, &files);
    let exported = if write { exporter.finish()? } else { Vec::new() };
    Ok((exported, m, manifest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse() {
        assert_eq!(parse_time("1970-01-02").unwrap(), 86_400_000_000_000);
        assert_eq!(parse_time("1970-01-01T00:00:01Z").unwrap(), 1_000_000_000);
        assert_eq!(parse_time("5").unwrap(), 5);
        assert!(parse_time("yesterday").is_err());
    }
}
