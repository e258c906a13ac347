//! Where merged rows go: final partition files, or spill files between rounds.
//!
//! [`PartitionWriter`] routes each row to the partition its own time says,
//! rolls files at the tier's target size, keeps row groups within the
//! memory budget, and records every output in the journal before writing
//! it. [`SpillWriter`] keeps rows' priorities for the next merge round.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::file::metadata::SortingColumn;
use rusqlite::Connection;

use super::journal;
use super::merge::{MergeCtx, MergeInput, Sink, PRIO_COLUMN};
use crate::error::{Error, Result};
use crate::layout;
use crate::parquet_io::{DataFileWriter, WriteOptions, WrittenFile};
use crate::quality::rows::BadRows;
use crate::state::db_err;

/// Rows gathered before a write: fewer, larger writes encode faster.
const COALESCE_ROWS: usize = 64 * 1024;

/// A finished output file of a rewrite.
#[derive(Debug, Clone)]
pub struct Output {
    pub relpath: String,
    pub partition: String,
    pub file: WrittenFile,
    /// The coverage buckets (time / cadence) the file has rows in, ascending.
    pub buckets: Vec<i64>,
}

/// An output file being written: its writer, path under the root and buckets.
struct Open {
    writer: DataFileWriter,
    rel: String,
    buckets: Vec<i64>,
}

struct Current {
    period: String,
    /// The partition key, e.g. `exchange=x/symbol=y/date=2024-01-02`.
    partition: String,
    start: i64,
    end: i64,
    writer: Option<Open>,
}

/// What a finished rewrite wrote.
pub struct Finished {
    pub outputs: Vec<Output>,
    /// Rows set aside by `quality.on_bad_rows = "quarantine"`, and their file.
    pub quarantined: Option<(u64, WrittenFile)>,
}

pub struct PartitionWriter<'a> {
    ctx: &'a MergeCtx<'a>,
    root: PathBuf,
    fixed: Vec<(String, String)>,
    opts: WriteOptions,
    target_size: u64,
    row_group_memory: usize,
    prefix: String,
    conn: &'a Connection,
    journal_id: i64,
    seq: u32,
    cur: Option<Current>,
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    pub outputs: Vec<Output>,
    /// Checksum of the keys of every row emitted (see `merge::key_checksum`).
    pub key_checksum: u64,
    track_keys: bool,
    conv: arrow::row::RowConverter,
    /// Rows older than this (in the time column's unit) are not written.
    drop_before: Option<i64>,
    /// Rows left out by `drop_before`.
    pub rows_dropped: u64,
    /// Where bad rows go, when the dataset quarantines them.
    bad_rows: Option<BadRows>,
    /// Coverage bucket width of this series, ns.
    cadence: i64,
}

