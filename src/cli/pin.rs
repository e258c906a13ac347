//! `mdkeep pin`, `mdkeep unpin`, `mdkeep pins`

use std::path::PathBuf;

use mdkeep::engine::pins;
use mdkeep::state::Db;

use super::{output, Cli};

#[derive(Debug, clap::Args)]
pub struct PinArgs {
    /// Data files under a tier root.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Who holds the pin (a job id, a name).
    #[arg(long, default_value = "manual")]
    owner: String,
}

#[derive(Debug, clap::Args)]
pub struct UnpinArgs {
    /// Data files under a tier root (or where they used to be).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Only this owner's pins.
    #[arg(long)]
    owner: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

pub fn pin(cli: &Cli, a: &PinArgs) -> anyhow::Result<i32> {
    let cfg = cli.load_config()?;
    let db = Db::open_existing(&cfg.state_db())?;
    for p in &a.paths {
        anyhow::ensure!(p.exists(), "{} does not exist", p.display());
        let (tier, rel) = pins::locate_file(&cfg, p)?;
        pins::pin_file(&db, &tier, &rel, &a.owner)?;
        println!("pinned {tier}:{rel} for {}", a.owner);
    }
    Ok(0)
}

pub fn unpin(cli: &Cli, a: &UnpinArgs) -> anyhow::Result<i32> {
    let cfg = cli.load_config()?;
    let db = Db::open_existing(&cfg.state_db())?;
    for p in &a.paths {
        let (tier, rel) = pins::locate_file(&cfg, p)?;
        let n = pins::unpin_file(&db, &tier, &rel, a.owner.as_deref())?;
        println!("removed {n} pin(s) on {tier}:{rel}");
    }
    Ok(0)
}

pub fn list(cli: &Cli, a: &ListArgs) -> anyhow::Result<i32> {
    let cfg = cli.load_config()?;
    let db = Db::open_existing(&cfg.state_db())?;
    let pins = pins::list_pins(&db)?;
    if a.json {
        output::json(&pins)?;
    } else {
        for p in &pins {
            println!("{}:{}  {}  since {}", p.tier, p.relpath, p.owner, p.created_at);
        }
    }
    Ok(0)
}
