//! The lake: a DuckLake 1.0 catalog (SQLite, `lake.path`) of every live
//! file, one snapshot per change, that DuckDB readers attach `READ_ONLY`
//! instead of globbing the Hive tree, so a rewrite never makes a read fail.
//!
//! Owns `lake.sqlite` and nothing else. [`sync`] diffs mdkeep's catalog
//! against the lake's live files and commits one snapshot (one short WAL
//! transaction) that ends the files gone and adds the new ones with their
//! footer stats; no difference, no snapshot. Being a diff, it needs no
//! journal: whatever a crash interrupted, the next sync makes the lake and
//! the catalog agree. It runs after every catalog change commits and before
//! any input is retired ([`after_change`], which never fails the data
//! work). A retired file an unexpired snapshot still names is held in the
//! trash and repointed there ([`Holds`]); [`expire`] lets
//! snapshots older than `lake.keep_snapshots` go. Planners never see it.

pub mod check;
pub mod cost;
mod hold;
mod schema;
pub mod snapshot;
mod stats;
pub mod status;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use serde::Serialize;

use crate::catalog::{self, ReadableFile};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::state::db_err;

pub use hold::Holds;
pub use schema::VERSION;

/// One sync at a time in this process (compaction runs series in parallel);
/// across processes the data lock already serializes writers.
static SYNC: Mutex<()> = Mutex::new(());

/// An open lake catalog.
pub struct Lake {
    pub(crate) conn: Connection,
    pub path: PathBuf,
}

impl Lake {
    /// Open the lake, creating it (tables, schema `main`) when absent.
    pub fn open(cfg: &Config) -> Result<Lake> {
        Lake::open_at(cfg, &cfg.lake_path())
    }

    /// Open (creating) the lake at `path`.
    pub(crate) fn open_at(cfg: &Config, path: &Path) -> Result<Lake> {
        let path = path.to_path_buf();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(Error::io("create folder", dir))?;
        }
        let lake = Lake::connect(&path, false)?;
        let fresh: bool = lake
            .conn
            .query_row(
                "SELECT NOT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'ducklake_metadata')",
                [],
                |r| r.get(0),
            )
            .map_err(db_err(&path))?;
        if fresh {
            let tx = lake.begin()?;
            let again: bool = tx
                .query_row(
                    "SELECT NOT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'ducklake_metadata')",
                    [],
                    |r| r.get(0),
                )
                .map_err(db_err(&path))?;
            if again {
                schema::create(&tx, &data_path(cfg)).map_err(db_err(&path))?;
            }
            tx.commit().map_err(db_err(&path))?;
        }
        lake.check_version()?;
        Ok(lake)
    }

    /// Open an existing lake only (read commands never create one).
    pub fn open_existing(cfg: &Config) -> Result<Option<Lake>> {
        let path = cfg.lake_path();
        if !path.exists() {
            return Ok(None);
        }
        let lake = Lake::connect(&path, true)?;
        lake.check_version()?;
        Ok(Some(lake))
    }

    fn connect(path: &Path, read_only: bool) -> Result<Lake> {
        let flags = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let conn = Connection::open_with_flags(path, flags).map_err(db_err(path))?;
        // A reader never makes a write fail: a busy lake delays the snapshot.
        conn.busy_timeout(Duration::from_secs(30)).map_err(db_err(path))?;
        if !read_only {
            conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
                .map_err(db_err(path))?;
            conn.execute_batch(snapshot::ARRIVAL_TABLE).map_err(db_err(path))?;
        }
        Ok(Lake {
            conn,
            path: path.to_path_buf(),
        })
    }

    fn begin(&self) -> Result<rusqlite::Transaction<'_>> {
        rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate).map_err(db_err(&self.path))
    }

    /// mdkeep writes spec 1.0 and never migrates a lake.
    fn check_version(&self) -> Result<()> {
        let v: Option<String> = self
            .conn
            .query_row("SELECT value FROM ducklake_metadata WHERE key = 'version'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(db_err(&self.path))?;
        match v.as_deref() {
            Some(VERSION) => Ok(()),
            other => Err(Error::Invalid(format!(
                "lake {} is DuckLake version {} (mdkeep writes {VERSION} and never migrates it); `mdkeep lake rebuild` writes a fresh one",
                self.path.display(),
                other.unwrap_or("unknown")
            ))),
        }
    }

    /// The live files (`end_snapshot IS NULL`) by path: all of them, or
    /// those among `scope`'s paths.
    fn live(&self, scope: Option<&[String]>) -> rusqlite::Result<HashMap<String, Live>> {
        const LIVE: &str = "SELECT f.data_file_id, f.table_id, f.path, f.record_count, f.file_size_bytes, t.table_name
             FROM ducklake_data_file f JOIN ducklake_table t ON t.table_id = f.table_id AND t.end_snapshot IS NULL
             WHERE f.end_snapshot IS NULL";
        let row = |r: &rusqlite::Row<'_>| {
            Ok(Live {
                id: r.get(0)?,
                table_id: r.get(1)?,
                path: r.get(2)?,
                rows: r.get(3)?,
                bytes: r.get(4)?,
                table: r.get(5)?,
            })
        };
        let Some(paths) = scope else {
            let mut st = self.conn.prepare(LIVE)?;
            let rows = st.query_map([], row)?;
            return rows.map(|l| l.map(|l| (l.path.clone(), l))).collect();
        };
        let mut st = self.conn.prepare_cached(&format!("{LIVE} AND f.path = ?1"))?;
        let mut out = HashMap::new();
        for p in paths {
            if let Some(l) = st.query_row([p], row).optional()? {
                out.insert(l.path.clone(), l);
            }
        }
        Ok(out)
    }
}

