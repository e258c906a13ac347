//! `mdkeep verify`

use mdkeep::config::units::human_bytes;
use mdkeep::verify;

use super::{lock_for, open_state, output, progress, Cli};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Read every checksummed file, not only those due (`verify.every`).
    #[arg(long)]
    pub all: bool,
    /// List what would be read, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long)]
    pub json: bool,
}

pub fn run(cli: &Cli, a: &Args) -> anyhow::Result<i32> {
    let (cfg, db) = open_state(cli, None)?;
    let _lock = lock_for(cli, &cfg, &db, "verify", a.dry_run)?;
    let plan = verify::plan(&cfg, &db, a.all)?;
    if a.dry_run {
        if a.json {
            output::json(&plan)?;
        } else {
            println!(
                "would read {} files ({}) at {}/s; {} files have no checksum",
                plan.files.len(),
                human_bytes(plan.bytes),
                human_bytes(plan.rate),
                plan.unchecksummed
            );
            println!("dry run: nothing was changed");
        }
        return Ok(0);
    }
    let r = verify::execute(&cfg, &db, &plan, &progress("verify", a.json))?;
    if a.json {
        output::json(&r)?;
    } else {
        println!(
            "verified {} files ({}) in {:.1} s: {} mismatches; {} files have no checksum",
            r.checked,
            human_bytes(r.bytes_read),
            r.seconds,
            r.mismatches,
            r.unchecksummed
        );
        for f in &r.failures {
            println!("{} {}: {}", f.outcome, f.file, f.reason);
        }
    }
    Ok(r.outcome().code())
}
