//! Named locks in the state database: one live owner per name.
//!
//! Owns the `locks` table. The job worker holds one so that two workers
//! never run the same queue; an owner that stopped beating its heartbeat,
//! or whose process is gone, loses the lock. The data lock (a kernel
//! `flock`) is [`crate::lock`]'s.

use std::time::Duration;

use rusqlite::{params, OptionalExtension};

use super::{now_ns, Db};
use crate::error::{Error, Result};

/// A silent owner for this long has lost its lock.
const STALE_AFTER: Duration = Duration::from_secs(600);

/// A held named lock; released on drop.
pub struct Lock<'a> {
    db: &'a Db,
    name: &'static str,
}

impl<'a> Lock<'a> {
    pub fn acquire(db: &'a Db, name: &'static str) -> Result<Lock<'a>> {
        let me = std::process::id() as i64;
        // IMMEDIATE: two runs starting together cannot both see the lock free.
        let tx = rusqlite::Transaction::new_unchecked(&db.conn, rusqlite::TransactionBehavior::Immediate)
            .map_err(db.err())?;
        let held: Option<(i64, i64, i64)> = tx
            .query_row(
                "SELECT pid, acquired_at, heartbeat_at FROM locks WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(db.err())?;
        let now = now_ns();
        if let Some((pid, since, beat)) = held {
            let alive = crate::proc::alive(pid);
            let fresh = now - beat < STALE_AFTER.as_nanos() as i64;
            if pid != me && alive && fresh {
                return Err(Error::Busy(format!(
                    "{name} is already running (pid {pid}, since {})",
                    crate::time::rfc3339(since)
                )));
            }
            if pid != me {
                tracing::warn!(lock = name, stale_pid = pid, "taking over a stale lock");
            }
        }
        tx.execute(
            "INSERT INTO locks (name, pid, acquired_at, heartbeat_at) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (name) DO UPDATE SET pid = excluded.pid, acquired_at = excluded.acquired_at, heartbeat_at = excluded.heartbeat_at",
            params![name, me, now],
        )
        .map_err(db.err())?;
        tx.commit().map_err(db.err())?;
        Ok(Lock { db, name })
    }

    pub fn heartbeat(&self) -> Result<()> {
        self.db
            .conn
            .execute(
                "UPDATE locks SET heartbeat_at = ?2 WHERE name = ?1 AND pid = ?3",
                params![self.name, now_ns(), std::process::id() as i64],
            )
            .map_err(self.db.err())?;
        Ok(())
    }
}

impl Drop for Lock<'_> {
    fn drop(&mut self) {
        let _ = self.db.conn.execute(
            "DELETE FROM locks WHERE name = ?1 AND pid = ?2",
            params![self.name, std::process::id() as i64],
        );
    }
}
