//! Bounded external sort: an input that is not sorted by (time, key) is cut
//! into runs of at most `run_rows` rows, each sorted in memory and spilled
//! under the scratch folder, to be merged like any other inputs.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch};
use arrow::compute::{concat_batches, lexsort_to_indices, take_record_batch, SortColumn};

use super::merge::{MergeCtx, MergeInput, Sink, PRIO_COLUMN};
use super::sink::SpillWriter;
use crate::error::{Error, Result};
use crate::parquet_io::{conform, open_batches};
use crate::quality::Kind;

pub fn sort_into_runs(
    ctx: &MergeCtx,
    input: &MergeInput,
    scratch: &Path,
    tag: &str,
    run_rows: usize,
) -> Result<Vec<MergeInput>> {
    let (_, reader) = open_batches(&input.path, ctx.batch_rows)?;
    let mut runs = Vec::new();
    let mut buf: Vec<RecordBatch> = Vec::new();
    let mut rows = 0;
    let mut prev = i64::MIN;
    let flush = |buf: &mut Vec<RecordBatch>, runs: &mut Vec<MergeInput>| -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let all = concat_batches(&ctx.schema, buf.iter()).map_err(|e| Error::Invalid(e.to_string()))?;
        buf.clear();
        let cols: Vec<SortColumn> = ctx
            .sort_columns(&all)
            .into_iter()
            .map(|values| SortColumn { values, options: None })
            .collect();
        let idx = lexsort_to_indices(&cols, None).map_err(|e| Error::Invalid(e.to_string()))?;
        let sorted = take_record_batch(&all, &idx).map_err(|e| Error::Invalid(e.to_string()))?;
        let path = scratch.join(format!("{tag}-run{}.parquet", runs.len()));
        let mut w = SpillWriter::try_new(ctx, &path)?;
        let n = sorted.num_rows();
        w.emit(&sorted, Some(Arc::new(Int64Array::from_value(input.prio, n))))?;
        runs.push(w.close()?);
        Ok(())
    };
    for b in reader {
        let mut b = b.map_err(Error::arrow(&input.path))?;
        if let Ok(i) = b.schema().index_of(PRIO_COLUMN) {
            b.remove_column(i);
        }
        let b = conform(&b, ctx.ds, &input.path)?;
        note_order(ctx, input, &b, &mut prev)?;
        rows += b.num_rows();
        buf.push(b);
        if rows >= run_rows {
            flush(&mut buf, &mut runs)?;
            rows = 0;
        }
    }
    flush(&mut buf, &mut runs)?;
    Ok(runs)
}

/// Tell the checker which rows of `b` come before a row read earlier from
/// the same file, and which lie outside the partition the file is filed
/// under (the merge never reads this file's rows: its sorted runs instead).
fn note_order(ctx: &MergeCtx, input: &MergeInput, b: &RecordBatch, prev: &mut i64) -> Result<()> {
    if ctx.quality(|_| ()).is_none() {
        return Ok(());
    }
    for (i, &t) in ctx.ts_values(b)?.iter().enumerate() {
        if t < *prev {
            ctx.note(
                Kind::OutOfOrder,
                input.filed.as_ref().map(|f| &*f.partition),
                (b, i),
                &input.path,
            );
        }
        *prev = (*prev).max(t);
        if let Some(f) = input.filed.as_ref().filter(|f| !f.holds(t.saturating_mul(ctx.unit_ns))) {
            ctx.note(Kind::OutsidePartition, Some(&f.partition), (b, i), &input.path);
        }
    }
    Ok(())
}
