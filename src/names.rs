//! Names that become path segments: datasets, tiers, columns, partition
//! values, store prefixes.
//!
//! Owns the one check that refuses a name that could escape its folder. A
//! leaf: config, layout and store all use it.

use crate::error::{Error, Result};

/// Refuse a name that is empty, hidden, a path, or could escape a folder
/// when used as one path segment (`..`, `/`, `\`, NUL, `=`).
pub fn check_segment(what: &'static str, value: &str) -> Result<()> {
    refuse(what, value, segment_fault(value))
}

/// Refuse a partition value that could not be written as `col=value` and
/// read back as itself by DuckDB, pyarrow and polars: what
/// [`check_segment`] refuses, except a leading `.` (a BitMEX index such as
/// `.BXBT`). The value never starts its segment (`symbol=.BXBT`), so the
/// folder is not hidden and no reader skips it; `.` and `..` stay refused.
/// Scan and every writer check partition values with this one rule.
pub fn check_partition_value(value: &str) -> Result<()> {
    let fault = match segment_fault(value) {
        Some(LEADING_DOT) => None,
        f => f,
    };
    refuse("partition value", value, fault)
}

const LEADING_DOT: &str = "it starts with `.`";

fn refuse(what: &'static str, value: &str, reason: Option<&'static str>) -> Result<()> {
    match reason {
        Some(reason) => Err(Error::UnsafeName {
            what,
            value: value.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Why `value` cannot be one path segment, if it cannot.
fn segment_fault(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        Some("it is empty")
    } else if value == "." || value == ".." || value.contains("..") {
        Some("it contains `..`")
    } else if value.contains('/') || value.contains('\\') {
        Some("it contains a path separator")
    } else if value.contains('\0') || value.chars().any(|c| c.is_control()) {
        Some("it contains a control character")
    } else if value.contains('=') {
        Some("it contains `=`, which Hive paths reserve")
    } else if value.starts_with('.') {
        // Last: a partition value may start with `.` (check_partition_value).
        Some(LEADING_DOT)
    } else {
        None
    }
}
