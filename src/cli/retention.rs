//! `mdkeep retention`

use mdkeep::config::units::human_bytes;
use mdkeep::retention;

use super::{open_state, output, Cli, PolicyArgs};

pub fn run(cli: &Cli, a: &PolicyArgs) -> anyhow::Result<i32> {
    let (cfg, mut db) = open_state(cli, a.dataset.as_deref())?;
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
        for t in &plan.trims {
            println!(
                "would trim {} {} [{}] ({} rows, {}): {}",
                t.dataset,
                t.partition,
                t.tier,
                output::thousands(t.rows),
                human_bytes(t.bytes),
                t.reason
            );
        }
        for d in &plan.waiting_for_rollup {
            println!(
                "would keep {} {} [{}] until its rollup is verified: {}",
                d.dataset, d.partition, d.tier, d.reason
            );
        }
        if plan.drops.is_empty() && plan.trims.is_empty() {
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
        if m.partitions_trimmed > 0 {
            println!(
                "trimmed {} straddling partitions: {} expired rows rewritten away",
                m.partitions_trimmed,
                output::thousands(m.rows_trimmed)
            );
        }
        if !plan.waiting_for_rollup.is_empty() {
            println!(
                "{} expired partitions wait for their rollup (run `mdkeep rollup`)",
                plan.waiting_for_rollup.len()
            );
        }
    }
    Ok(0)
}
