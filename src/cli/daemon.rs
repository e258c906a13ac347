//! `mdkeep daemon`

use super::Cli;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(cli: &Cli, _a: &Args) -> anyhow::Result<i32> {
    let cfg = cli.load_config()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(16)
        .enable_all()
        .build()?;
    // A second signal forces the exit; recovery makes that safe.
    rt.block_on(mdkeep::daemon::run(cfg, mdkeep::shutdown::signalled()))?;
    Ok(0)
}
