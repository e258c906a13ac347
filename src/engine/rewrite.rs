//! The journaled rewrite: what every operation that replaces files uses.
//!
//! Owns one series' rewrite from start to end: record the inputs in the
//! journal (with their identity), merge them through a sink into new files
//! (temporary name, fsync, rename without replacing, fsync the folder),
//! verify the rows, swap the catalog rows in one transaction, then retire
//! the inputs that are still the files read (pinned ones to the trash). A
//! failure rolls back what this attempt wrote; [`rewrite_isolating`] turns
//! a bad input into a quarantine and a retry, and anything else into a
//! skipped series, so one file never stops a run. Memory is bounded by the
//! budget each caller gives ([`merge_shape`]).

use crate::catalog::{self, Action};
use crate::config::Config;
use crate::error::{Error, Failure, Result};
use crate::failpoint;
use crate::progress::Progress;
use crate::quality;
use crate::state::{db_err, Db};

use serde::Serialize;

use super::journal::{self, NewEntry, State};
use super::merge::{self, merge, overlap_depth, MergeCtx, MergeError, MergeInput, MergeStats, Sink};
use super::scratch::Scratch;
use super::series::SeriesPlan;
use super::sink::{self, PartitionWriter, SpillWriter};
use super::sort;

/// Rough bytes one open input costs: a decoded batch, its row-format keys
/// and the reader's page buffers. Used to size batches and fan-in.
const BYTES_PER_ROW_ESTIMATE: usize = 96;

/// Rewrite one series so that nothing in it can stop the run: a series that
/// does not fit on its root is skipped; an input holding bad data is
/// quarantined and the series retried without it; any other failure skips
/// the series (its inputs stay, the next run retries). Returns the totals
/// when it was rewritten, and every failure met.
pub(crate) fn rewrite_isolating(
    cfg: &Config,
    db: &Db,
    sp: &SeriesPlan,
    how: &Rewrite,
    budget: usize,
    progress: &dyn Progress,
    step: &str,
) -> (Option<RewriteTotals>, Vec<Failure>) {
    let mut failures = Vec::new();
    let mut sp = std::borrow::Cow::Borrowed(sp);
    let what = format!("{} {} [{}]", sp.dataset, sp.series, sp.tier);
    loop {
        if let Err(e) = check_room(cfg, how.out_tier, sp.inputs.iter().map(|f| f.bytes).sum()) {
            tracing::warn!(series = %what, error = %e, "skipped: not enough room");
            failures.push(Failure::new(step, &what, &e, "skipped"));
            return (None, failures);
        }
        let e = match rewrite_series(cfg, db, &sp, how, budget, progress) {
            Ok((t, left)) => {
                // Committed: what could not be retired is deferred, not a failed run.
                failures.extend(left.map(|d| d.failure(step)));
                return (Some(t), failures);
            }
            Err(e) => e,
        };
        let root = cfg.tier_root(&sp.tier).unwrap_or_default();
        let culprit = e
            .bad_file()
            .and_then(|p| sp.inputs.iter().position(|f| root.join(&f.relpath) == p));
        let Some(i) = culprit else {
            tracing::warn!(series = %what, error = %e, "series skipped; retried next run");
            failures.push(Failure::new(step, &what, &e, "skipped"));
            return (None, failures);
        };
        let f = &sp.inputs[i];
        let from = root.join(&f.relpath);
        let reason = e.to_string();
        let q = catalog::Quarantine {
            tier: &sp.tier,
            relpath: &f.relpath,
            from: &from,
            dataset: Some(&sp.dataset),
            partition: Some(&f.partition),
            bytes: f.bytes,
        };
        if let Err(qe) = super::quarantine::quarantine(cfg, &db.conn, &q, &reason) {
            failures.push(Failure::new(step, from.display().to_string(), &e, "skipped"));
            tracing::warn!(path = %from.display(), error = %qe, "bad input could not be quarantined; series skipped");
            return (None, failures);
        }
        failures.push(Failure::quarantined(step, from.display().to_string(), &reason));
        let rest = sp.to_mut();
        let gone = rest.inputs.remove(i);
        rest.forget_input(&gone);
        if rest.inputs.is_empty() {
            return (None, failures);
        }
    }
}

