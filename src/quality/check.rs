//! The streaming checker: every batch a rewrite writes passes through
//! [`Checker::observe`] once, in (time, key) order, per series.
//!
//! Owns the per-row checks (time bounds, prices, amounts, sides, candle
//! shape, grid), the sequence checks that need the row before (trade-id
//! regressions and gaps, price jumps, a candle series' spacing, crossed
//! book updates) and the tallies per partition: count, first time, one
//! example row. Memory is a few numbers per partition and a small spacing
//! histogram, never rows.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type};

use super::values::{ints, row_text, Columns, RowValues};
use super::{Finding, Kind};
use crate::config::{timeframe_ns, DataKind, DatasetConfig};
use crate::error::Result;

/// Distinct spacings kept per partition for the median: enough for any
/// real series, bounded for a pathological one.
const MAX_SPACINGS: usize = 256;

#[derive(Debug, Clone, Default)]
struct Part {
    findings: BTreeMap<Kind, Finding>,
    rows: u64,
    first: Option<(i64, String)>,
    spacing: HashMap<i64, u64>,
    largest_gap: i64,
    largest_jump: f64,
}

/// What the previous row of the series said.
#[derive(Debug, Clone, Default)]
struct Seq {
    id: Option<i64>,
    price: Option<f64>,
    ts: Option<i64>,
    /// Book: the update being read, its best bid and best ask so far, and
    /// whether it was already counted as crossed.
    update: Option<(i64, f64, f64, bool)>,
}

/// Tallies findings per partition of one series. Clone it to keep a mark
/// a restarted merge can go back to.
#[derive(Debug, Clone)]
pub struct Checker {
    ds: Arc<DatasetConfig>,
    kind: DataKind,
    cols: Columns,
    ts_col: usize,
    unit_ns: i64,
    /// `col=value/...` of the series, without the time partition.
    series: String,
    /// The series' candle width in ns, when it has one.
    timeframe: Option<i64>,
    future_ns: i64,
    earliest_ns: i64,
    parts: BTreeMap<String, Part>,
    /// The period `[start, end)` in ns last looked up, and its partition key.
    cur: Option<(i64, i64, String)>,
    seq: Seq,
    /// Where the rows observed now come from, when known.
    file: Option<String>,
}

impl Checker {
    /// A checker for one series of `ds`, or None when its checks are off.
    /// `now_ns` is the clock future rows are measured against.
    pub fn new(ds: &DatasetConfig, series: &str, now_ns: i64) -> Option<Checker> {
        if !ds.quality.enabled {
            return None;
        }
        let schema = ds.arrow_schema();
        let idx = |c: &str| schema.index_of(c).ok();
        // Only numeric columns are checked as numbers: a price kept as text is left alone.
        let num = |c: &str| idx(c).filter(|&i| schema.field(i).data_type().is_numeric());
        let int = |c: &str| idx(c).filter(|&i| schema.field(i).data_type().is_integer());
        let kind = ds.data_kind();
        let int_key = ds
            .key
            .iter()
            .find(|k| **k != ds.time_column)
            .and_then(|k| idx(k))
            .filter(|&i| matches!(schema.field(i).data_type(), DataType::Int64 | DataType::Int32));
        let cols = Columns {
            price: num("price"),
            amount: num("amount"),
            side: idx("side").filter(|&i| schema.field(i).data_type() == &DataType::Utf8),
            id: if kind == DataKind::Trades { int_key } else { None },
            ohlcv: match (num("open"), num("high"), num("low"), num("close"), num("volume")) {
                (Some(o), Some(h), Some(l), Some(c), Some(v)) => Some([o, h, l, c, v]),
                _ => None,
            },
            update_id: int("update_id"),
        };
        let timeframe = crate::layout::partition_values(series)
            .iter()
            .find(|(k, _)| k == "timeframe")
            .and_then(|(_, tf)| timeframe_ns(tf));
        Some(Checker {
            kind,
            cols,
            ts_col: schema.index_of(&ds.time_column).ok()?,
            unit_ns: crate::parquet_io::unit_ns(ds.time_unit()),
            series: series.to_string(),
            timeframe,
            future_ns: now_ns.saturating_add(ds.quality.future_tolerance.0.as_nanos() as i64),
            earliest_ns: crate::time::parse_time(&ds.quality.earliest).unwrap_or(i64::MIN),
            parts: BTreeMap::new(),
            cur: None,
            seq: Seq::default(),
            file: None,
            ds: Arc::new(ds.clone()),
        })
    }

