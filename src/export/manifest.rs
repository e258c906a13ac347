//! What an export handed over: its data manifest and fingerprint.
//!
//! Owns the content checksum of the rows an export writes (computed in its
//! stream: a stable hash of the key and time columns, summed per partition,
//! so the order of equal times and the files the rows came from do not
//! matter), the manifest (each partition's rows, first and last time and
//! checksum; each source file's tier, path, size, rows and range), the
//! fingerprint (one hash over the partitions alone, so a tier move or a
//! recompaction of equal rows keeps it), and the diff of two manifests.

use std::collections::BTreeMap;
use std::fmt;

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::datatypes::DataType;
use serde::{Deserialize, Serialize};

use crate::catalog::CatalogFile;
use crate::config::DatasetConfig;
use crate::error::{Error, Result};
use crate::time::rfc3339;

/// One partition's rows as exported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionDigest {
    /// `exchange=…/symbol=…/date=…`: the row's series and time period.
    pub partition: String,
    pub rows: u64,
    /// First and last row time, RFC 3339.
    pub first: String,
    pub last: String,
    /// 32 hex digits over the rows' key and time columns.
    pub checksum: String,
}

/// A source file the export read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceFile {
    pub tier: String,
    pub path: String,
    pub partition: String,
    pub bytes: u64,
    pub rows: u64,
    pub min_ts: String,
    pub max_ts: String,
}

/// `data.manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub dataset: String,
    pub fingerprint: String,
    pub rows: u64,
    pub partitions: Vec<PartitionDigest>,
    pub files: Vec<SourceFile>,
    /// The lake snapshot that named the files read (not in the fingerprint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<i64>,
}

/// Running sums of one partition.
#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    rows: u64,
    first: i64,
    last: i64,
    sum: u64,
    xor: u64,
}

/// The digest an export feeds as it writes: partition → sums.
#[derive(Debug, Default)]
pub struct Digest {
    parts: BTreeMap<String, Acc>,
}

/// FNV-1a, 64 bits: stable across builds and platforms.
fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// splitmix64's finalizer: spreads FNV's bits before they are summed.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const SEED: u64 = 0xcbf2_9ce4_8422_2325;

/// Each row's hash of one column folded into `h`.
fn fold_column(h: &mut [u64], a: &ArrayRef) -> Result<()> {
    let err = |e: arrow::error::ArrowError| Error::Invalid(format!("fingerprint: {e}"));
    match a.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let s = arrow::compute::cast(a, &DataType::Utf8).map_err(err)?;
            let s = s.as_any().downcast_ref::<arrow::array::StringArray>().expect("utf8");
            for (i, h) in h.iter_mut().enumerate() {
                *h = if s.is_null(i) {
                    fnv(*h, &[0xff])
                } else {
                    fnv(fnv(*h, s.value(i).as_bytes()), &[0])
                };
            }
        }
        DataType::Float32 | DataType::Float64 => {
            let f = arrow::compute::cast(a, &DataType::Float64).map_err(err)?;
            let f = f.as_any().downcast_ref::<arrow::array::Float64Array>().expect("f64");
            for (i, h) in h.iter_mut().enumerate() {
                *h = if f.is_null(i) {
                    fnv(*h, &[0xff])
                } else {
                    fnv(*h, &f.value(i).to_bits().to_le_bytes())
                };
            }
        }
        _ => {
            let v = arrow::compute::cast(a, &DataType::Int64).map_err(err)?;
            let v = v.as_any().downcast_ref::<arrow::array::Int64Array>().expect("i64");
            for (i, h) in h.iter_mut().enumerate() {
                *h = if v.is_null(i) {
                    fnv(*h, &[0xff])
                } else {
                    fnv(*h, &v.value(i).to_le_bytes())
                };
            }
        }
    }
    Ok(())
}

impl Digest {
    /// Forget a series (its merge started over).
    pub fn reset(&mut self, series: &str) {
        let prefix = format!("{series}/");
        self.parts
            .retain(|k, _| !(k.starts_with(&prefix) || (series.is_empty() && !k.contains('/'))));
    }

