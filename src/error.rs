//! The library's one error type.
//!
//! Every variant names what went wrong *and where*: the file, the config key,
//! the dataset or the line. The binary maps variants to exit codes; nothing in
//! the library decides how an error is shown. Secrets never go in here: config
//! values are not echoed back, only their keys.

use crate::exit;
use std::path::PathBuf;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file (or an environment override) is invalid.
    #[error("config {source_name}: key `{key}`: {message}")]
    Config {
        source_name: String,
        key: String,
        message: String,
    },

    /// A filesystem operation failed on a named path.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A folder mdkeep must write is not writable by the user it runs as.
    #[error("{path} is not writable: {message}")]
    NotWritable { path: PathBuf, message: String },

    /// The state database failed.
    #[error("state database {path}: {source}")]
    Db {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    /// A Parquet file could not be read or written.
    #[error("parquet {path}: {message}")]
    Parquet { path: PathBuf, message: String },

    /// A name that would escape its folder or is otherwise unsafe.
    #[error("refused {what} `{value}`: {reason}")]
    UnsafeName {
        what: &'static str,
        value: String,
        reason: &'static str,
    },

    /// The user named a dataset the config does not declare.
    #[error("unknown dataset `{0}` (declared in config under [datasets])")]
    UnknownDataset(String),

    /// Input data does not fit the dataset it is meant for.
    #[error("{path}: does not match dataset `{dataset}`: {message}")]
    Schema {
        path: PathBuf,
        dataset: String,
        message: String,
    },

    /// Input that is malformed at a known place (a line, a field).
    #[error("{path}: {message}")]
    BadInput { path: PathBuf, message: String },

    /// A job spec is invalid at a named key.
    #[error("job spec {path}: key `{key}`: {message}")]
    Spec {
        path: PathBuf,
        key: String,
        message: String,
    },

    /// Data a job requires clean has quality findings of the kinds it named.
    #[error("data of `{dataset}` has quality findings (data.require_clean): {findings}")]
    Unclean { dataset: String, findings: String },

    /// A job pinned to a data fingerprint the data no longer has.
    #[error("the data of `{dataset}` no longer has fingerprint {pinned} (data.fingerprint); it is {now} now{diff}")]
    DataChanged {
        dataset: String,
        pinned: String,
        now: String,
        /// What changed, one partition per line, or why it cannot be said.
        diff: String,
    },

    /// A request about a job that cannot be honoured (unknown id, wrong state, over budget).
    #[error("job {id}: {message}")]
    Job { id: i64, message: String },

    /// Another process holds what this one needs (a lock).
    #[error("{0}")]
    Busy(String),

    /// An object store (a tier on S3) failed or could not be reached, after retries.
    #[error("store {url}: {message}")]
    Store { url: String, message: String },

    /// A command-level request that cannot be honoured.
    #[error("{0}")]
    Invalid(String),

    /// A root has too little free space for a rewrite (checked before it starts).
    #[error("needs {needed} free on {root}, {available} available")]
    NoSpace {
        root: PathBuf,
        needed: String,
        available: String,
    },
}

/// One thing a run could not handle. It was isolated (the file quarantined,
/// the series skipped) and the run went on.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Failure {
    /// The step: `scan`, `compact`, `rollup`, `retention`, `tier`, `quota`.
    pub step: String,
    /// The file, series or root it concerns.
    pub file: String,
    pub reason: String,
    /// `quarantined`, `skipped` (retried next run), `deferred` (finished by
    /// a later run) or `step failed`.
    pub outcome: String,
    /// The exit code this failure alone gives (74 I/O, 69 store, else 4).
    pub code: i32,
}

impl Failure {
    pub fn new(step: &str, file: impl Into<String>, e: &Error, outcome: &str) -> Failure {
        let code = match e.exit_code() {
            c @ (exit::IO | exit::STORE_UNAVAILABLE) => c,
            _ => exit::DONE_WITH_FAILURES,
        };
        Failure {
            step: step.to_string(),
            file: file.into(),
            reason: e.to_string(),
            outcome: outcome.to_string(),
            code,
        }
    }

    /// A file quarantined with its reason.
    pub fn quarantined(step: &str, file: impl Into<String>, reason: &str) -> Failure {
        Failure::handled(step, file, reason, "quarantined")
    }

    /// A file left alone for now (retried next run), with its reason.
    pub fn skipped(step: &str, file: impl Into<String>, reason: &str) -> Failure {
        Failure::handled(step, file, reason, "skipped")
    }

    /// Work left for the next run (a committed rewrite's input that could
    /// not be retired): the data is safe, the run went on.
    pub fn deferred(step: &str, file: impl Into<String>, reason: &str) -> Failure {
        Failure::handled(step, file, reason, "deferred")
    }

    fn handled(step: &str, file: impl Into<String>, reason: &str, outcome: &str) -> Failure {
        Failure {
            step: step.to_string(),
            file: file.into(),
            reason: reason.to_string(),
            outcome: outcome.to_string(),
            code: exit::DONE_WITH_FAILURES,
        }
    }

    /// One line for a log: how many, and the first.
    pub fn summary(failures: &[Failure]) -> String {
        match failures {
            [] => String::new(),
            [first, ..] => format!(
                "; {} failures, first: {} ({})",
                failures.len(),
                first.file,
                first.reason
            ),
        }
    }