    /// The partition key of a time (ns), e.g. `exchange=x/symbol=y/date=2024-01-02`.
    pub fn partition_of(&mut self, t: i64) -> String {
        if let Some((s, e, k)) = &self.cur {
            if *s <= t && t < *e {
                return k.clone();
            }
        }
        let period = self.ds.period_of(t);
        let tp = format!("{}={period}", self.ds.time_partition);
        let key = if self.series.is_empty() {
            tp
        } else {
            format!("{}/{tp}", self.series)
        };
        let (s, e) = self.ds.period_range(&period).unwrap_or((t, t.saturating_add(1)));
        self.cur = Some((s, e, key.clone()));
        key
    }

    fn add(&mut self, part: &str, kind: Kind, t: i64, batch: &RecordBatch, row: usize) {
        add_to(
            self.parts.entry(part.to_string()).or_default(),
            kind,
            t,
            (batch, row),
            self.file.as_deref(),
        );
    }

    /// Count row `row` of `batch` under `kind` (a repaired kind: a
    /// duplicate dropped, a row out of order or filed under another
    /// partition), in partition `part`, or the one its time says.
    pub fn note(&mut self, kind: Kind, part: Option<&str>, batch: &RecordBatch, row: usize, file: &std::path::Path) {
        let before = self.file.replace(file.display().to_string());
        let Some(t) = self.time_at(batch, row) else { return };
        let part = match part {
            Some(p) => p.to_string(),
            None => self.partition_of(t),
        };
        self.add(&part, kind, t, batch, row);
        self.file = before;
    }

    /// Where the rows observed now come from.
    pub fn file(&self) -> Option<&str> {
        self.file.as_deref()
    }

    /// Rows observed from now on come from `file` (None: not known here).
    pub fn set_file(&mut self, file: Option<&std::path::Path>) {
        self.file = file.map(|f| f.display().to_string());
    }

    fn time_at(&self, batch: &RecordBatch, row: usize) -> Option<i64> {
        let c = batch.column(self.ts_col);
        let c = cast(c, &DataType::Int64).ok()?;
        let v = c.as_primitive::<Int64Type>();
        (!v.is_null(row)).then(|| v.value(row).saturating_mul(self.unit_ns))
    }

    /// Forget the previous row: the next batch does not follow this one
    /// (another file, read on its own).
    pub fn break_sequence(&mut self) {
        self.seq = Seq::default();
    }

    /// Check the rows of `batch`, all of partition `part`, following the
    /// rows observed before. Returns each row's faults as a bit mask (see
    /// [`Kind::names_of`]) when any row has one. A batch the checks cannot
    /// read is passed over with a warning: a check never stops a rewrite.
    pub fn observe(&mut self, part: &str, batch: &RecordBatch) -> Result<Option<Vec<u32>>> {
        match self.observe_checked(part, batch) {
            Ok(f) => Ok(f),
            Err(e) => {
                tracing::warn!(partition = part, error = %e, "quality: rows not checked");
                Ok(None)
            }
        }
    }

