//! The one table of exit codes.
//!
//! Owns the documented codes (after sysexits.h where one fits) and the
//! paragraph `--help` prints. [`crate::error::Error::exit_code`] and
//! [`crate::outcome::Outcome::code`] pick from it; nothing else names a
//! number. A leaf.

pub const OK: i32 = 0;
pub const FAILURE: i32 = 1;
pub const BAD_ARGUMENTS: i32 = 2;
pub const QUOTA_UNMET: i32 = 3;
pub const DONE_WITH_FAILURES: i32 = 4;
pub const REFUSED: i32 = 64;
pub const BAD_DATA: i32 = 65;
pub const STORE_UNAVAILABLE: i32 = 69;
pub const IO: i32 = 74;
pub const BUSY: i32 = 75;
pub const NO_PERMISSION: i32 = 77;
pub const BAD_CONFIG: i32 = 78;

/// Every exit code and what it means, for `--help` and the README.
pub const CODES: [(i32, &str); 12] = [
    (OK, "ok"),
    (FAILURE, "failure"),
    (BAD_ARGUMENTS, "bad arguments"),
    (QUOTA_UNMET, "quota cannot be met"),
    (
        DONE_WITH_FAILURES,
        "done, with failures (each listed with its file, step and reason)",
    ),
    (REFUSED, "refused request"),
    (BAD_DATA, "bad input data"),
    (STORE_UNAVAILABLE, "object store unreachable"),
    (IO, "I/O error (e.g. a full disk)"),
    (BUSY, "busy (another mdkeep holds the data lock past --wait)"),
    (
        NO_PERMISSION,
        "the data folder is not writable (its owner, this uid and the fix are named)",
    ),
    (BAD_CONFIG, "bad config"),
];

/// The exit-code paragraph of `--help`.
pub fn help() -> String {
    let codes: Vec<String> = CODES.iter().map(|(c, what)| format!("{c} {what}")).collect();
    format!(
        "Exit codes: {}. Output into a closed pipe ends quietly with 0.",
        codes.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_every_code_once() {
        let h = help();
        for (code, _) in CODES {
            assert_eq!(h.matches(&format!(" {code} ")).count(), 1, "{code} in {h}");
        }
        assert!(h.contains("69 object store unreachable"), "{h}");
    }
}
