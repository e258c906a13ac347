//! `init`: create the folders and the state database. Idempotent.
//!
//! Writes the default config only where none exists; never overwrites.
//! The configs and state folders are made (or tightened to) 0700 and a new
//! state database 0600: a job, which runs as another user, reads neither.

use serde::Serialize;

use crate::config::{Config, DEFAULT_CONFIG, DEFAULT_CONFIG_PATH};
use crate::error::{Error, Result};
use crate::state::Db;

#[derive(Debug, Default, Serialize)]
pub struct InitReport {
    /// Folders and files created by this run (empty on a second run).
    pub created: Vec<String>,
    pub config: String,
    pub state_db: String,
    pub schema_version: i64,
}

/// Write the default config under `root` if there is none. Returns whether it was written.
pub fn write_default_config(root: &std::path::Path) -> Result<bool> {
    let path = root.join(DEFAULT_CONFIG_PATH);
    if path.exists() {
        return Ok(false);
    }
    crate::fsutil::write_atomic(&path, DEFAULT_CONFIG.as_bytes())?;
    Ok(true)
}

/// Fail at once, naming the owner, this process's uid and the fix, when
/// the state folder (or the nearest folder above it that exists) cannot be
/// written: a root-owned `./data` that `docker compose up` made, say.
pub fn check_writable(cfg: &Config) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Some(mut dir) = cfg.state_db().parent().map(|p| p.to_path_buf()) else {
        return Ok(());
    };
    while !dir.exists() {
        match dir.parent() {
            Some(up) => dir = up.to_path_buf(),
            None => return Ok(()),
        }
    }
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return Ok(());
    };
    // SAFETY: access(2) reads a NUL-terminated path.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } == 0 {
        return Ok(());
    }
    // SAFETY: getuid and getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let (owner, group, mode) = std::fs::metadata(&dir)
        .map(|m| (m.uid(), m.gid(), m.mode() & 0o7777))
        .unwrap_or((0, 0, 0));
    Err(Error::NotWritable {
        path: dir.clone(),
        message: format!(
            "it belongs to uid {owner} (gid {group}, mode {mode:o}) and mdkeep runs as uid {uid} (gid {gid}). \
             Fix: give it to mdkeep's user (`sudo chown -R {uid}:{gid} data` on the host, in the folder \
             of docker-compose.yml), or run mdkeep as its owner (`MDKEEP_UID={owner} MDKEEP_GID={group} \
             docker compose up -d`)"
        ),
    })
}

pub fn init(cfg: &Config, write_config: bool) -> Result<InitReport> {
    check_writable(cfg)?;
    let mut report = InitReport::default();
    if write_config && write_default_config(&cfg.root)? {
        report
            .created
            .push(cfg.root.join(DEFAULT_CONFIG_PATH).display().to_string());
    }
    let mut dirs = vec![cfg.quarantine_dir(), cfg.tmp_dir(), cfg.trash_dir(), cfg.jobs_dir()];
    dirs.extend(cfg.tier_roots().into_iter().map(|(_, r)| r));
    for d in dirs {
        if !d.is_dir() {
            std::fs::create_dir_all(&d).map_err(Error::io("create folder", &d))?;
            report.created.push(d.display().to_string());
        }
    }
    // Configs and state are the daemon user's alone (jobs run as jobs.run_as).
    let mut private: Vec<_> = cfg.state_db().parent().map(|p| p.to_path_buf()).into_iter().collect();
    private.extend(Some(cfg.root.join("configs")).filter(|c| c.is_dir()));
    for d in private {
        let existed = d.is_dir();
        crate::fsutil::private_dir(&d)?;
        if !existed {
            report.created.push(d.display().to_string());
        }
    }
    let db_path = cfg.state_db();
    let existed = db_path.exists();
    let db = Db::open(&db_path)?;
    if !existed {
        report.created.push(db_path.display().to_string());
    }
    report.config = cfg.source.clone();
    report.state_db = db_path.display().to_string();
    report.schema_version = db.schema_version()?;
    Ok(report)
}
