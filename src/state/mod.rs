//! The SQLite state database: opening it safely and migrating it.
//!
//! Owns connection settings (WAL, busy timeout, foreign keys, full sync) and
//! the append-only migration list tracked by `user_version`. Tables belong to
//! the capability that uses them (catalog, jobs, ...); their SQL lives here
//! only so the schema's history is in one ordered place.

mod migrations;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};

/// An open state database.
pub struct Db {
    /// Only the modules that own a table run SQL on it; others call them.
    pub(crate) conn: Connection,
    pub path: PathBuf,
}

impl Db {
    /// Open (creating if needed) and migrate to the latest schema. Safe to
    /// call from several processes at once: migration runs in an IMMEDIATE
    /// transaction, so only one of them applies it.
    pub fn open(path: &Path) -> Result<Db> {
        // The state folder is the daemon user's alone: no job reads it.
        if let Some(dir) = path.parent().filter(|d| !d.exists()) {
            crate::fsutil::private_dir(dir)?;
        }
        let created = !path.exists();
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db_err(path))?;
        let mut db = Db {
            conn,
            path: path.to_path_buf(),
        };
        if created {
            use std::os::unix::fs::PermissionsExt;
            // SQLite gives its -wal and -shm files the database's mode.
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(Error::io("chmod", path))?;
        }
        db.configure()?;
        db.migrate()?;
        Ok(db)
    }

    /// Open only if the database exists: read commands must not create state.
    pub fn open_existing(path: &Path) -> Result<Db> {
        if !path.exists() {
            return Err(Error::Invalid(format!(
                "no state database at {} (run `mdkeep init` first)",
                path.display()
            )));
        }
        Db::open(path)
    }

    /// (label, amount) rows of a table owner's `sql`: the shape of every
    /// "how much per label" query.
    pub(crate) fn labelled_amounts(&self, sql: &str) -> Result<Vec<(String, u64)>> {
        let mut st = self.conn.prepare(sql).map_err(self.err())?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64)))
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }

    /// Whether the database answers a read (for `/healthz`).
    pub fn check_readable(&self) -> Result<()> {
        self.conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))
            .map(|_| ())
            .map_err(self.err())
    }

    fn configure(&mut self) -> Result<()> {
        let p = self.path.clone();
        // A daemon and a CLI share the file: wait for locks rather than fail.
        self.conn.busy_timeout(Duration::from_secs(30)).map_err(db_err(&p))?;
        // FULL: a committed catalog swap must survive a power cut before
        // inputs are deleted, or rows could be lost.
        self.conn
            .execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
            .map_err(db_err(&p))
    }

    fn migrate(&mut self) -> Result<()> {
        let p = self.path.clone();
        // Read-only when current: a dry run must leave the file byte-identical.
        let seen: usize = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
            .map_err(db_err(&p))? as usize;
        if seen == migrations::MIGRATIONS.len() {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db_err(&p))?;
        let current: usize = tx
            .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
            .map_err(db_err(&p))? as usize;
        let all = migrations::MIGRATIONS;
        if current > all.len() {
            return Err(Error::Invalid(format!(
                "state database {} has schema version {current}, newer than this mdkeep knows ({}); upgrade mdkeep",
                p.display(),
                all.len()
            )));
        }
        for (i, sql) in all.iter().enumerate().skip(current) {
            tracing::info!(version = i + 1, "migrating state database");
            tx.execute_batch(sql).map_err(db_err(&p))?;
        }
        tx.pragma_update(None, "user_version", all.len() as i64)
            .map_err(db_err(&p))?;
        tx.commit().map_err(db_err(&p))
    }

    pub fn schema_version(&self) -> Result<i64> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(db_err(&self.path))
    }

    /// Map a rusqlite error to one naming this database.
    pub fn err(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        move |source| Error::Db {
            path: self.path.clone(),
            source,
        }
    }
}

pub fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |source| Error::Db {
        path: path.to_path_buf(),
        source,
    }
}

/// Nanoseconds since the epoch, the unit of every time column in the state.
pub use crate::time::now_ns;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_twice_and_migrates_once() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s/state.db");
        let a = Db::open(&p).unwrap();
        let b = Db::open(&p).unwrap();
        assert_eq!(a.schema_version().unwrap(), migrations::MIGRATIONS.len() as i64);
        assert_eq!(b.schema_version().unwrap(), a.schema_version().unwrap());
        let mode: String = a.conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = b.conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
        assert_eq!(fk, 1);
    }
}
