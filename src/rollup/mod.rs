//! `rollup`: candles from trades, before the trades can expire.
//!
//! Owns choosing the partitions (every finished one, judged against the
//! dataset's guarded clock, that has no verified rollup of its current
//! rows), streaming their rows through the compaction merge (sorted, without
//! duplicates) into [`candles`], writing the candles into the `into` dataset
//! through the safe write path, verifying them, and recording the rollup.
//! Each partition is isolated ([`isolate`]): a bad input is quarantined and
//! the partition rolled up without it; any other failure skips only that
//! partition.
//! Retention asks [`is_rolled_up`] before it drops a partition; the drop
//! itself is retention's business.
//!
//! Verification re-reads what was written: the candle count must equal the
//! number of distinct windows counted while streaming (independently of
//! polars), and the volume sum must equal the trades' amount sum.

pub mod candles;
mod isolate;

pub use isolate::{failure_of, RollupFailure};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use crate::progress::Progress;
use arrow::array::{ArrayRef, AsArray, Float64Array, RecordBatch};
use arrow::datatypes::{DataType, Float64Type};
use rusqlite::params;
use serde::Serialize;

use crate::catalog::{self, rfc3339};
use crate::catalog::{files as catalog_files, guarded_clock};
use crate::config::{timeframe_ns, Config, DatasetConfig, RollupConfig};
use crate::engine::merge::{MergeCtx, MergeInput, Sink};
use crate::engine::rewrite::{merge_inputs, merge_shape, MergeOptions, RewriteTotals};
use crate::engine::PlanFile;
use crate::error::{Error, Result};
use crate::ingest::PartitionSink;
use crate::parquet_io::{self, WrittenFile};
use crate::state::{db_err, now_ns, Db};
use candles::{Candle, CandleBuilder};

/// One trades partition to roll up.
#[derive(Debug, Clone, Serialize)]
pub struct RollupItem {
    pub dataset: String,
    pub into: String,
    pub partition: String,
    pub timeframes: Vec<String>,
    /// (tier, file) of every cataloged file of the partition.
    #[serde(skip)]
    pub files: Vec<(String, PlanFile)>,
    pub file_count: u64,
    pub rows: u64,
    pub bytes: u64,
    pub reason: String,
}

#[derive(Debug, Default, Serialize)]
pub struct RollupPlan {
    pub items: Vec<RollupItem>,
}

#[derive(Debug, Default, Serialize)]
pub struct RollupMetrics {
    pub dry_run: bool,
    pub partitions: u64,
    pub trades: u64,
    pub duplicates_removed: u64,
    /// Candles written, per timeframe.
    pub candles: BTreeMap<String, u64>,
    pub files_written: u64,
    pub bytes_written: u64,
    pub seconds: f64,
    /// Inputs quarantined and partitions skipped (retried next run), with
    /// their file or partition and reason.
    pub failures: Vec<crate::error::Failure>,
}

/// A trim left `to` of the `from` rows the partition's candles were built
/// from: the candles still cover it (they were built from every row), so it
/// must not look un-rolled-up and be rolled up again into partial candles.
pub fn shrink_source_rows(db: &Db, dataset: &str, partition: &str, from: u64, to: u64) -> Result<()> {
    db.conn
        .execute(
            "UPDATE rollups SET source_rows = ?1 WHERE dataset = ?2 AND partition = ?3 AND source_rows = ?4",
            params![to as i64, dataset, partition, from as i64],
        )
        .map_err(db.err())?;
    Ok(())
}

/// Whether `partition` of `dataset`, holding `rows` rows now, has verified
/// candles for every configured timeframe.
pub fn is_rolled_up(db: &Db, r: &RollupConfig, dataset: &str, partition: &str, rows: u64) -> Result<bool> {
    let done: Vec<String> = {
        let mut st = db
            .conn
            .prepare(
                "SELECT timeframe FROM rollups
                 WHERE dataset = ?1 AND partition = ?2 AND source_rows = ?3 AND into_dataset = ?4",
            )
            .map_err(db.err())?;
        let r = st
            .query_map(params![dataset, partition, rows as i64, r.into], |row| row.get(0))
            .map_err(db.err())?;
        r.collect::<rusqlite::Result<_>>().map_err(db.err())?
    };
    Ok(r.timeframes.iter().all(|tf| done.contains(tf)))
}