    /// Add the rows of `batch` (one series; `ts_ns` its times in ns).
    pub fn add(&mut self, ds: &DatasetConfig, series: &str, batch: &RecordBatch, ts_ns: &[i64]) -> Result<()> {
        let mut h = vec![SEED; batch.num_rows()];
        let mut cols: Vec<&str> = vec![ds.time_column.as_str()];
        cols.extend(ds.key.iter().map(String::as_str).filter(|k| *k != ds.time_column));
        for c in cols {
            if let Some(a) = batch.column_by_name(c) {
                fold_column(&mut h, a)?;
            }
        }
        let mut current: Option<(String, &mut Acc)> = None;
        for (i, &t) in ts_ns.iter().enumerate() {
            let period = ds.period_of(t);
            if current.as_ref().is_none_or(|(p, _)| *p != period) {
                let key = if series.is_empty() {
                    format!("{}={period}", ds.time_partition)
                } else {
                    format!("{series}/{}={period}", ds.time_partition)
                };
                let acc = self.parts.entry(key).or_insert(Acc {
                    first: i64::MAX,
                    last: i64::MIN,
                    ..Default::default()
                });
                current = Some((period, acc));
            }
            let (_, acc) = current.as_mut().expect("set above");
            let r = mix(h[i]);
            acc.rows += 1;
            acc.sum = acc.sum.wrapping_add(r);
            acc.xor ^= r;
            acc.first = acc.first.min(t);
            acc.last = acc.last.max(t);
        }
        Ok(())
    }

    /// The manifest of what was added, with the files that were read.
    pub fn manifest(&self, dataset: &str, files: &[(String, Vec<CatalogFile>)]) -> Manifest {
        let partitions: Vec<PartitionDigest> = self
            .parts
            .iter()
            .map(|(p, a)| PartitionDigest {
                partition: p.clone(),
                rows: a.rows,
                first: rfc3339(a.first),
                last: rfc3339(a.last),
                checksum: format!("{:016x}{:016x}", a.sum, a.xor),
            })
            .collect();
        let files = files
            .iter()
            .flat_map(|(_, fs)| fs)
            .map(|f| SourceFile {
                tier: f.tier.clone(),
                path: f.file.relpath.clone(),
                partition: f.file.partition.clone(),
                bytes: f.file.bytes,
                rows: f.file.rows,
                min_ts: rfc3339(f.file.min_ts),
                max_ts: rfc3339(f.file.max_ts),
            })
            .collect();
        Manifest {
            dataset: dataset.to_string(),
            fingerprint: fingerprint(dataset, &partitions),
            rows: partitions.iter().map(|p| p.rows).sum(),
            partitions,
            files,
            snapshot: None,
        }
    }
}

impl Manifest {
    /// Take in the manifest of a companion dataset exported with this one
    /// (Freqtrade's mark and funding series): its partitions are named
    /// `<dataset>:<partition>`, and the fingerprint covers them too.
    pub fn absorb(&mut self, other: Manifest) {
        for mut p in other.partitions {
            p.partition = format!("{}:{}", other.dataset, p.partition);
            self.partitions.push(p);
        }
        self.files.extend(other.files);
        self.rows += other.rows;
        // One snapshot names both only if each export recorded one.
        self.snapshot = self.snapshot.zip(other.snapshot).map(|(a, b)| a.max(b));
        self.fingerprint = fingerprint(&self.dataset, &self.partitions);
    }
}

/// One hash over the dataset and its partitions' digests: not over file
/// names, tiers or paths.
pub fn fingerprint(dataset: &str, partitions: &[PartitionDigest]) -> String {
    let mut text = format!("mdkeep data v1\n{dataset}\n");
    for p in partitions {
        text.push_str(&format!(
            "{} {} {} {} {}\n",
            p.partition, p.rows, p.first, p.last, p.checksum
        ));
    }
    let (a, b) = (fnv(SEED, text.as_bytes()), fnv(mix(SEED), text.as_bytes()));
    format!("{:016x}{:016x}", mix(a), mix(b))
}

