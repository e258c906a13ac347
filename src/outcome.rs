//! How a run ended, and the one table of exit codes.
//!
//! Owns the documented codes (after sysexits.h where one fits) and the
//! [`Outcome`] of a run that goes on past what it cannot handle (compact,
//! tier, quota, maintain). The library decides the outcome; the CLI exits
//! with [`Outcome::code`], the daemon turns it into a task result with
//! [`Outcome::task_result`], and `--help` prints [`help`].

use crate::error::Failure;

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
pub const BAD_CONFIG: i32 = 78;

/// Every exit code and what it means, for `--help` and the README.
pub const CODES: [(i32, &str); 11] = [
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

/// How a run that goes on past what it cannot handle ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Everything was done.
    Done,
    /// Done, but some files or series were quarantined or skipped.
    DoneWithFailures,
    /// An object store could not be reached: what could be done was.
    StoreUnreachable(String),
    /// The quota cannot be met, and why.
    QuotaUnmet(String),
    /// An I/O failure such as a full disk.
    Io(String),
}

impl Outcome {
    /// The outcome of a run that had these failures: an I/O failure, else an
    /// unreachable store, else done with failures, else done.
    pub fn of_failures(failures: &[Failure]) -> Outcome {
        let first = |code: i32| failures.iter().find(|f| f.code == code);
        if let Some(f) = first(IO) {
            return Outcome::Io(format!("{}: {}", f.file, f.reason));
        }
        if let Some(f) = first(STORE_UNAVAILABLE) {
            return Outcome::StoreUnreachable(format!("{}: {}", f.file, f.reason));
        }
        if failures.is_empty() {
            Outcome::Done
        } else {
            Outcome::DoneWithFailures
        }
    }

    pub fn code(&self) -> i32 {
        match self {
            Outcome::Done => OK,
            Outcome::DoneWithFailures => DONE_WITH_FAILURES,
            Outcome::StoreUnreachable(_) => STORE_UNAVAILABLE,
            Outcome::QuotaUnmet(_) => QUOTA_UNMET,
            Outcome::Io(_) => IO,
        }
    }

    /// A scheduled task's result: `Ok(summary)` when the run did what it
    /// could with the data (failures are in the summary), else why not.
    pub fn task_result(&self, summary: String) -> Result<String, String> {
        match self {
            Outcome::Done | Outcome::DoneWithFailures => Ok(summary),
            Outcome::StoreUnreachable(why) => Err(format!("{summary}; {why}")),
            Outcome::QuotaUnmet(why) => Err(format!("quota cannot be met: {why}")),
            Outcome::Io(why) => Err(format!("{summary}; {why}")),
        }
    }
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
