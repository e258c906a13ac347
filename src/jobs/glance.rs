//! Backtest results at a glance: each job's normalized metrics (read back
//! from its `result.json`), its equity series (`artifacts/equity.parquet`,
//! columns `ts` and `equity`, read bounded) and the comparison of runs.
//!
//! Owns reading what a job left behind and ordering jobs by a metric. The
//! pages that show it are [`crate::report::jobs_page`]'s; `mdkeep jobs ls`
//! and `jobs compare` print the same values. Whether two runs read the same
//! data is [`crate::export::manifest::diff`]'s, as `jobs diff` says it.

use std::collections::BTreeSet;
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use serde::Serialize;
use serde_json::Value;

use super::queue::{self, Job, JobView, Lifecycle};
use crate::error::{Error, Result};
use crate::export::manifest::{self, Manifest, PartitionChange};
use crate::quality::{FindingRow, QualityFilter};
use crate::state::Db;

/// The equity series a job may leave, under its folder.
pub const EQUITY: &str = "artifacts/equity.parquet";

/// A chart keeps at most this many points of a series (and its last one).
pub const MAX_POINTS: usize = 1000;

/// What `?sort=` and `jobs ls --sort` accept.
pub const SORT_KEYS: [&str; 7] = [
    "id",
    "total_return",
    "total_profit",
    "max_drawdown",
    "trades",
    "funding_fees",
    "duration",
];

/// The metrics every job list shows. Each is read from `result.json`'s
/// `metrics` under its own name, or under the name Freqtrade's export uses
/// (`profit_total`, `profit_total_abs`, `max_drawdown_account`, `total_trades`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Metrics {
    pub total_return: Option<f64>,
    pub total_profit: Option<f64>,
    pub max_drawdown: Option<f64>,
    pub trades: Option<u64>,
    pub funding_fees: Option<f64>,
}

impl Metrics {
    /// The normalized metrics of a `result.json` (null when it has none).
    pub fn of(result: &Value) -> Metrics {
        let m = &result["metrics"];
        let num = |names: &[&str]| names.iter().find_map(|n| m.get(*n).and_then(Value::as_f64));
        Metrics {
            total_return: num(&["total_return", "profit_total"]),
            total_profit: num(&["total_profit", "profit_total_abs"]),
            max_drawdown: num(&["max_drawdown", "max_drawdown_account"]),
            trades: num(&["trades", "total_trades"]).map(|t| t.max(0.0).round() as u64),
            funding_fees: num(&["funding_fees"]),
        }
    }
}

/// One job as a list shows it: its view, its metrics and how long it ran.
#[derive(Debug, Serialize)]
pub struct Summary {
    #[serde(flatten)]
    pub view: JobView,
    pub metrics: Metrics,
    /// From start to end of its last run; none until it has ended.
    pub duration_seconds: Option<f64>,
}

impl Summary {
    pub fn of(job: &Job) -> Summary {
        let result = if job.life.is_done() {
            result_json(Path::new(&job.dir))
        } else {
            None
        };
        Summary {
            view: job.view(),
            metrics: result.as_ref().map(Metrics::of).unwrap_or_default(),
            duration_seconds: duration_seconds(job),
        }
    }

    /// The value `key` (one of [`SORT_KEYS`]) orders by.
    pub fn value(&self, key: &str) -> Option<f64> {
        let m = &self.metrics;
        match key {
            "id" => Some(self.view.id as f64),
            "total_return" => m.total_return,
            "total_profit" => m.total_profit,
            "max_drawdown" => m.max_drawdown,
            "trades" => m.trades.map(|t| t as f64),
            "funding_fees" => m.funding_fees,
            "duration" => self.duration_seconds,
            _ => None,
        }
    }
}

/// Seconds from a finished job's start to its end.
pub fn duration_seconds(job: &Job) -> Option<f64> {
    match job.life {
        Lifecycle::Done {
            started_at: Some(s),
            finished_at,
            ..
        } => Some((finished_at - s).max(0) as f64 / 1e9),
        _ => None,
    }
}

/// A job's `result.json`, if it wrote one that parses.
pub fn result_json(dir: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(dir.join("result.json")).ok()?).ok()
}

/// Jobs, newest first (`state` filters), with their metrics.
pub fn summaries(db: &Db, state: Option<&str>) -> Result<Vec<Summary>> {
    Ok(queue::list(db, state)?.iter().map(Summary::of).collect())
}

