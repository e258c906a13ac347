//! `mdkeep schedule ls`

use mdkeep::scheduler;

use super::{open_state, output, Cli};

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Each task's cron, time zone, next and last run, and last result.
    Ls(LsArgs),
}

#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Print the list as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(cli: &Cli, c: &Cmd) -> anyhow::Result<i32> {
    let Cmd::Ls(a) = c;
    let (cfg, db) = open_state(cli, None)?;
    let rows = scheduler::list(&cfg, &db)?;
    if a.json {
        output::json(&rows)?;
        return Ok(0);
    }
    println!(
        "{:<10} {:<18} {:<14} {:<31} {:<31} last result",
        "task", "cron", "timezone", "next run", "last start"
    );
    for r in rows {
        println!(
            "{:<10} {:<18} {:<14} {:<31} {:<31} {}{}",
            r.task,
            r.cron,
            r.timezone,
            r.next_run.unwrap_or_else(|| "-".into()),
            r.last_start.unwrap_or_else(|| "-".into()),
            r.last_result.unwrap_or_else(|| "-".into()),
            if r.skipped > 0 {
                format!(" ({} skipped)", r.skipped)
            } else {
                String::new()
            }
        );
    }
    Ok(0)
}
