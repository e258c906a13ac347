//! `mdkeep gen`

use mdkeep::gen::{generate, GenOptions};

use super::{output, Cli};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of symbols (BTC_USDT, ETH_USDT, SOL_USDT, ... up to 8).
    #[arg(long, default_value_t = 4)]
    symbols: usize,
    /// Number of days.
    #[arg(long, default_value_t = 3)]
    days: u32,
    /// First day, YYYY-MM-DD (default: `days` days before today, UTC).
    #[arg(long)]
    start: Option<chrono::NaiveDate>,
    /// Collector flushes per hour; each flush is one file.
    #[arg(long, default_value_t = 4)]
    flushes_per_hour: u32,
    /// Trades per flush.
    #[arg(long, default_value_t = 5000)]
    rows_per_flush: usize,
    /// Share of each flush repeated in the next (re-sends after reconnects).
    #[arg(long, default_value_t = 0.01)]
    dup: f64,
    /// Exchange partition value.
    #[arg(long, default_value = "binance")]
    exchange: String,
    /// Random seed: the same seed writes the same pile.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(cli: &Cli, a: &Args) -> anyhow::Result<i32> {
    let cfg = cli.load_config()?;
    let r = generate(
        &cfg,
        &GenOptions {
            exchange: a.exchange.clone(),
            symbols: a.symbols,
            days: a.days,
            start: a.start,
            flushes_per_hour: a.flushes_per_hour,
            rows_per_flush: a.rows_per_flush,
            dup: a.dup,
            seed: a.seed,
        },
    )?;
    if a.json {
        output::json(&r)?;
    } else {
        println!(
            "{} files, {} rows ({} distinct trades) written under {}",
            output::thousands(r.files),
            output::thousands(r.rows),
            output::thousands(r.distinct_rows),
            r.root
        );
    }
    Ok(0)
}
