//! Names that become path segments: datasets, tiers, columns, partition
//! values, store prefixes.
//!
//! Owns the one check that refuses a name that could escape its folder. A
//! leaf: config, layout and store all use it.

use crate::error::{Error, Result};

/// Refuse a name that is empty, hidden, a path, or could escape a folder
/// when used as one path segment (`..`, `/`, `\`, NUL, `=`).
pub fn check_segment(what: &'static str, value: &str) -> Result<()> {
    let reason = if value.is_empty() {
        Some("it is empty")
    } else if value == "." || value == ".." || value.contains("..") {
        Some("it contains `..`")
    } else if value.contains('/') || value.contains('\\') {
        Some("it contains a path separator")
    } else if value.starts_with('.') {
        Some("it starts with `.`")
    } else if value.contains('\0') || value.chars().any(|c| c.is_control()) {
        Some("it contains a control character")
    } else if value.contains('=') {
        Some("it contains `=`, which Hive paths reserve")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::UnsafeName {
            what,
            value: value.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}
