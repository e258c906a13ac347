//! The `[lake]` section: the DuckLake catalog mdkeep keeps for readers.
//!
//! Owns only the declaration and its defaults; `crate::lake` acts on it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Span;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LakeConfig {
    /// Keep the lake at all.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// The DuckLake catalog (SQLite), relative to the root.
    #[serde(default = "default_path")]
    pub path: PathBuf,
    /// A retired file stays readable while a snapshot younger than this names it.
    #[serde(default = "default_keep")]
    pub keep_snapshots: Span,
    /// A held file keeps its old name this long after the lake points at
    /// its new one, for readers that listed the old name and open it later.
    #[serde(default = "default_reader_grace")]
    pub reader_grace: Span,
}

impl Default for LakeConfig {
    fn default() -> Self {
        LakeConfig {
            enabled: default_enabled(),
            path: default_path(),
            keep_snapshots: default_keep(),
            reader_grace: default_reader_grace(),
        }
    }
}

fn default_enabled() -> bool {
    true
}
fn default_path() -> PathBuf {
    PathBuf::from("data/lake.sqlite")
}
fn default_keep() -> Span {
    Span(std::time::Duration::from_secs(3600))
}
fn default_reader_grace() -> Span {
    Span(std::time::Duration::from_secs(1))
}
