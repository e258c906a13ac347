//! A dataset's `quality` settings: what its rows must look like, and what
//! happens to rows that do not.
//!
//! Owns the declaration only (`[datasets.<name>.quality]` or an inline
//! table). The checks themselves are `quality`'s.

use serde::{Deserialize, Serialize};

use super::Span;

/// What kind of market data a dataset holds, which decides its checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DataKind {
    Trades,
    Candles,
    Book,
    /// Only the checks every dataset gets (keys, order, time).
    Other,
}

/// What becomes of a row with a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnBadRows {
    /// Written like any row; the finding says where it is.
    #[default]
    Keep,
    /// Written, with its reason, under `<quarantine>/rows/<dataset>/` instead.
    Quarantine,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QualityConfig {
    /// Run the checks when rows are rewritten (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// trades, candles, book or other; unset: told from the columns.
    #[serde(default)]
    pub kind: Option<DataKind>,
    #[serde(default)]
    pub on_bad_rows: OnBadRows,
    /// A trade price this far (a fraction) from the previous trade's is a jump.
    #[serde(default = "default_max_jump")]
    pub max_jump: f64,
    /// The values a `side` column may hold (trades say buy/sell, books often bid/ask).
    #[serde(default = "default_sides")]
    pub sides: Vec<String>,
    /// Rows later than the clock plus this are "in the future".
    #[serde(default = "default_future")]
    pub future_tolerance: Span,
    /// Rows before this day are implausible (`YYYY-MM-DD`).
    #[serde(default = "default_earliest")]
    pub earliest: String,
}

fn yes() -> bool {
    true
}
fn default_max_jump() -> f64 {
    0.2
}
fn default_sides() -> Vec<String> {
    ["buy", "sell", "bid", "ask"].map(String::from).to_vec()
}
fn default_future() -> Span {
    Span(std::time::Duration::from_secs(3600))
}
fn default_earliest() -> String {
    "2009-01-01".into()
}

impl Default for QualityConfig {
    fn default() -> Self {
        QualityConfig {
            enabled: true,
            kind: None,
            on_bad_rows: OnBadRows::Keep,
            max_jump: default_max_jump(),
            sides: default_sides(),
            future_tolerance: default_future(),
            earliest: default_earliest(),
        }
    }
}