    fn observe_checked(&mut self, part: &str, batch: &RecordBatch) -> Result<Option<Vec<u32>>> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(None);
        }
        let ts = ints(batch.column(self.ts_col))?;
        // Made on the first fault: most batches have none.
        let mut faults: Vec<u32> = Vec::new();
        // The partition's tallies, out of the map while the rows go by.
        let mut p = self.parts.remove(part).unwrap_or_default();
        p.rows += n as u64;
        if p.first.is_none() {
            p.first = Some((ts.value(0).saturating_mul(self.unit_ns), row_text(batch, 0)));
        }
        let rows = RowValues::of(&self.cols, batch)?;
        let file = self.file.clone();
        if !(self.kind == DataKind::Trades && self.trades_fast(&mut p, batch, ts.values(), &rows, &mut faults)) {
            for i in 0..n {
                let t = ts.value(i).saturating_mul(self.unit_ns);
                let mut f = self.row_faults(&rows, i, t);
                f |= self.sequence(&mut p, &rows, i, t, f);
                if f != 0 {
                    tally(&mut p, f, t, (batch, i), &mut faults, file.as_deref());
                }
            }
        }
        self.parts.insert(part.to_string(), p);
        Ok((!faults.is_empty()).then_some(faults))
    }

    /// The common case, trades without nulls: the same checks as
    /// [`row_faults`](Self::row_faults) and [`sequence`](Self::sequence) in
    /// one loop over plain slices. False when it does not apply.
    fn trades_fast(
        &mut self,
        p: &mut Part,
        batch: &RecordBatch,
        ts: &[i64],
        r: &RowValues,
        faults: &mut Vec<u32>,
    ) -> bool {
        let (Some(price), Some(amount)) = (&r.price, &r.amount) else {
            return false;
        };
        if price.null_count() + amount.null_count() > 0
            || r.id.as_ref().is_some_and(|a| a.null_count() > 0)
            || r.side.as_ref().is_some_and(|a| a.null_count() > 0)
        {
            return false;
        }
        let (price, amount, ids) = (price.values(), amount.values(), r.id.as_ref().map(|a| a.values()));
        let sides: Vec<&[u8]> = self.ds.quality.sides.iter().map(|s| s.as_bytes()).collect();
        let file = self.file.clone();
        let max_jump = self.ds.quality.max_jump;
        for i in 0..ts.len() {
            let t = ts[i].saturating_mul(self.unit_ns);
            let mut f = 0u32;
            if t > self.future_ns {
                f |= Kind::FutureTime.bit();
            } else if t < self.earliest_ns {
                f |= Kind::TooEarly.bit();
            }
            let pr = price[i];
            if !(pr > 0.0 && pr.is_finite()) {
                f |= Kind::BadPrice.bit();
            }
            if !(amount[i] > 0.0 && amount[i].is_finite()) {
                f |= Kind::BadAmount.bit();
            }
            if let Some(s) = &r.side {
                let v = s.value(i).as_bytes();
                if !sides.contains(&v) {
                    f |= Kind::BadSide.bit();
                }
            }
            let sound = f == 0;
            if let Some(ids) = ids {
                let id = ids[i];
                match self.seq.id {
                    Some(prev) if id <= prev => f |= Kind::IdRegression.bit(),
                    Some(prev) if id > prev + 1 => {
                        f |= Kind::IdGap.bit();
                        p.largest_gap = p.largest_gap.max(id - prev - 1);
                    }
                    _ => {}
                }
                self.seq.id = Some(id);
            }
            if sound {
                if let Some(prev) = self.seq.price {
                    let jump = (pr / prev - 1.0).abs();
                    if jump > max_jump {
                        f |= Kind::PriceJump.bit();
                        p.largest_jump = p.largest_jump.max(jump);
                    }
                }
                self.seq.price = Some(pr);
            }
            if f != 0 {
                tally(p, f, t, (batch, i), faults, file.as_deref());
            }
        }
        true
    }

    /// Faults of row `i` on its own.
    fn row_faults(&self, r: &RowValues, i: usize, t: i64) -> u32 {
        let mut f = 0;
        if t > self.future_ns {
            f |= Kind::FutureTime.bit();
        } else if t < self.earliest_ns {
            f |= Kind::TooEarly.bit();
        }
        let fin = |v: Option<f64>| v.filter(|x| x.is_finite());
        match self.kind {
            DataKind::Trades => {
                if !fin(r.price(i)).is_some_and(|p| p > 0.0) && self.cols.price.is_some() {
                    f |= Kind::BadPrice.bit();
                }
                if !fin(r.amount(i)).is_some_and(|a| a > 0.0) && self.cols.amount.is_some() {
                    f |= Kind::BadAmount.bit();
                }
                f |= self.side_fault(r, i);
            }
            DataKind::Book => {
                if fin(r.price(i)).is_none() && self.cols.price.is_some() {
                    f |= Kind::BadPrice.bit();
                }
                if !fin(r.amount(i)).is_some_and(|a| a >= 0.0) && self.cols.amount.is_some() {
                    f |= Kind::BadAmount.bit();
                }
                f |= self.side_fault(r, i);
            }
            DataKind::Candles => f |= self.candle_faults(r, i, t),
            DataKind::Other => {}
        }
        f
    }

    fn side_fault(&self, r: &RowValues, i: usize) -> u32 {
        match &r.side {
            Some(s) if s.is_null(i) || !self.ds.quality.sides.iter().any(|x| x == s.value(i)) => Kind::BadSide.bit(),
            _ => 0,
        }
    }

    fn candle_faults(&self, r: &RowValues, i: usize, t: i64) -> u32 {
        let Some(v) = &r.ohlcv else { return 0 };
        let vals: Vec<Option<f64>> = v.iter().map(|a| (!a.is_null(i)).then(|| a.value(i))).collect();
        let mut f = 0;
        if vals.iter().any(|x| !x.is_some_and(f64::is_finite)) {
            f |= Kind::NonFinite.bit();
        } else {
            let [o, h, l, c, vol] = [0, 1, 2, 3, 4].map(|k| vals[k].unwrap_or(0.0));
            if vol < 0.0 {
                f |= Kind::NegativeVolume.bit();
            }
            if h < l {
                f |= Kind::HighBelowLow.bit();
            }
            if h < o.max(c) {
                f |= Kind::HighBelowOpenClose.bit();
            }
            if l > o.min(c) {
                f |= Kind::LowAboveOpenClose.bit();
            }
        }
        if self.timeframe.is_some_and(|tf| t.rem_euclid(tf) != 0) {
            f |= Kind::OffGrid.bit();
        }
        f
    }

    /// Checks against the row before. Spacing follows every row with a
    /// plausible time, ids every row, prices and book updates only rows
    /// without faults of their own.
    fn sequence(&mut self, part: &mut Part, r: &RowValues, i: usize, t: i64, faults: u32) -> u32 {
        let implausible = Kind::FutureTime.bit() | Kind::TooEarly.bit();
        // Only a candle series' spacing is measured (against its timeframe).
        if faults & implausible == 0 && self.timeframe.is_some() && self.kind == DataKind::Candles {
            if let Some(d) = self.seq.ts.map(|prev| t - prev).filter(|d| *d > 0) {
                if part.spacing.len() < MAX_SPACINGS || part.spacing.contains_key(&d) {
                    *part.spacing.entry(d).or_default() += 1;
                }
            }
            self.seq.ts = Some(t);
        }
        match self.kind {
            DataKind::Trades if faults == 0 => self.trade_sequence(part, r, i),
            DataKind::Trades => self.id_sequence(part, r, i),
            DataKind::Book if faults == 0 => self.book_sequence(r, i),
            _ => 0,
        }
    }

    fn trade_sequence(&mut self, part: &mut Part, r: &RowValues, i: usize) -> u32 {
        let mut f = self.id_sequence(part, r, i);
        if let Some(p) = r.price(i) {
            if let Some(prev) = self.seq.price {
                let jump = (p / prev - 1.0).abs();
                if jump > self.ds.quality.max_jump {
                    f |= Kind::PriceJump.bit();
                    part.largest_jump = part.largest_jump.max(jump);
                }
            }
            self.seq.price = Some(p);
        }
        f
    }

    fn id_sequence(&mut self, part: &mut Part, r: &RowValues, i: usize) -> u32 {
        let mut f = 0;
        if let Some(ids) = &r.id {
            if !ids.is_null(i) {
                let id = ids.value(i);
                if let Some(prev) = self.seq.id {
                    if id <= prev {
                        f |= Kind::IdRegression.bit();
                    } else if id > prev + 1 {
                        f |= Kind::IdGap.bit();
                        part.largest_gap = part.largest_gap.max(id - prev - 1);
                    }
                }
                self.seq.id = Some(id);
            }
        }
        f
    }

    fn book_sequence(&mut self, r: &RowValues, i: usize) -> u32 {
        let (Some(ids), Some(side), Some(price)) = (&r.update_id, &r.side, r.price(i)) else {
            return 0;
        };
        if ids.is_null(i) || side.is_null(i) {
            return 0;
        }
        let id = ids.value(i);
        let mut u = match self.seq.update {
            Some(u) if u.0 == id => u,
            _ => (id, f64::NEG_INFINITY, f64::INFINITY, false),
        };
        match side.value(i) {
            "buy" | "bid" | "b" => u.1 = u.1.max(price),
            "sell" | "ask" | "a" | "s" => u.2 = u.2.min(price),
            _ => {}
        }
        let crossed = !u.3 && u.1 >= u.2;
        u.3 |= crossed;
        self.seq.update = Some(u);
        if crossed {
            Kind::CrossedBook.bit()
        } else {
            0
        }
    }

    /// The findings of every partition observed (an empty list for a clean
    /// one), with the series-wide ones (gaps, jumps, spacing) filled in.
    pub fn finish(&mut self) -> BTreeMap<String, Vec<Finding>> {
        let tf = self.timeframe.filter(|_| self.kind == DataKind::Candles);
        std::mem::take(&mut self.parts)
            .into_iter()
            .map(|(key, mut p)| {
                if let Some(f) = p.findings.get_mut(&Kind::IdGap) {
                    f.detail = Some(format!("largest gap {} ids", p.largest_gap));
                }
                if let Some(f) = p.findings.get_mut(&Kind::PriceJump) {
                    f.detail = Some(format!("largest jump {:.1} %", p.largest_jump * 100.0));
                }
                if let (Some(tf), Some(m), Some((t, ex))) = (tf, median(&p.spacing), p.first.clone()) {
                    if m != tf {
                        p.findings.insert(
                            Kind::Cadence,
                            Finding {
                                kind: Kind::Cadence,
                                rows: p.rows,
                                first_ts: t,
                                example: ex,
                                detail: Some(format!(
                                    "median spacing {}, declared timeframe {}",
                                    crate::time::human_ns(m),
                                    crate::time::human_ns(tf)
                                )),
                                file: None,
                            },
                        );
                    }
                }
                (key, p.findings.into_values().collect())
            })
            .collect()
    }
}

