//! The streaming k-way merge: inputs sorted by (time, key) in, one stream
//! sorted by (time, key) without duplicates out.
//!
//! Owns ordering, duplicate removal (the highest-priority copy survives; a
//! file's priority is its mtime) and detecting an input that is not sorted.
//! Inputs are opened lazily, only when the merge reaches their first time,
//! so memory follows how many files overlap, not how many there are. Rows
//! leave as zero-copy slices of the input batches: a file that does not
//! overlap any other is copied in whole runs. Where the rows go is the
//! sink's business.

use std::cmp::Ordering;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::quality::{Checker, Kind};
use crate::store::Batches;
use arrow::array::{ArrayRef, AsArray, Int64Array, RecordBatch};
use arrow::buffer::ScalarBuffer;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type, SchemaRef};
use arrow::row::{OwnedRow, RowConverter, Rows, SortField};

use crate::config::DatasetConfig;
use crate::error::{Error, Result};
use crate::parquet_io::{self, conform, unit_ns};

/// Name of the per-row priority column carried by spill files between rounds.
pub const PRIO_COLUMN: &str = "__mdkeep_prio";

#[derive(Debug, Clone, Default)]
pub struct MergeInput {
    pub path: PathBuf,
    /// Where the file is found if it was retired while pinned (the trash):
    /// a reader that pinned it may still be on its way to open it.
    pub moved_to: Option<PathBuf>,
    /// Priority of every row in the file, unless it carries [`PRIO_COLUMN`].
    pub prio: i64,
    /// Smallest time in the file, in nanoseconds: when to open it.
    pub min_ts_ns: i64,
    pub max_ts_ns: i64,
    pub rows: u64,
    /// The partition the file is filed under and its `[start, end)` ns:
    /// rows outside it are noted (quality).
    pub filed: Option<Filed>,
}

/// A source file's partition, as its path says.
#[derive(Debug, Clone)]
pub struct Filed {
    pub partition: Arc<str>,
    pub start_ns: i64,
    pub end_ns: i64,
}

impl Filed {
    pub fn holds(&self, t_ns: i64) -> bool {
        self.start_ns <= t_ns && t_ns < self.end_ns
    }
}

/// Where merged rows go. `prio` is given only when [`Sink::wants_prio`].
pub trait Sink {
    fn wants_prio(&self) -> bool {
        false
    }
    fn emit(&mut self, batch: &RecordBatch, prio: Option<ArrayRef>) -> Result<()>;
}

#[derive(Debug)]
pub enum MergeError {
    /// Input `.0` is not sorted by (time, key): it needs an external sort.
    Unsorted(usize),
    Other(Error),
}

impl From<Error> for MergeError {
    fn from(e: Error) -> Self {
        MergeError::Other(e)
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct MergeStats {
    pub rows_in: u64,
    pub rows_out: u64,
    pub duplicates: u64,
}

/// What the merge needs to know about the dataset, prepared once.
pub struct MergeCtx<'a> {
    pub ds: &'a DatasetConfig,
    pub schema: SchemaRef,
    pub sort_cols: Vec<usize>,
    pub ts_col: usize,
    pub unit_ns: i64,
    pub batch_rows: usize,
    fields: Vec<SortField>,
    /// The series' quality checker, fed by the merge and the final sink.
    quality: Option<Mutex<Checker>>,
}

impl<'a> MergeCtx<'a> {
    pub fn new(ds: &'a DatasetConfig, batch_rows: usize) -> Self {
        let schema: SchemaRef = Arc::new(ds.arrow_schema());
        let ts_col = schema.index_of(&ds.time_column).expect("validated time column");
        let mut sort_cols = vec![ts_col];
        sort_cols.extend(ds.key.iter().map(|k| schema.index_of(k).expect("validated key")));
        let fields = sort_cols
            .iter()
            .map(|&i| SortField::new(schema.field(i).data_type().clone()))
            .collect();
        MergeCtx {
            ds,
            schema,
            sort_cols,
            ts_col,
            unit_ns: unit_ns(ds.time_unit()),
            batch_rows,
            fields,
            quality: None,
        }
    }

