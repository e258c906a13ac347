//! Writing one data file: the options every writer shares and the durable
//! writer (temporary name, fsync, rename without replacing, fsync the
//! folder), locally or to an object store.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use super::encoding::Choice;
use super::COMPACTED_KEY;
use crate::config::{ColumnEncoding, DatasetConfig};
use crate::error::{Error, Result};
use crate::fsutil::AtomicFile;
use arrow::datatypes::Schema;
use parquet::schema::types::ColumnPath;

/// How a data file is written.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    pub compression: Codec,
    pub max_row_group_rows: usize,
    /// Recorded in the footer so readers know the order.
    pub sorting_columns: Option<Vec<SortingColumn>>,
    /// Columns written with delta encoding and no dictionary (sorted or unique integers).
    pub delta_columns: Vec<String>,
    /// Each column's encoding, when chosen ([`fit`](Self::fit)); else the
    /// Parquet defaults (a dictionary first) apart from `delta_columns`.
    pub columns: Vec<(String, Choice)>,
    /// Columns given a bloom filter.
    pub bloom_columns: Vec<String>,
    /// Mark the file as sorted and deduplicated by mdkeep.
    pub compacted: bool,
    /// Replace a file already at the destination (exports for jobs only;
    /// data under a tier root is never published over another file).
    pub replace: bool,
}

/// Compression of written files: zstd for everything mdkeep keeps; snappy
/// only where it imitates a collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Zstd(i32),
    Snappy,
}

impl WriteOptions {
    pub fn zstd(level: i32) -> Self {
        WriteOptions {
            compression: Codec::Zstd(level),
            ..Default::default()
        }
    }

    /// Choose each column's encoding (see `encoding`) from `sample`, the
    /// first rows to be written (or from the types alone), with the
    /// encodings and bloom filters `ds` declares. Every writer of data
    /// calls it, so every file follows the same rules.
    pub fn fit(mut self, schema: &Schema, sample: Option<&RecordBatch>, ds: Option<&DatasetConfig>) -> Self {
        let declared: Vec<(String, ColumnEncoding)> = ds
            .map(|d| d.encodings.iter().map(|(c, e)| (c.clone(), *e)).collect())
            .unwrap_or_default();
        self.columns = super::encoding::choose(schema, sample, &self.delta_columns, &declared, self.max_row_group_rows);
        self.bloom_columns = ds
            .map(|d| d.bloom.iter().filter(|c| schema.index_of(c).is_ok()).cloned().collect())
            .unwrap_or_default();
        self
    }
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            compression: Codec::Zstd(3),
            max_row_group_rows: 1 << 20,
            sorting_columns: None,
            delta_columns: Vec::new(),
            columns: Vec::new(),
            bloom_columns: Vec::new(),
            compacted: false,
            replace: false,
        }
    }
}

impl WriteOptions {
    pub(crate) fn properties(&self) -> Result<WriterProperties> {
        let compression = match self.compression {
            Codec::Zstd(level) => {
                Compression::ZSTD(ZstdLevel::try_new(level).map_err(|e| Error::Invalid(format!("zstd level: {e}")))?)
            }
            Codec::Snappy => Compression::SNAPPY,
        };
        let mut b = WriterProperties::builder()
            .set_compression(compression)
            .set_max_row_group_row_count(Some(self.max_row_group_rows))
            // Page-level statistics also write the page index.
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_sorting_columns(self.sorting_columns.clone());
        let delta = self.delta_columns.iter().map(|c| (c.clone(), Choice::Delta));
        let chosen: Vec<(String, Choice)> = if self.columns.is_empty() {
            delta.collect()
        } else {
            self.columns.clone()
        };
        for (c, choice) in chosen {
            let path = ColumnPath::from(c.as_str());
            let (encoding, dictionary) = choice.encoding();
            b = b.set_column_dictionary_enabled(path.clone(), dictionary);
            if dictionary {
                b = b.set_column_dictionary_page_size_limit(path.clone(), super::encoding::DICT_PAGE_LIMIT);
            }
            if choice == Choice::WideDictionary {
                b = b.set_column_compression(path.clone(), Compression::UNCOMPRESSED);
            }
            if let Some(e) = encoding {
                b = b.set_column_encoding(path, e);
            }
        }
        for c in &self.bloom_columns {
            b = b.set_column_bloom_filter_enabled(ColumnPath::from(c.as_str()), true);
        }
        if self.compacted {
            b = b.set_key_value_metadata(Some(vec![parquet::file::metadata::KeyValue::new(
                COMPACTED_KEY.to_string(),
                "1".to_string(),
            )]));
        }
        Ok(b.build())
    }
}

