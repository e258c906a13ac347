//! Isolating a file that cannot be handled.
//!
//! Owns the rule that a pinned file is never moved (a job reads it): the
//! file stays and this fails. Otherwise it goes to the quarantine folder
//! with its reason, and leaves the catalog ([`crate::catalog`] records it).
//! Scan and the rewrite both isolate through here.

use rusqlite::Connection;

use super::pins;
use crate::catalog::{self, Quarantine};
use crate::config::Config;
use crate::error::{Error, Result};

/// Move `q` to quarantine with `reason`, unless it is pinned.
pub fn quarantine(cfg: &Config, conn: &Connection, q: &Quarantine, reason: &str) -> Result<std::path::PathBuf> {
    let dberr = crate::state::db_err(std::path::Path::new("state"));
    if pins::is_pinned(conn, q.tier, q.relpath).map_err(&dberr)? {
        return Err(Error::Busy(format!("{} is pinned", q.from.display())));
    }
    catalog::move_to_quarantine(cfg, conn, q, reason).inspect(|_| drop(crate::lake::after_change(cfg, conn)))
}
