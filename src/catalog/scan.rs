//! `scan`: reconcile the catalog with what is on disk.
//!
//! Owns walking the tier roots, deciding per file whether it is unchanged
//! (size and mtime as cataloged: the body is not read), pending (too young,
//! a collector may still be writing), corrupt (quarantined, never deleted),
//! drifted or misfiled, and applying all changes in one transaction.
//! It does not fix drift or misfiled rows; compaction does that.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::progress::Progress;
use rayon::prelude::*;
use serde::Serialize;
use walkdir::WalkDir;

use super::{FileEntry, Seen};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::layout;
use crate::parquet_io::{inspect, FileInfo};
use crate::state::{now_ns, Db};

#[derive(Debug, Default, Serialize)]
pub struct ScanReport {
    pub added: u64,
    pub updated: u64,
    pub removed: u64,
    pub unchanged: u64,
    /// Too young to touch: a collector may still be writing them.
    pub pending: Vec<String>,
    /// Unreadable files, moved to the quarantine folder.
    pub corrupt: Vec<Corrupt>,
    /// Cataloged files whose schema differs from their dataset's and that
    /// could not be moved (pinned by a job); a drifted file is otherwise
    /// isolated like a corrupt one and listed under `corrupt` with its reason.
    pub drift: Vec<String>,
    /// Cataloged files holding rows outside their partition's time range.
    pub misfiled: Vec<String>,
    /// Files under a tier root that are not in any dataset's layout.
    pub ignored: Vec<Ignored>,
    /// Files that could not be handled now (unreadable for a reason that is
    /// not corruption, or that could not be moved): left alone, retried next run.
    pub skipped: Vec<Ignored>,
    /// Files of a rewrite not settled yet (an input whose retire is
    /// deferred, an output not rolled back yet): not cataloged, or their
    /// rows would count twice; settled by a later run's recovery.
    pub unsettled: Vec<Ignored>,
    /// Files whose footer was read in this scan (0 when nothing changed).
    pub files_read: u64,
    /// Store tiers that could not be listed; their catalog entries were kept.
    pub unreachable: Vec<Unreachable>,
    /// Interrupted rewrites finished or rolled back before scanning.
    pub recovered: crate::engine::journal::RecoveryReport,
    /// Files and rows in the catalog after the scan.
    pub files: u64,
    pub rows: u64,
    pub seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct Corrupt {
    pub path: String,
    pub reason: String,
    pub moved_to: String,
}

#[derive(Debug, Serialize)]
pub struct Unreachable {
    pub tier: String,
    pub error: String,
}

#[derive(Debug, Serialize)]
pub struct Ignored {
    pub path: String,
    pub reason: String,
}

struct Candidate {
    tier: String,
    root: PathBuf,
    relpath: String,
    dataset: String,
    partition: String,
    range: (i64, i64),
    seen: Seen,
}

impl Candidate {
    fn abs(&self) -> PathBuf {
        self.root.join(&self.relpath)
    }
}

/// Walk every tier root and bring the catalog in line with the disk.
///
/// A half-done rewrite leaves extra files on disk: callers settle it first
/// (`engine::journal::recover`, as `maintenance::settled_scan` does) and
/// put what recovery did in [`ScanReport::recovered`].
pub fn scan(cfg: &Config, db: &mut Db, progress: &dyn Progress) -> Result<ScanReport> {
    let started = Instant::now();
    let known = super::seen_files(db)?;
    let unsettled = crate::engine::deferred::unsettled_paths(&db.conn).map_err(db.err())?;
    let settle_ns = cfg.scan.settle_time.0.as_nanos() as i64;
    let now = now_ns();
    let mut report = ScanReport::default();
    let mut found = Found {
        cfg,
        known: &known,
        unsettled: &unsettled,
        present: HashSet::new(),
        todo: Vec::new(),
        now,
        settle_ns,
    };

    walk_local(cfg, db, &mut found, &mut report)?;
    list_stores(db, &mut found, &mut report)?;
    let Found { mut present, todo, .. } = found;

    let inspected = inspect_all(cfg, todo, progress)?;
    report.files_read = inspected.len() as u64;

    let tx = db.conn.transaction().map_err(crate::state::db_err(&db.path))?;
    let dberr = crate::state::db_err(&db.path);
    for (c, result) in inspected {
        record(cfg, &tx, c, result, &known, &mut present, &mut report)?;
    }
    for key in known.keys() {
        if !present.contains(key) {
            super::remove(&tx, &key.0, &key.1).map_err(&dberr)?;
            report.removed += 1;
        }
    }
    super::snapshot_usage(&tx, crate::state::now_ns()).map_err(&dberr)?;
    tx.commit().map_err(&dberr)?;
    crate::lake::after_change(cfg, &db.conn);
    progress.finish();

    fill_state(cfg, db, &mut report)?;
    report.seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        added = report.added,
        updated = report.updated,
        removed = report.removed,
        unchanged = report.unchanged,
        pending = report.pending.len(),
        corrupt = report.corrupt.len(),
        "scan done"
    );
    Ok(report)
}

