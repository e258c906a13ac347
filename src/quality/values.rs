//! Typed access to the values the checks read: which columns they are
//! ([`Columns`]), the checked columns of one batch cast once
//! ([`RowValues`]), a column as floats or 64-bit integers, and one row as
//! `col=value` text for a finding's example.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::error::{Error, Result};

/// The columns a dataset's checks read, by index in its schema.
#[derive(Debug, Clone, Default)]
pub(super) struct Columns {
    pub(super) price: Option<usize>,
    pub(super) amount: Option<usize>,
    pub(super) side: Option<usize>,
    pub(super) id: Option<usize>,
    pub(super) ohlcv: Option<[usize; 5]>,
    pub(super) update_id: Option<usize>,
}

/// The checked columns of one batch, cast once.
pub(super) struct RowValues {
    pub(super) price: Option<arrow::array::Float64Array>,
    pub(super) amount: Option<arrow::array::Float64Array>,
    pub(super) side: Option<arrow::array::StringArray>,
    pub(super) id: Option<arrow::array::Int64Array>,
    pub(super) update_id: Option<arrow::array::Int64Array>,
    pub(super) ohlcv: Option<Vec<arrow::array::Float64Array>>,
}

impl RowValues {
    pub(super) fn of(c: &Columns, b: &RecordBatch) -> Result<RowValues> {
        let float = |i: Option<usize>| i.map(|i| floats(b.column(i))).transpose();
        let int = |i: Option<usize>| i.map(|i| ints(b.column(i))).transpose();
        Ok(RowValues {
            price: float(c.price)?,
            amount: float(c.amount)?,
            side: c.side.map(|i| b.column(i).as_string::<i32>().clone()),
            id: int(c.id)?,
            update_id: int(c.update_id)?,
            ohlcv: c
                .ohlcv
                .map(|cols| cols.iter().map(|&i| floats(b.column(i))).collect::<Result<Vec<_>>>())
                .transpose()?,
        })
    }

    pub(super) fn price(&self, i: usize) -> Option<f64> {
        self.price.as_ref().filter(|a| !a.is_null(i)).map(|a| a.value(i))
    }

    pub(super) fn amount(&self, i: usize) -> Option<f64> {
        self.amount.as_ref().filter(|a| !a.is_null(i)).map(|a| a.value(i))
    }
}

fn floats(a: &ArrayRef) -> Result<arrow::array::Float64Array> {
    let c = cast(a, &DataType::Float64).map_err(|e| Error::Invalid(e.to_string()))?;
    Ok(c.as_primitive::<Float64Type>().clone())
}

/// A column as 64-bit integers (times in their unit).
pub(crate) fn ints(a: &ArrayRef) -> Result<arrow::array::Int64Array> {
    let c = cast(a, &DataType::Int64).map_err(|e| Error::Invalid(e.to_string()))?;
    Ok(c.as_primitive::<Int64Type>().clone())
}

/// Row `row` of `batch` as `col=value` pairs.
pub fn row_text(batch: &RecordBatch, row: usize) -> String {
    let opts = FormatOptions::default().with_null("null");
    let schema = batch.schema();
    batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            let v = match f.data_type() {
                DataType::Timestamp(unit, _) if !c.is_null(row) => ints(c)
                    .map(|v| crate::time::rfc3339(v.value(row).saturating_mul(crate::parquet_io::unit_ns(*unit))))
                    .unwrap_or_default(),
                _ => ArrayFormatter::try_new(c.as_ref(), &opts)
                    .map(|fm| fm.value(row).to_string())
                    .unwrap_or_default(),
            };
            format!("{}={v}", f.name())
        })
        .collect::<Vec<_>>()
        .join(" ")
}