/// Where DuckDB would write (never: readers attach READ_ONLY).
fn data_path(cfg: &Config) -> String {
    format!("{}/", absolute(&cfg.resolve(Path::new("data/lake"))).display())
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// A live file as the lake has it.
#[derive(Debug, Clone)]
pub(crate) struct Live {
    pub id: i64,
    pub table_id: i64,
    pub path: String,
    pub rows: i64,
    pub bytes: i64,
    pub table: String,
}

/// The path a lake names for a cataloged file: absolute, or `s3://...`.
pub fn file_path(cfg: &Config, tier: &str, relpath: &str) -> Result<String> {
    Ok(file_path_in(&cfg.tier_root(tier)?, relpath))
}

/// [`file_path`] under any root (the trash's, for held files).
pub fn file_path_in(root: &Path, relpath: &str) -> String {
    let p = if crate::store::is_remote(root) {
        root.join(relpath)
    } else {
        absolute(root).join(relpath)
    };
    p.to_string_lossy().into_owned()
}

/// The files the lake should name live, by path, from mdkeep's catalog:
/// all of them, or those among `scope` (tier, relpath).
fn wanted(cfg: &Config, conn: &Connection, scope: Scope<'_>) -> Result<BTreeMap<String, ReadableFile>> {
    let dberr = db_err(Path::new("state"));
    let files = match scope {
        None => catalog::readable_files(conn).map_err(&dberr)?,
        Some(s) => {
            let mut files = Vec::new();
            for (tier, rel) in s {
                files.extend(catalog::readable_file(conn, tier, rel).map_err(&dberr)?);
            }
            files
        }
    };
    let mut out = BTreeMap::new();
    for f in files {
        if !cfg.datasets.contains_key(&f.dataset) {
            continue;
        }
        out.insert(file_path(cfg, &f.tier, &f.relpath)?, f);
    }
    Ok(out)
}

/// What one sync changed.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Synced {
    pub snapshot: Option<i64>,
    pub added: u64,
    pub removed: u64,
    /// New files whose footer could not be read: left out until a later sync.
    pub unreadable: Vec<String>,
}

/// Make the lake name exactly the catalog's live files (or, with a scope,
/// exactly those of its files that are live), in one snapshot; none when
/// they already agree (or the lake is off).
pub fn sync(cfg: &Config, conn: &Connection, scope: Scope<'_>) -> Result<Synced> {
    if !cfg.lake.enabled {
        return Ok(Synced::default());
    }
    let _one = SYNC.lock().unwrap_or_else(|e| e.into_inner());
    let lake = Lake::open(cfg)?;
    sync_into(cfg, conn, &lake, scope)
}

/// The files a sync compares: every one, or only these (tier, relpath),
/// the inputs and outputs of one rewrite.
pub(crate) type Scope<'a> = Option<&'a [(String, String)]>;

