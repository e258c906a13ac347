//! The library's one error type.
//!
//! Every variant names what went wrong *and where*: the file, the config key,
//! the dataset or the line. The binary maps variants to exit codes; nothing in
//! the library decides how an error is shown. Secrets never go in here: config
//! values are not echoed back, only their keys.

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

    /// Exit code for the binary, after sysexits.h where one fits.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config { .. } => 78, // EX_CONFIG
            Error::UnsafeName { .. } | Error::UnknownDataset(_) | Error::Invalid(_) | Error::Job { .. } => 64, // EX_USAGE
            Error::Spec { .. } => 65,
            Error::Schema { .. } | Error::BadInput { .. } | Error::Parquet { .. } => 65, // EX_DATAERR
            Error::Io { .. } => 74,                                                      // EX_IOERR
            Error::Db { .. } | Error::Busy(_) => 75,                                     // EX_TEMPFAIL: often a lock
            Error::Store { .. } => 69,                                                   // EX_UNAVAILABLE
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
    }
}
