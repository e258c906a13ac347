//! The facts in the dashboard's header: the box's name, disk use, the job
//! budget in use, and the last maintain's time and result.
//!
//! Owns gathering them; each comes from its owner's typed query (catalog,
//! jobs budget, scheduler) or from the filesystem, never from a data file,
//! so the header is fresh on every page. The last maintain is the newer of
//! the schedule's record and the history's (`maintain` events, which CLI
//! runs write too).

use serde::Serialize;

use crate::config::Config;
use crate::error::Result;
use crate::state::Db;

#[derive(Debug, Clone, Serialize)]
pub struct Header {
    /// The host's name.
    pub name: String,
    /// Bytes of data in the catalog, every tier.
    pub data_bytes: u64,
    /// The filesystem holding the hot tier: used and total bytes.
    pub disk_used_bytes: Option<u64>,
    pub disk_size_bytes: Option<u64>,
    pub budget_bytes: u64,
    pub budget_in_use_bytes: u64,
    pub last_maintain: Option<LastRun>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LastRun {
    /// When it ended, RFC 3339.
    pub at: String,
    pub ok: bool,
    /// `ok: …` or `error: …`, as the schedule records it.
    pub result: String,
}

/// The header as it stands now.
pub fn gather(cfg: &Config, db: &Db) -> Result<Header> {
    let space = cfg
        .tier_roots()
        .first()
        .and_then(|(_, root)| crate::fsutil::root_space(cfg, root));
    let last_maintain = last_maintain(db)?;
    Ok(Header {
        name: host_name(),
        data_bytes: crate::catalog::totals(db)?.iter().map(|t| t.bytes).sum(),
        disk_used_bytes: space.map(|(free, size)| size.saturating_sub(free)),
        disk_size_bytes: space.map(|(_, size)| size),
        budget_bytes: cfg.jobs.memory_budget.0,
        budget_in_use_bytes: crate::jobs::budget::in_use(db)?,
        last_maintain,
    })
}

/// The newer of the last maintain the daemon's schedule recorded and the
/// last one in the history (every run, CLI or daemon, records its end there).
fn last_maintain(db: &Db) -> Result<Option<LastRun>> {
    let scheduled = crate::scheduler::last_run(db, "maintain")?;
    let logged = crate::catalog::last_event(db, crate::catalog::Action::Maintain)?.map(|(at, reason)| {
        let result = reason.unwrap_or_else(|| "ok".into());
        (at, !result.starts_with("error"), result)
    });
    let newest = match (scheduled, logged) {
        (Some(a), Some(b)) => Some(if b.0 > a.0 { b } else { a }),
        (a, b) => a.or(b),
    };
    Ok(newest.map(|(at, ok, result)| LastRun {
        at: crate::time::rfc3339(at),
        ok,
        result,
    }))
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "mdkeep".into())
}
