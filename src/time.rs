//! Time as mdkeep keeps it: nanoseconds since the epoch, UTC.
//!
//! Owns the clock ([`now_ns`]), the one text form (RFC 3339, [`rfc3339`]),
//! reading a user's time ([`parse_time`]: a date, an RFC 3339 time or
//! nanoseconds) and the guarded clock ([`guarded`]: min(now, newest row),
//! so a future-dated row or a stalled collector never ages everything at
//! once). A leaf: it uses nothing else of the crate but the error type.

use crate::error::{Error, Result};

/// Now, in nanoseconds since the epoch.
pub fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// `ns` as RFC 3339 in UTC, with as many fractional digits as it needs.
pub fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// A time a user wrote: `2024-01-31`, `2024-01-31T12:00:00Z`, or nanoseconds.
pub fn parse_time(s: &str) -> Result<i64> {
    let bad = || Error::Invalid(format!("`{s}` is not a time: use 2024-01-31 or 2024-01-31T12:00:00Z"));
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let t = d.and_hms_opt(0, 0, 0).ok_or_else(bad)?.and_utc();
        return t.timestamp_nanos_opt().ok_or_else(bad);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return t.timestamp_nanos_opt().ok_or_else(bad);
    }
    s.parse::<i64>().map_err(|_| bad())
}

/// The guarded clock over data whose newest row is `newest`.
pub fn guarded(newest: i64) -> i64 {
    now_ns().min(newest)
}

/// A span of nanoseconds in the largest unit that divides it: `1d`, `8h`, `1m`, `90s`, `250ms`.
pub fn human_ns(ns: i64) -> String {
    match ns {
        0 => "0s".into(),
        n if n % 86_400_000_000_000 == 0 => format!("{}d", n / 86_400_000_000_000),
        n if n % 3_600_000_000_000 == 0 => format!("{}h", n / 3_600_000_000_000),
        n if n % 60_000_000_000 == 0 => format!("{}m", n / 60_000_000_000),
        n if n % 1_000_000_000 == 0 => format!("{}s", n / 1_000_000_000),
        n => format!("{}ms", n / 1_000_000),
    }
}
