//! The command line: one file per command, each a thin shell over the library.
//!
//! Owns argument parsing, text/JSON output and exit codes. No storage logic
//! lives here.

mod alerts;
mod compact;
mod coverage;
mod daemon;
mod demo;
mod export;
mod gen;
mod healthcheck;
mod hog;
mod ingest;
mod init;
mod jobs;
mod lake;
mod ls;
mod maintain;
mod output;
mod pin;
mod quality;
mod quota;
mod report;
mod retention;
mod rollup;
mod scan;
mod schedule;
mod tier;
mod verify;

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use mdkeep::{Config, Error};

#[derive(Debug, Parser)]
#[command(
    name = "mdkeep",
    version,
    about = "Keeps Parquet market data healthy: catalog, compaction, tiering, quotas, and memory-budgeted backtests",
    after_help = mdkeep::exit::help()
)]
pub struct Cli {
    /// Folder holding configs/, data/ and jobs/.
    #[arg(long, global = true, env = "MDKEEP_ROOT", default_value = ".")]
    pub root: PathBuf,
    /// Config file (default: <root>/configs/mdkeep.toml, else the embedded default).
    #[arg(long, global = true, env = "MDKEEP_CONFIG")]
    pub config: Option<PathBuf>,
    /// How long a command that changes data waits for another one to finish
    /// (e.g. `30s`, `5m`) before it exits 75 saying who holds the lock.
    #[arg(long, global = true, value_name = "DURATION", default_value = "10s", value_parser = parse_span)]
    pub wait: mdkeep::config::units::Span,
    /// Log format on stderr; the level comes from RUST_LOG (default: warn).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the folders, the default config and the state database (idempotent).
    Init(init::Args),
    /// Reconcile the catalog with the files on disk.
    Scan(scan::Args),
    /// List datasets and their partitions.
    Ls(ls::Args),
    /// Rewrite small, unsorted, duplicated or misfiled files into sorted, deduplicated zstd files.
    Compact(compact::Args),
    /// Move old partitions to colder tiers (heavier zstd), per dataset `tier_after`.
    Tier(PolicyArgs),
    /// Build candles from finished trades partitions (always before they expire), verified.
    Rollup(PolicyArgs),
    /// Drop partitions older than their dataset's `keep`, against a guarded clock.
    Retention(PolicyArgs),
    /// Enforce disk limits: warn above the soft one, evict above the hard one.
    Quota(PolicyArgs),
    /// Data-quality findings by dataset and partition (checks partitions nobody has checked yet).
    Quality(quality::Args),
    /// Per series: first and last row, covered intervals and gaps, from the catalog alone.
    Coverage(coverage::Args),
    /// What is stored, what was removed and why, what comes next: table, json, md or html.
    Report(report::Args),
    /// Run scan → compact → rollup → retention → tier → quota, one run at a time.
    Maintain(maintain::Args),
    /// Pin files so no rewrite deletes them (e.g. while a backtest reads them).
    Pin(pin::PinArgs),
    /// Remove pins; trashed files are deleted after compaction.trash_grace.
    Unpin(pin::UnpinArgs),
    /// List pinned files.
    Pins(pin::ListArgs),
    /// Write a slice of a dataset in a backtest framework's own format, from any tier.
    Export(export::Args),
    /// Import a Freqtrade data folder or Parquet files into the layout.
    #[command(subcommand)]
    Ingest(ingest::Cmd),
    /// Queue, run and inspect backtest jobs within the memory budget.
    #[command(subcommand)]
    Jobs(jobs::Cmd),
    /// The DuckLake catalog DuckDB readers attach: attach, check, rebuild.
    #[command(subcommand)]
    Lake(lake::Cmd),
    /// Alerts: send a test message, list what is firing, evaluate the rules now.
    #[command(subcommand)]
    Alerts(alerts::Cmd),
    /// Run the scheduler, the job worker and /healthz, /metrics, /status in the foreground.
    Daemon(daemon::Args),
    /// Show the daemon's schedules: next and last runs and results.
    #[command(subcommand)]
    Schedule(schedule::Cmd),
    /// Exit 0 when the daemon's /healthz answers 200 (for container health checks).
    #[command(hide = true)]
    Healthcheck(healthcheck::Args),
    /// Hold memory (for testing limits).
    #[command(hide = true)]
    Hog(hog::Args),
    /// Re-read the files mdkeep wrote and compare them with their checksums; quarantine rot.
    Verify(verify::Args),
    /// Write a realistic pile of small trade files, as a live collector leaves them.
    Gen(gen::Args),
    /// Run the main job end to end on embedded defaults, in a folder of its own.
    Demo(demo::Args),
}

pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => b.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => b.json().init(),
    }
}

/// Run a command; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let result = match &cli.command {
        Command::Init(a) => init::run(&cli, a),
        Command::Scan(a) => scan::run(&cli, a),
        Command::Ls(a) => ls::run(&cli, a),
        Command::Quality(a) => quality::run(&cli, a),
        Command::Coverage(a) => coverage::run(&cli, a),
        Command::Ingest(c) => ingest::run(&cli, c),
        Command::Compact(a) => compact::run(&cli, a),
        Command::Tier(a) => tier::run(&cli, a),
        Command::Rollup(a) => rollup::run(&cli, a),
        Command::Retention(a) => retention::run(&cli, a),
        Command::Quota(a) => quota::run(&cli, a),
        Command::Maintain(a) => maintain::run(&cli, a),
        Command::Report(a) => report::run(&cli, a),
        Command::Pin(a) => pin::pin(&cli, a),
        Command::Unpin(a) => pin::unpin(&cli, a),
        Command::Pins(a) => pin::list(&cli, a),
        Command::Export(a) => export::run(&cli, a),
        Command::Jobs(c) => jobs::run(&cli, c),
        Command::Lake(c) => lake::run(&cli, c),
        Command::Alerts(c) => alerts::run(&cli, c),
        Command::Daemon(a) => daemon::run(&cli, a),
        Command::Schedule(c) => schedule::run(&cli, c),
        Command::Healthcheck(a) => healthcheck::run(a),
        Command::Hog(a) => hog::run(a),
        Command::Verify(a) => verify::run(&cli, a),
        Command::Gen(a) => gen::run(&cli, a),
        Command::Demo(a) => demo::run(&cli, a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            e.downcast_ref::<Error>().map(Error::exit_code).unwrap_or(1)
        }
    }
}

impl Cli {
    /// The config for this invocation, with environment overrides applied.
    pub fn load_config(&self) -> Result<Config, Error> {
        let cfg = Config::load(&self.root, self.config.as_deref(), std::env::vars())?;
        // Built once: paths under a store tier find their client from now on.
        mdkeep::store::Stores::build(&cfg).install();
        Ok(cfg)
    }
}

fn parse_span(s: &str) -> Result<mdkeep::config::units::Span, String> {
    s.parse()
}

/// Take the data lock for a command that changes data (none for a dry
/// run), before it plans, and say when the catalog was never filled.
pub fn lock_for(
    cli: &Cli,
    cfg: &Config,
    db: &mdkeep::state::Db,
    what: &str,
    dry_run: bool,
) -> anyhow::Result<Option<mdkeep::lock::DataLock>> {
    if mdkeep::catalog::is_empty(db)? {
        eprintln!("note: the catalog is empty, so there is nothing to {what}; `mdkeep scan` fills it");
    }
    if dry_run {
        return Ok(None);
    }
    Ok(Some(mdkeep::lock::DataLock::acquire_for(cfg, what, cli.wait.0)?))
}

/// `--dataset`, `--dry-run` and `--json`: what every policy command takes.
#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    /// Only this dataset.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Print what would change, and why, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result (or, with --dry-run, the plan) as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The config and the existing state database, after checking a named dataset exists.
pub fn open_state(cli: &Cli, dataset: Option<&str>) -> anyhow::Result<(Config, mdkeep::state::Db)> {
    let cfg = cli.load_config()?;
    if let Some(d) = dataset {
        cfg.dataset(d)?;
    }
    let db = mdkeep::state::Db::open_existing(&cfg.state_db())?;
    Ok((cfg, db))
}

/// The core's progress, drawn by indicatif on stderr.
pub struct Bar(indicatif::ProgressBar);

impl mdkeep::progress::Progress for Bar {
    fn set_length(&self, total: u64) {
        self.0.set_length(total);
    }
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// A progress bar on stderr when a person is watching, hidden otherwise.
pub fn progress(what: &'static str, json: bool) -> Bar {
    if json || !std::io::stderr().is_terminal() {
        return Bar(indicatif::ProgressBar::hidden());
    }
    let pb = indicatif::ProgressBar::new(0);
    pb.set_style(
        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_prefix(what);
    Bar(pb)
}
