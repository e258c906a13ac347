//! Reading Parquet from a store with ranged GETs.
//!
//! [`StoreFile`] is a parquet `ChunkReader` over one object: the footer and
//! each column chunk the reader asks for are fetched as byte ranges, so a
//! projection of one column costs that column's bytes, not the file's.
//! [`Source`] is what every reader in mdkeep opens: a local file or an object.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStoreExt;
use parquet::errors::ParquetError;
use parquet::file::reader::{ChunkReader, Length};

use super::{block_on, for_path, is_remote, Store};
use crate::error::{Error, Result};

/// Sequential reads through `get_read` fetch this much per request.
const READ_AHEAD: u64 = 4 << 20;

/// One object, read by ranges.
pub struct StoreFile {
    store: Arc<Store>,
    key: ObjectPath,
    size: u64,
    path: PathBuf,
}

impl StoreFile {
    pub fn open(path: &Path) -> Result<StoreFile> {
        let store = for_path(path)?;
        let key = store.key(path)?;
        let size = store
            .size(path)?
            .ok_or_else(|| Error::io("open", path)(std::io::ErrorKind::NotFound.into()))?;
        Ok(StoreFile {
            store,
            key,
            size,
            path: path.to_path_buf(),
        })
    }

    fn range(&self, start: u64, end: u64) -> std::result::Result<Bytes, ParquetError> {
        block_on(self.store.inner.get_range(&self.key, start..end)).map_err(|e| {
            let e = self.store.err("read", &self.key)(e);
            ParquetError::External(Box::new(e))
        })
    }
}

impl Length for StoreFile {
    fn len(&self) -> u64 {
        self.size
    }
}

impl ChunkReader for StoreFile {
    type T = RangeRead;

    fn get_read(&self, start: u64) -> parquet::errors::Result<RangeRead> {
        Ok(RangeRead {
            file: StoreFile {
                store: self.store.clone(),
                key: self.key.clone(),
                size: self.size,
                path: self.path.clone(),
            },
            pos: start,
            buf: Bytes::new(),
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let end = (start + length as u64).min(self.size);
        self.range(start, end)
    }
}

/// A `Read` from an offset to the end, fetched `READ_AHEAD` at a time.
pub struct RangeRead {
    file: StoreFile,
    pos: u64,
    buf: Bytes,
}

impl Read for RangeRead {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.buf.is_empty() {
            if self.pos >= self.file.size {
                return Ok(0);
            }
            let end = (self.pos + READ_AHEAD).min(self.file.size);
            self.buf = self.file.range(self.pos, end).map_err(std::io::Error::other)?;
            self.pos = end;
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf = self.buf.slice(n..);
        Ok(n)
    }
}

/// A Parquet file to read: local, or an object in a store tier.
pub enum Source {
    Local(File),
    Remote(StoreFile),
}

impl Source {
    pub fn open(path: &Path) -> Result<Source> {
        if is_remote(path) {
            Ok(Source::Remote(StoreFile::open(path)?))
        } else {
            Ok(Source::Local(File::open(path).map_err(Error::io("open", path))?))
        }
    }
}

impl Length for Source {
    fn len(&self) -> u64 {
        match self {
            Source::Local(f) => f.len(),
            Source::Remote(s) => s.len(),
        }
    }
}

impl ChunkReader for Source {
    type T = Box<dyn Read + Send>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(match self {
            Source::Local(f) => Box::new(f.get_read(start)?),
            Source::Remote(s) => Box::new(s.get_read(start)?),
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        match self {
            Source::Local(f) => f.get_bytes(start, length),
            Source::Remote(s) => s.get_bytes(start, length),
        }
    }
}
