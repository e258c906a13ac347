//! `mdkeep ingest freqtrade|parquet`

use std::path::{Path, PathBuf};

use anyhow::Context;
use mdkeep::ingest::{freqtrade, parquet_files, IngestReport};
use mdkeep::state::Db;

use super::{output, Cli};

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Import a Freqtrade data folder (<PAIR>-<tf>.<ext> candles, <PAIR>-trades.<ext>, futures/).
    Freqtrade {
        /// The folder, e.g. user_data/data/binance.
        dir: PathBuf,
        /// Exchange partition value (default: the folder's name).
        #[arg(long)]
        exchange: Option<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Import Parquet files into a dataset, split by time partition.
    Parquet {
        /// Dataset to import into.
        #[arg(long)]
        dataset: String,
        /// Partition values, e.g. --set exchange=binance --set symbol=BTC_USDT.
        #[arg(long = "set", value_name = "COL=VALUE", value_parser = parse_kv)]
        set: Vec<(String, String)>,
        /// Files to import.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .ok_or_else(|| format!("`{s}` is not COL=VALUE"))
}

pub fn run(cli: &Cli, cmd: &Cmd) -> anyhow::Result<i32> {
    let cfg = cli.load_config()?;
    let mut db = Db::open_existing(&cfg.state_db())?;
    let _lock = mdkeep::lock::DataLock::acquire_for(&cfg, "ingest", cli.wait.0)?;
    let (report, json) = match cmd {
        Cmd::Freqtrade { dir, exchange, json } => {
            let exchange = match exchange {
                Some(e) => e.clone(),
                None => dir
                    .canonicalize()
                    .ok()
                    .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .context("cannot tell the exchange from the folder name; pass --exchange")?,
            };
            (freqtrade::ingest_dir(&cfg, &mut db, dir, &exchange)?, *json)
        }
        Cmd::Parquet {
            dataset,
            set,
            files,
            json,
        } => {
            let files: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
            (parquet_files::ingest_files(&cfg, &mut db, dataset, set, &files)?, *json)
        }
    };
    print(&report, json)?;
    Ok(0)
}

fn print(r: &IngestReport, json: bool) -> anyhow::Result<()> {
    if json {
        return output::json(r);
    }
    for s in &r.sources {
        println!(
            "{}  →  {} {}  ({} rows, {} files)",
            s.source,
            s.dataset,
            s.partition,
            output::thousands(s.rows),
            s.files.len()
        );
    }
    for s in &r.skipped {
        println!("skipped {}: {}", s.source, s.reason);
    }
    println!(
        "{} rows in {} files written",
        output::thousands(r.rows),
        r.files_written
    );
    Ok(())
}