    /// Check the rows of this merge with `checker`.
    pub fn with_quality(mut self, checker: Option<Checker>) -> Self {
        self.quality = checker.map(Mutex::new);
        self
    }

    /// Run `f` on the checker, when there is one.
    pub fn quality<R>(&self, f: impl FnOnce(&mut Checker) -> R) -> Option<R> {
        self.quality
            .as_ref()
            .map(|q| f(&mut q.lock().expect("quality checker")))
    }

    /// Count row `row` of `batch` as `kind` (see [`Checker::note`]).
    pub fn note(&self, kind: Kind, part: Option<&str>, (batch, row): (&RecordBatch, usize), file: &std::path::Path) {
        self.quality(|q| q.note(kind, part, batch, row, file));
    }

    /// What the checker holds now, to go back to if this merge restarts.
    pub fn quality_mark(&self) -> Option<Checker> {
        self.quality(|q| q.clone())
    }

    pub fn quality_restore(&self, mark: Option<Checker>) {
        if let Some(m) = mark {
            self.quality(|q| *q = m);
        }
    }

    /// The findings, per partition; the checker is spent.
    pub fn quality_findings(&self) -> Option<std::collections::BTreeMap<String, Vec<crate::quality::Finding>>> {
        self.quality(|q| q.finish())
    }

    pub fn converter(&self) -> RowConverter {
        RowConverter::new(self.fields.clone()).expect("sortable key types")
    }

    /// Time column values as integers in the dataset's unit.
    pub fn ts_values(&self, batch: &RecordBatch) -> Result<ScalarBuffer<i64>> {
        let c = cast(batch.column(self.ts_col), &DataType::Int64).map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(c.as_primitive::<Int64Type>().values().clone())
    }

    pub fn sort_columns(&self, batch: &RecordBatch) -> Vec<ArrayRef> {
        self.sort_cols.iter().map(|&i| batch.column(i).clone()).collect()
    }
}

struct Cursor {
    input: usize,
    path: PathBuf,
    reader: Batches,
    batch: RecordBatch,
    rows: Rows,
    ts: ScalarBuffer<i64>,
    prio_const: i64,
    prio_col: Option<Int64Array>,
    pos: usize,
    read: u64,
    filed: Option<Filed>,
}

impl Cursor {
    fn open(ctx: &MergeCtx, conv: &RowConverter, input: usize, inp: &MergeInput) -> Result<Option<Cursor>, MergeError> {
        let path = match &inp.moved_to {
            Some(alt) if !inp.path.exists() && alt.exists() => alt,
            _ => &inp.path,
        };
        let (_, reader) = parquet_io::open_batches(path, ctx.batch_rows)?;
        let mut c = Cursor {
            input,
            path: path.clone(),
            reader,
            batch: RecordBatch::new_empty(ctx.schema.clone()),
            rows: conv.empty_rows(0, 0),
            ts: ScalarBuffer::from(Vec::<i64>::new()),
            prio_const: inp.prio,
            prio_col: None,
            pos: 0,
            read: 0,
            filed: inp.filed.clone(),
        };
        Ok(if c.load(ctx, conv)? { Some(c) } else { None })
    }

    /// Load the next non-empty batch; false at the end of the file.
    fn load(&mut self, ctx: &MergeCtx, conv: &RowConverter) -> Result<bool, MergeError> {
        let prev_last: Option<OwnedRow> =
            (self.rows.num_rows() > 0).then(|| self.rows.row(self.rows.num_rows() - 1).owned());
        loop {
            let Some(b) = self.reader.next() else { return Ok(false) };
            let mut b = b.map_err(Error::arrow(&self.path))?;
            if b.num_rows() == 0 {
                continue;
            }
            self.prio_col = None;
            if let Ok(i) = b.schema().index_of(PRIO_COLUMN) {
                self.prio_col = Some(b.column(i).as_primitive::<Int64Type>().clone());
                b.remove_column(i);
            }
            let b = conform(&b, ctx.ds, &self.path)?;
            let rows = conv
                .convert_columns(&ctx.sort_columns(&b))
                .map_err(Error::arrow(&self.path))?;
            // Sorted within the batch and after the previous one, or this input needs sorting first.
            if let Some(p) = &prev_last {
                if rows.row(0) < p.row() {
                    return Err(MergeError::Unsorted(self.input));
                }
            }
            for j in 1..rows.num_rows() {
                if rows.row(j) < rows.row(j - 1) {
                    return Err(MergeError::Unsorted(self.input));
                }
            }
            self.ts = ctx.ts_values(&b)?;
            if let Some(f) = &self.filed {
                for (i, &t) in self.ts.iter().enumerate() {
                    if !f.holds(t.saturating_mul(ctx.unit_ns)) {
                        ctx.note(Kind::OutsidePartition, Some(&f.partition), (&b, i), &self.path);
                    }
                }
            }
            self.read += b.num_rows() as u64;
            self.batch = b;
            self.rows = rows;
            self.pos = 0;
            return Ok(true);
        }
    }

