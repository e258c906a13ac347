//! Writing Parquet to a store: parquet's async writer over
//! `object_store::buffered::BufWriter`.
//!
//! A file larger than one part goes up as a multipart upload, so memory is
//! the open row group plus `part_size × upload_concurrency`, whatever the
//! file's size. Nothing is visible under the final key until the upload
//! completes. Uploads are create-only: before any byte goes up, a claim
//! object beside the target is created with `PutMode::Create` and the target
//! must not exist, so a retry (or a second mdkeep on the same bucket) can
//! never silently overwrite a different object. The claim goes once the
//! output is committed or rolled back (see [`claim_path`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use object_store::buffered::BufWriter;
use object_store::{PutMode, PutOptions, PutPayload};
use parquet::arrow::AsyncArrowWriter;
use parquet::file::properties::WriterProperties;

use super::{block_on, for_path, Store};
use crate::error::{Error, Result};

/// The claim beside an output: `_<name>.claim`. Hive readers (Spark, DuckDB
/// globbing `*.parquet`) skip names starting with `_`.
pub fn claim_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    path.with_file_name(format!("_{name}.claim"))
}

pub fn is_claim(name: &str) -> bool {
    name.starts_with('_') && name.ends_with(".claim")
}

pub struct StoreWriter {
    store: Arc<Store>,
    path: PathBuf,
    writer: Option<AsyncArrowWriter<BufWriter>>,
}

impl std::fmt::Debug for StoreWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreWriter({})", self.path.display())
    }
}

impl StoreWriter {
    pub fn try_new(path: &Path, schema: SchemaRef, props: WriterProperties) -> Result<StoreWriter> {
        let store = for_path(path)?;
        let key = store.key(path)?;
        let claim = claim_path(path);
        let claim_key = store.key(&claim)?;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match block_on(store.inner.put_opts(&claim_key, PutPayload::new(), opts)) {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => {
                return Err(Error::Store {
                    url: path.display().to_string(),
                    message: "another upload has claimed this name; not overwriting".into(),
                })
            }
            Err(e) => return Err(store.err("claim", &claim_key)(e)),
        }
        if store.size(path)?.is_some() {
            return Err(Error::Store {
                url: path.display().to_string(),
                message: "an object with this name already exists; not overwriting".into(),
            });
        }
        let buf =
            BufWriter::with_capacity(store.inner.clone(), key, store.part_size).with_max_concurrency(store.concurrency);
        let writer = AsyncArrowWriter::try_new(buf, schema, Some(props)).map_err(Error::parquet(path))?;
        Ok(StoreWriter {
            store,
            path: path.to_path_buf(),
            writer: Some(writer),
        })
    }

    fn w(&mut self) -> &mut AsyncArrowWriter<BufWriter> {
        self.writer.as_mut().expect("open until close")
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let path = self.path.clone();
        block_on(self.w().write(batch)).map_err(Error::parquet(&path))
    }

    pub fn flush(&mut self) -> Result<()> {
        let path = self.path.clone();
        block_on(self.w().flush()).map_err(Error::parquet(&path))
    }

    pub fn in_progress_size(&self) -> usize {
        self.writer.as_ref().map_or(0, |w| w.in_progress_size())
    }

    pub fn bytes_written(&self) -> usize {
        self.writer.as_ref().map_or(0, |w| w.bytes_written())
    }

    /// Finish the upload; returns the object's size.
    pub fn close(mut self) -> Result<u64> {
        let w = self.writer.take().expect("open until close");
        block_on(w.close()).map_err(Error::parquet(&self.path))?;
        self.store.size(&self.path)?.ok_or_else(|| Error::Store {
            url: self.path.display().to_string(),
            message: "the upload completed but the object is not there".into(),
        })
    }
}

impl Drop for StoreWriter {
    fn drop(&mut self) {
        // Not closed: abort the multipart upload so its parts do not linger.
        if let Some(w) = self.writer.take() {
            let mut buf = w.into_inner();
            // BufWriter panics when aborting an upload that already ended.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| block_on(buf.abort())));
            let _ = self.store.delete(&claim_path(&self.path));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_sit_beside_their_object_and_are_not_data() {
        let p = Path::new("s3://bkt/pre/trades/date=2024-01-01/c3-18f.parquet");
        let c = claim_path(p);
        assert_eq!(
            c,
            Path::new("s3://bkt/pre/trades/date=2024-01-01/_c3-18f.parquet.claim")
        );
        let name = c.file_name().unwrap().to_str().unwrap();
        assert!(is_claim(name));
        assert!(!crate::layout::is_data_file(name));
        assert!(!is_claim("c3-18f.parquet"));
    }
}