/// The faults with bits in `f` of row `i` (time `t`): each counted in `p`,
/// and the row's own faults (those that may be quarantined) noted in
/// `faults`, which is made on the first.
fn tally(p: &mut Part, f: u32, t: i64, (batch, i): (&RecordBatch, usize), faults: &mut Vec<u32>, file: Option<&str>) {
    const ROW_FAULTS: u32 = row_fault_mask();
    for k in Kind::ALL.iter().filter(|k| f & k.bit() != 0) {
        add_to(p, *k, t, (batch, i), file);
    }
    if f & ROW_FAULTS != 0 {
        faults.resize(batch.num_rows(), 0);
        faults[i] = f & ROW_FAULTS;
    }
}

const fn row_fault_mask() -> u32 {
    let mut m = 0;
    let mut i = 0;
    while i < Kind::ALL.len() {
        if Kind::ALL[i].is_row_fault() {
            m |= Kind::ALL[i].bit();
        }
        i += 1;
    }
    m
}

/// Count row `row` of `batch` under `kind` in partition `p`.
fn add_to(p: &mut Part, kind: Kind, t: i64, (batch, row): (&RecordBatch, usize), file: Option<&str>) {
    let f = p.findings.entry(kind).or_insert_with(|| Finding {
        kind,
        rows: 0,
        first_ts: t,
        example: row_text(batch, row),
        detail: None,
        file: file.map(str::to_string),
    });
    f.rows += 1;
    if t < f.first_ts {
        f.first_ts = t;
        f.example = row_text(batch, row);
        f.file = file.map(str::to_string);
    }
}

