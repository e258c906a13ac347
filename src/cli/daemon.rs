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
    rt.block_on(async move {
        let shutdown = async {
            use tokio::signal::unix::{signal, SignalKind};
            let (mut term, mut int) = match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
                (Ok(t), Ok(i)) => (t, i),
                _ => return std::future::pending().await,
            };
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            // A second signal forces the exit; recovery makes that safe.
            tokio::spawn(async move {
                tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
                tracing::warn!("second signal: exiting now");
                std::process::exit(130);
            });
        };
        mdkeep::daemon::run(cfg, shutdown).await
    })?;
    Ok(0)
}
