//! `mdkeep ls`

use mdkeep::catalog::{self, rfc3339};
use mdkeep::config::units::human_bytes;

use super::{output, Cli};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this dataset.
    #[arg(long)]
    dataset: Option<String>,
    /// Print the partitions as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(cli: &Cli, a: &Args) -> anyhow::Result<i32> {
    let (cfg, db) = super::open_state(cli, a.dataset.as_deref())?;
    let parts = catalog::partitions(&db, a.dataset.as_deref())?;
    if a.json {
        output::json(&parts)?;
        return Ok(0);
    }
    for (name, ds) in &cfg.datasets {
        if a.dataset.as_ref().is_some_and(|d| d != name) {
            continue;
        }
        let mine: Vec<_> = parts.iter().filter(|p| &p.dataset == name).collect();
        let (files, rows, bytes) = mine
            .iter()
            .fold((0, 0, 0), |(f, r, b), p| (f + p.files, r + p.rows, b + p.bytes));
        println!(
            "{name}: {} partitions, {} files, {} rows, {}  (key: {}; time: {} by {:?})",
            mine.len(),
            output::thousands(files),
            output::thousands(rows),
            human_bytes(bytes),
            ds.key.join(","),
            ds.time_column,
            ds.granularity
        );
        if mine.is_empty() {
            continue;
        }
        let rows: Vec<Vec<String>> = mine
            .iter()
            .map(|p| {
                vec![
                    p.tier.clone(),
                    p.partition_key.clone(),
                    output::thousands(p.files),
                    output::thousands(p.rows),
                    human_bytes(p.bytes),
                    p.min_ts.map(rfc3339).unwrap_or_default(),
                    p.max_ts.map(rfc3339).unwrap_or_default(),
                    flags(p),
                ]
            })
            .collect();
        output::table(
            &["  tier", "partition", "files", "rows", "size", "from", "to", "notes"],
            &indent(rows),
        );
        println!();
    }
    // Disk that is not live data still counts against the disk.
    let o = mdkeep::engine::journal::overhead(&cfg, &db)?;
    println!(
        "outside the data: trash {}, tmp {}, quarantine {}, open journals {}",
        human_bytes(o.trash_bytes),
        human_bytes(o.tmp_bytes),
        human_bytes(o.quarantine_bytes),
        o.open_journals
    );
    if let Some(l) = mdkeep::lake::status::status(&cfg) {
        println!("{}", l.line());
    }
    Ok(0)
}

fn flags(p: &catalog::PartitionSummary) -> String {
    let mut v = Vec::new();
    if p.drift_files > 0 {
        v.push(format!("{} drift", p.drift_files));
    }
    if p.misfiled_files > 0 {
        v.push(format!("{} misfiled", p.misfiled_files));
    }
    v.join(", ")
}

fn indent(mut rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    for r in &mut rows {
        r[0] = format!("  {}", r[0]);
    }
    rows
}
