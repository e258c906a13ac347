//! hftbacktest's input: an `.npz` holding `data`, an array of its 64-byte
//! event records (`ev` u64, `exch_ts` i64, `local_ts` i64, `px` f64, `qty`
//! f64, `order_id` u64, `ival` i64, `fval` f64), ordered by time.
//!
//! Owns the record layout and the `.npy`/zip framing. The row count is known
//! only at the end, so records stream into a scratch `.npy` whose header has
//! room reserved, the header is patched, and the file is stored (not
//! deflated, as `numpy.savez` does) into the zip.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::PathBuf;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Float64Type;

use super::columns::{f64_col, SeriesOut};
use crate::error::{Error, Result};
use crate::fsutil::AtomicFile;

/// Event flags, as in `hftbacktest.types`.
pub const EXCH_EVENT: u64 = 1 << 31;
pub const LOCAL_EVENT: u64 = 1 << 30;
pub const BUY_EVENT: u64 = 1 << 29;
pub const SELL_EVENT: u64 = 1 << 28;
pub const TRADE_EVENT: u64 = 2;

const DESCR: &str = "[('ev', '<u8'), ('exch_ts', '<i8'), ('local_ts', '<i8'), ('px', '<f8'), ('qty', '<f8'), \
                     ('order_id', '<u8'), ('ival', '<i8'), ('fval', '<f8')]";
/// Bytes reserved for the `.npy` preamble and header: any row count fits.
const HEADER_LEN: usize = 256;

pub(crate) struct NpzWriter {
    dest: PathBuf,
    npy: PathBuf,
    w: Option<BufWriter<File>>,
    rows: u64,
}

impl NpzWriter {
    pub(crate) fn new(dest: PathBuf, npy: PathBuf) -> Self {
        NpzWriter {
            dest,
            npy,
            w: None,
            rows: 0,
        }
    }
}

fn header(rows: u64) -> Vec<u8> {
    let dict = format!("{{'descr': {DESCR}, 'fortran_order': False, 'shape': ({rows},), }}");
    let mut h = b"\x93NUMPY\x01\x00".to_vec();
    let len = (HEADER_LEN - 10) as u16;
    h.extend_from_slice(&len.to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.resize(HEADER_LEN - 1, b' ');
    h.push(b'\n');
    h
}

impl SeriesOut for NpzWriter {
    fn write(&mut self, b: &arrow::array::RecordBatch) -> Result<()> {
        if self.w.is_none() {
            let mut f = BufWriter::new(File::create(&self.npy).map_err(Error::io("create", &self.npy))?);
            f.write_all(&header(0)).map_err(Error::io("write", &self.npy))?;
            self.w = Some(f);
        }
        let w = self.w.as_mut().expect("opened above");
        let ts = super::columns::ts_ns(b.column(0))?;
        let px = f64_col(b, "price")?;
        let qty = f64_col(b, "amount")?;
        let (px, qty) = (px.as_primitive::<Float64Type>(), qty.as_primitive::<Float64Type>());
        let side = arrow::compute::cast(
            b.column_by_name("side").expect("checked shape"),
            &arrow::datatypes::DataType::Utf8,
        )
        .map_err(|e| Error::Invalid(e.to_string()))?;
        let side = side.as_string::<i32>();
        let mut rec = [0u8; 64];
        for i in 0..b.num_rows() {
            let dir = match side.is_valid(i).then(|| side.value(i)) {
                Some("buy") | Some("b") | Some("BUY") => BUY_EVENT,
                Some("sell") | Some("s") | Some("SELL") => SELL_EVENT,
                _ => 0,
            };
            let ev = EXCH_EVENT | LOCAL_EVENT | TRADE_EVENT | dir;
            rec[0..8].copy_from_slice(&ev.to_le_bytes());
            rec[8..16].copy_from_slice(&ts[i].to_le_bytes());
            // No feed latency is known: the local time is the exchange's.
            rec[16..24].copy_from_slice(&ts[i].to_le_bytes());
            rec[24..32].copy_from_slice(&px.value(i).to_le_bytes());
            rec[32..40].copy_from_slice(&qty.value(i).to_le_bytes());
            w.write_all(&rec).map_err(Error::io("write", &self.npy))?;
        }
        self.rows += b.num_rows() as u64;
        Ok(())
    }

    fn close(self: Box<Self>) -> Result<Option<(PathBuf, u64)>> {
        let Some(w) = self.w else { return Ok(None) };
        let npy = self.npy.clone();
        let mut f = w.into_inner().map_err(|e| Error::io("write", &npy)(e.into_error()))?;
        f.seek(SeekFrom::Start(0)).map_err(Error::io("seek", &npy))?;
        f.write_all(&header(self.rows)).map_err(Error::io("write", &npy))?;
        drop(f);
        let size = std::fs::metadata(&npy).map_err(Error::io("stat", &npy))?.len();
        let (target, out) = AtomicFile::create(&self.dest)?;
        let zerr = |e: zip::result::ZipError| Error::Invalid(format!("{}: {e}", self.dest.display()));
        let mut z = zip::ZipWriter::new(BufWriter::new(out));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(size >= u32::MAX as u64);
        z.start_file("data.npy", opts).map_err(zerr)?;
        let mut src = File::open(&npy).map_err(Error::io("open", &npy))?;
        std::io::copy(&mut src, &mut z).map_err(Error::io("write", &self.dest))?;
        let mut buf = z.finish().map_err(zerr)?;
        buf.flush().map_err(Error::io("write", &self.dest))?;
        drop(buf);
        let _ = std::fs::remove_file(&npy);
        Ok(Some((target.commit_replacing()?, self.rows)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_aligned_and_fixed() {
        for n in [0, 1, u64::MAX] {
            let h = header(n);
            assert_eq!(h.len(), HEADER_LEN);
            assert_eq!(h.len() % 64, 0);
            assert_eq!(*h.last().unwrap(), b'\n');
        }
    }
}