/// Every data file under the local tier roots, sorted by name, into `found`.
fn walk_local(cfg: &Config, db: &mut Db, found: &mut Found, report: &mut ScanReport) -> Result<()> {
    for (tier, root) in cfg.tier_roots() {
        if !root.is_dir() {
            continue;
        }
        for entry in WalkDir::new(&root).follow_links(false).sort_by_file_name() {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let path = e.path().map(|p| p.display().to_string()).unwrap_or_default();
                    report.ignored.push(Ignored {
                        path,
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            let name = entry.file_name().to_string_lossy();
            if !entry.file_type().is_file() || !layout::is_data_file(&name) {
                continue;
            }
            let abs = entry.path();
            let Ok(rel) = abs.strip_prefix(&root) else { continue };
            let Some(rel) = rel.to_str() else {
                // No catalog key can name it; it would stop every run.
                odd_name(cfg, db, &tier, abs, rel, report)?;
                continue;
            };
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(e) => {
                    report.skipped.push(Ignored {
                        path: abs.display().to_string(),
                        reason: format!("stat: {e}; retried next run"),
                    });
                    continue;
                }
            };
            let seen = Seen {
                bytes: meta.len(),
                mtime_ns: mtime_ns(meta.modified().ok()),
            };
            found.file(report, &tier, &root, rel.replace('\\', "/"), seen);
        }
    }

    Ok(())
}

/// Read the footers of the files to (re)catalog, on `scan.threads` threads.
fn inspect_all(cfg: &Config, todo: Vec<Candidate>, progress: &dyn Progress) -> Result<Vec<(Candidate, Inspected)>> {
    progress.set_length(todo.len() as u64);
    let threads = match cfg.scan.threads {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
        n => n,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Invalid(format!("scan threads: {e}")))?;
    Ok(pool.install(|| {
        todo.into_par_iter()
            .map(|c| {
                let r = inspect_candidate(cfg, &c);
                progress.inc(1);
                (c, r)
            })
            .collect()
    }))
}

/// The catalog entry of a file inspected whole.
fn entry_of(cfg: &Config, c: &Candidate, info: FileInfo) -> FileEntry {
    let ds = &cfg.datasets[&c.dataset];
    let drift = ds.schema_drift(&info.schema);
    let misfiled = matches!((info.min_ts, info.max_ts), (Some(lo), Some(hi)) if lo < c.range.0 || hi >= c.range.1);
    FileEntry {
        tier: c.tier.clone(),
        relpath: c.relpath.clone(),
        dataset: c.dataset.clone(),
        partition: c.partition.clone(),
        rows: info.rows,
        bytes: c.seen.bytes,
        min_ts: info.min_ts,
        max_ts: info.max_ts,
        schema_fp: info.schema_fp,
        mtime_ns: c.seen.mtime_ns,
        arrival_ns: c.seen.mtime_ns,
        checksum: None,
        drift: (!drift.is_empty()).then(|| drift.join("; ")),
        misfiled,
        compacted: info.compacted,
    }
}

/// A readable file whose columns differ from its dataset's is isolated
/// like a corrupt one: compaction could never merge it, and a reader of the
/// dataset would trip on it. Its reason names each difference and the fix.
fn drifted(cfg: &Config, c: &Candidate, result: Inspected) -> Inspected {
    let Inspected::Ok(info) = result else { return result };
    let drift = cfg.datasets[&c.dataset].schema_drift(&info.schema);
    if drift.is_empty() {
        return Inspected::Ok(info);
    }
    Inspected::Corrupt(format!(
        "schema drift: {}; fix the file or dataset `{}`'s columns in the config, then move it back",
        drift.join("; "),
        c.dataset
    ))
}

/// One inspected file into the catalog (in the scan's transaction): an
/// entry, a file left for the next run, or a quarantined one.
fn record(
    cfg: &Config,
    tx: &rusqlite::Transaction,
    c: Candidate,
    result: Inspected,
    known: &std::collections::HashMap<(String, String), Seen>,
    present: &mut HashSet<(String, String)>,
    report: &mut ScanReport,
) -> Result<()> {
    let db_path = cfg.state_db();
    let dberr = crate::state::db_err(&db_path);
    let key = (c.tier.clone(), c.relpath.clone());
    match drifted(cfg, &c, result) {
        Inspected::Unavailable(reason) => {
            // Healthy as far as we know: keep any catalog entry, retry next run.
            tracing::warn!(path = %c.abs().display(), %reason, "cannot read file now; retried next run");
            report.skipped.push(Ignored {
                path: c.abs().display().to_string(),
                reason,
            });
        }
        Inspected::Ok(info) => {
            let entry = entry_of(cfg, &c, info);
            super::upsert(tx, &entry).map_err(&dberr)?;
            if known.contains_key(&key) {
                report.updated += 1;
            } else {
                report.added += 1;
            }
        }
        Inspected::Corrupt(reason) if crate::store::is_remote(&c.root) => {
            // Not moved: the object stays for a person to look at; it
            // stays out of the catalog, so nothing reads it.
            present.remove(&key);
            tracing::warn!(path = %c.abs().display(), %reason, "unreadable object on the store; left in place, not cataloged");
            report.corrupt.push(Corrupt {
                path: c.abs().display().to_string(),
                reason,
                moved_to: String::new(),
            });
        }
        Inspected::Corrupt(reason) => {
            let from = c.abs();
            let q = super::Quarantine {
                tier: &c.tier,
                relpath: &c.relpath,
                from: &from,
                dataset: Some(&c.dataset),
                partition: Some(&c.partition),
                bytes: c.seen.bytes,
            };
            match crate::engine::quarantine::quarantine(cfg, tx, &q, &reason) {
                Ok(moved_to) => {
                    present.remove(&key);
                    report.corrupt.push(Corrupt {
                        path: from.display().to_string(),
                        reason,
                        moved_to: moved_to.display().to_string(),
                    });
                }
                Err(e) => report.skipped.push(Ignored {
                    path: from.display().to_string(),
                    reason: format!("{reason}; could not quarantine it: {e}"),
                }),
            }
        }
    }
    Ok(())
}

/// What a scan finds under the tier roots, on disk or in a listing.
struct Found<'a> {
    cfg: &'a Config,
    known: &'a std::collections::HashMap<(String, String), Seen>,
    /// Files of unsettled rewrites, with why: never cataloged.
    unsettled: &'a std::collections::HashMap<(String, String), String>,
    /// Listed files and objects (what is cataloged and not here is gone).
    present: HashSet<(String, String)>,
    /// New or changed, to inspect.
    todo: Vec<Candidate>,
    now: i64,
    settle_ns: i64,
}