/// Order `list` by `key`: largest first (smallest first when `ascending`),
/// jobs without the value last, newest first among equals. An unknown key
/// is refused, naming the ones there are.
pub fn sort(list: &mut [Summary], key: &str, ascending: bool) -> Result<()> {
    if !SORT_KEYS.contains(&key) {
        return Err(Error::Invalid(format!(
            "cannot sort jobs by `{key}`: use one of {}",
            SORT_KEYS.join(", ")
        )));
    }
    list.sort_by(|a, b| {
        let (va, vb) = (a.value(key), b.value(key));
        let by_value = match (va, vb) {
            (Some(x), Some(y)) if ascending => x.total_cmp(&y),
            (Some(x), Some(y)) => y.total_cmp(&x),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        };
        by_value.then_with(|| b.view.id.cmp(&a.view.id))
    });
    Ok(())
}

/// An equity series, at most [`MAX_POINTS`] (+1) points of it.
#[derive(Debug, Clone, Serialize)]
pub struct Equity {
    /// The file's rows.
    pub rows: u64,
    /// (ns since the epoch, equity), every n-th row and the last one.
    pub points: Vec<(i64, f64)>,
}

impl Equity {
    pub fn first(&self) -> Option<f64> {
        self.points.first().map(|p| p.1)
    }
    pub fn last(&self) -> Option<f64> {
        self.points.last().map(|p| p.1)
    }
}

/// A job's equity series, or None when it left none. Streams the file a
/// batch at a time, keeping every n-th row, so memory stays bounded
/// whatever its length.
pub fn read_equity(dir: &Path) -> Result<Option<Equity>> {
    let path = dir.join(EQUITY);
    if !path.is_file() {
        return Ok(None);
    }
    let bad = |message: String| Error::BadInput {
        path: path.clone(),
        message,
    };
    let (_, meta) = crate::parquet_io::footer(&path).map_err(&bad)?;
    let rows = meta.file_metadata().num_rows().max(0) as u64;
    let stride = (rows as usize).div_ceil(MAX_POINTS).max(1);
    let (schema, batches) = crate::parquet_io::open_columns(&path, 64 * 1024, Some(&["ts", "equity"]))?;
    let unit = match schema.field_with_name("ts").map(|f| f.data_type().clone()) {
        Ok(DataType::Timestamp(u, _)) => crate::parquet_io::unit_ns(u),
        Ok(_) => 1,
        Err(_) => return Err(bad("no column `ts`".into())),
    };
    if schema.field_with_name("equity").is_err() {
        return Err(bad("no column `equity`".into()));
    }
    let mut points = Vec::new();
    let mut last = None;
    let mut i = 0usize;
    for batch in batches {
        let batch = batch.map_err(Error::arrow(path.as_path()))?;
        let (Some(ts), Some(eq)) = (batch.column_by_name("ts"), batch.column_by_name("equity")) else {
            return Err(bad("no columns `ts` and `equity`".into()));
        };
        let ts = arrow::compute::cast(ts, &DataType::Int64).map_err(Error::arrow(path.as_path()))?;
        let eq = arrow::compute::cast(eq, &DataType::Float64).map_err(Error::arrow(path.as_path()))?;
        let (ts, eq) = (ts.as_primitive::<Int64Type>(), eq.as_primitive::<Float64Type>());
        for r in 0..batch.num_rows() {
            if ts.is_valid(r) && eq.is_valid(r) && eq.value(r).is_finite() {
                let p = (ts.value(r).saturating_mul(unit), eq.value(r));
                if i % stride == 0 {
                    points.push(p);
                }
                last = Some(p);
            }
            i += 1;
        }
    }
    if let Some(l) = last {
        if points.last() != Some(&l) {
            points.push(l);
        }
    }
    Ok(Some(Equity { rows, points }))
}

/// Everything `/jobs/<id>` shows besides the log tail.
pub struct Detail {
    pub job: Job,
    pub result: Option<Value>,
    pub manifest: Option<Manifest>,
    /// The stored quality findings on the partitions the job read.
    pub findings: Vec<FindingRow>,
    /// The equity series, none, or why it could not be read.
    pub equity: std::result::Result<Option<Equity>, String>,
}

pub fn detail(db: &Db, id: i64) -> Result<Detail> {
    let job = queue::get(db, id)?;
    let manifest = queue::data_manifest(db, id)?;
    let findings = match &manifest {
        Some(m) => {
            let filter = QualityFilter {
                dataset: Some(m.dataset.clone()),
                partitions: Some(
                    m.partitions
                        .iter()
                        .map(|p| p.partition.clone())
                        .collect::<BTreeSet<_>>(),
                ),
                ..Default::default()
            };
            crate::quality::list(db, &filter)?
        }
        None => Vec::new(),
    };
    let dir = Path::new(&job.dir).to_path_buf();
    Ok(Detail {
        result: result_json(&dir),
        manifest,
        findings,
        equity: read_equity(&dir).map_err(|e| e.to_string()),
        job,
    })
}