/// How one partition differs between two manifests.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionChange {
    pub partition: String,
    /// `added` (only in the second), `removed` (only in the first), `changed`.
    pub change: &'static str,
    pub rows_before: u64,
    pub rows_after: u64,
    /// First and last time before and after (RFC 3339), where present.
    pub range_before: Option<[String; 2]>,
    pub range_after: Option<[String; 2]>,
}

impl fmt::Display for PartitionChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.rows_after as i64 - self.rows_before as i64;
        let rows = match d {
            0 => format!("{} rows changed, none added or removed", self.rows_after),
            1 => "+1 row".to_string(),
            -1 => "-1 row".to_string(),
            d if d > 0 => format!("+{d} rows"),
            d => format!("{d} rows"),
        };
        let range = |r: &Option<[String; 2]>| r.as_ref().map_or("-".to_string(), |[a, b]| format!("{a}..{b}"));
        write!(
            f,
            "{} {}: {rows} ({} → {} rows; {} → {})",
            self.partition,
            self.change,
            self.rows_before,
            self.rows_after,
            range(&self.range_before),
            range(&self.range_after)
        )
    }
}

/// The partitions whose rows differ between `a` and `b`, in order.
pub fn diff(a: &Manifest, b: &Manifest) -> Vec<PartitionChange> {
    let index = |m: &Manifest| -> BTreeMap<String, PartitionDigest> {
        m.partitions.iter().map(|p| (p.partition.clone(), p.clone())).collect()
    };
    let (ia, ib) = (index(a), index(b));
    let mut keys: Vec<&String> = ia.keys().chain(ib.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let (pa, pb) = (ia.get(k), ib.get(k));
            if pa == pb {
                return None;
            }
            let range = |p: Option<&PartitionDigest>| p.map(|p| [p.first.clone(), p.last.clone()]);
            Some(PartitionChange {
                partition: k.clone(),
                change: match (pa, pb) {
                    (None, _) => "added",
                    (_, None) => "removed",
                    _ => "changed",
                },
                rows_before: pa.map_or(0, |p| p.rows),
                rows_after: pb.map_or(0, |p| p.rows),
                range_before: range(pa),
                range_after: range(pb),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(p: &str, rows: u64, sum: &str) -> PartitionDigest {
        PartitionDigest {
            partition: p.into(),
            rows,
            first: "2024-01-01T00:00:00Z".into(),
            last: "2024-01-01T23:00:00Z".into(),
            checksum: sum.into(),
        }
    }

    #[test]
    fn a_diff_names_the_partition_and_the_rows() {
        let m = |parts: Vec<PartitionDigest>| Manifest {
            dataset: "trades".into(),
            fingerprint: fingerprint("trades", &parts),
            rows: 0,
            partitions: parts,
            files: Vec::new(),
            snapshot: None,
        };
        let a = m(vec![
            part("s=A/date=2024-01-01", 10, "x"),
            part("s=A/date=2024-01-02", 5, "y"),
        ]);
        let b = m(vec![
            part("s=A/date=2024-01-01", 11, "z"),
            part("s=A/date=2024-01-03", 2, "w"),
        ]);
        assert_ne!(a.fingerprint, b.fingerprint);
        let d = diff(&a, &b);
        let text: Vec<String> = d.iter().map(|c| c.to_string()).collect();
        assert_eq!(d.len(), 3, "{text:?}");
        assert!(
            text[0].starts_with("s=A/date=2024-01-01 changed: +1 row"),
            "{}",
            text[0]
        );
        assert!(
            text[1].starts_with("s=A/date=2024-01-02 removed: -5 rows"),
            "{}",
            text[1]
        );
        assert!(text[2].starts_with("s=A/date=2024-01-03 added: +2 rows"), "{}", text[2]);
        assert!(diff(&a, &a).is_empty());
    }
}