impl Found<'_> {
    /// One file under `root`: of a rewrite not settled yet, not in any
    /// layout, unchanged, too young to touch, or a candidate.
    fn file(&mut self, report: &mut ScanReport, tier: &str, root: &Path, relpath: String, seen: Seen) {
        if let Some(why) = self.unsettled.get(&(tier.to_string(), relpath.clone())) {
            report.unsettled.push(Ignored {
                path: root.join(&relpath).display().to_string(),
                reason: why.clone(),
            });
            return;
        }
        let (dataset, partition, range) = match classify(self.cfg, Path::new(&relpath)) {
            Ok(v) => v,
            Err(reason) => {
                report.ignored.push(Ignored {
                    path: root.join(&relpath).display().to_string(),
                    reason,
                });
                return;
            }
        };
        // Objects appear whole, so they have no settle time; mdkeep
        // catalogs its uploads with its own clock, so only their size counts.
        let remote = crate::store::is_remote(root);
        let key = (tier.to_string(), relpath.clone());
        // A refused partition value is looked at again even when cataloged
        // (an older mdkeep let it in): inspecting it quarantines it.
        let unchanged = refused_value(&partition).is_none()
            && self
                .known
                .get(&key)
                .is_some_and(|k| k.bytes == seen.bytes && (remote || k.mtime_ns == seen.mtime_ns));
        self.present.insert(key);
        if unchanged {
            report.unchanged += 1;
        } else if !remote && self.now - seen.mtime_ns < self.settle_ns {
            report.pending.push(root.join(&relpath).display().to_string());
        } else {
            self.todo.push(Candidate {
                tier: tier.to_string(),
                root: root.to_path_buf(),
                relpath,
                dataset,
                partition,
                range,
                seen,
            });
        }
    }
}