/// A finished, durable data file.
#[derive(Debug, Clone)]
pub struct WrittenFile {
    pub path: PathBuf,
    pub rows: u64,
    pub bytes: u64,
    /// CRC-32 of the whole file as written (`None` for an object: the store
    /// checks its own uploads). The catalog keeps it; `mdkeep verify`
    /// re-reads the file and compares.
    pub checksum: Option<u32>,
}

/// A file that hashes every byte written through it.
pub struct Checksummed {
    file: File,
    crc: crc32fast::Hasher,
}

impl Checksummed {
    pub fn new(file: File) -> Checksummed {
        Checksummed {
            file,
            crc: crc32fast::Hasher::new(),
        }
    }

    pub fn checksum(self) -> u32 {
        self.crc.finalize()
    }
}

impl std::io::Write for Checksummed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Streams record batches into one Parquet file that appears under its final
/// name only once complete and durable: a local temp file synced and renamed,
/// or a create-only upload to a store tier (see `store::write`).
pub struct DataFileWriter {
    target: Target,
    dest: PathBuf,
    rows: u64,
    replace: bool,
}

// One lives per open output file; its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Target {
    Local(ArrowWriter<Checksummed>, AtomicFile),
    Remote(crate::store::StoreWriter),
}

impl DataFileWriter {
    pub fn try_new(dest: &Path, schema: SchemaRef, opts: &WriteOptions) -> Result<Self> {
        let target = if crate::store::is_remote(dest) {
            Target::Remote(crate::store::StoreWriter::try_new(dest, schema, opts.properties()?)?)
        } else {
            let (target, file) = AtomicFile::create(dest)?;
            let writer = ArrowWriter::try_new(Checksummed::new(file), schema, Some(opts.properties()?))
                .map_err(Error::parquet(dest))?;
            Target::Local(writer, target)
        };
        Ok(DataFileWriter {
            target,
            dest: dest.to_path_buf(),
            rows: 0,
            replace: opts.replace,
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows() as u64;
        match &mut self.target {
            Target::Local(w, _) => w.write(batch).map_err(Error::parquet(&self.dest)),
            Target::Remote(w) => w.write(batch),
        }
    }

    /// Bytes buffered for the open row group: the memory hook budgets watch.
    pub fn in_progress_size(&self) -> usize {
        match &self.target {
            Target::Local(w, _) => w.in_progress_size(),
            Target::Remote(w) => w.in_progress_size(),
        }
    }

    /// Bytes already written plus the buffered estimate: when to roll over.
    pub fn estimated_size(&self) -> usize {
        match &self.target {
            Target::Local(w, _) => w.bytes_written() + w.in_progress_size(),
            Target::Remote(w) => w.bytes_written() + w.in_progress_size(),
        }
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Force the open row group out, to honour a memory budget.
    pub fn flush(&mut self) -> Result<()> {
        match &mut self.target {
            Target::Local(w, _) => w.flush().map_err(Error::parquet(&self.dest)),
            Target::Remote(w) => w.flush(),
        }
    }

    pub fn close(self) -> Result<WrittenFile> {
        let dest = self.dest;
        let (bytes, checksum) = match self.target {
            Target::Local(w, target) => {
                // Writes the footer, then hands back the file and its hash.
                let checksum = w.into_inner().map_err(Error::parquet(&dest))?.checksum();
                let path = if self.replace {
                    target.commit_replacing()?
                } else {
                    target.commit()?
                };
                let bytes = std::fs::metadata(&path).map_err(Error::io("stat", &path))?.len();
                (bytes, Some(checksum))
            }
            Target::Remote(w) => (w.close()?, None),
        };
        Ok(WrittenFile {
            path: dest,
            rows: self.rows,
            bytes,
            checksum,
        })
    }
}

/// Write a whole (small) set of batches to one file.
pub fn write_file(dest: &Path, schema: SchemaRef, batches: &[RecordBatch], opts: &WriteOptions) -> Result<WrittenFile> {
    let mut w = DataFileWriter::try_new(dest, schema, opts)?;
    for b in batches {
        w.write(b)?;
    }
    w.close()
}
