//! `demo`: the main job end to end, on embedded defaults, in a folder of its own.
//!
//! Each capability adds its step here. Today: init → gen → maintain (scan,
//! compact, rollup, retention, tier, quota) → ls → two jobs of different
//! frameworks, each handed its data in its framework's format, run within
//! the memory budget → a data-retention report.

use std::path::Path;

use crate::progress::Silent;
use serde::Serialize;

use crate::catalog::{self, PartitionSummary};
use crate::config::Config;
use crate::error::Result;
use crate::gen::{GenOptions, GenReport};
use crate::init::InitReport;
use crate::state::Db;

#[derive(Debug, Serialize)]
pub struct DemoReport {
    pub root: String,
    pub init: InitReport,
    pub gen: GenReport,
    pub maintain: crate::maintenance::MaintainReport,
    pub partitions: Vec<PartitionSummary>,
    pub jobs: Vec<crate::jobs::queue::JobView>,
    pub worker: crate::jobs::worker::WorkReport,
    /// The HTML report written at the end.
    pub report: String,
}

/// Two stand-in backtests: each gets the candles in its framework's own
/// format (Freqtrade feather files, a vectorbt wide close table) and holds
/// some memory, so the budget and the peaks show. Real framework specs are
/// under `jobs/` in the repository.
fn demo_specs(root: &Path) -> Result<Vec<std::path::PathBuf>> {
    let exe = std::env::current_exe().map_err(crate::Error::io("locate", "mdkeep"))?;
    let dir = root.join("jobs");
    std::fs::create_dir_all(&dir).map_err(crate::Error::io("create folder", &dir))?;
    let mut out = Vec::new();
    for (name, group, format, mb) in [
        ("ft-style", "freqtrade", "freqtrade", 48),
        ("vbt-style", "vectorbt", "vectorbt", 32),
    ] {
        let p = dir.join(format!("{name}.toml"));
        let text = format!(
            "name = \"{name}\"\nframework = \"command\"\ngroup = \"{group}\"\nmemory = \"128MiB\"\n\
             argv = [{exe:?}, \"hog\", \"--mb\", \"{mb}\", \"--hold-ms\", \"300\"]\n\n\
             [data]\ndataset = \"ohlcv\"\ntimeframe = \"1m\"\nformat = \"{format}\"\n"
        );
        std::fs::write(&p, text).map_err(crate::Error::io("write", &p))?;
        out.push(p);
    }
    Ok(out)
}

/// Small enough to finish in seconds, big enough to show the shape: two
/// symbols, two days, a flush every 15 minutes.
pub fn demo_gen_options() -> GenOptions {
    GenOptions {
        symbols: 2,
        days: 2,
        rows_per_flush: 2000,
        ..GenOptions::default()
    }
}

pub fn run(root: &Path, env: impl IntoIterator<Item = (String, String)>) -> Result<DemoReport> {
    std::fs::create_dir_all(root).map_err(crate::Error::io("create folder", root))?;
    crate::init::write_default_config(root)?;
    let cfg = Config::load(root, None, env)?;
    crate::store::Stores::build(&cfg).install();
    let init = crate::init::init(&cfg, false)?;
    let gen = crate::gen::generate(&cfg, &demo_gen_options())?;
    let mut db = Db::open(&cfg.state_db())?;
    let lock = crate::lock::DataLock::acquire_for(&cfg, "demo", std::time::Duration::from_secs(60))?;
    let maintain = crate::maintenance::maintain(&cfg, &mut db, Some(&lock), false, &Silent)?;
    drop(lock);
    let partitions = catalog::partitions(&db, None)?;
    for spec in demo_specs(root)? {
        crate::jobs::submit(&cfg, &db, &spec, &[])?;
    }
    let worker = crate::jobs::worker::work(&cfg, &mut db, true, &crate::shutdown::Shutdown::new())?;
    let jobs = crate::jobs::queue::list(&db, None)?
        .iter()
        .rev()
        .map(|j| j.view())
        .collect();
    let report = crate::report::write_dated(&cfg, &db, &cfg.reports_dir(), cfg.daemon.keep_reports)?;
    Ok(DemoReport {
        root: root.display().to_string(),
        init,
        gen,
        maintain,
        partitions,
        jobs,
        worker,
        report: report.display().to_string(),
    })
}
