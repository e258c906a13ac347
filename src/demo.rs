//! `demo`: the main job end to end, on embedded defaults, in a folder of its own.
//!
//! Each capability adds its step here. Today: init → gen → maintain (scan,
//! compact, retention, tier, quota) → ls.

use std::path::Path;

use indicatif::ProgressBar;
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
    let init = crate::init::init(&cfg, false)?;
    let gen = crate::gen::generate(&cfg, &demo_gen_options())?;
    let mut db = Db::open(&cfg.state_db())?;
    let maintain = crate::maintenance::maintain(&cfg, &mut db, false, &ProgressBar::hidden())?;
    let partitions = catalog::partitions(&db, None)?;
    Ok(DemoReport {
        root: root.display().to_string(),
        init,
        gen,
        maintain,
        partitions,
    })
}