pub fn plan(cfg: &Config, db: &Db, dataset: Option<&str>) -> Result<RollupPlan> {
    let mut out = RollupPlan::default();
    for (name, ds) in &cfg.datasets {
        let Some(r) = &ds.rollup else { continue };
        if dataset.is_some_and(|d| d != name) {
            continue;
        }
        let files = catalog_files(db, Some(name))?;
        // A partition is finished once the dataset holds newer rows than its
        // end, and never because of a future-dated row alone.
        let Some(reference) = guarded_clock(&files) else {
            continue;
        };
        let mut parts: BTreeMap<String, Vec<(String, PlanFile)>> = BTreeMap::new();
        for f in files.into_iter().filter(|f| !f.drift) {
            parts
                .entry(f.file.partition.clone())
                .or_default()
                .push((f.tier, f.file));
        }
        for (partition, files) in parts {
            let Some((_, end)) = crate::layout::PartitionKey::of(ds, &partition).range(ds) else {
                continue;
            };
            if end > reference {
                continue;
            }
            let rows: u64 = files.iter().map(|(_, f)| f.rows).sum();
            if is_rolled_up(db, r, name, &partition, rows)? {
                continue;
            }
            out.items.push(RollupItem {
                dataset: name.clone(),
                into: r.into.clone(),
                partition,
                timeframes: r.timeframes.clone(),
                file_count: files.len() as u64,
                rows,
                bytes: files.iter().map(|(_, f)| f.bytes).sum(),
                files,
                reason: format!("partition ended {} (newest row {})", rfc3339(end), rfc3339(reference)),
            });
        }
    }
    Ok(out)
}

pub fn execute(cfg: &Config, db: &mut Db, plan: &RollupPlan, progress: &dyn Progress) -> Result<RollupMetrics> {
    let started = Instant::now();
    let mut m = RollupMetrics::default();
    progress.set_length(plan.items.iter().map(|i| i.rows).sum());
    for item in &plan.items {
        // One partition that cannot be rolled up never stops the others.
        isolate::roll_up_isolating(cfg, db, item, &mut m);
        progress.inc(item.rows);
    }
    m.seconds = started.elapsed().as_secs_f64();
    Ok(m)
}

/// Per timeframe: the builder, its writer and what verification compares.
struct LaneSink<'a> {
    tf: String,
    builder: CandleBuilder,
    writer: PartitionSink<'a>,
    buf: Vec<Candle>,
    candles: u64,
    /// Distinct windows seen in the trades, counted without polars.
    windows: u64,
    last_window: Option<i64>,
}

struct RollupSink<'a> {
    ctx: &'a MergeCtx<'a>,
    /// The trades partition read (its rows are checked on the way).
    partition: &'a str,
    into: &'a DatasetConfig,
    r: &'a RollupConfig,
    /// The partition's period, in the trades' time unit.
    lo: i64,
    hi: i64,
    lanes: Vec<LaneSink<'a>>,
    trades: u64,
    amount_sum: f64,
}

impl RollupSink<'_> {
    fn flush(&mut self, force: bool) -> Result<()> {
        for lane in &mut self.lanes {
            if lane.buf.len() >= 8192 || (force && !lane.buf.is_empty()) {
                let b = candle_batch(self.into, &lane.buf)?;
                lane.writer.write(&b)?;
                lane.candles += lane.buf.len() as u64;
                lane.buf.clear();
            }
        }
        Ok(())
    }
}