/// Refuse a rewrite that would not fit: about its input bytes plus a margin
/// must be free on the output root (a store has no such limit here).
pub(crate) fn check_room(cfg: &Config, out_tier: &str, bytes: u64) -> Result<()> {
    const MARGIN: u64 = 16 << 20;
    let root = cfg.tier_root(out_tier)?;
    if crate::store::is_remote(&root) {
        return Ok(());
    }
    let Some((free, _)) = crate::fsutil::root_space(cfg, &root) else {
        return Ok(());
    };
    let needed = bytes + bytes / 10 + MARGIN;
    if free < needed {
        return Err(Error::NoSpace {
            root,
            needed: crate::config::units::human_bytes(needed),
            available: crate::config::units::human_bytes(free),
        });
    }
    Ok(())
}

/// What rewrites did, summed over series: the figures compaction and tier
/// moves report alike.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct RewriteTotals {
    pub partitions_rewritten: u64,
    pub files_in: u64,
    pub files_out: u64,
    pub rows_in: u64,
    pub rows_out: u64,
    pub duplicates_removed: u64,
    /// Rows left out because they expired (retention `trim`).
    pub rows_trimmed: u64,
    /// Rows with a fault written to the quarantine instead (`quality.on_bad_rows`).
    pub rows_quarantined: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Inputs that were pinned and went to the trash instead of being deleted.
    pub pinned_to_trash: u64,
    /// Inputs a collector replaced in place after they were read: kept, rescanned next run.
    pub replaced_kept: u64,
    /// Sorted runs made for inputs that were not sorted.
    pub sorted_runs: u64,
    /// Extra merge rounds because too many inputs overlapped for one pass.
    pub merge_rounds: u64,
}

impl std::ops::AddAssign for RewriteTotals {
    fn add_assign(&mut self, o: Self) {
        self.partitions_rewritten += o.partitions_rewritten;
        self.files_in += o.files_in;
        self.files_out += o.files_out;
        self.rows_in += o.rows_in;
        self.rows_out += o.rows_out;
        self.duplicates_removed += o.duplicates_removed;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.pinned_to_trash += o.pinned_to_trash;
        self.replaced_kept += o.replaced_kept;
        self.sorted_runs += o.sorted_runs;
        self.merge_rounds += o.merge_rounds;
        self.rows_trimmed += o.rows_trimmed;
        self.rows_quarantined += o.rows_quarantined;
    }
}

/// What kind of rewrite, and where its outputs go.
pub struct Rewrite<'a> {
    /// Journal kind and history action: `compact`, `tier`.
    pub kind: Action,
    pub out_tier: &'a str,
    /// Re-read the outputs and compare a checksum of their key columns with
    /// the rows that were written (tier moves, where the source then goes).
    pub verify_keys: bool,
    /// Rows older than this (ns) are left out: a retention trim.
    pub drop_before_ns: Option<i64>,
}

impl<'a> Rewrite<'a> {
    /// A rewrite whose outputs are re-read and checked by key checksum
    /// before the source goes (tier moves, trims).
    pub fn verified(kind: Action, out_tier: &'a str, drop_before_ns: Option<i64>) -> Self {
        Rewrite {
            kind,
            out_tier,
            verify_keys: true,
            drop_before_ns,
        }
    }

    pub fn compact(tier: &'a str) -> Self {
        Rewrite {
            kind: Action::Compact,
            out_tier: tier,
            verify_keys: false,
            drop_before_ns: None,
        }
    }
}

