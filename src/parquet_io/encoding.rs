//! Choosing each column's Parquet encoding from its data: owns the rules
//! every writer shares (see [`WriteOptions::fit`]).
//!
//! - Sorted integers and timestamps: DELTA_BINARY_PACKED (deltas are small).
//! - Floats: a dictionary when it would be smaller over a row group than
//!   the values themselves (few distinct values, or a size column whose
//!   values repeat across a row group), else BYTE_STREAM_SPLIT where the
//!   sample compresses smaller that way (a smooth price), else PLAIN.
//! - Other integers: a dictionary when few distinct, else DELTA_BINARY_PACKED.
//! - Strings: a dictionary when few distinct (a side, a symbol), else PLAIN.
//!
//! A dictionary tried on nearly unique values costs twice: the writer
//! builds it, then falls back to PLAIN for the rest of the row group. The
//! sample (the first batch a writer sees) decides before that happens; a
//! dataset may also declare a column's encoding in its config.
//!
//! How many distinct values a row group will hold is estimated from the
//! sample's repeats (Chao1: values seen once and twice), since a sample of
//! 8,192 random sizes looks nearly unique while a million of them repeat
//! a lot. A dictionary may grow to [`DICT_PAGE_LIMIT`] per column.

use std::collections::HashSet;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Schema};
use parquet::basic::Encoding;

use crate::config::ColumnEncoding;

/// At most this many rows of the sample are looked at.
const SAMPLE_ROWS: usize = 8192;
/// Distinct values over rows at or under which a dictionary pays.
const DICT_RATIO: f64 = 0.1;
/// A dictionary must be estimated at most this share of the values'
/// compressed bytes to be chosen for a float column.
const DICT_GAIN: f64 = 0.8;
/// The largest dictionary page a column may have before the writer falls
/// back (parquet's default, 1 MiB, holds only 131,072 floats). It is held
/// in memory while a row group is written.
pub const DICT_PAGE_LIMIT: usize = 8 << 20;

/// How one column is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Dictionary,
    /// A dictionary of many distinct floats (sizes that repeat across a row
    /// group), written without compression: zstd gains about 5 % on its
    /// near-random bytes, and a reader of any slice of the row group would
    /// first decompress the whole dictionary (DuckDB's 5-minute slice went
    /// from 5.0 to 7.7 ms with it).
    WideDictionary,
    Plain,
    ByteStreamSplit,
    Delta,
}

