//! `mdkeep retention`

use mdkeep::config::units::human_bytes;
use mdkeep::retention;

use super::{lock_for, open_state, output, Cli, PolicyArgs};

pub fn run(cli: &Cli, a: &PolicyArgs) -> anyhow::Result<i32> {
    let (cfg, mut db) = open_state(cli, a.dataset.as_deref())?;
    let _lock = lock_for(cli, &cfg, &db, "retention", a.dry_run)?;
    let plan = retention::plan(&cfg, &db, a.dataset.as_deref())?;
    if a.dry_run {
        if a.json {
            output::json(&plan)?;
            return Ok(0);
        }
        let line = |verb: &str, d: &retention::Expired| {
            println!(
                "{verb} {} {} [{}]: {} files, {} rows, {}: {}",
                d.dataset,
                d.partition,
                d.tier,
                d.files.len(),
                output::thousands(d.rows),
                human_bytes(d.bytes),
                d.reason
            )
        };
        for d in &plan.drops {
            line("would drop", d);
        }
        for t in &plan.trims {
            line("would trim", &t.target);
        }
        for d in &plan.waiting_for_rollup {
            line("would keep until its rollup is verified", d);
        }
        for b in &plan.rollup_failed {
            line("would keep (its rollup failed)", &b.target);
            println!(
                "  rollup failed {} times since {}: {}",
                b.failure.attempts, b.failure.since, b.failure.last_error
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
        output::failures(&m.failures);
    }
    Ok(mdkeep::outcome::Outcome::of_failures(&m.failures).code())
}