/// Rewrite one series (or some partitions of it) through the journal.
/// Once the swap committed, the rewrite is done: an input that cannot be
/// retired leaves the journal deferred (returned), for a later run.
pub(crate) fn rewrite_series(
    cfg: &Config,
    db: &Db,
    sp: &SeriesPlan,
    how: &Rewrite,
    budget: usize,
    progress: &dyn Progress,
) -> Result<(RewriteTotals, Option<super::deferred::Deferred>)> {
    let journal_inputs: Vec<(String, u64, u64)> =
        sp.inputs.iter().map(|f| (f.relpath.clone(), f.rows, f.bytes)).collect();
    let jid = journal::begin(
        cfg,
        &db.conn,
        &NewEntry {
            kind: how.kind,
            dataset: &sp.dataset,
            tier: &sp.tier,
            out_tier: how.out_tier,
            series: &sp.series,
            inputs: &journal_inputs,
        },
    )?;
    failpoint::hit("rewrite:after-journal");
    // Spill runs go with the guard, whichever way this ends (a crash leaves
    // them to recovery).
    let scratch = Scratch::at(journal::scratch_dir(cfg, jid));
    let result = rewrite(cfg, db, sp, how, jid, scratch.path(), budget, progress);
    if result.is_err() {
        // Leave nothing behind: outputs of this attempt go, inputs stay.
        let _ = journal::roll_back(cfg, &db.conn, jid, how.out_tier);
    }
    let Written {
        finished,
        findings,
        mut totals,
    } = result?;
    let mut m = std::mem::take(&mut totals);
    let outputs = &finished.outputs;

    swap(cfg, db, sp, how, jid, &finished, findings.as_ref())?;
    let touched: Vec<(String, String)> = sp
        .inputs
        .iter()
        .map(|f| (sp.tier.clone(), f.relpath.clone()))
        .chain(outputs.iter().map(|o| (how.out_tier.to_string(), o.relpath.clone())))
        .collect();
    crate::lake::after_change_of(cfg, &db.conn, Some(&touched));
    failpoint::hit("rewrite:after-commit");
    let (retired, left) = journal::finish(cfg, &db.conn, jid, &sp.tier, how.out_tier)?;
    m.pinned_to_trash = retired.trashed;
    m.replaced_kept = retired.replaced;
    drop(scratch);
    m.partitions_rewritten = {
        let mut parts: std::collections::BTreeSet<&str> = sp.partitions.iter().map(|p| p.partition.as_str()).collect();
        parts.extend(outputs.iter().map(|o| o.partition.as_str()));
        parts.len() as u64
    };
    m.files_in = sp.inputs.len() as u64;
    m.files_out = outputs.len() as u64;
    m.bytes_in = sp.inputs.iter().map(|f| f.bytes).sum();
    m.bytes_out = outputs.iter().map(|o| o.file.bytes).sum();
    Ok((m, left))
}

/// The swap: inputs out of the catalog, outputs in, their history and the
/// journal's commit, in one transaction.
fn swap(
    cfg: &Config,
    db: &Db,
    sp: &SeriesPlan,
    how: &Rewrite,
    jid: i64,
    finished: &sink::Finished,
    findings: Option<&Findings>,
) -> Result<()> {
    let dberr = db_err(&db.path);
    failpoint::hit("rewrite:before-commit");
    let tx = db.conn.unchecked_transaction().map_err(&dberr)?;
    for f in &sp.inputs {
        catalog::remove(&tx, &sp.tier, &f.relpath).map_err(&dberr)?;
    }
    record_outputs(&tx, cfg, sp, how, finished, findings)?;
    for p in &sp.partitions {
        catalog::record(
            &tx,
            &catalog::HistoryEvent {
                action: how.kind,
                dataset: Some(&sp.dataset),
                partition: Some(&p.partition),
                rows: Some(p.rows),
                bytes: Some(p.bytes),
                reason: Some(&p.reasons.join("; ")),
                ..Default::default()
            },
        )
        .map_err(&dberr)?;
    }
    journal::set_state(&tx, jid, State::Committed).map_err(&dberr)?;
    tx.commit().map_err(&dberr)?;
    Ok(())
}

/// Findings per partition key.
type Findings = std::collections::BTreeMap<String, Vec<quality::Finding>>;

