//! The coverage index: which cadence buckets each file has rows in, kept
//! in SQLite so coverage and gaps are answered without reading data.
//!
//! Owns the `report_buckets` table (its name is older than this module):
//! per file (tier, path, size, mtime) the ascending buckets `time /
//! cadence` it has rows in. A rewrite records its outputs' buckets as it
//! writes them; the report fills in a file nobody indexed by reading its
//! time column once. [`index`] answers `mdkeep coverage` from the catalog
//! and this table alone: a file not indexed yet counts as covering its
//! whole `[min, max]` range, and says so.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::catalog::{CatalogFile, FileEntry};
use crate::config::{timeframe_ns, Config, DatasetConfig};
use crate::error::Result;
use crate::layout::PartitionKey;
use crate::state::Db;
use crate::time::{human_ns, rfc3339};

/// The expected spacing of rows: `cadence` from config, the timeframe of a
/// candle series, or an hour.
pub fn cadence_ns(ds: &DatasetConfig, series: &str) -> i64 {
    if let Some(c) = ds.cadence {
        return (c.0.as_nanos() as i64).max(1);
    }
    crate::layout::partition_values(series)
        .iter()
        .find(|(k, _)| k == "timeframe")
        .and_then(|(_, tf)| timeframe_ns(tf))
        .unwrap_or(3_600_000_000_000)
}

/// Record the buckets of a file just written (in the rewrite's transaction).
pub fn record(conn: &Connection, e: &FileEntry, cadence: i64, buckets: &[i64]) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO report_buckets (tier, relpath, bytes, mtime_ns, cadence, buckets)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        e.tier,
        e.relpath,
        e.bytes as i64,
        e.mtime_ns,
        cadence,
        encode(buckets)
    ])?;
    Ok(())
}

/// Forget the entries of files that left the catalog (best effort).
pub fn forget_gone(db: &Db) {
    let _ = db.conn.execute(
        "DELETE FROM report_buckets WHERE NOT EXISTS
           (SELECT 1 FROM files f WHERE f.tier = report_buckets.tier AND f.relpath = report_buckets.relpath)",
        [],
    );
}

/// The buckets of `f` at `cadence`: from the index, or read from its time
/// column once and recorded (best effort: a busy database costs a re-read).
/// With `read` false a file not in the index is not opened: it counts as
/// covering its whole `[min, max]`, as in [`index`].
pub fn file_buckets(
    cfg: &Config,
    db: &Db,
    f: &CatalogFile,
    time_column: &str,
    cadence: i64,
    read: bool,
) -> Result<Vec<i64>> {
    let hit: Option<Vec<u8>> = db
        .conn
        .query_row(
            "SELECT buckets FROM report_buckets
             WHERE tier = ?1 AND relpath = ?2 AND bytes = ?3 AND mtime_ns = ?4 AND cadence = ?5",
            params![f.tier, f.file.relpath, f.file.bytes as i64, f.file.mtime_ns, cadence],
            |r| r.get(0),
        )
        .optional()
        .map_err(db.err())?;
    if let Some(v) = hit.and_then(|b| decode(&b)) {
        return Ok(v);
    }
    if !read {
        return Ok(span(f, cadence));
    }
    let path = cfg.tier_root(&f.tier)?.join(&f.file.relpath);
    let mut set = std::collections::BTreeSet::new();
    crate::parquet_io::for_each_time(&path, time_column, |ts| {
        set.extend(ts.iter().map(|t| t.div_euclid(cadence)));
    })?;
    let v: Vec<i64> = set.into_iter().collect();
    let _ = db.conn.execute(
        "INSERT OR REPLACE INTO report_buckets (tier, relpath, bytes, mtime_ns, cadence, buckets)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            f.tier,
            f.file.relpath,
            f.file.bytes as i64,
            f.file.mtime_ns,
            cadence,
            encode(&v)
        ],
    );
    Ok(v)
}

/// Ascending buckets as zstd-compressed little-endian deltas (mostly 1s).
fn encode(v: &[i64]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(v.len() * 8);
    let mut prev = 0i64;
    for &b in v {
        raw.extend_from_slice(&b.wrapping_sub(prev).to_le_bytes());
        prev = b;
    }
    zstd::bulk::compress(&raw, 3).unwrap_or_default()
}

fn decode(b: &[u8]) -> Option<Vec<i64>> {
    decode_with(&mut zstd::bulk::Decompressor::new().ok()?, b)
}

/// Decode with a reused context: the index decodes thousands at a time.
fn decode_with(z: &mut zstd::bulk::Decompressor, b: &[u8]) -> Option<Vec<i64>> {
    let size = zstd::zstd_safe::get_frame_content_size(b).ok()??;
    let raw = z.decompress(b, size as usize).ok()?;
    let mut prev = 0i64;
    Some(
        raw.chunks_exact(8)
            .map(|c| {
                prev = prev.wrapping_add(i64::from_le_bytes(c.try_into().expect("8 bytes")));
                prev
            })
            .collect(),
    )
}

/// One series' coverage, as `mdkeep coverage` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesCoverage {
    pub dataset: String,
    /// The partition values other than time.
    pub series: indexmap::IndexMap<String, String>,
    pub cadence: String,
    /// First and last row, RFC 3339.
    pub first: String,
    pub last: String,
    pub rows: u64,
    pub files: u64,
    /// Files not in the index yet, counted as covering their whole range.
    pub files_unindexed: u64,
    /// `[from, to)` runs of buckets with rows, RFC 3339.
    pub intervals: Vec<[String; 2]>,
    pub gaps: Vec<CoverageGap>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CoverageGap {
    pub from: String,
    pub to: String,
    /// Empty buckets of the series' cadence.
    pub missing: u64,
}

