//! Importing arbitrary Parquet files into a named dataset.
//!
//! The file must hold exactly the dataset's columns (types may differ in
//! encoding or precision); partition values other than time come from the
//! caller (`--set exchange=binance`). Rows are split by their own time into
//! the dataset's time partitions.

use std::path::Path;

use arrow::array::RecordBatch;

use super::{ingest_series, IngestReport, Series};
use crate::config::Config;
use crate::error::Result;
use crate::parquet_io;
use crate::parquet_io::conform;
use crate::state::Db;

pub fn ingest_files(
    cfg: &Config,
    db: &mut Db,
    dataset: &str,
    fixed: &[(String, String)],
    files: &[&Path],
) -> Result<IngestReport> {
    let ds = cfg.dataset(dataset)?;
    let mut report = IngestReport::default();
    // Check every file's schema before writing anything: a bad file costs nothing.
    for f in files {
        let (schema, _) = parquet_io::open_batches(f, 1)?;
        conform(&RecordBatch::new_empty(schema), ds, f)?;
    }
    for f in files {
        let (_, reader) = parquet_io::open_batches(f, 64 * 1024)?;
        let src = f.to_path_buf();
        let batches = reader.map(move |b| conform(&b.map_err(crate::error::Error::arrow(&src))?, ds, &src));
        let series = Series {
            ds,
            source: f,
            fixed: fixed.to_vec(),
        };
        ingest_series(cfg, db, series, batches, &mut report)?;
    }
    Ok(report)
}