fn median(h: &HashMap<i64, u64>) -> Option<i64> {
    let total: u64 = h.values().sum();
    let mut keys: Vec<_> = h.iter().collect();
    keys.sort();
    let mut seen = 0;
    for (d, n) in keys {
        seen += n;
        if seen * 2 >= total {
            return Some(*d);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ColumnType, Config};
    use arrow::array::{Float64Array, Int64Array, StringArray, TimestampMillisecondArray};
    use std::path::Path;

    fn dataset(name: &str) -> DatasetConfig {
        let cfg =
            Config::from_str_with_env(crate::config::DEFAULT_CONFIG, "default", Path::new("/tmp"), Vec::new()).unwrap();
        cfg.datasets[name].clone()
    }

    const T: i64 = 1_704_153_600_000;

    #[test]
    fn a_book_with_bid_and_ask_sides_is_fine() {
        let ds = dataset("book");
        let mut q = Checker::new(&ds, "exchange=x/symbol=B", T * 1_000_000).unwrap();
        let b = RecordBatch::try_new(
            Arc::new(ds.arrow_schema()),
            vec![
                Arc::new(TimestampMillisecondArray::from(vec![T, T]).with_timezone("UTC")),
                Arc::new(Int64Array::from(vec![1, 1])),
                Arc::new(StringArray::from(vec!["bid", "ask"])),
                Arc::new(Float64Array::from(vec![100.0, 101.0])),
                Arc::new(Float64Array::from(vec![1.0, 2.0])),
            ],
        )
        .unwrap();
        assert_eq!(q.observe("p", &b).unwrap(), None);
        assert!(q.finish()["p"].is_empty());
    }

    #[test]
    fn a_price_kept_as_text_is_not_checked_and_stops_nothing() {
        let mut ds = dataset("trades");
        ds.columns.iter_mut().find(|c| c.name == "price").unwrap().ty = ColumnType::Utf8;
        let mut q = Checker::new(&ds, "exchange=x/symbol=T", T * 1_000_000).unwrap();
        let b = RecordBatch::try_new(
            Arc::new(ds.arrow_schema()),
            vec![
                Arc::new(TimestampMillisecondArray::from(vec![T, T + 1]).with_timezone("UTC")),
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec!["n/a", "100.5"])),
                Arc::new(Float64Array::from(vec![1.0, 2.0])),
                Arc::new(StringArray::from(vec!["buy", "sell"])),
            ],
        )
        .unwrap();
        assert_eq!(q.observe("p", &b).unwrap(), None);
        assert!(q.finish()["p"].is_empty());
    }
}