    fn len(&self) -> usize {
        self.batch.num_rows()
    }

    fn prio(&self, i: usize) -> i64 {
        match &self.prio_col {
            Some(p) => p.value(i),
            None => self.prio_const,
        }
    }

    fn prio_slice(&self, start: usize, len: usize) -> ArrayRef {
        match &self.prio_col {
            Some(p) => Arc::new(p.slice(start, len)),
            None => Arc::new(Int64Array::from_value(self.prio_const, len)),
        }
    }
}

/// Row `i` of cursor `a` against the current row of cursor `b`: by (time,
/// key), then higher priority first, then input order.
fn cmp_at(a: &Cursor, i: usize, b: &Cursor) -> Ordering {
    a.rows
        .row(i)
        .cmp(&b.rows.row(b.pos))
        .then_with(|| b.prio(b.pos).cmp(&a.prio(i)))
        .then_with(|| a.input.cmp(&b.input))
}

/// First index in `lo..hi` where `pred` turns false (`pred` is monotone).
fn partition_point(mut lo: usize, mut hi: usize, pred: impl Fn(usize) -> bool) -> usize {
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Merge `inputs` into `sink`. `on_rows` is told how many input rows were consumed.
pub fn merge(
    ctx: &MergeCtx,
    inputs: &[MergeInput],
    sink: &mut dyn Sink,
    on_rows: &dyn Fn(u64),
) -> Result<MergeStats, MergeError> {
    let conv = ctx.converter();
    let mut order: Vec<usize> = (0..inputs.len()).collect();
    order.sort_by_key(|&i| (inputs[i].min_ts_ns, i));
    let mut next = 0;
    let mut active: Vec<Cursor> = Vec::new();
    let mut stats = MergeStats::default();
    let mut last: Option<OwnedRow> = None;
    let wants_prio = sink.wants_prio();
    let mut finished_read = 0u64;

    loop {
        // Open every input that could hold the smallest row.
        loop {
            let frontier = active.iter().map(|c| c.ts[c.pos].saturating_mul(ctx.unit_ns)).min();
            match (order.get(next), frontier) {
                (Some(&i), f) if f.is_none_or(|f| inputs[i].min_ts_ns <= f) => {
                    next += 1;
                    if let Some(c) = Cursor::open(ctx, &conv, i, &inputs[i])? {
                        on_rows(c.read);
                        active.push(c);
                    }
                }
                _ => break,
            }
        }
        if active.is_empty() {
            break;
        }
        let (a, b) = smallest_two(&active);
        // Rows at or after the next unopened input's first time must wait for it.
        let bound = order.get(next).map(|&i| {
            inputs[i].min_ts_ns.div_euclid(ctx.unit_ns) + i64::from(inputs[i].min_ts_ns.rem_euclid(ctx.unit_ns) != 0)
        });
        let cur = &active[a];
        let pos = cur.pos;
        if last.as_ref().is_some_and(|l| l.row() == cur.rows.row(pos)) {
            // A copy of the row just written, from a lower-priority input.
            stats.duplicates += 1;
            ctx.note(Kind::DuplicateKeys, None, (&cur.batch, pos), &cur.path);
            active[a].pos += 1;
        } else {
            let other = b.map(|k| &active[k]);
            let end = partition_point(pos + 1, cur.len(), |j| {
                other.is_none_or(|o| cmp_at(cur, j, o) == Ordering::Less) && bound.is_none_or(|t| cur.ts[j] < t)
            });
            emit_run(ctx, cur, pos, end, sink, wants_prio, &mut stats)?;
            last = Some(cur.rows.row(end - 1).owned());
            active[a].pos = end;
        }
        if active[a].pos >= active[a].len() {
            let before = active[a].read;
            if active[a].load(ctx, &conv)? {
                on_rows(active[a].read - before);
            } else {
                finished_read += active.swap_remove(a).read;
            }
        }
    }
    stats.rows_in = finished_read;
    Ok(stats)
}

/// The cursor at the smallest row, and the runner-up.
fn smallest_two(active: &[Cursor]) -> (usize, Option<usize>) {
    let mut a = 0;
    for k in 1..active.len() {
        if cmp_at(&active[k], active[k].pos, &active[a]) == Ordering::Less {
            a = k;
        }
    }
    let mut b: Option<usize> = None;
    for k in 0..active.len() {
        if k != a && b.is_none_or(|bb| cmp_at(&active[k], active[k].pos, &active[bb]) == Ordering::Less) {
            b = Some(k);
        }
    }
    (a, b)
}

/// Emit `cur`'s rows `[pos, end)`, dropping rows equal to their
/// predecessor in this input.
fn emit_run(
    ctx: &MergeCtx,
    cur: &Cursor,
    pos: usize,
    end: usize,
    sink: &mut dyn Sink,
    wants_prio: bool,
    stats: &mut MergeStats,
) -> Result<(), MergeError> {
    let mut start = pos;
    for j in pos + 1..end {
        if cur.rows.row(j) == cur.rows.row(j - 1) {
            if j > start {
                emit(cur, start, j, sink, wants_prio, stats)?;
            }
            stats.duplicates += 1;
            ctx.note(Kind::DuplicateKeys, None, (&cur.batch, j), &cur.path);
            start = j + 1;
        }
    }
    if end > start {
        emit(cur, start, end, sink, wants_prio, stats)?;
    }
    Ok(())
}

fn emit(
    c: &Cursor,
    start: usize,
    end: usize,
    sink: &mut dyn Sink,
    wants_prio: bool,
    stats: &mut MergeStats,
) -> Result<()> {
    let n = end - start;
    let prio = wants_prio.then(|| c.prio_slice(start, n));
    sink.emit(&c.batch.slice(start, n), prio)?;
    stats.rows_out += n as u64;
    Ok(())
}

/// Order-independent checksum of the (time, key) columns of `batch`: a
/// wrapping sum of FNV-1a hashes of each row's byte-comparable form.
pub fn key_checksum(ctx: &MergeCtx, conv: &RowConverter, batch: &RecordBatch) -> Result<u64> {
    let rows = conv
        .convert_columns(&ctx.sort_columns(batch))
        .map_err(|e| Error::Invalid(e.to_string()))?;
    let mut sum = 0u64;
    for r in rows.iter() {
        let h = r.as_ref().iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        });
        sum = sum.wrapping_add(h);
    }
    Ok(sum)
}

/// [`key_checksum`] over a whole file, read back from disk.
pub fn file_key_checksum(ctx: &MergeCtx, path: &std::path::Path) -> Result<u64> {
    let conv = ctx.converter();
    let (_, reader) = parquet_io::open_batches(path, ctx.batch_rows)?;
    let mut sum = 0u64;
    for b in reader {
        let b = conform(&b.map_err(Error::arrow(path))?, ctx.ds, path)?;
        sum = sum.wrapping_add(key_checksum(ctx, &conv, &b)?);
    }
    Ok(sum)
}

/// Deepest overlap of the inputs' time ranges: how many would be open at once.
pub fn overlap_depth(inputs: &[MergeInput]) -> usize {
    let mut ev: Vec<(i64, i32)> = inputs
        .iter()
        .flat_map(|i| [(i.min_ts_ns, 1), (i.max_ts_ns, -1)])
        .collect();
    // At equal times open before close: touching ranges are both open.
    ev.sort_by_key(|&(t, d)| (t, -d));
    let (mut cur, mut max) = (0i32, 0i32);
    for (_, d) in ev {
        cur += d;
        max = max.max(cur);
    }
    max as usize
}
