//! Market-data quality: what is wrong with stored rows, found while the
//! rows stream by anyway.
//!
//! Owns the kinds of finding ([`Kind`]), the streaming [`Checker`] the engine
//! feeds during every rewrite, the `quality_findings` and `quality_checked`
//! tables ([`findings`]), the on-demand check of partitions nobody has
//! checked yet ([`demand`]) and the Parquet file bad rows are quarantined
//! to ([`rows`]). It does not decide when rows are read: the engine does,
//! and hands each batch over once.

pub mod check;
pub mod demand;
pub mod findings;
pub mod rows;
pub mod values;

use serde::{Deserialize, Serialize};

pub use check::Checker;
pub use findings::{list, overview, FindingRow, Overview, QualityFilter};

/// What a finding is about. The serde names are what the database and the
/// JSON hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Copies of a key removed by a rewrite (counted per rewrite, summed).
    DuplicateKeys,
    /// Rows earlier than the row before them in their source file.
    OutOfOrder,
    /// Rows later than the clock plus `quality.future_tolerance`.
    FutureTime,
    /// Rows before `quality.earliest`.
    TooEarly,
    /// Rows in a file filed under another partition than their time's.
    OutsidePartition,
    /// A price that is not a finite positive number (book: not finite).
    BadPrice,
    /// An amount that is not a finite positive number (book: negative).
    BadAmount,
    /// A side outside `quality.sides`.
    BadSide,
    /// A trade id lower than or equal to the one before it in its series.
    IdRegression,
    /// Missing trade ids between consecutive trades (rows = gaps).
    IdGap,
    /// A price more than `quality.max_jump` away from the previous trade's.
    PriceJump,
    /// A candle whose high is below its open or close.
    HighBelowOpenClose,
    /// A candle whose low is above its open or close.
    LowAboveOpenClose,
    /// A candle whose high is below its low.
    HighBelowLow,
    /// A candle value that is NaN, infinite or null.
    NonFinite,
    /// A candle with a negative volume.
    NegativeVolume,
    /// A candle time that is not a multiple of its timeframe.
    OffGrid,
    /// A candle series whose median spacing is not its declared timeframe.
    Cadence,
    /// One book update with a bid at or above an ask.
    CrossedBook,
}

impl Kind {
    pub const ALL: [Kind; 19] = [
        Kind::DuplicateKeys,
        Kind::OutOfOrder,
        Kind::FutureTime,
        Kind::TooEarly,
        Kind::OutsidePartition,
        Kind::BadPrice,
        Kind::BadAmount,
        Kind::BadSide,
        Kind::IdRegression,
        Kind::IdGap,
        Kind::PriceJump,
        Kind::HighBelowOpenClose,
        Kind::LowAboveOpenClose,
        Kind::HighBelowLow,
        Kind::NonFinite,
        Kind::NegativeVolume,
        Kind::OffGrid,
        Kind::Cadence,
        Kind::CrossedBook,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::DuplicateKeys => "duplicate_keys",
            Kind::OutOfOrder => "out_of_order",
            Kind::FutureTime => "future_time",
            Kind::TooEarly => "too_early",
            Kind::OutsidePartition => "outside_partition",
            Kind::BadPrice => "bad_price",
            Kind::BadAmount => "bad_amount",
            Kind::BadSide => "bad_side",
            Kind::IdRegression => "id_regression",
            Kind::IdGap => "id_gap",
            Kind::PriceJump => "price_jump",
            Kind::HighBelowOpenClose => "high_below_open_close",
            Kind::LowAboveOpenClose => "low_above_open_close",
            Kind::HighBelowLow => "high_below_low",
            Kind::NonFinite => "non_finite",
            Kind::NegativeVolume => "negative_volume",
            Kind::OffGrid => "off_grid",
            Kind::Cadence => "cadence",
            Kind::CrossedBook => "crossed_book",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// A fault of the row itself: such rows may be quarantined.
    pub const fn is_row_fault(self) -> bool {
        matches!(
            self,
            Kind::FutureTime
                | Kind::TooEarly
                | Kind::BadPrice
                | Kind::BadAmount
                | Kind::BadSide
                | Kind::HighBelowOpenClose
                | Kind::LowAboveOpenClose
                | Kind::HighBelowLow
                | Kind::NonFinite
                | Kind::NegativeVolume
                | Kind::OffGrid
        )
    }

    /// Something a rewrite removed or put right (duplicates, order, filing):
    /// gone from the data afterwards, so each rewrite adds its count.
    pub fn is_repaired(self) -> bool {
        matches!(self, Kind::DuplicateKeys | Kind::OutOfOrder | Kind::OutsidePartition)
    }

    const fn bit(self) -> u32 {
        1 << (self as u32)
    }

    /// The kinds whose bits are set in `mask`, joined by `,`.
    pub fn names_of(mask: u32) -> String {
        Kind::ALL
            .iter()
            .filter(|k| mask & k.bit() != 0)
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One kind of problem in one partition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub kind: Kind,
    /// Rows with the problem (for `id_gap`: gaps; for `cadence`: the partition's rows).
    pub rows: u64,
    /// Time of the first such row, ns since the epoch.
    pub first_ts: i64,
    /// One offending row, `column=value` pairs.
    pub example: String,
    /// More about it: the largest gap or jump, the measured spacing.
    pub detail: Option<String>,
    /// The file the example row came from (a source file) or is in now.
    pub file: Option<String>,
}