/// The catalog side of the swap, in the rewrite's transaction: each output
/// with its coverage buckets, the findings of the partitions written, and
/// the file of quarantined rows.
fn record_outputs(
    tx: &rusqlite::Connection,
    cfg: &Config,
    sp: &SeriesPlan,
    how: &Rewrite,
    finished: &sink::Finished,
    findings: Option<&Findings>,
) -> Result<()> {
    let ds = cfg.dataset(&sp.dataset)?;
    let dberr = db_err(std::path::Path::new("state"));
    let outputs = &finished.outputs;
    let out_root = cfg.tier_root(how.out_tier)?;
    let mut rows_by_partition = std::collections::BTreeMap::new();
    let mut file_by_partition = std::collections::BTreeMap::new();
    // The outputs hold rows of every input: they arrived no later than the
    // latest input (a fresh mtime would make them outrank later arrivals).
    let arrival = sp.inputs.iter().map(|f| f.arrival_ns).max();
    for o in outputs {
        let mut entry =
            catalog::scan::entry_for_written(&out_root, how.out_tier, &sp.dataset, &ds.time_column, &o.file)?;
        entry.arrival_ns = arrival.unwrap_or(entry.arrival_ns);
        catalog::upsert(tx, &entry).map_err(&dberr)?;
        crate::coverage::record(tx, &entry, crate::coverage::cadence_ns(ds, &sp.series), &o.buckets).map_err(&dberr)?;
        *rows_by_partition.entry(o.partition.clone()).or_insert(0u64) += o.file.rows;
        file_by_partition
            .entry(o.partition.clone())
            .or_insert_with(|| entry.relpath.clone());
    }
    if let Some(found) = findings {
        quality::findings::record(
            tx,
            &sp.dataset,
            found,
            &rows_by_partition,
            quality::findings::Origin::Rewrite,
            &file_by_partition,
        )
        .map_err(&dberr)?;
    }
    if let Some((n, file)) = &finished.quarantined {
        let path = file.path.to_string_lossy();
        catalog::record(
            tx,
            &catalog::HistoryEvent {
                action: Action::Quarantine,
                dataset: Some(&sp.dataset),
                path: Some(&path),
                rows: Some(*n),
                bytes: Some(file.bytes),
                reason: Some("rows with a fault (quality.on_bad_rows = \"quarantine\")"),
                ..Default::default()
            },
        )
        .map_err(&dberr)?;
    }
    Ok(())
}

/// What [`rewrite`] wrote and saw.
struct Written {
    finished: sink::Finished,
    /// Findings per partition, when the dataset's checks run.
    findings: Option<Findings>,
    totals: RewriteTotals,
}

