//! `verify`: the scrub that finds rot in files at rest.
//!
//! Owns re-reading the files mdkeep wrote and comparing each with the CRC-32
//! recorded when it was written (`catalog::FileEntry::checksum`), oldest
//! check first, at a bounded read rate so a scrub never starves the box's
//! other work. A mismatch is quarantined with both checksums in its reason;
//! a file that cannot be read is listed and retried next run. A file no
//! checksum covers (a collector's file not compacted yet, an object on a
//! store, whose uploads the store checks) is counted, not read. The parquet
//! crate (60) verifies page CRCs on read but writes none, so this checksum is
//! what catches noise inside a page that still decodes.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::catalog::{self, Quarantine};
use crate::error::{Error, Failure, Result};
use crate::progress::Progress;
use crate::state::{now_ns, Db};
use crate::Config;

/// One file due for a check.
#[derive(Debug, Clone, Serialize)]
pub struct Due {
    pub tier: String,
    pub relpath: String,
    pub dataset: String,
    pub partition: String,
    pub bytes: u64,
    #[serde(skip)]
    pub checksum: u32,
}

/// What a scrub will read: the printable dry run.
#[derive(Debug, Default, Serialize)]
pub struct VerifyPlan {
    pub files: Vec<Due>,
    pub bytes: u64,
    /// Cataloged files with no recorded checksum (not read).
    pub unchecksummed: u64,
    /// Read rate, bytes per second.
    pub rate: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    pub dry_run: bool,
    pub checked: u64,
    pub bytes_read: u64,
    pub unchecksummed: u64,
    /// Files whose bytes no longer match their checksum: quarantined.
    pub mismatches: u64,
    pub seconds: f64,
    /// Every file quarantined or skipped, with its reason.
    pub failures: Vec<Failure>,
}

impl VerifyReport {
    pub fn outcome(&self) -> crate::outcome::Outcome {
        crate::outcome::Outcome::of_failures(&self.failures)
    }
}

/// Files with a checksum not verified within `verify.every` (all of them
/// with `all`), oldest check first.
pub fn plan(cfg: &Config, db: &Db, all: bool) -> Result<VerifyPlan> {
    let since = if all {
        i64::MAX
    } else {
        now_ns().saturating_sub(cfg.verify.every.0.as_nanos() as i64)
    };
    let (files, unchecksummed) = catalog::due_for_verify(db, since)?;
    let files: Vec<Due> = files
        .into_iter()
        .filter(|d| !crate::store::is_remote(&cfg.tier_root(&d.tier).unwrap_or_default()))
        .collect();
    Ok(VerifyPlan {
        bytes: files.iter().map(|f| f.bytes).sum(),
        files,
        unchecksummed,
        rate: cfg.verify.rate.0,
    })
}

/// Read every planned file at the plan's rate and compare.
pub fn execute(cfg: &Config, db: &Db, plan: &VerifyPlan, progress: &dyn Progress) -> Result<VerifyReport> {
    let started = Instant::now();
    let mut r = VerifyReport {
        unchecksummed: plan.unchecksummed,
        ..Default::default()
    };
    progress.set_length(plan.bytes);
    let mut pace = Pace::new(plan.rate);
    for d in &plan.files {
        let path = cfg.tier_root(&d.tier)?.join(&d.relpath);
        let crc = match checksum_of(&path, &mut pace, progress) {
            Ok(c) => c,
            // Gone since the plan (a rewrite retired it): nothing to check.
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                r.failures
                    .push(Failure::new("verify", path.display().to_string(), &e, "skipped"));
                continue;
            }
        };
        r.checked += 1;
        r.bytes_read += d.bytes;
        if crc == d.checksum {
            catalog::mark_verified(&db.conn, &d.tier, &d.relpath, now_ns()).map_err(db.err())?;
            continue;
        }
        r.mismatches += 1;
        let reason = format!(
            "checksum mismatch: CRC-32 {crc:08x} now, {:08x} when mdkeep wrote it (the bytes changed at rest)",
            d.checksum
        );
        r.failures.push(isolate(cfg, db, d, &path, &reason));
    }
    progress.finish();
    r.seconds = started.elapsed().as_secs_f64();
    Ok(r)
}

/// Quarantine a file that rotted; a pinned one stays (a job reads it) and is listed.
fn isolate(cfg: &Config, db: &Db, d: &Due, path: &Path, reason: &str) -> Failure {
    let q = Quarantine {
        tier: &d.tier,
        relpath: &d.relpath,
        from: path,
        dataset: Some(&d.dataset),
        partition: Some(&d.partition),
        bytes: d.bytes,
    };
    let file = path.display().to_string();
    match crate::engine::quarantine(cfg, &db.conn, &q, reason) {
        Ok(_) => Failure::quarantined("verify", file, reason),
        Err(e) => Failure::skipped("verify", file, &format!("{reason}; not quarantined: {e}")),
    }
}

/// CRC-32 of a file, read in 1 MiB blocks no faster than `pace` allows.
fn checksum_of(path: &Path, pace: &mut Pace, progress: &dyn Progress) -> Result<u32> {
    let mut f = std::fs::File::open(path).map_err(Error::io("open", path))?;
    let mut crc = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(Error::io("read", path))?;
        if n == 0 {
            return Ok(crc.finalize());
        }
        crc.update(&buf[..n]);
        progress.inc(n as u64);
        pace.took(n as u64);
    }
}

/// Sleeps so that reads average at most `rate` bytes per second (0: unbounded).
struct Pace {
    rate: u64,
    started: Instant,
    bytes: u64,
}

impl Pace {
    fn new(rate: u64) -> Pace {
        Pace {
            rate,
            started: Instant::now(),
            bytes: 0,
        }
    }

    fn took(&mut self, n: u64) {
        self.bytes += n;
        if self.rate == 0 {
            return;
        }
        let due = Duration::from_secs_f64(self.bytes as f64 / self.rate as f64);
        if let Some(wait) = due.checked_sub(self.started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pace_holds_reads_to_the_rate() {
        let mut p = Pace::new(10 << 20);
        let t = Instant::now();
        for _ in 0..4 {
            p.took(1 << 20);
        }
        // 4 MiB at 10 MiB/s: at least 0.4 s.
        assert!(t.elapsed() >= Duration::from_millis(390));
    }
}
