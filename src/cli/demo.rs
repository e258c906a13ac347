//! `mdkeep demo`

use std::path::PathBuf;

use mdkeep::catalog::rfc3339;
use mdkeep::config::units::human_bytes;

use super::{output, Cli};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder the demo works in (created if missing; --root is not used).
    #[arg(long, default_value = "./mdkeep-demo")]
    dir: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(_cli: &Cli, a: &Args) -> anyhow::Result<i32> {
    let r = mdkeep::demo::run(&a.dir, std::env::vars())?;
    if a.json {
        output::json(&r)?;
        return Ok(0);
    }
    println!("mdkeep demo in {}\n", r.root);
    println!("1. init: config {}, state {}", r.init.config, r.init.state_db);
    println!(
        "2. gen: a collector's pile: {} small files, {} rows ({} distinct trades; the rest are re-sent rows)",
        output::thousands(r.gen.files),
        output::thousands(r.gen.rows),
        output::thousands(r.gen.distinct_rows)
    );
    print_maintain(&r.maintain);
    println!("4. ls:");

    for p in &r.partitions {
        println!(
            "   {:<5} {:<8} {:<50} {:>5} files {:>10} rows {:>9}  {} .. {}",
            p.tier,
            p.dataset,
            p.partition_key,
            p.files,
            output::thousands(p.rows),
            human_bytes(p.bytes),
            p.min_ts.map(rfc3339).unwrap_or_default(),
            p.max_ts.map(rfc3339).unwrap_or_default()
        );
    }
    println!(
        "5. jobs: two stand-in backtests of different frameworks, one framework at a time, {} limits:",
        r.worker.mechanism
    );
    for j in &r.jobs {
        println!(
            "   job {} {:<10} {:<10} {:<10} reserved {:>9}  peak {:>9}  {}",
            j.id,
            j.name,
            j.group,
            j.state,
            human_bytes(j.reserved_memory_bytes),
            j.peak_memory_bytes.map(human_bytes).unwrap_or_default(),
            j.dir
        );
    }
    println!("6. report: {}", r.report);
    println!("\nQuery it: duckdb -c \"SELECT symbol, count(*) FROM read_parquet('{}/data/processed/trades/**/*.parquet', hive_partitioning=true) GROUP BY 1\"", r.root);
    Ok(0)
}

/// Step 3: what each maintain step did to the pile.
fn print_maintain(m: &mdkeep::maintenance::MaintainReport) {
    if let Some(scan) = &m.scan {
        println!(
            "3. maintain / scan: {} added, {} pending, {} corrupt, {} misfiled (rows a flush carried past midnight); catalog holds {} rows",
            scan.added,
            scan.pending.len(),
            scan.corrupt.len(),
            scan.misfiled.len(),
            output::thousands(scan.rows)
        );
    }
    let c = &m.compact;
    println!(
        "   maintain / compact: {} files → {}, {} rows → {} ({} duplicates removed, misfiled rows moved home), {} → {}, {:.2}s",
        output::thousands(c.totals.files_in),
        c.totals.files_out,
        output::thousands(c.totals.rows_in),
        output::thousands(c.totals.rows_out),
        output::thousands(c.totals.duplicates_removed),
        human_bytes(c.totals.bytes_in),
        human_bytes(c.totals.bytes_out),
        c.seconds
    );
    let candles: u64 = m.rollup.candles.values().sum();
    println!(
        "   maintain / rollup: {} finished trades partitions → {} verified 1m candles in ohlcv",
        m.rollup.partitions,
        output::thousands(candles)
    );
    println!(
        "   maintain / retention: {} partitions dropped (no dataset sets `keep` by default)",
        m.retention.partitions_dropped
    );
    println!(
        "   maintain / tier: {} partitions moved (the pile is younger than tier_after)",
        m.tier.moves
    );
    println!(
        "   maintain / quota: usage {}, {} evictions",
        human_bytes(m.quota.plan.usage.total),
        m.quota.plan.evictions.len()
    );
}
