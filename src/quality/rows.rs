//! Bad rows set aside: owns the Parquet files under
//! `<quarantine>/rows/<dataset>/`.
//!
//! A rewrite of a dataset with `quality.on_bad_rows = "quarantine"` writes
//! the rows with a fault here instead of into the data, each with its
//! partition and its reasons. The file is one of the rewrite's planned
//! outputs in the journal, so a rewrite that does not commit leaves none.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringArray};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::Kind;
use crate::error::{Error, Result};
use crate::parquet_io::{DataFileWriter, WriteOptions, WrittenFile};

/// Where a rewrite's quarantined rows go: `<quarantine>/rows/<dataset>/<series>/<name>.parquet`.
pub fn path(quarantine: &Path, dataset: &str, series: &str, name: &str) -> PathBuf {
    let mut p = quarantine.join("rows").join(dataset);
    for seg in series.split('/').filter(|s| !s.is_empty()) {
        p.push(seg);
    }
    p.join(format!("{name}.parquet"))
}

/// The rows of one rewrite that did not pass.
pub struct BadRows {
    dest: PathBuf,
    schema: SchemaRef,
    writer: Option<DataFileWriter>,
    pub rows: u64,
}

impl BadRows {
    /// Rows of `data` (the dataset's schema) will go to `dest`, created on the first one.
    pub fn new(dest: PathBuf, data: &Schema) -> BadRows {
        let mut fields: Vec<Field> = data.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new("partition", DataType::Utf8, false));
        fields.push(Field::new("reason", DataType::Utf8, false));
        BadRows {
            dest,
            schema: Arc::new(Schema::new(fields)),
            writer: None,
            rows: 0,
        }
    }

    pub fn dest(&self) -> &Path {
        &self.dest
    }

    pub fn is_open(&self) -> bool {
        self.writer.is_some()
    }

    /// Split `batch` by `faults` (a mask per row): rows with a fault are
    /// written here with `partition` and their reasons; the others are returned.
    pub fn split(&mut self, batch: &RecordBatch, faults: &[u32], partition: &str) -> Result<RecordBatch> {
        let bad: BooleanArray = faults.iter().map(|&f| Some(f != 0)).collect();
        let good: BooleanArray = faults.iter().map(|&f| Some(f == 0)).collect();
        let err = |e: arrow::error::ArrowError| Error::Invalid(e.to_string());
        let rejected = filter_record_batch(batch, &bad).map_err(err)?;
        let n = rejected.num_rows();
        if n > 0 {
            let reasons: StringArray = faults
                .iter()
                .filter(|&&f| f != 0)
                .map(|&f| Some(Kind::names_of(f)))
                .collect();
            let mut cols: Vec<ArrayRef> = rejected.columns().to_vec();
            cols.push(Arc::new(StringArray::from(vec![partition; n])));
            cols.push(Arc::new(reasons));
            let out = RecordBatch::try_new(self.schema.clone(), cols).map_err(err)?;
            if self.writer.is_none() {
                self.writer = Some(DataFileWriter::try_new(
                    &self.dest,
                    self.schema.clone(),
                    &WriteOptions::zstd(3),
                )?);
            }
            self.writer.as_mut().expect("opened above").write(&out)?;
            self.rows += n as u64;
        }
        filter_record_batch(batch, &good).map_err(err)
    }

    /// Make the file durable, when any row went to it.
    pub fn close(self) -> Result<Option<WrittenFile>> {
        self.writer.map(|w| w.close()).transpose()
    }
}
