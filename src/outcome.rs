//! How a run ended.
//!
//! Owns the [`Outcome`] of a run that goes on past what it cannot handle
//! (compact, tier, quota, maintain). The library decides the outcome; the
//! CLI exits with [`Outcome::code`] (a code of [`crate::exit`]'s table), the
//! daemon turns it into a task result with [`Outcome::task_result`].

use crate::error::Failure;

pub use crate::exit::*;

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
        let why = |f: &Failure| format!("{}: {}", f.file, f.reason);
        match Failure::exit_code(failures) {
            OK => Outcome::Done,
            IO => Outcome::Io(first(IO).map(why).unwrap_or_default()),
            STORE_UNAVAILABLE => Outcome::StoreUnreachable(first(STORE_UNAVAILABLE).map(why).unwrap_or_default()),
            _ => Outcome::DoneWithFailures,
        }
    }

    /// As [`of_failures`](Self::of_failures); a run that leaves work
    /// deferred (each listed with its file, step and reason) is done with
    /// failures too, until a later run finishes it.
    pub fn of_run(failures: &[Failure], deferred: usize) -> Outcome {
        match Outcome::of_failures(failures) {
            Outcome::Done if deferred > 0 => Outcome::DoneWithFailures,
            o => o,
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