impl Sink for RollupSink<'_> {
    fn emit(&mut self, batch: &RecordBatch, _prio: Option<ArrayRef>) -> Result<()> {
        let ts = self.ctx.ts_values(batch)?;
        let lo = ts.partition_point(|&t| t < self.lo);
        let hi = ts.partition_point(|&t| t < self.hi);
        if hi <= lo {
            return Ok(());
        }
        let b = batch.slice(lo, hi - lo);
        self.ctx.quality(|q| q.observe(self.partition, &b)).transpose()?;
        let ts: Vec<i64> = ts[lo..hi].iter().map(|t| t.saturating_mul(self.ctx.unit_ns)).collect();
        let col = |name: &str| -> Result<Float64Array> {
            let c = b.column_by_name(name).expect("validated rollup column");
            let c = arrow::compute::cast(c, &DataType::Float64).map_err(|e| Error::Invalid(e.to_string()))?;
            Ok(c.as_primitive::<Float64Type>().clone())
        };
        let (price, amount) = (col(&self.r.price)?, col(&self.r.amount)?);
        self.trades += ts.len() as u64;
        self.amount_sum += amount.values().iter().sum::<f64>();
        for lane in &mut self.lanes {
            let tf = lane.builder.tf_ns();
            for t in &ts {
                let w = t.div_euclid(tf);
                if lane.last_window != Some(w) {
                    lane.windows += 1;
                    lane.last_window = Some(w);
                }
            }
            lane.builder.push(&ts, price.values(), amount.values(), &mut lane.buf)?;
        }
        self.flush(false)
    }
}

/// Candles as a batch of the candle dataset's schema; columns it declares
/// beyond time, open, high, low, close and volume are left null.
fn candle_batch(into: &DatasetConfig, c: &[Candle]) -> Result<RecordBatch> {
    let schema = Arc::new(into.arrow_schema());
    let unit = parquet_io::unit_ns(into.time_unit());
    let f = |get: fn(&Candle) -> f64| Arc::new(Float64Array::from_iter_values(c.iter().map(get))) as ArrayRef;
    let cols = schema
        .fields()
        .iter()
        .map(|field| -> Result<ArrayRef> {
            let a: ArrayRef = match field.name().as_str() {
                n if n == into.time_column => {
                    let raw = Arc::new(arrow::array::Int64Array::from_iter_values(
                        c.iter().map(|x| x.ts.div_euclid(unit)),
                    )) as ArrayRef;
                    arrow::compute::cast(&raw, field.data_type()).map_err(|e| Error::Invalid(e.to_string()))?
                }
                "open" => f(|x| x.open),
                "high" => f(|x| x.high),
                "low" => f(|x| x.low),
                "close" => f(|x| x.close),
                "volume" => f(|x| x.volume),
                _ => arrow::array::new_null_array(field.data_type(), c.len()),
            };
            Ok(a)
        })
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(schema, cols).map_err(|e| Error::Invalid(e.to_string()))
}

/// One timeframe's candles as written, before they are cataloged.
struct Lane {
    tf: String,
    candles: u64,
    windows: u64,
    files: Vec<WrittenFile>,
}

/// What one partition's merge produced.
struct Rolled {
    lanes: Vec<Lane>,
    trades: u64,
    amount_sum: f64,
    duplicates_removed: u64,
}

fn roll_up(cfg: &Config, db: &mut Db, item: &RollupItem, m: &mut RollupMetrics) -> Result<()> {
    let ds = cfg.dataset(&item.dataset)?;
    let into = cfg.dataset(&item.into)?;
    let key = crate::layout::PartitionKey::of(ds, &item.partition);
    let (batch_rows, fan_in) = merge_shape(cfg.compaction.memory_limit.0 as usize);
    let ctx = MergeCtx::new(ds, batch_rows).with_quality(crate::quality::Checker::new(ds, &key.series, now_ns()));
    let rolled = build_candles(cfg, item, &ctx, into, key, fan_in)?;
    let checked = rolled
        .lanes
        .iter()
        .map(|l| verify(item, &l.tf, l.candles, l.windows, rolled.amount_sum, &l.files))
        .collect::<Result<Vec<_>>>();
    let volumes = match checked {
        Ok(v) => v,
        Err(e) => {
            // Nothing was cataloged: the candles simply go.
            for f in rolled.lanes.iter().flat_map(|l| &l.files) {
                let _ = std::fs::remove_file(&f.path);
            }
            return Err(e);
        }
    };
    commit(cfg, db, item, into, &rolled, &volumes, &ctx, m)?;
    m.partitions += 1;
    m.trades += rolled.trades;
    m.duplicates_removed += rolled.duplicates_removed;
    Ok(())
}