impl<'a> PartitionWriter<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ctx: &'a MergeCtx<'a>,
        root: PathBuf,
        fixed: Vec<(String, String)>,
        zstd_level: i32,
        target_size: u64,
        row_group_rows: usize,
        row_group_memory: usize,
        conn: &'a Connection,
        journal_id: i64,
    ) -> Self {
        let sorting = ctx
            .sort_cols
            .iter()
            .map(|&i| SortingColumn {
                column_idx: i as i32,
                descending: false,
                nulls_first: false,
            })
            .collect();
        // Sorted times and unique integer keys compress best as deltas.
        let delta_columns = ctx
            .sort_cols
            .iter()
            .map(|&i| ctx.schema.field(i))
            .filter(|f| {
                matches!(
                    f.data_type(),
                    DataType::Int64 | DataType::Int32 | DataType::Timestamp(..)
                )
            })
            .map(|f| f.name().clone())
            .collect();
        // Journal ids start again with a new state database, and outputs
        // are never published over a file: names also carry the time.
        let prefix = format!("c{journal_id}-{:x}", crate::state::now_ns() / 1_000);
        let fixed_copy = fixed.clone();
        PartitionWriter {
            ctx,
            root,
            fixed,
            opts: WriteOptions {
                compression: crate::parquet_io::Codec::Zstd(zstd_level),
                max_row_group_rows: row_group_rows,
                sorting_columns: Some(sorting),
                delta_columns,
                compacted: true,
                replace: false,
                ..Default::default()
            },
            target_size,
            row_group_memory,
            prefix,
            conn,
            journal_id,
            seq: 0,
            cur: None,
            pending: Vec::new(),
            pending_rows: 0,
            outputs: Vec::new(),
            key_checksum: 0,
            track_keys: false,
            drop_before: None,
            rows_dropped: 0,
            bad_rows: None,
            cadence: crate::coverage::cadence_ns(ctx.ds, &crate::layout::partition_key(&fixed_copy)),
            conv: ctx.converter(),
        }
    }

    /// Write rows with a fault under `quarantine` instead of into the data
    /// (when the dataset says so and its checks run).
    pub fn quarantine_rows(mut self, quarantine: &Path) -> Self {
        if self.ctx.ds.quality.on_bad_rows == crate::config::OnBadRows::Quarantine && self.ctx.quality(|_| ()).is_some()
        {
            let series = crate::layout::partition_key(&self.fixed);
            let dest = crate::quality::rows::path(quarantine, &self.ctx.ds.name, &series, &self.prefix);
            self.bad_rows = Some(BadRows::new(dest, &self.ctx.schema));
        }
        self
    }

    /// Keep a checksum of every emitted row's keys, to verify the files later.
    pub fn track_keys(mut self) -> Self {
        self.track_keys = true;
        self
    }

    /// Leave out rows older than `t` (in the time column's unit): a
    /// retention trim. Rows arrive sorted, so they are a prefix of a batch.
    pub fn drop_before(mut self, t: Option<i64>) -> Self {
        self.drop_before = t;
        self
    }

    fn switch_to(&mut self, ts: i64) -> Result<()> {
        self.close_current()?;
        let ds = self.ctx.ds;
        let period = ds.period_of(ts.saturating_mul(self.ctx.unit_ns));
        let (s, e) = ds
            .period_range(&period)
            .ok_or_else(|| Error::Invalid(format!("no period for time {ts}")))?;
        let mut values = self.fixed.clone();
        values.push((ds.time_partition.clone(), period.clone()));
        self.cur = Some(Current {
            partition: layout::partition_key(&values),
            period,
            start: s.div_euclid(self.ctx.unit_ns),
            end: e.div_euclid(self.ctx.unit_ns),
            writer: None,
        });
        Ok(())
    }

    fn push(&mut self, b: RecordBatch) -> Result<()> {
        self.pending_rows += b.num_rows();
        self.pending.push(b);
        if self.pending_rows >= COALESCE_ROWS {
            self.write_pending()?;
        }
        Ok(())
    }

    fn write_pending(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = concat_batches(&self.ctx.schema, &self.pending).map_err(|e| Error::Invalid(e.to_string()))?;
        self.pending.clear();
        self.pending_rows = 0;
        let cur = self.cur.as_mut().expect("a period is open when rows are pending");
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if cur.writer.is_none() {
            let mut values = self.fixed.clone();
            values.push((self.ctx.ds.time_partition.clone(), cur.period.clone()));
            let dir = layout::partition_dir(&self.root, self.ctx.ds, &values)?;
            self.seq += 1;
            let dest = dir.join(format!("{}-{:04}.parquet", self.prefix, self.seq));
            let rel = dest
                .strip_prefix(&self.root)
                .expect("under the root")
                .to_string_lossy()
                .replace('\\', "/");
            journal::plan_output(self.conn, self.journal_id, &rel).map_err(db_err(Path::new("state")))?;
            if self.opts.columns.is_empty() {
                // The first rows decide every output's encodings.
                self.opts = self.opts.clone().fit(&self.ctx.schema, Some(&batch), Some(self.ctx.ds));
            }
            let w = match DataFileWriter::try_new(&dest, self.ctx.schema.clone(), &self.opts) {
                Ok(w) => w,
                Err(e) => {
                    // Not ours (a create-only upload found the name taken):
                    // a roll-back must not delete it.
                    journal::forget_output(self.conn, self.journal_id, &rel).map_err(db_err(Path::new("state")))?;
                    return Err(e);
                }
            };
            cur.writer = Some(Open {
                writer: w,
                rel,
                buckets: Vec::new(),
            });
        }
        let open = cur.writer.as_mut().expect("opened above");
        // Rows arrive in time order: each bucket is new or the last one.
        for t in self.ctx.ts_values(&batch)?.iter() {
            let b = t.saturating_mul(self.ctx.unit_ns).div_euclid(self.cadence);
            if open.buckets.last() != Some(&b) {
                open.buckets.push(b);
            }
        }
        let w = &mut open.writer;
        w.write(&batch)?;
        if w.in_progress_size() > self.row_group_memory {
            w.flush()?;
        }
        if w.estimated_size() as u64 >= self.target_size {
            let open = cur.writer.take().expect("open");
            self.finish_file(open)?;
        }
        Ok(())
    }

    fn finish_file(&mut self, open: Open) -> Result<()> {
        let Open {
            writer: w,
            rel,
            buckets,
        } = open;
        let file = w.close()?;
        let partition = layout::locate(Path::new(&rel))
            .map(|l| l.partition_key())
            .unwrap_or_default();
        self.outputs.push(Output {
            relpath: rel,
            partition,
            file,
            buckets,
        });
        if self.outputs.len() == 1 {
            crate::failpoint::hit("rewrite:after-first-output");
        }
        Ok(())
    }

    fn close_current(&mut self) -> Result<()> {
        self.write_pending()?;
        if let Some(Current { writer: Some(open), .. }) = self.cur.take() {
            self.finish_file(open)?;
        }
        Ok(())
    }

    /// Finish the last file; returns every output written.
    pub fn finish(mut self) -> Result<Finished> {
        self.close_current()?;
        let quarantined = match self.bad_rows.take() {
            Some(b) => {
                let n = b.rows;
                b.close()?.map(|f| (n, f))
            }
            None => None,
        };
        Ok(Finished {
            outputs: self.outputs,
            quarantined,
        })
    }

    /// Check a slice of the open partition; returns the rows to write (in
    /// quarantine mode, those without a fault).
    fn check(&mut self, slice: RecordBatch) -> Result<RecordBatch> {
        let part = &self.cur.as_ref().expect("a period is open").partition;
        let Some(faults) = self.ctx.quality(|q| q.observe(part, &slice)).transpose()?.flatten() else {
            return Ok(slice);
        };
        let Some(bad) = self.bad_rows.as_mut() else {
            return Ok(slice);
        };
        if !bad.is_open() {
            let dest = bad.dest().to_string_lossy().into_owned();
            journal::plan_output(self.conn, self.journal_id, &dest).map_err(db_err(Path::new("state")))?;
        }
        bad.split(&slice, &faults, part)
    }

    /// Throw away everything written so far (before a restart).
    pub fn abort(mut self) -> Result<()> {
        self.pending.clear();
        self.cur = None; // drops an open writer: its temporary is removed
        if let Some(bad) = self.bad_rows.take().filter(|b| b.is_open()) {
            let dest = bad.dest().to_string_lossy().into_owned();
            drop(bad);
            journal::forget_output(self.conn, self.journal_id, &dest).map_err(db_err(Path::new("state")))?;
        }
        for o in &self.outputs {
            journal::remove_output(&o.file.path)?;
            journal::forget_output(self.conn, self.journal_id, &o.relpath).map_err(db_err(Path::new("state")))?;
        }
        Ok(())
    }
}

