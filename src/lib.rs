//! mdkeep keeps a trader's Parquet market data healthy.
//!
//! This library is the blocking, testable core: config, the SQLite state,
//! the catalog and scan, ingest and the pile generator. The `mdkeep` binary
//! is a thin command-line shell over it; a daemon will be another.

pub mod alerts;
pub mod catalog;
pub mod compaction;
pub mod config;
pub mod coverage;
pub mod daemon;
pub mod demo;
pub mod engine;
pub mod error;
pub mod exit;
pub mod export;
pub mod failpoint;
pub mod fsutil;
pub mod gen;
pub mod ingest;
pub mod init;
pub mod jobs;
pub mod lake;
pub mod layout;
pub mod lock;
pub mod maintenance;
pub mod names;
pub mod outcome;
pub mod parquet_io;
pub mod proc;
pub mod progress;
pub mod quality;
pub mod quota;
pub mod report;
pub mod retention;
pub mod rollup;
pub mod scheduler;
pub mod shutdown;
pub mod state;
pub mod store;
pub mod tiering;
pub mod time;
pub mod verify;

pub use config::Config;
pub use error::{Error, Result};