pub(crate) fn sync_into(cfg: &Config, conn: &Connection, lake: &Lake, scope: Scope<'_>) -> Result<Synced> {
    let lerr = db_err(&lake.path);
    let want = wanted(cfg, conn, scope)?;
    let paths = scope
        .map(|s| s.iter().map(|(t, r)| file_path(cfg, t, r)).collect::<Result<Vec<_>>>())
        .transpose()?;
    let live = lake.live(paths.as_deref()).map_err(&lerr)?;
    let removed: Vec<Live> = live
        .values()
        .filter(|l| {
            want.get(&l.path)
                .is_none_or(|w| w.rows as i64 != l.rows || w.bytes as i64 != l.bytes || w.dataset != l.table)
        })
        .cloned()
        .collect();
    let gone: std::collections::HashSet<&str> = removed.iter().map(|l| l.path.as_str()).collect();
    let mut out = Synced::default();
    let mut added = Vec::new();
    for (path, w) in &want {
        if live.contains_key(path) && !gone.contains(path.as_str()) {
            continue;
        }
        let ds = cfg.dataset(&w.dataset)?;
        match stats::read(Path::new(path), ds, &crate::layout::partition_values(&w.partition)) {
            Ok(s) => added.push((w, path.as_str(), s)),
            Err(e) => {
                tracing::warn!(path = %path, error = %e, "lake: footer unreadable; file left out until a later sync");
                out.unreadable.push(path.clone());
            }
        }
    }
    let tx = lake.begin()?;
    let tables = tables(&tx).map_err(&lerr)?;
    let missing: Vec<&str> = cfg
        .datasets
        .keys()
        .filter(|d| !tables.contains_key(d.as_str()))
        .map(String::as_str)
        .collect();
    if removed.is_empty() && added.is_empty() && missing.is_empty() {
        return Ok(out);
    }
    // A lake another process changed since `live` was read is read again.
    let now = lake.live(paths.as_deref()).map_err(&lerr)?;
    if now.len() != live.len() || now.keys().any(|k| !live.contains_key(k)) {
        drop(tx);
        return sync_into(cfg, conn, lake, scope);
    }
    let ids = commit::write(&tx, cfg, tables, &missing, &removed, &added).map_err(&lerr)?;
    tx.commit().map_err(&lerr)?;
    out.snapshot = Some(ids);
    out.added = added.len() as u64;
    out.removed = removed.len() as u64;
    tracing::debug!(
        snapshot = ids,
        added = out.added,
        removed = out.removed,
        "lake snapshot"
    );
    Ok(out)
}

mod commit;

/// A table of the lake: its ids and running figures.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub id: i64,
    pub partition_id: i64,
    pub mapping_id: i64,
    pub next_row_id: i64,
}

/// The live tables of schema `main`, by name.
fn tables(conn: &Connection) -> rusqlite::Result<HashMap<String, Table>> {
    let mut st = conn.prepare(
        "SELECT t.table_name, t.table_id,
                (SELECT partition_id FROM ducklake_partition_info p WHERE p.table_id = t.table_id AND p.end_snapshot IS NULL),
                (SELECT min(mapping_id) FROM ducklake_column_mapping m WHERE m.table_id = t.table_id),
                coalesce((SELECT next_row_id FROM ducklake_table_stats s WHERE s.table_id = t.table_id), 0)
         FROM ducklake_table t WHERE t.end_snapshot IS NULL AND t.schema_id = 0",
    )?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            Table {
                id: r.get(1)?,
                partition_id: r.get::<_, Option<i64>>(2)?.unwrap_or(-1),
                mapping_id: r.get::<_, Option<i64>>(3)?.unwrap_or(-1),
                next_row_id: r.get(4)?,
            },
        ))
    })?;
    rows.collect()
}

/// The hook every catalog change calls once it has committed, before any
/// input is retired. A lake that cannot be opened or synced is reported and
/// never fails the data work (the next sync catches up). Inside an open
/// transaction it does nothing: that transaction's own commit syncs.
pub fn after_change(cfg: &Config, conn: &Connection) -> Option<Synced> {
    after_change_of(cfg, conn, None)
}

