//! `mdkeep rollup`

use mdkeep::config::units::human_bytes;
use mdkeep::rollup;

use super::{lock_for, open_state, output, progress, Cli, PolicyArgs};

pub fn run(cli: &Cli, a: &PolicyArgs) -> anyhow::Result<i32> {
    let (cfg, mut db) = open_state(cli, a.dataset.as_deref())?;
    let _lock = lock_for(cli, &cfg, &db, "rollup", a.dry_run)?;
    let plan = rollup::plan(&cfg, &db, a.dataset.as_deref())?;
    if a.dry_run {
        if a.json {
            output::json(&plan)?;
            return Ok(0);
        }
        for i in &plan.items {
            println!(
                "would roll up {} {} into {} {}: {} files, {} rows, {}: {}",
                i.dataset,
                i.partition,
                i.into,
                i.timeframes.join(","),
                i.file_count,
                output::thousands(i.rows),
                human_bytes(i.bytes),
                i.reason
            );
        }
        if plan.items.is_empty() {
            println!("nothing to roll up");
        }
        println!("dry run: nothing was changed");
        return Ok(0);
    }
    let m = rollup::execute(&cfg, &mut db, &plan, &progress("rollup", a.json))?;
    if a.json {
        output::json(&m)?;
    } else {
        let candles: Vec<String> = m
            .candles
            .iter()
            .map(|(tf, n)| format!("{} {tf}", output::thousands(*n)))
            .collect();
        println!(
            "rolled up {} partitions: {} trades ({} duplicates removed) → {} candles in {} files, {:.2}s",
            m.partitions,
            output::thousands(m.trades),
            output::thousands(m.duplicates_removed),
            if candles.is_empty() {
                "0".to_string()
            } else {
                candles.join(" + ")
            },
            m.files_written,
            m.seconds
        );
        output::failures(&m.failures);
    }
    Ok(mdkeep::outcome::Outcome::of_failures(&m.failures).code())
}
