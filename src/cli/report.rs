//! `mdkeep report`

use std::path::PathBuf;

use mdkeep::config::Span;
use mdkeep::report;

use super::{open_state, output, Cli};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Md,
    Html,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Write to this file instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// History and growth window, e.g. 30d, 12h.
    #[arg(long, default_value = "30d")]
    since: Span,
    /// Same as --format json.
    #[arg(long)]
    json: bool,
    /// Do what the daemon's `report` task does: write
    /// data/reports/retention-<date>.html and .json, keep the newest
    /// `daemon.keep_reports`, and print the HTML's path.
    #[arg(long, conflicts_with_all = ["out", "format", "json"])]
    write_dated: bool,
}

pub fn run(cli: &Cli, a: &Args) -> anyhow::Result<i32> {
    let (cfg, db) = open_state(cli, None)?;
    if a.write_dated {
        let p = report::write_dated(&cfg, &db, &cfg.reports_dir(), cfg.daemon.keep_reports)?;
        println!("{}", p.display());
        return Ok(0);
    }
    let r = report::build(&cfg, &db, a.since)?;
    let format = if a.json { Format::Json } else { a.format };
    let text = match format {
        Format::Table => report::render::table(&r),
        Format::Md => report::render::markdown(&r),
        Format::Html => report::html::render(&r),
        Format::Json => {
            if a.out.is_none() {
                output::json(&r)?;
                return Ok(0);
            }
            serde_json::to_string_pretty(&r)? + "\n"
        }
    };
    match &a.out {
        Some(p) => {
            mdkeep::fsutil::write_atomic(p, text.as_bytes())?;
            eprintln!("wrote {}", p.display());
        }
        None => print!("{text}"),
    }
    Ok(0)
}