impl Choice {
    /// The encoding to set and whether a dictionary is tried first.
    pub fn encoding(self) -> (Option<Encoding>, bool) {
        match self {
            Choice::Dictionary => (None, true),
            Choice::WideDictionary => (Some(Encoding::PLAIN), true),
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
/// from `sample` (or from the type alone without one), for row groups of
/// `group_rows` rows.
pub fn choose(
    schema: &Schema,
    sample: Option<&RecordBatch>,
    sorted: &[String],
    declared: &[(String, ColumnEncoding)],
    group_rows: usize,
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
                    Some(a) => float_choice(a, group_rows),
                    None => Choice::ByteStreamSplit,
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

/// A float column's encoding: a dictionary when it is estimated clearly
/// smaller over a row group of `group_rows` than the values compressed
/// either way, else the smaller of BYTE_STREAM_SPLIT (a smooth price) and
/// PLAIN (a random size), both tried with zstd on the sample.
fn float_choice(a: &ArrayRef, group_rows: usize) -> Choice {
    let n = a.len().min(SAMPLE_ROWS);
    let data = a.slice(0, n).to_data();
    let Some(width) = data.data_type().primitive_width() else {
        return Choice::Plain;
    };
    if n == 0 {
        return Choice::ByteStreamSplit;
    }
    let raw = &data.buffers()[0].as_slice()[data.offset() * width..(data.offset() + n) * width];
    let repeats = Repeats::of(raw, width);
    if repeats.distinct as f64 / n as f64 <= DICT_RATIO {
        return Choice::Dictionary;
    }
    let mut split = vec![0u8; raw.len()];
    for (i, v) in raw.chunks_exact(width).enumerate() {
        for (b, byte) in v.iter().enumerate() {
            split[b * n + i] = *byte;
        }
    }
    let size = |bytes: &[u8]| zstd::bulk::compress(bytes, 3).map(|c| c.len()).unwrap_or(usize::MAX);
    let (split, plain) = (size(&split), size(raw));
    let values = group_rows as f64 * split.min(plain) as f64 / n as f64;
    if repeats.dictionary_bytes(width, group_rows) < DICT_GAIN * values {
        Choice::WideDictionary
    } else if split < plain {
        Choice::ByteStreamSplit
    } else {
        Choice::Plain
    }
}

/// How often the fixed-width values of a sample repeat.
struct Repeats {
    distinct: usize,
    /// Values seen once, and twice.
    once: usize,
    twice: usize,
}

impl Repeats {
    fn of(raw: &[u8], width: usize) -> Repeats {
        let mut counts: std::collections::HashMap<&[u8], u32> = std::collections::HashMap::new();
        for v in raw.chunks_exact(width) {
            *counts.entry(v).or_default() += 1;
        }
        Repeats {
            distinct: counts.len(),
            once: counts.values().filter(|c| **c == 1).count(),
            twice: counts.values().filter(|c| **c == 2).count(),
        }
    }

    /// The estimated bytes of a dictionary-encoded row group of
    /// `group_rows` values of `width` bytes: the distinct values once, then
    /// one index of just enough bits per row. The distinct count in the row
    /// group comes from Chao1 over the sample (d + f1(f1-1) / 2(f2+1)),
    /// then the share of that population `group_rows` draws would meet.
    fn dictionary_bytes(&self, width: usize, group_rows: usize) -> f64 {
        let (d, f1, f2) = (self.distinct as f64, self.once as f64, self.twice as f64);
        let population = d + f1 * (f1 - 1.0).max(0.0) / (2.0 * (f2 + 1.0));
        let rows = group_rows as f64;
        let distinct = (population * (1.0 - (-rows / population).exp())).clamp(1.0, rows);
        if distinct * width as f64 > DICT_PAGE_LIMIT as f64 {
            return f64::INFINITY;
        }
        distinct * width as f64 + rows * distinct.log2().ceil().max(1.0) / 8.0
    }
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
            Repeats::of(buf, width).distinct
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
            1 << 20,
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
        let got = choose(
            &schema,
            Some(&b),
            &[],
            &[("side".into(), ColumnEncoding::Delta)],
            1 << 20,
        );
        assert_eq!(got[3].1, Choice::Dictionary);
    }

    #[test]
    fn sizes_that_repeat_across_a_row_group_get_a_wide_dictionary() {
        // Sizes in 1e-6 steps, log-spread like real trade sizes: nearly all
        // distinct in the sample, many repeats in a million rows.
        let mut x: u64 = 7;
        let mut next = || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        let sizes: Vec<f64> = (0..SAMPLE_ROWS)
            .map(|_| {
                let z = (0..12).map(|_| next()).sum::<f64>() - 6.0;
                ((-3.0 + 1.2 * z).exp() * 1e6).round() / 1e6
            })
            .collect();
        let a: ArrayRef = Arc::new(Float64Array::from(sizes));
        assert!(distinct_ratio(&a) > 0.9);
        assert_eq!(float_choice(&a, 1 << 20), Choice::WideDictionary);
        // In small row groups the same values are cheaper as they are.
        assert_ne!(float_choice(&a, 8192), Choice::WideDictionary);
        // A random walk's prices are nearly unique in any row group.
        let mut p = 42_000.0;
        let prices: Vec<f64> = (0..SAMPLE_ROWS)
            .map(|_| {
                p *= 1.0 + (next() - 0.5) * 1e-4;
                (p * 1e6).round() / 1e6
            })
            .collect();
        let a: ArrayRef = Arc::new(Float64Array::from(prices));
        assert!(matches!(
            float_choice(&a, 1 << 20),
            Choice::ByteStreamSplit | Choice::Plain
        ));
    }
}