/// Reconcile store tiers with a listing. Objects retired while pinned
/// (waiting in the trash ledger) and upload claims are not data. A store
/// that cannot be listed keeps its catalog entries as they are.
fn list_stores(db: &Db, found: &mut Found, report: &mut ScanReport) -> Result<()> {
    let cfg = found.cfg;
    for tier in cfg.store_tiers() {
        let root = cfg.tier_root(&tier)?;
        let listing = match crate::store::stores().tier(&tier).and_then(|s| s.list("")) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(tier = %tier, error = %e, "store unreachable; its catalog entries are kept");
                found
                    .present
                    .extend(found.known.keys().filter(|k| k.0 == tier).cloned());
                report.unreachable.push(Unreachable {
                    tier: tier.clone(),
                    error: e.to_string(),
                });
                continue;
            }
        };
        let trashed: HashSet<String> = crate::engine::pins::trashed(db, &tier)?;
        for (relpath, bytes, mtime_ns) in listing {
            let name = relpath.rsplit('/').next().unwrap_or(&relpath);
            if crate::store::write::is_claim(name) || !layout::is_data_file(name) || trashed.contains(&relpath) {
                continue;
            }
            found.file(report, &tier, &root, relpath, Seen { bytes, mtime_ns });
        }
    }
    Ok(())
}

/// Dataset, partition key and time range of a path under a tier root, or
/// why it is not part of any dataset.
fn classify(cfg: &Config, rel: &Path) -> std::result::Result<(String, String, (i64, i64)), String> {
    let loc = layout::locate(rel).ok_or("not in a Hive layout (<dataset>/<col>=<value>/.../file.parquet)")?;
    let ds = cfg
        .dataset_by_path(&loc.dataset_path)
        .ok_or_else(|| format!("no dataset is configured with path `{}`", loc.dataset_path))?;
    if !loc.fits(ds) {
        let want: Vec<&str> = ds
            .partition_by
            .iter()
            .chain([&ds.time_partition])
            .map(|s| s.as_str())
            .collect();
        return Err(format!("dataset `{}` expects partitions {}", ds.name, want.join("/")));
    }
    let period = loc.get(&ds.time_partition).unwrap_or_default();
    let range = ds
        .period_range(period)
        .ok_or_else(|| format!("`{}={period}` is not a {:?} period", ds.time_partition, ds.granularity))?;
    Ok((ds.name.clone(), loc.partition_key(), range))
}

/// Why the engine could not write `partition` (the rule of
/// [`layout::partition_dir`]), so it must not be cataloged.
fn refused_value(partition: &str) -> Option<String> {
    layout::check_partition_values(&layout::partition_values(partition))
        .err()
        .map(|e| format!("{e}; mdkeep cannot write this partition, so it is not cataloged"))
}

/// What reading a candidate's footer found.
enum Inspected {
    Ok(FileInfo),
    /// Bad data: quarantined.
    Corrupt(String),
    /// Could not be read for a reason that says nothing about its bytes
    /// (permissions, too many open files, a failing device).
    Unavailable(String),
}

fn inspect_candidate(cfg: &Config, c: &Candidate) -> Inspected {
    if let Some(reason) = refused_value(&c.partition) {
        return Inspected::Corrupt(reason);
    }
    let ds = &cfg.datasets[&c.dataset];
    let path = c.abs();
    if !crate::store::is_remote(&path) {
        if let Err(e) = std::fs::File::open(&path) {
            return Inspected::Unavailable(format!("open: {e}"));
        }
    }
    match inspect(&path, &ds.time_column) {
        Ok(info) => {
            let bad = [info.min_ts, info.max_ts]
                .into_iter()
                .flatten()
                .find(|t| !ds.placeable(*t));
            match bad {
                Some(_) => Inspected::Corrupt(format!(
                    "a time in `{}` is outside what its unit can place in a partition (e.g. microseconds in a {:?} column)",
                    ds.time_column,
                    ds.time_unit()
                )),
                None => Inspected::Ok(info),
            }
        }
        Err(reason) if reason.contains("os error") => Inspected::Unavailable(reason),
        Err(reason) => match still_written(&path, c.seen) {
            Some(why) => Inspected::Unavailable(format!("{reason}; {why}: checked again next run")),
            None => Inspected::Corrupt(reason),
        },
    }
}