/// [`after_change`] for a change that touched only `scope`'s files (a
/// rewrite's inputs and outputs): it compares those, not every file. A
/// difference elsewhere (a sync that failed before) waits for the next
/// full sync: scan's, recovery's, or any other change's.
pub fn after_change_of(cfg: &Config, conn: &Connection, scope: Scope<'_>) -> Option<Synced> {
    if !cfg.lake.enabled || !conn.is_autocommit() {
        return None;
    }
    match cost::timed(|| sync(cfg, conn, scope)) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(lake = %cfg.lake_path().display(), error = %e, "lake not synced; the next change retries");
            None
        }
    }
}

/// What [`expire`] let go.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Expired {
    pub snapshots: u64,
    pub files: u64,
}

/// Expire snapshots older than `lake.keep_snapshots` (never the newest),
/// and forget the ended files no kept snapshot names; their held copies
/// then go through the trash's grace.
pub fn expire(cfg: &Config) -> Result<Expired> {
    let mut out = Expired::default();
    if !cfg.lake.enabled {
        return Ok(out);
    }
    let _one = SYNC.lock().unwrap_or_else(|e| e.into_inner());
    let Some(lake) = Lake::open_existing(cfg)? else {
        return Ok(out);
    };
    let lake = Lake::connect(&lake.path, false)?;
    let lerr = db_err(&lake.path);
    let keep_ns = cfg.lake.keep_snapshots.0.as_nanos() as i64;
    let cutoff = schema::snapshot_time(crate::time::now_ns() - keep_ns);
    let tx = lake.begin()?;
    let oldest: Option<i64> = tx
        .query_row(
            "SELECT min(snapshot_id) FROM ducklake_snapshot
             WHERE snapshot_time >= ?1 OR snapshot_id = (SELECT max(snapshot_id) FROM ducklake_snapshot)",
            [&cutoff],
            |r| r.get(0),
        )
        .map_err(&lerr)?;
    let Some(oldest) = oldest else { return Ok(out) };
    let dead = "SELECT data_file_id FROM ducklake_data_file WHERE end_snapshot IS NOT NULL AND end_snapshot <= ?1";
    for t in ["ducklake_file_column_stats", "ducklake_file_partition_value"] {
        tx.execute(&format!("DELETE FROM {t} WHERE data_file_id IN ({dead})"), [oldest])
            .map_err(&lerr)?;
    }
    out.files = tx
        .execute(
            "DELETE FROM ducklake_data_file WHERE end_snapshot IS NOT NULL AND end_snapshot <= ?1",
            [oldest],
        )
        .map_err(&lerr)? as u64;
    snapshot::forget_arrivals(&tx).map_err(&lerr)?;
    tx.execute("DELETE FROM ducklake_snapshot_changes WHERE snapshot_id < ?1", [oldest])
        .map_err(&lerr)?;
    out.snapshots = tx
        .execute("DELETE FROM ducklake_snapshot WHERE snapshot_id < ?1", [oldest])
        .map_err(&lerr)? as u64;
    tx.commit().map_err(&lerr)?;
    Ok(out)
}

/// [`expire`] for `maintain`: a lake that cannot expire is reported, never a failure.
pub fn expire_logged(cfg: &Config) -> Option<Expired> {
    match cost::timed(|| expire(cfg)) {
        Ok(e) => Some(e),
        Err(e) => {
            tracing::warn!(lake = %cfg.lake_path().display(), error = %e, "lake snapshots not expired; the next maintain retries");
            None
        }
    }
}

/// The statements a DuckDB reader runs to attach this root's lake.
pub fn attach_sql(cfg: &Config) -> String {
    let path = absolute(&cfg.lake_path());
    format!(
        "-- DuckDB 1.5: INSTALL ducklake; INSTALL sqlite; (or LOAD '<site-packages>/duckdb_extension_ducklake/extensions/v1.5.5/ducklake.duckdb_extension'; LOAD '<site-packages>/duckdb_extension_sqlite_scanner/extensions/v1.5.5/sqlite_scanner.duckdb_extension';)\n\
         -- Attach READ_ONLY; never run CHECKPOINT, ducklake_expire_snapshots or cleanup functions on it.\n\
         ATTACH 'ducklake:sqlite:{}' AS lake (READ_ONLY);\nUSE lake;\n",
        path.display()
    )
}