/// Merge the series' inputs into partition files; returns the outputs.
#[allow(clippy::too_many_arguments)]
fn rewrite(
    cfg: &Config,
    db: &Db,
    sp: &SeriesPlan,
    how: &Rewrite,
    jid: i64,
    scratch: &std::path::Path,
    budget: usize,
    progress: &dyn Progress,
) -> Result<Written> {
    let ds = cfg.dataset(&sp.dataset)?;
    let out = &cfg.tiers[how.out_tier];
    let root = cfg.tier_root(&sp.tier)?;
    let out_root = cfg.tier_root(how.out_tier)?;
    let (batch_rows, fan_in) = merge_shape(budget);
    let ctx = MergeCtx::new(ds, batch_rows).with_quality(quality::Checker::new(ds, &sp.series, crate::time::now_ns()));
    let keep = cfg.keep_rule(ds);
    let inputs: Vec<MergeInput> = sp
        .inputs
        .iter()
        .map(|f| MergeInput {
            path: root.join(&f.relpath),
            prio: keep.priority(f.arrival_ns),
            min_ts_ns: f.min_ts,
            max_ts_ns: f.max_ts,
            rows: f.rows,
            moved_to: None,
            filed: filed(ds, &f.partition),
        })
        .collect();
    let rows_expected: u64 = inputs.iter().map(|i| i.rows).sum();
    let mut m = RewriteTotals {
        rows_in: rows_expected,
        ..Default::default()
    };
    let on_rows = |n: u64| progress.inc(n);
    std::fs::create_dir_all(scratch).map_err(Error::io("create folder", scratch))?;

    let row_group_memory = budget / 2;
    let fixed = crate::layout::partition_values(&sp.series);
    let make = || {
        let w = PartitionWriter::new(
            &ctx,
            out_root.clone(),
            fixed.clone(),
            out.zstd_level,
            out.target_file_size.0,
            cfg.compaction.row_group_rows,
            row_group_memory,
            &db.conn,
            jid,
        );
        let cut = how
            .drop_before_ns
            .map(|t| t.saturating_add(ctx.unit_ns - 1).div_euclid(ctx.unit_ns));
        let w = w.drop_before(cut).quarantine_rows(&cfg.quarantine_dir());
        Ok(if how.verify_keys { w.track_keys() } else { w })
    };
    let opts = MergeOptions::new(&ctx, scratch, fan_in).on_rows(&on_rows);
    let (writer, stats) = merge_inputs(&opts, inputs, &mut m, make, |w| w.abort())?;
    let written_keys = writer.key_checksum;
    m.rows_trimmed = writer.rows_dropped;
    let finished = writer.finish()?;
    let outputs = &finished.outputs;
    m.rows_quarantined = finished.quarantined.as_ref().map_or(0, |(n, _)| *n);
    m.rows_out = outputs.iter().map(|o| o.file.rows).sum();
    verify(&ctx, sp, how, outputs, written_keys, &m, stats.rows_out)?;
    Ok(Written {
        findings: ctx.quality_findings(),
        finished,
        totals: m,
    })
}

/// The written files hold exactly the rows merged: their keys' checksum
/// matches (when asked), and every input row is written once or counted as
/// a duplicate, trimmed or quarantined.
fn verify(
    ctx: &MergeCtx,
    sp: &SeriesPlan,
    how: &Rewrite,
    outputs: &[sink::Output],
    written_keys: u64,
    m: &RewriteTotals,
    merged_out: u64,
) -> Result<()> {
    if how.verify_keys {
        let mut reread = 0u64;
        for o in outputs {
            reread = reread.wrapping_add(merge::file_key_checksum(ctx, &o.file.path)?);
        }
        if reread != written_keys {
            return Err(Error::Invalid(format!(
                "{} of {} {}: key checksum of the written files differs from the rows merged; rolled back",
                how.kind, sp.dataset, sp.series
            )));
        }
    }
    // Every input row is written once, or counted as a duplicate, trimmed or quarantined.
    let set_aside = m.rows_trimmed + m.rows_quarantined;
    if m.rows_out + m.duplicates_removed + set_aside != m.rows_in || merged_out != m.rows_out + set_aside {
        return Err(Error::Invalid(format!(
            "{} of {} {}: {} rows out + {} duplicates + {} trimmed + {} quarantined != {} rows in (inputs changed since the last scan?); rolled back",
            how.kind, sp.dataset, sp.series, m.rows_out, m.duplicates_removed, m.rows_trimmed, m.rows_quarantined, m.rows_in
        )));
    }
    Ok(())
}

/// The partition a source file is filed under, for the outside-partition check.
fn filed(ds: &crate::config::DatasetConfig, partition: &str) -> Option<merge::Filed> {
    let (start_ns, end_ns) = crate::layout::PartitionKey::of(ds, partition).range(ds)?;
    Some(merge::Filed {
        partition: partition.into(),
        start_ns,
        end_ns,
    })
}

/// Batch rows and fan-in for a merge within `budget` bytes: half the budget
/// for open inputs, half for what the sink builds.
pub(crate) fn merge_shape(budget: usize) -> (usize, usize) {
    let batch_rows = (budget / 64 / BYTES_PER_ROW_ESTIMATE).clamp(4096, 64 * 1024);
    let per_input = batch_rows * BYTES_PER_ROW_ESTIMATE * 2;
    (batch_rows, (budget / 2 / per_input).max(2))
}

