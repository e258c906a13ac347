//! `mdkeep scan`

use mdkeep::state::Db;

use super::{output, progress, Cli};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(cli: &Cli, a: &Args) -> anyhow::Result<i32> {
    let cfg = cli.load_config()?;
    let mut db = Db::open_existing(&cfg.state_db())?;
    let _lock = mdkeep::lock::DataLock::acquire_for(&cfg, "scan", cli.wait.0)?;
    let r = mdkeep::maintenance::settled_scan(&cfg, &mut db, &progress("scan", a.json))?;
    if a.json {
        output::json(&r)?;
        return Ok(0);
    }
    println!(
        "added {}  updated {}  removed {}  unchanged {}  pending {}  corrupt {}  drift {}  misfiled {}",
        r.added,
        r.updated,
        r.removed,
        r.unchanged,
        r.pending.len(),
        r.corrupt.len(),
        r.drift.len(),
        r.misfiled.len()
    );
    println!(
        "catalog: {} files, {} rows ({} footers read in {:.2}s)",
        output::thousands(r.files),
        output::thousands(r.rows),
        r.files_read,
        r.seconds
    );
    for p in &r.pending {
        println!(
            "pending   {p}  (younger than scan.settle_time = {})",
            cfg.scan.settle_time
        );
    }
    for c in &r.corrupt {
        println!("corrupt   {}: {}\n          moved to {}", c.path, c.reason, c.moved_to);
    }
    for p in r.drift.iter().take(20) {
        println!("drift     {p}");
    }
    for p in r.misfiled.iter().take(20) {
        println!("misfiled  {p}  (rows outside the partition's time range; `compact` moves them home)");
    }
    if r.misfiled.len() > 20 {
        println!("          ... and {} more misfiled (see --json)", r.misfiled.len() - 20);
    }
    for i in r.ignored.iter().take(20) {
        println!("ignored   {}: {}", i.path, i.reason);
    }
    for i in &r.skipped {
        println!("skipped   {}: {}", i.path, i.reason);
    }
    for i in &r.unsettled {
        println!("unsettled {}: {}", i.path, i.reason);
    }
    for d in &r.recovered.deferred {
        println!(
            "deferred  {} {} ({}) {}: {} (since {})",
            d.kind, d.id, d.step, d.file, d.reason, d.since
        );
    }
    Ok(0)
}