/// One job of a comparison.
#[derive(Debug, Serialize)]
pub struct Compared {
    pub id: i64,
    pub name: String,
    pub framework: String,
    pub state: &'static str,
    pub duration_seconds: Option<f64>,
    /// The normalized metrics ([`Metrics`]).
    pub summary: Metrics,
    /// Every metric of its `result.json`, as written (null when none).
    pub metrics: Value,
    pub data_fingerprint: Option<String>,
    pub data_rows: Option<u64>,
    /// The lake snapshot its export read, when the lake is on.
    pub data_snapshot: Option<i64>,
    /// Rows of its equity series, when it left one.
    pub equity_rows: Option<u64>,
    /// The equity series' first and last values.
    pub equity_first: Option<f64>,
    pub equity_last: Option<f64>,
}

/// How the data of a job differs from the first job's (`jobs diff`).
#[derive(Debug, Serialize)]
pub struct DataDiff {
    pub a: i64,
    pub b: i64,
    /// None when either job has no data manifest.
    pub same: Option<bool>,
    pub partitions: Vec<PartitionChange>,
}

/// `jobs compare --json` and `/jobs/compare`.
#[derive(Debug, Serialize)]
pub struct Comparison {
    pub jobs: Vec<Compared>,
    /// Whether every job read the same data; None when one has no manifest.
    pub same_data: Option<bool>,
    /// Each job's data against the first job's.
    pub data: Vec<DataDiff>,
    /// The equity series (for the chart), by job id.
    #[serde(skip)]
    pub curves: Vec<(i64, String, Equity)>,
}

/// Compare jobs `ids` (at least one, each must exist).
pub fn compare(db: &Db, ids: &[i64]) -> Result<Comparison> {
    if ids.is_empty() {
        return Err(Error::Invalid("name the jobs to compare, e.g. 1,2,3".into()));
    }
    let mut jobs = Vec::new();
    let mut manifests = Vec::new();
    let mut curves = Vec::new();
    for &id in ids {
        let job = queue::get(db, id)?;
        let dir = Path::new(&job.dir).to_path_buf();
        let result = result_json(&dir);
        // A series that cannot be read is left off the chart, not fatal.
        let equity = read_equity(&dir).ok().flatten();
        jobs.push(Compared {
            id,
            name: job.name.clone(),
            framework: job.framework.clone(),
            state: job.life.state(),
            duration_seconds: duration_seconds(&job),
            summary: result.as_ref().map(Metrics::of).unwrap_or_default(),
            metrics: result.as_ref().map(|r| r["metrics"].clone()).unwrap_or(Value::Null),
            data_fingerprint: job.data_fingerprint.clone(),
            data_rows: job.data_rows,
            data_snapshot: job.data_snapshot,
            equity_rows: equity.as_ref().map(|e| e.rows),
            equity_first: equity.as_ref().and_then(Equity::first),
            equity_last: equity.as_ref().and_then(Equity::last),
        });
        if let Some(e) = equity {
            curves.push((id, job.name.clone(), e));
        }
        manifests.push((id, queue::data_manifest(db, id)?));
    }
    let data = data_diffs(&manifests);
    let same_data = data.iter().map(|d| d.same).try_fold(true, |all, s| s.map(|s| all && s));
    Ok(Comparison {
        jobs,
        same_data,
        data,
        curves,
    })
}

/// Each job's manifest against the first's.
fn data_diffs(manifests: &[(i64, Option<Manifest>)]) -> Vec<DataDiff> {
    let Some((a, first)) = manifests.first() else {
        return Vec::new();
    };
    manifests[1..]
        .iter()
        .map(|(b, m)| match (first, m) {
            (Some(ma), Some(mb)) => DataDiff {
                a: *a,
                b: *b,
                same: Some(ma.fingerprint == mb.fingerprint),
                partitions: manifest::diff(ma, mb),
            },
            _ => DataDiff {
                a: *a,
                b: *b,
                same: None,
                partitions: Vec::new(),
            },
        })
        .collect()
}

/// `1,2,3` (or `1 2 3`) as job ids.
pub fn parse_ids(text: &str) -> Result<Vec<i64>> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<i64>()
                .map_err(|_| Error::Invalid(format!("`{s}` is not a job id")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freqtrade_names_count_as_the_normalized_ones() {
        let r = serde_json::json!({"metrics": {"profit_total": 0.5, "max_drawdown_account": 0.1, "total_trades": 7}});
        let m = Metrics::of(&r);
        assert_eq!(m.total_return, Some(0.5));
        assert_eq!(m.max_drawdown, Some(0.1));
        assert_eq!(m.trades, Some(7));
        assert_eq!(Metrics::of(&serde_json::json!({"metrics": null})), Metrics::default());
    }

    #[test]
    fn ids_parse_from_commas_or_spaces() {
        assert_eq!(parse_ids("1,2, 3").unwrap(), vec![1, 2, 3]);
        assert!(parse_ids("1,x").is_err());
    }
}