impl Sink for PartitionWriter<'_> {
    fn emit(&mut self, batch: &RecordBatch, _prio: Option<ArrayRef>) -> Result<()> {
        let trimmed;
        let batch = match self.drop_before {
            Some(cut) => {
                let n = self.ctx.ts_values(batch)?.partition_point(|&t| t < cut);
                self.rows_dropped += n as u64;
                trimmed = batch.slice(n, batch.num_rows() - n);
                &trimmed
            }
            None => batch,
        };
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let ts = self.ctx.ts_values(batch)?;
        let mut start = 0;
        while start < ts.len() {
            let t = ts[start];
            if self.cur.as_ref().is_none_or(|c| t < c.start || t >= c.end) {
                self.switch_to(t)?;
            }
            let end_t = self.cur.as_ref().expect("just opened").end;
            let end = start + ts[start..].partition_point(|&x| x < end_t);
            let slice = self.check(batch.slice(start, end - start))?;
            if self.track_keys {
                let sum = super::merge::key_checksum(self.ctx, &self.conv, &slice)?;
                self.key_checksum = self.key_checksum.wrapping_add(sum);
            }
            self.push(slice)?;
            start = end;
        }
        Ok(())
    }
}

/// One sorted file of (columns + priority) under the scratch folder.
pub struct SpillWriter {
    schema: SchemaRef,
    writer: DataFileWriter,
    min_ts: Option<i64>,
    max_ts: i64,
    unit_ns: i64,
    ts_col: usize,
}

impl SpillWriter {
    pub fn try_new(ctx: &MergeCtx, path: &Path) -> Result<Self> {
        let mut fields: Vec<Field> = ctx.schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new(PRIO_COLUMN, DataType::Int64, false));
        let schema = Arc::new(Schema::new(fields));
        // Spills are read once, soon: favour speed over size.
        let writer = DataFileWriter::try_new(path, schema.clone(), &WriteOptions::zstd(1))?;
        Ok(SpillWriter {
            schema,
            writer,
            min_ts: None,
            max_ts: i64::MIN,
            unit_ns: ctx.unit_ns,
            ts_col: ctx.ts_col,
        })
    }

    pub fn close(self) -> Result<MergeInput> {
        let rows = self.writer.rows();
        let f = self.writer.close()?;
        Ok(MergeInput {
            path: f.path,
            prio: 0,
            min_ts_ns: self.min_ts.unwrap_or(0).saturating_mul(self.unit_ns),
            max_ts_ns: self.max_ts.saturating_mul(self.unit_ns),
            rows,
            moved_to: None,
            filed: None,
        })
    }
}

impl Sink for SpillWriter {
    fn wants_prio(&self) -> bool {
        true
    }
    fn emit(&mut self, batch: &RecordBatch, prio: Option<ArrayRef>) -> Result<()> {
        let mut cols = batch.columns().to_vec();
        cols.push(prio.expect("spills ask for priorities"));
        let b = RecordBatch::try_new(self.schema.clone(), cols).map_err(|e| Error::Invalid(e.to_string()))?;
        let ts = arrow::compute::cast(batch.column(self.ts_col), &DataType::Int64)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let ts = arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(&ts);
        if !ts.is_empty() {
            self.min_ts.get_or_insert(ts.value(0));
            self.max_ts = self.max_ts.max(ts.value(ts.len() - 1));
        }
        self.writer.write(&b)
    }
}