/// Merge the partition's trades (`key`, read by `ctx`, `fan_in` inputs a
/// pass) into each timeframe's candles and write them.
fn build_candles(
    cfg: &Config,
    item: &RollupItem,
    ctx: &MergeCtx,
    into: &DatasetConfig,
    key: crate::layout::PartitionKey,
    fan_in: usize,
) -> Result<Rolled> {
    let ds = ctx.ds;
    let r = ds.rollup.as_ref().expect("planned from a rollup dataset");
    let period = key.period.clone().unwrap_or_default();
    let (lo_ns, hi_ns) = ds.period_range(&period).unwrap_or((i64::MIN, i64::MAX));
    let inputs = inputs_of(cfg, item)?;
    let fixed = key.values;
    let stem = format!("rollup-{}-{period}", item.dataset);
    let scratch = crate::engine::Scratch::create(cfg.tmp_dir().join(format!(
        "rollup-{}-{}",
        std::process::id(),
        now_ns()
    )))?;
    let make = || -> Result<RollupSink> {
        let lanes = item
            .timeframes
            .iter()
            .map(|tf| {
                let mut fx = fixed.clone();
                fx.push(("timeframe".into(), tf.clone()));
                Ok(LaneSink {
                    tf: tf.clone(),
                    builder: CandleBuilder::new(timeframe_ns(tf).expect("validated timeframe")),
                    // Candles leave the builder sorted by time, one per window.
                    writer: PartitionSink::try_new(cfg, into, fx, &stem)?.sorted().replacing(),
                    buf: Vec::new(),
                    candles: 0,
                    windows: 0,
                    last_window: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(RollupSink {
            ctx,
            partition: &item.partition,
            into,
            r,
            lo: lo_ns.div_euclid(ctx.unit_ns),
            hi: hi_ns.div_euclid(ctx.unit_ns),
            lanes,
            trades: 0,
            amount_sum: 0.0,
        })
    };
    let mut totals = RewriteTotals::default();
    let opts = MergeOptions::new(ctx, scratch.path(), fan_in);
    let merged = merge_inputs(&opts, inputs, &mut totals, make, |s| {
        drop(s);
        Ok(())
    });
    drop(scratch);
    let (mut sink, _) = merged?;
    for lane in &mut sink.lanes {
        lane.builder.finish(&mut lane.buf);
    }
    sink.flush(true)?;
    let (trades, amount_sum) = (sink.trades, sink.amount_sum);
    let lanes = sink
        .lanes
        .into_iter()
        .map(|l| {
            Ok(Lane {
                tf: l.tf,
                candles: l.candles,
                windows: l.windows,
                files: l.writer.close()?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Rolled {
        lanes,
        trades,
        amount_sum,
        duplicates_removed: totals.duplicates_removed,
    })
}

/// The trades files of one rollup item, as merge inputs.
fn inputs_of(cfg: &Config, item: &RollupItem) -> Result<Vec<MergeInput>> {
    item.files
        .iter()
        .map(|(tier, f)| {
            Ok(MergeInput {
                path: cfg.tier_root(tier)?.join(&f.relpath),
                moved_to: None,
                filed: None,
                prio: cfg.keep_rule(cfg.dataset(&item.dataset)?).priority(f.arrival_ns),
                min_ts_ns: f.min_ts,
                max_ts_ns: f.max_ts,
                rows: f.rows,
            })
        })
        .collect()
}

/// Catalog the candles, record the rollup, its history event and the
/// quality findings of the trades read, in one transaction.
#[allow(clippy::too_many_arguments)]
fn commit(
    cfg: &Config,
    db: &mut Db,
    item: &RollupItem,
    into: &DatasetConfig,
    rolled: &Rolled,
    volumes: &[f64],
    ctx: &MergeCtx,
    m: &mut RollupMetrics,
) -> Result<()> {
    let dberr = db_err(&db.path);
    let (tier, root) = cfg.hot_tier();
    let tx = db.conn.unchecked_transaction().map_err(&dberr)?;
    for (lane, volume) in rolled.lanes.iter().zip(volumes) {
        for f in &lane.files {
            let e = catalog::scan::entry_for_written(&root, tier, &into.name, &into.time_column, f)?;
            catalog::upsert(&tx, &e).map_err(&dberr)?;
            m.files_written += 1;
            m.bytes_written += f.bytes;
        }
        tx.execute(
            "INSERT OR REPLACE INTO rollups (dataset, partition, timeframe, into_dataset, source_rows, trades,
                                             amount_sum, candles, volume_sum, done_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                item.dataset,
                item.partition,
                lane.tf,
                item.into,
                item.rows as i64,
                rolled.trades as i64,
                rolled.amount_sum,
                lane.candles as i64,
                volume,
                now_ns()
            ],
        )
        .map_err(&dberr)?;
        *m.candles.entry(lane.tf.clone()).or_default() += lane.candles;
    }
    catalog::record(
        &tx,
        &catalog::HistoryEvent {
            action: catalog::Action::Rollup,
            dataset: Some(&item.dataset),
            partition: Some(&item.partition),
            rows: Some(rolled.trades),
            bytes: Some(item.bytes),
            reason: Some(&format!(
                "{} into {} {}",
                item.reason,
                item.into,
                item.timeframes.join(",")
            )),
            ..Default::default()
        },
    )
    .map_err(&dberr)?;
    if let Some(mut found) = ctx.quality_findings() {
        // Only the partition it read whole (a duplicate may name its neighbour).
        found.retain(|p, _| *p == item.partition);
        found.entry(item.partition.clone()).or_default();
        let rows = std::collections::BTreeMap::from([(item.partition.clone(), rolled.trades)]);
        crate::quality::findings::record(
            &tx,
            &item.dataset,
            &found,
            &rows,
            crate::quality::findings::Origin::Read,
            &Default::default(),
        )
        .map_err(&dberr)?;
    }
    tx.commit()
        .map_err(&dberr)
        .map(|()| drop(crate::lake::after_change(cfg, &db.conn)))
}

/// Re-read the written candles of one timeframe; returns their volume sum.
fn verify(item: &RollupItem, tf: &str, candles: u64, windows: u64, amount: f64, files: &[WrittenFile]) -> Result<f64> {
    let (mut rows, mut volume) = (0u64, 0f64);
    for f in files {
        let (_, reader) = parquet_io::open_batches(&f.path, 64 * 1024)?;
        for b in reader {
            let b = b.map_err(Error::arrow(&f.path))?;
            rows += b.num_rows() as u64;
            let v = b
                .column_by_name("volume")
                .ok_or_else(|| Error::Invalid("no volume column".into()))?;
            volume += v.as_primitive::<Float64Type>().values().iter().sum::<f64>();
        }
    }
    let fail = |what: String| {
        Err(Error::Invalid(format!(
            "rollup of {} {} ({tf}) failed verification: {what}; nothing was recorded",
            item.dataset, item.partition
        )))
    };
    if rows != candles || rows != windows {
        return fail(format!(
            "{rows} candles read back, {candles} written, {windows} windows with trades"
        ));
    }
    if (volume - amount).abs() > 1e-9 * amount.abs().max(1.0) {
        return fail(format!("volume sum {volume} != amount sum {amount}"));
    }
    Ok(volume)
}
