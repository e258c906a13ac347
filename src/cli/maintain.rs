//! `mdkeep maintain`

use mdkeep::config::units::human_bytes;
use mdkeep::maintenance;

use super::{open_state, output, progress, Cli};

/// Exits as [`maintenance::MaintainReport::outcome`] says (see `mdkeep --help`).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Report what each step would do, and change nothing (the scan is skipped).
    #[arg(long)]
    dry_run: bool,
    /// Print each step's result as JSON (with `failures`: each file, step and reason).
    #[arg(long)]
    json: bool,
}

pub fn run(cli: &Cli, a: &Args) -> anyhow::Result<i32> {
    let (cfg, mut db) = open_state(cli, None)?;
    let lock = if a.dry_run {
        None
    } else {
        Some(mdkeep::lock::DataLock::acquire_for(&cfg, "maintain", cli.wait.0)?)
    };
    let r = maintenance::maintain(&cfg, &mut db, lock.as_ref(), a.dry_run, &progress("maintain", a.json))?;
    drop(lock);
    if a.json {
        output::json(&r)?;
    } else {
        if let Some(s) = &r.scan {
            println!(
                "scan:      {} added, {} updated, {} removed, {} pending, {} corrupt",
                s.added,
                s.updated,
                s.removed,
                s.pending.len(),
                s.corrupt.len()
            );
        }
        let c = &r.compact;
        println!(
            "compact:   {} partitions, {} files → {}, {} duplicates removed",
            c.totals.partitions_rewritten, c.totals.files_in, c.totals.files_out, c.totals.duplicates_removed
        );
        let candles: u64 = r.rollup.candles.values().sum();
        println!(
            "rollup:    {} partitions, {} trades → {} candles",
            r.rollup.partitions,
            output::thousands(r.rollup.trades),
            output::thousands(candles)
        );
        println!(
            "retention: {} partitions dropped, {}",
            r.retention.partitions_dropped,
            human_bytes(r.retention.bytes_removed)
        );
        println!(
            "tier:      {} partitions moved, {}",
            r.tier.moves,
            human_bytes(r.tier.totals.bytes_in)
        );
        let q = &r.quota.plan;
        println!(
            "quota:     usage {}, {} evictions{}",
            human_bytes(q.usage.total),
            q.evictions.len(),
            if q.soft_exceeded { " (above the soft limit)" } else { "" }
        );
        if a.dry_run {
            println!("dry run: nothing was changed");
        }
    }
    if let Some(why) = &r.quota.plan.unmet {
        eprintln!("error: quota cannot be met: {why}");
    }
    if let Some(why) = r.tier.store_failure() {
        // Local steps ran; only the moves to an unreachable store did not.
        eprintln!("error: {why}");
    }
    output::failures(
        r.failures
            .iter()
            .filter(|f| f.code != mdkeep::outcome::STORE_UNAVAILABLE),
    );
    output::deferred(&r.deferred);
    Ok(r.exit_code())
}