    /// The exit code of a run that had these failures, the first that
    /// applies: an I/O failure (a full disk), an unreachable store, done
    /// with failures; 0 without any.
    pub fn exit_code(failures: &[Failure]) -> i32 {
        [exit::IO, exit::STORE_UNAVAILABLE, exit::DONE_WITH_FAILURES]
            .into_iter()
            .find(|c| failures.iter().any(|f| f.code == *c))
            .unwrap_or(exit::OK)
    }
}

impl Error {
    pub fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }

    pub fn parquet(path: impl Into<PathBuf>) -> impl FnOnce(parquet::errors::ParquetError) -> Error {
        let path = path.into();
        move |e| Error::from_reader(path, &e)
    }

    pub fn arrow(path: impl Into<PathBuf>) -> impl FnOnce(arrow::error::ArrowError) -> Error {
        let path = path.into();
        move |e| Error::from_reader(path, &e)
    }

    /// A reader's error: a store that failed (after its retries) is a
    /// `Store` error, not bad data, so callers can tell an outage apart.
    fn from_reader(path: PathBuf, e: &(dyn std::error::Error + 'static)) -> Error {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(c) = cur {
            if let Some(io) = c.downcast_ref::<std::io::Error>() {
                // A full disk or a failing device is not bad data.
                if let Some(code) = io
                    .raw_os_error()
                    .filter(|c| [libc::ENOSPC, libc::EIO, libc::EDQUOT].contains(c))
                {
                    return Error::Io {
                        op: "write",
                        path,
                        source: std::io::Error::from_raw_os_error(code),
                    };
                }
            }
            if let Some(os) = c.downcast_ref::<object_store::Error>() {
                return Error::Store {
                    url: path.display().to_string(),
                    message: os.to_string(),
                };
            }
            if let Some(parquet::errors::ParquetError::External(inner)) = c.downcast_ref() {
                cur = Some(inner.as_ref());
                continue;
            }
            if let Some(arrow::error::ArrowError::ExternalError(inner)) = c.downcast_ref() {
                cur = Some(inner.as_ref());
                continue;
            }
            cur = c.source();
        }
        Error::Parquet {
            path,
            message: e.to_string(),
        }
    }

    /// The input file this error is the fault of, when it is bad data in
    /// that file (not an I/O failure): the file to quarantine.
    pub fn bad_file(&self) -> Option<&std::path::Path> {
        match self {
            Error::Parquet { path, message } if !message.contains("os error") => Some(path),
            Error::Schema { path, .. } | Error::BadInput { path, .. } => Some(path),
            _ => None,
        }
    }

    /// Exit code for the binary, after sysexits.h where one fits.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config { .. } => exit::BAD_CONFIG,
            Error::UnsafeName { .. } | Error::UnknownDataset(_) | Error::Invalid(_) | Error::Job { .. } => {
                exit::REFUSED
            }
            Error::Spec { .. }
            | Error::Schema { .. }
            | Error::BadInput { .. }
            | Error::Parquet { .. }
            | Error::Unclean { .. }
            | Error::DataChanged { .. } => exit::BAD_DATA,
            Error::Io { .. } | Error::NoSpace { .. } => exit::IO,
            // Often a lock held elsewhere.
            Error::Db { .. } | Error::Busy(_) => exit::BUSY,
            Error::Store { .. } => exit::STORE_UNAVAILABLE,
            Error::NotWritable { .. } => exit::NO_PERMISSION,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_failure_under_a_reader_error_is_a_store_error() {
        let os = object_store::Error::Generic {
            store: "S3",
            source: "connection refused".into(),
        };
        let pe = parquet::errors::ParquetError::External(Box::new(os));
        let ae = arrow::error::ArrowError::ExternalError(Box::new(pe));
        let e = Error::arrow("s3://bkt/x.parquet")(ae);
        assert!(matches!(e, Error::Store { .. }), "{e:?}");
        assert_eq!(e.exit_code(), 69);
        let plain = Error::parquet("/tmp/x.parquet")(parquet::errors::ParquetError::General("bad".into()));
        assert!(matches!(plain, Error::Parquet { .. }));
        assert_eq!(
            plain.bad_file(),
            Some(std::path::Path::new("/tmp/x.parquet")),
            "bad data: quarantine"
        );
    }

    #[test]
    fn a_full_disk_or_failing_device_under_a_writer_is_io_not_bad_data() {
        for code in [libc::ENOSPC, libc::EIO] {
            let io = std::io::Error::from_raw_os_error(code);
            let e = Error::parquet("/data/processed/x.parquet")(parquet::errors::ParquetError::External(Box::new(io)));
            assert_eq!(e.exit_code(), 74, "{e}");
            assert_eq!(e.bad_file(), None, "a healthy file is not quarantined: {e}");
            assert!(e.to_string().contains("/data/processed/x.parquet"), "{e}");
        }
    }

    #[test]
    fn a_run_exits_with_its_worst_failure() {
        let io = Error::io("write", "/d")(std::io::Error::from_raw_os_error(libc::ENOSPC));
        let bad = Error::BadInput {
            path: "/d/x".into(),
            message: "m".into(),
        };
        assert_eq!(Failure::exit_code(&[]), 0);
        let q = Failure::new("compact", "/d/x", &bad, "quarantined");
        assert_eq!(Failure::exit_code(std::slice::from_ref(&q)), exit::DONE_WITH_FAILURES);
        assert_eq!(
            Failure::exit_code(&[q, Failure::new("compact", "/d", &io, "skipped")]),
            74
        );
    }
}
