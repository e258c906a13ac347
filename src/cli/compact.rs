//! `mdkeep compact`

use mdkeep::compaction::{self, Filter};
use mdkeep::config::units::human_bytes;
use mdkeep::state::Db;

use super::{output, progress, Cli};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this dataset.
    #[arg(long)]
    dataset: Option<String>,
    /// Only series matching these partition values, e.g. exchange=binance,symbol=BTC_USDT
    /// (a time partition value, e.g. date=2024-01-02, limits which partitions start a rewrite).
    #[arg(long = "where", value_name = "COL=VALUE,...", value_parser = output::parse_where)]
    filter: Option<Vec<(String, String)>>,
    /// Print the plan and change nothing, on disk or in the database.
    #[arg(long)]
    dry_run: bool,
    /// Print metrics (or, with --dry-run, the plan) as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(cli: &Cli, a: &Args) -> anyhow::Result<i32> {
    let cfg = cli.load_config()?;
    let mut db = Db::open_existing(&cfg.state_db())?;
    let _lock = super::lock_for(cli, &cfg, &db, "compact", a.dry_run)?;
    let filter = Filter {
        dataset: a.dataset.clone(),
        values: a.filter.clone().unwrap_or_default(),
    };
    let plan = compaction::plan(&cfg, &db, &filter)?;
    if a.dry_run {
        return print_plan(&plan, a.json);
    }
    let m = compaction::execute(&cfg, &mut db, &plan, &progress("compact", a.json))?;
    let code = mdkeep::outcome::Outcome::of_run(&m.failures, m.recovered.deferred.len()).code();
    if a.json {
        output::json(&m)?;
        return Ok(code);
    }
    print_metrics(&m);
    output::failures(&m.failures);
    output::deferred(&m.recovered.deferred);
    Ok(code)
}

/// The dry run: what would be rewritten and why.
fn print_plan(plan: &compaction::Plan, json: bool) -> anyhow::Result<i32> {
    if json {
        #[derive(serde::Serialize)]
        struct DryRun<'a> {
            #[serde(flatten)]
            metrics: compaction::Metrics,
            plan: &'a compaction::Plan,
        }
        output::json(&DryRun {
            metrics: compaction::dry_run_metrics(plan),
            plan,
        })?;
        return Ok(0);
    }
    if plan.is_empty() {
        println!(
            "nothing to compact ({} partitions already compact)",
            plan.partitions_skipped
        );
    }
    for s in &plan.series {
        let files: u64 = s.partitions.iter().map(|p| p.files).sum();
        println!(
            "would rewrite {} {} [{}]: {} partitions, {} files",
            s.dataset,
            s.series,
            s.tier,
            s.partitions.len(),
            files
        );
        for p in &s.partitions {
            println!(
                "  {}  {} files, {} rows, {}: {}",
                p.partition,
                p.files,
                output::thousands(p.rows),
                human_bytes(p.bytes),
                p.reasons.join("; ")
            );
        }
    }
    for d in &plan.skipped_drift {
        println!("skipped (schema drift): {d}");
    }
    println!("dry run: nothing was changed");
    Ok(0)
}

/// What a run rewrote, in words.
fn print_metrics(m: &compaction::Metrics) {
    if m.recovered.rolled_back + m.recovered.finished > 0 {
        println!(
            "recovered: {} interrupted rewrite(s) rolled back, {} finished",
            m.recovered.rolled_back, m.recovered.finished
        );
    }
    println!(
        "rewrote {} partitions in {} series ({} already compact): {} files → {}, {} rows → {} ({} duplicates removed), {} → {} in {:.1}s, peak memory {}",
        m.totals.partitions_rewritten,
        m.series_rewritten,
        m.partitions_skipped,
        output::thousands(m.totals.files_in),
        output::thousands(m.totals.files_out),
        output::thousands(m.totals.rows_in),
        output::thousands(m.totals.rows_out),
        output::thousands(m.totals.duplicates_removed),
        human_bytes(m.totals.bytes_in),
        human_bytes(m.totals.bytes_out),
        m.seconds,
        human_bytes(m.peak_memory_bytes)
    );
    if m.totals.pinned_to_trash > 0 {
        println!(
            "{} pinned input(s) moved to the trash, deleted once unpinned",
            m.totals.pinned_to_trash
        );
    }
    for d in &m.skipped_drift {
        println!("skipped (schema drift): {d}");
    }
    if m.totals.replaced_kept > 0 {
        println!(
            "{} input(s) replaced in place after they were read: kept, the next scan catalogs them",
            m.totals.replaced_kept
        );
    }
}
