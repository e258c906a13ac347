//! Reading Parquet from a store with ranged GETs.
//!
//! Rows are read with parquet's async reader over [`AsyncObject`]: one GET
//! for the footer (a suffix range), then, per row group, one coalesced
//! ranged GET of just the column chunks a projection needs. [`Batches`]
//! makes that stream an iterator for the blocking core, for local files
//! and objects alike.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::error::ArrowError;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStoreExt};
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReader};
use parquet::arrow::async_reader::{AsyncFileReader, MetadataSuffixFetch, ParquetRecordBatchStream};
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};

use super::{block_on, for_path, Store};
use crate::error::Result;

static FETCHED: AtomicU64 = AtomicU64::new(0);

/// Bytes readers of this process have fetched from stores so far: what
/// shows that a projection fetches only its columns.
pub fn fetched_bytes() -> u64 {
    FETCHED.load(Ordering::Relaxed)
}

/// A store's answer as parquet wants it, counted.
fn counted(r: object_store::Result<Bytes>) -> parquet::errors::Result<Bytes> {
    let b = r.map_err(|e| ParquetError::External(Box::new(e)))?;
    FETCHED.fetch_add(b.len() as u64, Ordering::Relaxed);
    Ok(b)
}

/// One object for parquet's async reader.
pub struct AsyncObject {
    store: Arc<Store>,
    key: ObjectPath,
}

impl AsyncObject {
    pub fn open(path: &Path) -> Result<AsyncObject> {
        let store = for_path(path)?;
        let key = store.key(path)?;
        Ok(AsyncObject { store, key })
    }
}

impl AsyncFileReader for AsyncObject {
    fn get_bytes(&mut self, range: std::ops::Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move { counted(self.store.inner.get_range(&self.key, range).await) }.boxed()
    }

    /// Close ranges are merged into one request (object_store coalesces).
    fn get_byte_ranges(
        &mut self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        async move {
            let parts = self.store.inner.get_ranges(&self.key, &ranges).await;
            parts
                .map_err(|e| ParquetError::External(Box::new(e)))?
                .into_iter()
                .map(|b| counted(Ok(b)))
                .collect()
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let m = ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                // Most footers fit: one request instead of two.
                .with_prefetch_hint(Some(64 * 1024))
                .load_via_suffix_and_finish(self)
                .await?;
            Ok(Arc::new(m))
        }
        .boxed()
    }
}

impl MetadataSuffixFetch for &mut AsyncObject {
    fn fetch_suffix(&mut self, suffix: usize) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        let options = GetOptions {
            range: Some(GetRange::Suffix(suffix as u64)),
            ..Default::default()
        };
        async move {
            match self.store.inner.get_opts(&self.key, options).await {
                Ok(r) => counted(r.bytes().await),
                Err(e) => counted(Err(e)),
            }
        }
        .boxed()
    }
}

/// Record batches of a local file or an object, as one iterator.
pub enum Batches {
    Local(ParquetRecordBatchReader),
    Remote(Box<ParquetRecordBatchStream<AsyncObject>>),
}

impl Iterator for Batches {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Batches::Local(r) => r.next(),
            Batches::Remote(s) => block_on(s.next()).map(|r| r.map_err(|e| ArrowError::ExternalError(Box::new(e)))),
        }
    }
}