/// The buckets of a file not in the index: its whole `[min, max]`.
fn span(f: &CatalogFile, cadence: i64) -> Vec<i64> {
    if f.file.rows == 0 {
        return Vec::new();
    }
    (f.file.min_ts.div_euclid(cadence)..=f.file.max_ts.div_euclid(cadence)).collect()
}

/// Every indexed entry: (tier, relpath) → (bytes, mtime, cadence, blob).
type Entries = HashMap<(String, String), (i64, i64, i64, Vec<u8>)>;

fn entries(db: &Db) -> Result<Entries> {
    let mut st = db
        .conn
        .prepare("SELECT tier, relpath, bytes, mtime_ns, cadence, buckets FROM report_buckets")
        .map_err(db.err())?;
    let rows = st
        .query_map([], |r| {
            Ok(((r.get(0)?, r.get(1)?), (r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        })
        .map_err(db.err())?;
    rows.collect::<rusqlite::Result<Entries>>().map_err(db.err())
}

/// Coverage of every series (of `dataset`, or all), from the catalog and
/// the index alone: no data file is opened.
pub fn index(cfg: &Config, db: &Db, dataset: Option<&str>) -> Result<Vec<SeriesCoverage>> {
    let entries = entries(db)?;
    let mut z = zstd::bulk::Decompressor::new().map_err(|e| crate::error::Error::Invalid(e.to_string()))?;
    // (dataset, series) → (cadence, buckets, files, unindexed, rows, first, last)
    let mut acc: std::collections::BTreeMap<(String, String), Acc> = Default::default();
    for f in crate::catalog::files(db, dataset)? {
        let Ok(ds) = cfg.dataset(&f.dataset) else { continue };
        if f.drift {
            continue;
        }
        let series = PartitionKey::of(ds, &f.file.partition).series;
        let cadence = cadence_ns(ds, &series);
        let a = acc
            .entry((f.dataset.clone(), series))
            .or_insert_with(|| Acc::new(cadence));
        a.files += 1;
        a.rows += f.file.rows;
        a.first = a.first.min(f.file.min_ts);
        a.last = a.last.max(f.file.max_ts);
        let hit = entries
            .get(&(f.tier.clone(), f.file.relpath.clone()))
            .filter(|(b, m, c, _)| *b == f.file.bytes as i64 && *m == f.file.mtime_ns && *c == cadence)
            .and_then(|(_, _, _, blob)| decode_with(&mut z, blob));
        match hit {
            Some(v) => a.buckets.extend(v),
            None if f.file.rows > 0 => {
                a.unindexed += 1;
                a.buckets.extend(span(&f, cadence));
            }
            None => {}
        }
    }
    Ok(acc
        .into_iter()
        .map(|((dataset, series), a)| a.into_coverage(dataset, &series))
        .collect())
}

struct Acc {
    cadence: i64,
    buckets: Vec<i64>,
    files: u64,
    unindexed: u64,
    rows: u64,
    first: i64,
    last: i64,
}

impl Acc {
    fn new(cadence: i64) -> Acc {
        Acc {
            cadence,
            buckets: Vec::new(),
            files: 0,
            unindexed: 0,
            rows: 0,
            first: i64::MAX,
            last: i64::MIN,
        }
    }

    fn into_coverage(mut self, dataset: String, series: &str) -> SeriesCoverage {
        self.buckets.sort_unstable();
        self.buckets.dedup();
        let c = self.cadence;
        let (mut intervals, mut gaps) = (Vec::new(), Vec::new());
        let mut run: Option<(i64, i64)> = None;
        for &b in &self.buckets {
            run = match run {
                Some((s, e)) if b == e + 1 => Some((s, b)),
                Some((s, e)) => {
                    intervals.push([rfc3339(s * c), rfc3339((e + 1) * c)]);
                    gaps.push(CoverageGap {
                        from: rfc3339((e + 1) * c),
                        to: rfc3339(b * c),
                        missing: (b - e - 1) as u64,
                    });
                    Some((b, b))
                }
                None => Some((b, b)),
            };
        }
        if let Some((s, e)) = run {
            intervals.push([rfc3339(s * c), rfc3339((e + 1) * c)]);
        }
        let has_rows = self.first <= self.last;
        SeriesCoverage {
            dataset,
            series: crate::layout::partition_values(series).into_iter().collect(),
            cadence: human_ns(c),
            first: if has_rows { rfc3339(self.first) } else { String::new() },
            last: if has_rows { rfc3339(self.last) } else { String::new() },
            rows: self.rows,
            files: self.files,
            files_unindexed: self.unindexed,
            intervals,
            gaps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_round_trip() {
        let v = vec![-5, 0, 1, 2, 3, 1_000_000_007, i64::MAX / 2];
        assert_eq!(decode(&encode(&v)).unwrap(), v);
        assert_eq!(decode(&encode(&[])).unwrap(), Vec::<i64>::new());
    }

    #[test]
    fn runs_become_intervals_and_gaps() {
        let mut a = Acc::new(3_600_000_000_000);
        a.buckets = vec![0, 1, 2, 5, 6, 9];
        a.first = 0;
        a.last = 9 * 3_600_000_000_000;
        let c = a.into_coverage("trades".into(), "exchange=x/symbol=y");
        assert_eq!(c.intervals.len(), 3);
        assert_eq!(c.gaps.iter().map(|g| g.missing).collect::<Vec<_>>(), vec![2, 2]);
        assert_eq!(c.gaps[0].from, "1970-01-01T03:00:00Z");
    }
}
