//! `mdkeep tier`

use mdkeep::config::units::human_bytes;
use mdkeep::tiering;

use super::{lock_for, open_state, output, progress, Cli, PolicyArgs};

pub fn run(cli: &Cli, a: &PolicyArgs) -> anyhow::Result<i32> {
    let (cfg, mut db) = open_state(cli, a.dataset.as_deref())?;
    let _lock = lock_for(cli, &cfg, &db, "tier", a.dry_run)?;
    let plan = tiering::plan(&cfg, &db, a.dataset.as_deref())?;
    if a.dry_run {
        if a.json {
            output::json(&plan)?;
            return Ok(0);
        }
        for mv in &plan.moves {
            let verb = if mv.from == mv.to { "merge in place" } else { "move" };
            let then = if mv.merge_after {
                ", then merge with the files there"
            } else {
                ""
            };
            println!(
                "would {verb} {} {}  {} → {}  ({} files, {} rows, {}): {}{then}",
                mv.dataset,
                mv.partition,
                mv.from,
                mv.to,
                mv.files,
                output::thousands(mv.rows),
                human_bytes(mv.bytes),
                mv.reason
            );
        }
        for b in &plan.blocked {
            println!("not moving {} {} [{}]: {}", b.dataset, b.partition, b.tier, b.reason);
        }
        if plan.moves.is_empty() {
            println!("nothing to move");
        }
        println!("dry run: nothing was changed");
        return Ok(0);
    }
    let m = tiering::execute(&cfg, &mut db, &plan, &progress("tier", a.json))?;
    // A store that could not be reached: what could move moved, and the
    // exit code says the rest did not.
    let code = m.outcome().code();
    if a.json {
        output::json(&m)?;
        return Ok(code);
    }
    println!(
        "moved {} partitions: {} files → {}, {} rows, {} → {} in {:.1}s",
        m.moves,
        m.totals.files_in,
        m.totals.files_out,
        output::thousands(m.totals.rows_out),
        human_bytes(m.totals.bytes_in),
        human_bytes(m.totals.bytes_out),
        m.seconds
    );
    for b in &m.blocked {
        println!("not moving {} {} [{}]: {}", b.dataset, b.partition, b.tier, b.reason);
    }
    for f in &m.failed {
        eprintln!("error: not moved {} {} → {}: {}", f.dataset, f.partition, f.to, f.error);
    }
    output::failures(
        m.failures
            .iter()
            .filter(|f| f.code != mdkeep::outcome::STORE_UNAVAILABLE),
    );
    Ok(code)
}
