//! Choosing each column's Parquet encoding from its data: owns the rules
//! every writer shares (see [`WriteOptions::fit`]).
//!
//! - Sorted integers and timestamps: DELTA_BINARY_PACKED (deltas are small).
//! - Floats: a dictionary when a sample shows few distinct values, else
//!   BYTE_STREAM_SPLIT where the sample compresses smaller that way (a
//!   smooth price), else PLAIN (a random size).
//! - Other integers: a dictionary when few distinct, else DELTA_BINARY_PACKED.
//! - Strings: a dictionary when few distinct (a side, a symbol), else PLAIN.
//!
//! A dictionary tried on nearly unique values costs twice: the writer
//! builds it, then falls back to PLAIN for the rest of the row group. The
//! sample (the first batch a writer sees) decides before that happens; a
//! dataset may also declare a column's encoding in its config.

use std::collections::HashSet;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Schema};
use parquet::basic::Encoding;

use crate::config::ColumnEncoding;

/// At most this many rows of the sample are looked at.
const SAMPLE_ROWS: usize = 8192;
/// Distinct values over rows at or under which a dictionary pays.
const DICT_RATIO: f64 = 0.1;

/// How one column is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Dictionary,
    Plain,
    ByteStreamSplit,
    Delta,
}

impl Choice {
    /// The encoding to set and whether a dictionary is tried first.
    pub fn encoding(self) -> (Option<Encoding>, bool) {
        match self {
            Choice::Dictionary => (None, true),
            Choice::Plain => (Some(Encoding::PLAIN), false),
            Choice::ByteStreamSplit => (Some(Encoding::BYTE_STREAM_SPLIT), false),
            Choice::Delta => (Some(Encoding::DELTA_BINARY_PACKED), false),
        }
    }
}

impl From<ColumnEncoding> for Choice {
    fn from(e: ColumnEncoding) -> Choice {
        match e {
            ColumnEncoding::Dict => Choice::Dictionary,
            ColumnEncoding::Plain => Choice::Plain,
            ColumnEncoding::ByteStreamSplit => Choice::ByteStreamSplit,
            ColumnEncoding::Delta => Choice::Delta,
        }
    }
}

/// The choice for every column of `schema`: `declared` ones as declared
/// (when they fit the type), columns in `sorted` by the sort rule, the rest
/// from `sample` (or from the type alone without one).
pub fn choose(
    schema: &Schema,
    sample: Option<&RecordBatch>,
    sorted: &[String],
    declared: &[(String, ColumnEncoding)],
) -> Vec<(String, Choice)> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let t = f.data_type();
            let name = f.name().clone();
            if let Some((_, e)) = declared.iter().find(|(c, e)| *c == name && e.fits(t)) {
                return (name, Choice::from(*e));
            }
            let few = || {
                sample
                    .and_then(|b| b.columns().get(i))
                    .is_some_and(|a| distinct_ratio(a) <= DICT_RATIO)
            };
            let choice = match t {
                _ if (t.is_integer() || matches!(t, DataType::Timestamp(..))) && sorted.contains(&name) => {
                    Choice::Delta
                }
                DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 => Choice::Delta,
                _ if t.is_floating() => match sample.and_then(|b| b.columns().get(i)) {
                    Some(_) if few() => Choice::Dictionary,
                    Some(a) if !split_is_smaller(a) => Choice::Plain,
                    _ => Choice::ByteStreamSplit,
                },
                _ if t.is_integer() => {
                    if few() {
                        Choice::Dictionary
                    } else {
                        Choice::Delta
                    }
                }
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                    if sample.is_none() || few() {
                        Choice::Dictionary
                    } else {
                        Choice::Plain
                    }
                }
                _ => Choice::Dictionary,
            };
            (name, choice)
        })
        .collect()
}

/// Whether the first [`SAMPLE_ROWS`] values of `a` compress smaller with
/// their bytes split into streams than as they are (zstd, as written). A
/// smooth price does; a random size usually does not.
fn split_is_smaller(a: &ArrayRef) -> bool {
    let n = a.len().min(SAMPLE_ROWS);
    let data = a.slice(0, n).to_data();
    let Some(width) = data.data_type().primitive_width() else {
        return false;
    };
    let raw = &data.buffers()[0].as_slice()[data.offset() * width..(data.offset() + n) * width];
    let mut split = vec![0u8; raw.len()];
    for (i, v) in raw.chunks_exact(width).enumerate() {
        for (b, byte) in v.iter().enumerate() {
            split[b * n + i] = *byte;
        }
    }
    let size = |bytes: &[u8]| zstd::bulk::compress(bytes, 3).map(|c| c.len()).unwrap_or(usize::MAX);
    size(&split) < size(raw)
}

/// Distinct values over rows in the first [`SAMPLE_ROWS`] of `a`.
fn distinct_ratio(a: &ArrayRef) -> f64 {
    let n = a.len().min(SAMPLE_ROWS);
    if n == 0 {
        return 1.0;
    }
    let a = a.slice(0, n);
    let distinct = match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().iter().collect::<HashSet<_>>().len(),
        DataType::LargeUtf8 => a.as_string::<i64>().iter().collect::<HashSet<_>>().len(),
        _ => {
            // Fixed-width values compared by their bytes.
            let data = a.to_data();
            let width = match data.data_type().primitive_width() {
                Some(w) => w,
                None => return 1.0,
            };
            let buf = &data.buffers()[0].as_slice()[data.offset() * width..(data.offset() + n) * width];
            buf.chunks_exact(width).collect::<HashSet<_>>().len()
        }
    };
    distinct as f64 / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array, StringArray};
    use arrow::datatypes::Field;
    use std::sync::Arc;

    #[test]
    fn rules_follow_the_data() {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("price", DataType::Float64, false),
            Field::new("lot", DataType::Float64, false),
            Field::new("side", DataType::Utf8, false),
            Field::new("n", DataType::Int64, false),
        ]);
        let n = 1000;
        let b = RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![
                Arc::new(Int64Array::from_iter_values(0..n)),
                Arc::new(Float64Array::from_iter_values(
                    (0..n).map(|i| 100.0 + (i as f64 * 0.013).sin()),
                )),
                Arc::new(Float64Array::from_iter_values((0..n).map(|i| (i % 3) as f64))),
                Arc::new(StringArray::from_iter_values((0..n).map(|i| {
                    if i % 2 == 0 {
                        "buy"
                    } else {
                        "sell"
                    }
                }))),
                Arc::new(Int64Array::from_iter_values((0..n).map(|i| i * 7919 % 1000))),
            ],
        )
        .unwrap();
        let got = choose(
            &schema,
            Some(&b),
            &["id".into()],
            &[("n".into(), ColumnEncoding::Plain)],
        );
        let got: Vec<Choice> = got.into_iter().map(|(_, c)| c).collect();
        assert_eq!(
            got,
            [
                Choice::Delta,
                Choice::ByteStreamSplit,
                Choice::Dictionary,
                Choice::Dictionary,
                Choice::Plain
            ]
        );
        // A declared encoding that does not fit the type is not used.
        let got = choose(&schema, Some(&b), &[], &[("side".into(), ColumnEncoding::Delta)]);
        assert_eq!(got[3].1, Choice::Dictionary);
    }
}
