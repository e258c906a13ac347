//! vectorbt's wide close table: one `date` column and one close column per
//! symbol, outer-joined on time.
//!
//! Owns only the join. Each series arrives as its own spill sorted by time,
//! so the join is a streaming k-way walk: memory is one batch per symbol
//! plus the output batch, whatever the range.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::store::Batches;
use arrow::array::{ArrayRef, AsArray, Float64Builder, RecordBatch, TimestampMillisecondBuilder};
use arrow::datatypes::{DataType, Field, Float64Type, Schema, TimestampMillisecondType};

use super::columns::utc_ms;
use crate::error::{Error, Result};
use crate::parquet_io::{open_batches, DataFileWriter, WriteOptions};

const BATCH: usize = 8192;

struct Cursor {
    path: PathBuf,
    reader: Batches,
    batch: Option<RecordBatch>,
    pos: usize,
}

impl Cursor {
    fn current(&mut self) -> Result<Option<(i64, f64)>> {
        loop {
            if let Some(b) = &self.batch {
                if self.pos < b.num_rows() {
                    let t = b.column(0).as_primitive::<TimestampMillisecondType>().value(self.pos);
                    let c = b.column(1).as_primitive::<Float64Type>().value(self.pos);
                    return Ok(Some((t, c)));
                }
            }
            match self.reader.next() {
                Some(b) => {
                    self.batch = Some(b.map_err(Error::arrow(&self.path))?);
                    self.pos = 0;
                }
                None => return Ok(None),
            }
        }
    }
}

/// Join the spills into `dest`; returns the number of rows (distinct times).
pub(crate) fn join_close(spills: &[(String, PathBuf)], dest: &Path) -> Result<u64> {
    let mut fields = vec![utc_ms("date")];
    for (i, (sym, _)) in spills.iter().enumerate() {
        if spills[..i].iter().any(|(s, _)| s == sym) {
            return Err(Error::Invalid(format!(
                "several exchanges hold {sym}: pass --exchange to export one wide table"
            )));
        }
        fields.push(Field::new(sym, DataType::Float64, true));
    }
    let schema = Arc::new(Schema::new(fields));
    let mut cursors = spills
        .iter()
        .map(|(_, p)| {
            let (_, reader) = open_batches(p, BATCH)?;
            Ok(Cursor {
                path: p.clone(),
                reader,
                batch: None,
                pos: 0,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let opts = WriteOptions {
        replace: true,
        ..WriteOptions::zstd(3)
    }
    .fit(&schema, None, None);
    let mut w = DataFileWriter::try_new(dest, schema.clone(), &opts)?;
    let new_builders = || {
        (0..spills.len())
            .map(|_| Float64Builder::with_capacity(BATCH))
            .collect::<Vec<_>>()
    };
    let mut dates = TimestampMillisecondBuilder::with_capacity(BATCH).with_timezone("UTC");
    let mut closes = new_builders();
    loop {
        let mut heads = Vec::with_capacity(cursors.len());
        for c in cursors.iter_mut() {
            heads.push(c.current()?);
        }
        let Some(t) = heads.iter().flatten().map(|(t, _)| *t).min() else {
            break;
        };
        dates.append_value(t);
        for (i, h) in heads.iter().enumerate() {
            match h {
                Some((ht, c)) if *ht == t => {
                    closes[i].append_value(*c);
                    cursors[i].pos += 1;
                }
                _ => closes[i].append_null(),
            }
        }
        if dates.values_slice().len() >= BATCH {
            flush(&mut w, &schema, &mut dates, &mut closes, dest)?;
        }
    }
    if !dates.values_slice().is_empty() {
        flush(&mut w, &schema, &mut dates, &mut closes, dest)?;
    }
    Ok(w.close()?.rows)
}

fn flush(
    w: &mut DataFileWriter,
    schema: &Arc<Schema>,
    dates: &mut TimestampMillisecondBuilder,
    closes: &mut [Float64Builder],
    dest: &Path,
) -> Result<()> {
    let mut cols: Vec<ArrayRef> = vec![Arc::new(dates.finish())];
    cols.extend(closes.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    let b = RecordBatch::try_new(schema.clone(), cols).map_err(Error::arrow(dest))?;
    w.write(&b)
}
