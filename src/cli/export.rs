//! `mdkeep export`

use std::path::PathBuf;

use mdkeep::config::units::human_bytes;
use mdkeep::export::{self, parse_time, Format, Request};

use super::{output, Cli};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    mdkeep export --dataset ohlcv --exchange binance --symbol BTC_USDT --timeframe 1m \\\n      \
    --from 2024-01-01 --to 2024-02-01 --format freqtrade --out user_data/data/binance\n  \
    mdkeep export --dataset trades --symbol ETH_USDT --format hftbacktest --out /tmp/hbt")]
pub struct Args {
    /// Dataset to read (e.g. trades, ohlcv).
    #[arg(long)]
    dataset: String,
    /// Exchange partition value (default: every exchange).
    #[arg(long)]
    exchange: Option<String>,
    /// Symbol partition value, e.g. BTC_USDT; repeat for several (default: all).
    #[arg(long = "symbol")]
    symbols: Vec<String>,
    /// Candle timeframe, e.g. 1m (candle datasets).
    #[arg(long)]
    timeframe: Option<String>,
    /// First time included: 2024-01-31 or RFC 3339.
    #[arg(long)]
    from: Option<String>,
    /// First time excluded: 2024-02-01 or RFC 3339.
    #[arg(long)]
    to: Option<String>,
    /// Output format.
    #[arg(long, value_enum)]
    format: Format,
    /// Output folder (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// nautilus: decimals of prices and sizes, as the instrument declares them, e.g. 2,6 (default 8,8).
    #[arg(long, value_parser = parse_precision)]
    precision: Option<(u32, u32)>,
    /// Refuse (exit 65) when the partitions read have quality findings of a
    /// fault still in the data (see `mdkeep quality`).
    #[arg(long)]
    require_clean: bool,
    /// Read what lake snapshot N named (while it is kept), not the live files.
    #[arg(long, value_name = "N")]
    snapshot: Option<i64>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_precision(s: &str) -> Result<(u32, u32), String> {
    let (p, q) = s.split_once(',').ok_or("expected PRICE,SIZE decimals, e.g. 2,6")?;
    let n = |x: &str| {
        x.trim()
            .parse::<u32>()
            .ok()
            .filter(|v| *v <= 16)
            .ok_or(format!("`{x}` is not 0 to 16"))
    };
    Ok((n(p)?, n(q)?))
}

pub fn run(cli: &Cli, a: &Args) -> anyhow::Result<i32> {
    let (cfg, db) = super::open_state(cli, Some(&a.dataset))?;
    let req = Request {
        dataset: a.dataset.clone(),
        exchange: a.exchange.clone(),
        symbols: a.symbols.clone(),
        timeframe: a.timeframe.clone(),
        from: a.from.as_deref().map(parse_time).transpose()?,
        to: a.to.as_deref().map(parse_time).transpose()?,
        format: a.format,
        out: a.out.clone(),
        precision: a.precision,
        require_clean: a.require_clean.then(mdkeep::export::quality::default_clean_kinds),
        snapshot: a.snapshot,
    };
    // The pins belong to this run: they go when it ends, even by kill -9.
    let lease = mdkeep::lock::RunLease::take(&cfg, "export")?;
    let owner = mdkeep::engine::pins::PinOwner::run("export", &lease);
    let report = export::export(&cfg, &db, &req, &owner)?;
    if a.json {
        output::json(&report)?;
        return Ok(0);
    }
    for f in &report.files {
        println!(
            "{}  {} rows  {}",
            f.path,
            output::thousands(f.rows),
            human_bytes(f.bytes)
        );
    }
    let tiers: Vec<String> = report.source_files.iter().map(|(t, n)| format!("{n} {t}")).collect();
    println!(
        "exported {} rows of {} as {} from {} source files in {:.2}s{}",
        output::thousands(report.rows),
        report.dataset,
        report.format,
        tiers.join(" + "),
        report.seconds,
        report
            .snapshot
            .map(|n| format!(" (lake snapshot {n})"))
            .unwrap_or_default()
    );
    Ok(0)
}
