//! `mdkeep retention`

use mdkeep::config::units::human_bytes;
use mdkeep::retention;
use mdkeep::state::Db;

use super::{output, Cli};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this dataset.
    #[arg(long)]
    dataset: Option<String>,
    /// Print what would be dropped, and why, and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print metrics (or, with --dry-run, the plan) as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(cli: &Cli, a: &Args) -> anyhow::Result<i32> {
    let cfg = cli.load_config()?;
    if let Some(d) = &a.dataset {
        cfg.dataset(d)?;
    }
    let mut db = Db::open_existing(&cfg.state_db())?;
    let plan = retention::plan(&cfg, &db, a.dataset.as_deref())?;
    if a.dry_run {
        if a.json {
            output::json(&plan)?;
            return Ok(0);
        }
        for d in &plan.drops {
            println!(
                "would drop {} {} [{}]: {} files, {} rows, {}: {}",
                d.dataset,
                d.partition,
                d.tier,
                d.files.len(),
                output::thousands(d.rows),
                human_bytes(d.bytes),
                d.reason
            );
        }
        if plan.drops.is_empty() {
            println!("nothing to drop");
        }
        println!("dry run: nothing was changed");
        return Ok(0);
    }
    let m = retention::execute(&cfg, &mut db, &plan)?;
    if a.json {
        output::json(&m)?;
    } else {
        println!(
            "dropped {} partitions: {} files, {} rows, {}",
            m.partitions_dropped,
            m.files_removed,
            output::thousands(m.rows_removed),
            human_bytes(m.bytes_removed)
        );
    }
    Ok(0)
}