/// Why an unreadable local file may only be unfinished, not corrupt: its
/// size or mtime changed since this scan listed it, or a process holds it
/// open for writing. Age alone says nothing when the clock jumps forward.
fn still_written(path: &Path, seen: Seen) -> Option<String> {
    if crate::store::is_remote(path) {
        return None;
    }
    let meta = std::fs::metadata(path).ok()?;
    if meta.len() != seen.bytes || mtime_ns(meta.modified().ok()) != seen.mtime_ns {
        return Some("still being written (its size or mtime changed while it was read)".into());
    }
    crate::proc::writer_of(path).map(|pid| format!("still being written (process {pid} holds it open for writing)"))
}

/// A data file whose name is not valid UTF-8: quarantined under a lossy
/// name, or listed as skipped when it cannot even be moved.
fn odd_name(cfg: &Config, db: &mut Db, tier: &str, abs: &Path, rel: &Path, report: &mut ScanReport) -> Result<()> {
    let lossy = rel.to_string_lossy().into_owned();
    let reason = "file name is not valid UTF-8".to_string();
    let bytes = std::fs::symlink_metadata(abs).map(|m| m.len()).unwrap_or(0);
    let q = super::Quarantine {
        tier,
        relpath: &lossy,
        from: abs,
        dataset: None,
        partition: None,
        bytes,
    };
    match crate::engine::quarantine::quarantine(cfg, &db.conn, &q, &reason) {
        Ok(to) => report.corrupt.push(Corrupt {
            path: abs.display().to_string(),
            reason,
            moved_to: to.display().to_string(),
        }),
        Err(e) => report.skipped.push(Ignored {
            path: abs.display().to_string(),
            reason: format!("{reason}; could not quarantine it: {e}"),
        }),
    }
    Ok(())
}

/// Drift, misfiled and totals come from the catalog as it now stands, so a
/// second scan still reports problems found by the first.
fn fill_state(cfg: &Config, db: &Db, report: &mut ScanReport) -> Result<()> {
    let roots: std::collections::HashMap<String, PathBuf> = cfg.tier_roots().into_iter().collect();
    let mut st = db
        .conn
        .prepare("SELECT tier, relpath, drift IS NOT NULL, misfiled FROM files WHERE drift IS NOT NULL OR misfiled ORDER BY tier, relpath")
        .map_err(db.err())?;
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, bool>(2)?,
                r.get::<_, bool>(3)?,
            ))
        })
        .map_err(db.err())?;
    for row in rows {
        let (tier, rel, drift, misfiled) = row.map_err(db.err())?;
        let path = roots
            .get(&tier)
            .map(|r| r.join(&rel))
            .unwrap_or_else(|| PathBuf::from(&rel))
            .display()
            .to_string();
        if drift {
            report.drift.push(path.clone());
        }
        if misfiled {
            report.misfiled.push(path);
        }
    }
    let (files, rows): (i64, i64) = db
        .conn
        .query_row("SELECT count(*), coalesce(sum(rows), 0) FROM files", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(db.err())?;
    report.files = files as u64;
    report.rows = rows as u64;
    Ok(())
}

/// The catalog entry for a file mdkeep itself just wrote under `root` (no
/// settle time: it is known complete; no drift or misfiled rows by construction).
pub fn entry_for_written(
    root: &Path,
    tier: &str,
    dataset: &str,
    time_column: &str,
    file: &crate::parquet_io::WrittenFile,
) -> Result<FileEntry> {
    let path = file.path.as_path();
    let info = inspect(path, time_column).map_err(|message| Error::Parquet {
        path: path.to_path_buf(),
        message,
    })?;
    let rel = path
        .strip_prefix(root)
        .map_err(|_| Error::Invalid(format!("{} is outside {}", path.display(), root.display())))?;
    let loc = layout::locate(rel).ok_or_else(|| Error::Invalid(format!("{} is not in the layout", path.display())))?;
    // An object was just uploaded: "now" is its modification time.
    let mtime = if crate::store::is_remote(path) {
        crate::state::now_ns()
    } else {
        let meta = std::fs::metadata(path).map_err(Error::io("stat", path))?;
        mtime_ns(meta.modified().ok())
    };
    Ok(FileEntry {
        tier: tier.to_string(),
        relpath: rel.to_string_lossy().replace('\\', "/"),
        dataset: dataset.to_string(),
        partition: loc.partition_key(),
        rows: info.rows,
        bytes: file.bytes,
        min_ts: info.min_ts,
        max_ts: info.max_ts,
        schema_fp: info.schema_fp,
        mtime_ns: mtime,
        arrival_ns: mtime,
        checksum: file.checksum,
        drift: None,
        misfiled: false,
        compacted: info.compacted,
    })
}

fn mtime_ns(t: Option<SystemTime>) -> i64 {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}