/// Merge any number of sorted-or-not inputs into one sink: when more than
/// `fan_in` overlap, they are first merged in rounds into spill files under
/// `scratch`. Duplicates removed are added to `m`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn merge_inputs<S: Sink>(
    opts: &MergeOptions,
    mut inputs: Vec<MergeInput>,
    m: &mut RewriteTotals,
    make: impl FnMut() -> Result<S>,
    abort: impl FnMut(S) -> Result<()>,
) -> Result<(S, MergeStats)> {
    let (ctx, scratch, fan_in, on_rows) = (opts.ctx, opts.scratch, opts.fan_in, opts.on_rows);
    let no_progress = |_: u64| {};
    let mut spill_seq = 0;
    while overlap_depth(&inputs) > fan_in {
        inputs.sort_by_key(|i| i.min_ts_ns);
        let mut next = Vec::new();
        for chunk in inputs.chunks(fan_in) {
            let mut chunk = chunk.to_vec();
            spill_seq += 1;
            let path = scratch.join(format!("round-{spill_seq}.parquet"));
            let (w, stats) = merge_sorting(
                ctx,
                &mut chunk,
                scratch,
                m,
                &no_progress,
                || SpillWriter::try_new(ctx, &path),
                |_| Ok(()),
            )?;
            m.duplicates_removed += stats.duplicates;
            next.push(w.close()?);
        }
        inputs = next;
        m.merge_rounds += 1;
    }
    let (sink, stats) = merge_sorting(ctx, &mut inputs, scratch, m, on_rows, make, abort)?;
    m.duplicates_removed += stats.duplicates;
    Ok((sink, stats))
}

/// How one merge runs: its context, the folder its spill runs go to, how
/// many inputs it opens at once (from [`merge_shape`]), and who hears how
/// many rows went by.
pub(crate) struct MergeOptions<'a> {
    ctx: &'a MergeCtx<'a>,
    scratch: &'a std::path::Path,
    fan_in: usize,
    on_rows: &'a dyn Fn(u64),
}

impl<'a> MergeOptions<'a> {
    pub(crate) fn new(ctx: &'a MergeCtx<'a>, scratch: &'a std::path::Path, fan_in: usize) -> Self {
        MergeOptions {
            ctx,
            scratch,
            fan_in,
            on_rows: &|_| {},
        }
    }

    /// Call `f` with the rows of each merged batch (progress).
    pub(crate) fn on_rows(mut self, f: &'a dyn Fn(u64)) -> Self {
        self.on_rows = f;
        self
    }
}

/// Merge into a fresh sink; when an input turns out unsorted, throw the sink
/// away, sort that input into runs and start again.
fn merge_sorting<S: Sink>(
    ctx: &MergeCtx,
    inputs: &mut Vec<MergeInput>,
    scratch: &std::path::Path,
    m: &mut RewriteTotals,
    on_rows: &dyn Fn(u64),
    mut make: impl FnMut() -> Result<S>,
    mut abort: impl FnMut(S) -> Result<()>,
) -> Result<(S, MergeStats)> {
    let run_rows = (ctx.batch_rows * 16).max(64 * 1024);
    loop {
        let mut sink = make()?;
        // A restart must not count what the aborted attempt saw.
        let mark = ctx.quality_mark();
        match merge(ctx, inputs, &mut sink, on_rows) {
            Ok(stats) => return Ok((sink, stats)),
            Err(MergeError::Unsorted(i)) => {
                abort(sink)?;
                ctx.quality_restore(mark);
                tracing::info!(input = %inputs[i].path.display(), "input is not sorted; sorting it into runs");
                let tag = format!("sort{}", m.sorted_runs);
                let runs = sort::sort_into_runs(ctx, &inputs[i], scratch, &tag, run_rows)?;
                m.sorted_runs += runs.len() as u64;
                inputs.splice(i..=i, runs);
            }
            Err(MergeError::Other(e)) => {
                let _ = abort(sink);
                return Err(e);
            }
        }
    }
}

/// Peak resident set size of this process, from /proc (0 where unavailable).
pub fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}
