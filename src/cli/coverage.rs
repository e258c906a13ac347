//! `mdkeep coverage`

use mdkeep::coverage;

use super::{output, Cli};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this dataset.
    #[arg(long)]
    dataset: Option<String>,
    /// Print every series with its intervals and gaps as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(cli: &Cli, a: &Args) -> anyhow::Result<i32> {
    let (cfg, db) = super::open_state(cli, a.dataset.as_deref())?;
    let series = coverage::index(&cfg, &db, a.dataset.as_deref())?;
    if a.json {
        output::json(&series)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = series
        .iter()
        .map(|s| {
            let name: Vec<String> = s.series.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let missing: u64 = s.gaps.iter().map(|g| g.missing).sum();
            vec![
                s.dataset.clone(),
                name.join("/"),
                s.cadence.clone(),
                s.first.clone(),
                s.last.clone(),
                output::thousands(s.rows),
                output::thousands(s.gaps.len() as u64),
                output::thousands(missing),
                if s.files_unindexed > 0 {
                    format!(
                        "{} of {} files not indexed: their whole range counts",
                        s.files_unindexed, s.files
                    )
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    output::table(
        &[
            "dataset", "series", "cadence", "first", "last", "rows", "gaps", "missing", "notes",
        ],
        &rows,
    );
    Ok(0)
}
