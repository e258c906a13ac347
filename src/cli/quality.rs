//! `mdkeep quality`

use mdkeep::quality::{self, Kind, QualityFilter};

use super::{output, Cli};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this dataset.
    #[arg(long)]
    dataset: Option<String>,
    /// Only partitions with these values, e.g. exchange=binance,symbol=BTC_USDT.
    #[arg(long = "where", value_name = "COL=VALUE,...", value_parser = output::parse_where)]
    filter: Option<Vec<(String, String)>>,
    /// Only these kinds, e.g. bad_price,cadence.
    #[arg(long, value_delimiter = ',', value_parser = parse_kind)]
    kind: Vec<Kind>,
    /// Show what is stored; do not check partitions nobody has checked yet.
    #[arg(long)]
    stored: bool,
    /// Print `{"partitions_checked": N, "findings": [...]}`.
    #[arg(long)]
    json: bool,
}

fn parse_kind(s: &str) -> Result<Kind, String> {
    Kind::parse(s).ok_or_else(|| {
        let all: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        format!("`{s}` is not a kind; one of: {}", all.join(", "))
    })
}

pub fn run(cli: &Cli, a: &Args) -> anyhow::Result<i32> {
    let (cfg, db) = super::open_state(cli, a.dataset.as_deref())?;
    // Checking records findings: one writer at a time, like every step.
    // `--stored` only reads.
    let _lock = super::lock_for(cli, &cfg, &db, "check", a.stored)?;
    let checked_now = if a.stored {
        0
    } else {
        let bar = super::progress("checking", a.json);
        quality::demand::check_unchecked(&cfg, &db, a.dataset.as_deref(), &bar)?
    };
    let filter = QualityFilter {
        dataset: a.dataset.clone(),
        values: a.filter.clone().unwrap_or_default(),
        kinds: a.kind.clone(),
        partitions: None,
    };
    let report = quality::overview(&db, &filter, checked_now)?;
    if a.json {
        output::json(&report)?;
        return Ok(0);
    }
    print_text(&report);
    Ok(0)
}

fn print_text(r: &quality::Overview) {
    println!(
        "{} partitions checked ({} just now), {} findings",
        output::thousands(r.partitions_checked),
        output::thousands(r.checked_now),
        output::thousands(r.findings.len() as u64)
    );
    if r.findings.is_empty() {
        return;
    }
    let rows: Vec<Vec<String>> = r
        .findings
        .iter()
        .map(|f| {
            vec![
                f.dataset.clone(),
                f.partition_key.clone(),
                f.kind.to_string(),
                f.status.as_str().to_string(),
                output::thousands(f.rows),
                f.first_ts.clone(),
                f.detail.clone().unwrap_or_else(|| format!("e.g. {}", f.example)),
            ]
        })
        .collect();
    output::table(
        &["dataset", "partition", "kind", "status", "rows", "first", "detail"],
        &rows,
    );
}
