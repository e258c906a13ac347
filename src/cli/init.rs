//! `mdkeep init`

use mdkeep::init;

use super::{output, Cli};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(cli: &Cli, a: &Args) -> anyhow::Result<i32> {
    // The default config is written before loading, so `init` in an empty
    // folder leaves a config the user can edit.
    let write_config = cli.config.is_none();
    if write_config {
        init::write_default_config(&cli.root)?;
    }
    let cfg = cli.load_config()?;
    let r = init::init(&cfg, false)?;
    if a.json {
        output::json(&r)?;
    } else {
        println!("config:   {}", r.config);
        println!("state db: {} (schema version {})", r.state_db, r.schema_version);
        if r.created.is_empty() {
            println!("nothing to create: already initialised");
        }
        for c in &r.created {
            println!("created   {c}");
        }
    }
    Ok(0)
}
