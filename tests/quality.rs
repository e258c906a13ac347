//! Data quality: every kind of finding from crafted files, named with its
//! dataset, partition and count; quarantined rows accounted for; the
//! Freqtrade "8m file of 1m candles"; and the coverage index answering
//! with no data file left to read.

mod common;

use std::collections::BTreeMap;

use common::{py, Sandbox};
use serde_json::Value;

/// Write a Parquet file with pyarrow from a Python dict literal of columns;
/// `ts` holds milliseconds and becomes `timestamp[ms]`.
fn write(path: &std::path::Path, columns: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    py(
        "import pyarrow as pa, pyarrow.parquet as pq, sys\n\
         cols = eval(sys.argv[2])\n\
         t = {k: (pa.array(v, pa.timestamp('ms')) if k == 'ts' else pa.array(v, pa.int64()) if k in ('trade_id', 'update_id') else pa.array(v)) for k, v in cols.items()}\n\
         pq.write_table(pa.table(t), sys.argv[1])",
        &[&path.display().to_string(), columns],
    );
}

/// `quality --json` as (partition key, kind) → the finding.
fn findings(s: &Sandbox, dataset: &str) -> (Value, BTreeMap<(String, String), Value>) {
    let r = s.json(&["quality", "--dataset", dataset]);
    let mut by = BTreeMap::new();
    for f in r["findings"].as_array().unwrap() {
        assert_eq!(f["dataset"], dataset);
        let part: Vec<String> = f["partition"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
            .collect();
        by.insert((part.join("/"), f["kind"].as_str().unwrap().to_string()), f.clone());
    }
    (r, by)
}

fn rows(by: &BTreeMap<(String, String), Value>, part: &str, kind: &str) -> u64 {
    by.get(&(part.to_string(), kind.to_string())).unwrap_or_else(|| {
        panic!(
            "no {kind} finding in {part}; found: {:?}",
            by.keys().collect::<Vec<_>>()
        )
    })["rows"]
        .as_u64()
        .unwrap()
}

const DAY: i64 = 1_704_153_600_000; // 2024-01-02T00:00:00Z in ms

/// Trades of one series that trip every trade check once, in two files
/// (the second repeats a row) plus one written out of order.
fn craft_trades(s: &Sandbox) {
    let dir = s.hot().join("trades/exchange=x/symbol=T/date=2024-01-02");
    let t = |sec: i64| DAY + sec * 1000;
    write(
        &dir.join("a.parquet"),
        &format!(
            "{{'ts': {:?}, 'trade_id': [1, 2, 3, 4, 5, 6, 7, 17, 16, 17, 18], \
              'price': [100.0, 100.0, -1.0, float('nan'), 100.0, 100.0, 101.0, 101.0, 101.0, 150.0, 150.0], \
              'amount': [1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], \
              'side': ['buy', 'buy', 'buy', 'sell', 'sell', 'hold', 'buy', 'buy', 'buy', 'buy', 'sell']}}",
            (0..11).map(t).collect::<Vec<_>>()
        ),
    );
    // The last row again (a duplicate), and two rows in the wrong order.
    write(
        &dir.join("b.parquet"),
        &format!(
            "{{'ts': [{}, {}, {}], 'trade_id': [20, 19, 18], 'price': [150.0, 150.0, 150.0], \
              'amount': [1.0, 1.0, 1.0], 'side': ['buy', 'buy', 'sell']}}",
            t(12),
            t(11),
            t(10)
        ),
    );
    // Another series: a row from 2005, one of today, one from 2100, all filed under 2024-01-02.
    write(
        &s.hot().join("trades/exchange=x/symbol=U/date=2024-01-02/a.parquet"),
        &format!(
            "{{'ts': [1104537600000, {}, 4102444800000], 'trade_id': [1, 2, 3], 'price': [100.0, 100.0, 100.0], \
              'amount': [1.0, 1.0, 1.0], 'side': ['buy', 'sell', 'buy']}}",
            t(5)
        ),
    );
}

fn compact(s: &Sandbox) -> Value {
    serde_json::from_str(&s.settled(&["compact", "--json"])).unwrap()
}

fn scan(s: &Sandbox) {
    s.settled(&["scan"]);
}

#[test]
fn every_trade_check_is_named_with_its_partition_and_count() {
    let s = Sandbox::new();
    craft_trades(&s);
    scan(&s);
    let m = compact(&s);
    assert_eq!(m["duplicates_removed"], 1, "{m}");
    let (r, by) = findings(&s, "trades");
    let t = "exchange=x/symbol=T/date=2024-01-02";
    assert_eq!(rows(&by, t, "bad_price"), 2);
    assert_eq!(rows(&by, t, "bad_amount"), 1);
    assert_eq!(rows(&by, t, "bad_side"), 1);
    assert_eq!(rows(&by, t, "id_regression"), 1);
    assert_eq!(rows(&by, t, "id_gap"), 1);
    assert_eq!(by[&(t.into(), "id_gap".into())]["detail"], "largest gap 9 ids");
    assert_eq!(rows(&by, t, "price_jump"), 1);
    assert_eq!(by[&(t.into(), "price_jump".into())]["first_ts"], "2024-01-02T00:00:09Z");
    assert_eq!(rows(&by, t, "duplicate_keys"), 1);
    assert_eq!(rows(&by, t, "out_of_order"), 2);
    let u = "exchange=x/symbol=U/date=2024-01-02";
    assert_eq!(rows(&by, u, "outside_partition"), 2);
    assert_eq!(rows(&by, "exchange=x/symbol=U/date=2005-01-01", "too_early"), 1);
    assert_eq!(rows(&by, "exchange=x/symbol=U/date=2100-01-01", "future_time"), 1);
    // Each finding carries its first time and an example row.
    let bad = &by[&(t.into(), "bad_price".into())];
    assert_eq!(bad["first_ts"], "2024-01-02T00:00:02Z");
    // And the file: the one holding the row now, or the source it came from.
    assert!(
        bad["file"]
            .as_str()
            .unwrap()
            .starts_with("trades/exchange=x/symbol=T/date=2024-01-02/c"),
        "{bad}"
    );
    let order = &by[&(t.into(), "out_of_order".into())];
    assert!(
        order["file"].as_str().unwrap().ends_with("date=2024-01-02/b.parquet"),
        "{order}"
    );
    assert!(bad["example"].as_str().unwrap().contains("price=-1"), "{bad}");
    assert!(r["partitions_checked"].as_u64().unwrap() >= 4, "{r}");
    assert_eq!(
        by.len(),
        11,
        "nothing else is reported: {:?}",
        by.keys().collect::<Vec<_>>()
    );

    // The text form names the same.
    let text = s.ok(&["quality", "--dataset", "trades", "--kind", "bad_side"]);
    assert!(text.contains(t) && text.contains("bad_side"), "{text}");
    assert!(!text.contains("bad_price"), "{text}");

    // The report has a "Data quality" section, and the coverage map marks the day.
    let rep = s.json(&["report"]);
    let q = &rep["quality"];
    assert!(
        q["by_kind"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["dataset"] == "trades" && k["kind"] == "bad_price" && k["rows"] == 2),
        "{q}"
    );
    assert_eq!(q["worst"][0]["partition"], t, "{q}");
    assert!(
        rep["coverage"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["day"] == "2024-01-02" && c["findings"].as_u64().unwrap() > 0),
        "{}",
        rep["coverage"]
    );
    let md = s.ok(&["report", "--format", "md"]);
    assert!(md.contains("Data quality") && md.contains("Worst partitions"), "{md}");
    // And /metrics counts them per dataset and kind.
    let cfg = mdkeep::Config::load(s.root(), None, std::iter::empty()).unwrap();
    let metrics = mdkeep::daemon::metrics::render_data(&cfg).unwrap();
    assert!(
        metrics.contains("mdkeep_quality_findings{dataset=\"trades\",kind=\"bad_price\"} 1"),
        "{metrics}"
    );
}

#[test]
fn an_unchecked_partition_is_checked_on_demand() {
    let s = Sandbox::new();
    craft_trades(&s);
    scan(&s);
    // No rewrite has read these files: `quality` reads them now, streaming.
    let (r, by) = findings(&s, "trades");
    assert_eq!(r["checked_now"], 2, "{r}");
    let t = "exchange=x/symbol=T/date=2024-01-02";
    assert_eq!(rows(&by, t, "bad_price"), 2);
    assert_eq!(rows(&by, t, "out_of_order"), 2);
    assert_eq!(rows(&by, "exchange=x/symbol=U/date=2024-01-02", "outside_partition"), 2);
    let f = &by[&(t.into(), "bad_price".into())];
    assert!(
        f["file"].as_str().unwrap().ends_with("date=2024-01-02/a.parquet"),
        "{f}"
    );
    // A second call reads nothing; after compaction the rewrite's counts
    // replace the estimate instead of adding to it.
    assert_eq!(s.json(&["quality", "--dataset", "trades"])["checked_now"], 0);
    compact(&s);
    let (_, by) = findings(&s, "trades");
    assert_eq!(rows(&by, t, "out_of_order"), 2);
    assert_eq!(rows(&by, t, "bad_price"), 2);
}

#[test]
fn quarantined_rows_are_accounted_for() {
    let s = Sandbox::new();
    let cfg = s.root().join("configs/mdkeep.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[datasets.trades.quality]\non_bad_rows = \"quarantine\"\n");
    std::fs::write(&cfg, text).unwrap();
    craft_trades(&s);
    scan(&s);
    let m = compact(&s);
    let (rows_in, out, dups, quarantined) = (
        m["rows_in"].as_u64().unwrap(),
        m["rows_out"].as_u64().unwrap(),
        m["duplicates_removed"].as_u64().unwrap(),
        m["rows_quarantined"].as_u64().unwrap(),
    );
    // 4 bad trades, the 2005 row and the 2100 row.
    assert_eq!(quarantined, 6, "{m}");
    assert_eq!(dups, 1);
    assert_eq!(rows_in, out + dups + quarantined, "{m}");
    assert_eq!(rows_in, 17);
    // The rows are in Parquet under quarantine/rows/trades, each with its partition and reason.
    let q = s.root().join("data/quarantine/rows/trades");
    let got = py(
        "import pyarrow.dataset as ds, sys, json\n\
         t = ds.dataset(sys.argv[1], format='parquet', partitioning=None).to_table()\n\
         print(json.dumps(sorted(t.column('reason').to_pylist())))",
        &[&q.display().to_string()],
    );
    let reasons: Vec<String> = serde_json::from_str(&got).unwrap();
    assert_eq!(
        reasons,
        [
            "bad_amount",
            "bad_price",
            "bad_price",
            "bad_side",
            "future_time",
            "too_early"
        ],
        "{got}"
    );
    // The data holds exactly the rows kept.
    let kept = py(
        "import duckdb, sys\n\
         print(duckdb.sql(f\"SELECT count(*) FROM read_parquet('{sys.argv[1]}/**/*.parquet')\").fetchall()[0][0])",
        &[&s.hot().join("trades").display().to_string()],
    );
    assert_eq!(kept.parse::<u64>().unwrap(), out);
    // Still named as findings, and in the history.
    let (_, by) = findings(&s, "trades");
    assert_eq!(rows(&by, "exchange=x/symbol=T/date=2024-01-02", "bad_price"), 2);
}

#[test]
fn every_candle_check_is_named() {
    let s = Sandbox::new();
    let m = 60_000i64;
    let base = 1_704_067_200_000i64; // 2024-01-01
    let ts: Vec<i64> = (0..8).map(|i| base + i * m).chain([base + 8 * m + 30_000]).collect();
    write(
        &s.hot()
            .join("ohlcv/exchange=x/symbol=S/timeframe=1m/month=2024-01/a.parquet"),
        &format!(
            "{{'ts': {ts:?}, \
              'open':   [10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0], \
              'high':   [11.0, 10.5, 11.0, 9.0, 11.0, 11.0, 11.0, 11.0, 11.0], \
              'low':    [9.0, 9.0, 10.2, 11.0, 9.0, 9.0, 9.0, 9.0, 9.0], \
              'close':  [10.5, 11.0, 10.5, 10.0, float('nan'), 10.0, 10.0, 10.0, 10.0], \
              'volume': [1.0, 1.0, 1.0, 1.0, 1.0, -1.0, 1.0, 1.0, 1.0]}}"
        ),
    );
    scan(&s);
    compact(&s);
    let (_, by) = findings(&s, "ohlcv");
    let p = "exchange=x/symbol=S/timeframe=1m/month=2024-01";
    // Row 1: high below close. Row 2: low above open. Row 3: high below low
    // (and so below open and close, and low above them).
    assert_eq!(rows(&by, p, "high_below_open_close"), 2);
    assert_eq!(rows(&by, p, "low_above_open_close"), 2);
    assert_eq!(rows(&by, p, "high_below_low"), 1);
    assert_eq!(rows(&by, p, "non_finite"), 1);
    assert_eq!(rows(&by, p, "negative_volume"), 1);
    assert_eq!(rows(&by, p, "off_grid"), 1);
    assert!(
        !by.contains_key(&(p.into(), "cadence".into())),
        "spacing is 1m as declared"
    );
}

#[test]
fn a_freqtrade_8m_file_holding_1m_candles_gets_a_cadence_finding() {
    let s = Sandbox::new();
    let src = tempfile::tempdir().unwrap();
    // Freqtrade's own json.gz layout: [[ms, open, high, low, close, volume], ...].
    py(
        "import gzip, json, sys\n\
         rows = [[1510617600000 + i * 60000, 1.0, 1.1, 0.9, 1.05, 10.0] for i in range(13681)]\n\
         with gzip.open(sys.argv[1] + '/UNITTEST_BTC-8m.json.gz', 'wt') as f: json.dump(rows, f)",
        &[&src.path().display().to_string()],
    );
    s.ok(&[
        "ingest",
        "freqtrade",
        src.path().to_str().unwrap(),
        "--exchange",
        "binance",
    ]);
    let (_, by) = findings(&s, "ohlcv");
    let cadence: Vec<&Value> = by
        .iter()
        .filter(|((p, k), _)| k == "cadence" && p.contains("timeframe=8m"))
        .map(|(_, v)| v)
        .collect();
    assert!(
        !cadence.is_empty(),
        "no cadence finding: {:?}",
        by.keys().collect::<Vec<_>>()
    );
    for f in &cadence {
        assert_eq!(f["detail"], "median spacing 1m, declared timeframe 8m", "{f}");
        assert_eq!(f["partition"]["symbol"], "UNITTEST_BTC");
    }
    let total: u64 = cadence.iter().map(|f| f["rows"].as_u64().unwrap()).sum();
    assert_eq!(total, 13681, "every row of the file is in a partition with the finding");
    let text = s.ok(&["quality", "--dataset", "ohlcv", "--kind", "cadence"]);
    assert!(text.contains("median spacing 1m, declared timeframe 8m"), "{text}");
}

#[test]
fn every_book_check_is_named() {
    let s = Sandbox::new();
    let t = DAY;
    write(
        &s.hot().join("book/exchange=x/symbol=B/date=2024-01-02/a.parquet"),
        &format!(
            "{{'ts': [{t}, {t}, {}, {}, {}, {}], 'update_id': [1, 1, 2, 2, 3, 3], \
              'side': ['buy', 'sell', 'buy', 'sell', 'buy', 'sell'], \
              'price': [100.0, 101.0, 102.0, 101.0, float('nan'), 101.0], \
              'amount': [1.0, 1.0, 1.0, 1.0, 1.0, -1.0]}}",
            t + 1,
            t + 1,
            t + 2,
            t + 2
        ),
    );
    scan(&s);
    compact(&s);
    let (_, by) = findings(&s, "book");
    let p = "exchange=x/symbol=B/date=2024-01-02";
    assert_eq!(rows(&by, p, "crossed_book"), 1);
    assert_eq!(rows(&by, p, "bad_price"), 1);
    assert_eq!(rows(&by, p, "bad_amount"), 1);
    assert_eq!(by.len(), 3, "{:?}", by.keys().collect::<Vec<_>>());
}

#[test]
fn coverage_answers_from_the_index_without_reading_data() {
    let s = Sandbox::new();
    s.gen(1, 3, 2, 50);
    // A day the collector missed.
    std::fs::remove_dir_all(s.hot().join("trades/exchange=binance/symbol=BTC_USDT/date=2024-01-02")).unwrap();
    scan(&s);
    compact(&s);
    let before = s.json(&["coverage", "--dataset", "trades"]);
    let series = before.as_array().unwrap();
    assert_eq!(series.len(), 1, "{before}");
    let c = &series[0];
    assert_eq!(c["files_unindexed"], 0, "{c}");
    assert_eq!(c["cadence"], "1h");
    assert_eq!(c["series"]["symbol"], "BTC_USDT");
    let gaps = c["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 1, "{c}");
    assert!(gaps[0]["from"].as_str().unwrap().starts_with("2024-01-02"), "{c}");
    assert!((22..=24).contains(&gaps[0]["missing"].as_u64().unwrap()), "{c}");
    assert_eq!(c["intervals"].as_array().unwrap().len(), 2);
    // With every data file gone, the answer is the same: nothing was read.
    for f in s.data_files() {
        std::fs::remove_file(f).unwrap();
    }
    assert_eq!(s.json(&["coverage", "--dataset", "trades"]), before);
}

#[test]
fn a_job_that_requires_clean_data_is_refused_and_an_export_records_findings() {
    let s = Sandbox::new();
    craft_trades(&s);
    scan(&s);
    compact(&s);
    let spec = |name: &str, extra: &str| {
        let p = s.root().join(format!("{name}.toml"));
        std::fs::write(
            &p,
            format!(
                "name = \"{name}\"\nframework = \"command\"\nargv = [\"true\"]\nmemory = \"64MiB\"\n\
                 [data]\ndataset = \"trades\"\nexchange = \"x\"\nsymbols = [\"T\"]\nformat = \"parquet\"\n{extra}"
            ),
        )
        .unwrap();
        p
    };
    // Bad prices in its range: refused with 65, naming partition and kind.
    let p = spec("strict", "require_clean = true\n");
    let o = s.run(&["jobs", "submit", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(65), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("exchange=x/symbol=T/date=2024-01-02 bad_price (2 rows"),
        "{err}"
    );
    assert_eq!(s.json(&["jobs", "ls"]).as_array().unwrap().len(), 0);
    // Only the kinds it names count: no cadence finding here, so it is queued.
    let p = spec("lenient", "require_clean = true\nclean_kinds = [\"cadence\"]\n");
    let o = s.run(&["jobs", "submit", p.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // An unknown kind is a spec error at its key.
    let p = spec("typo", "require_clean = true\nclean_kinds = [\"bad_prise\"]\n");
    let o = s.run(&["jobs", "submit", p.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("data.clean_kinds"));
    // The job's export records the findings of the partitions it read.
    let o = s.cmd(&["jobs", "work", "--once"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let jobs = s.json(&["jobs", "ls"]);
    let id = jobs[0]["id"].as_i64().unwrap();
    let j = s.json(&["jobs", "show", &id.to_string()]);
    assert_eq!(j["state"], "succeeded", "{j}");
    let rec =
        std::fs::read_to_string(std::path::Path::new(j["dir"].as_str().unwrap()).join("data_quality.json")).unwrap();
    let rec: Value = serde_json::from_str(&rec).unwrap();
    let kinds: Vec<&str> = rec
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"bad_price") && kinds.contains(&"id_gap"), "{rec}");
    assert!(
        rec.as_array().unwrap().iter().all(|f| f["partition"]["symbol"] == "T"),
        "only what it read: {rec}"
    );
    // `export --require-clean` refuses the same way.
    let out = s.root().join("out");
    let o = s.run(&[
        "export",
        "--dataset",
        "trades",
        "--symbol",
        "T",
        "--format",
        "parquet",
        "--out",
        out.to_str().unwrap(),
        "--require-clean",
    ]);
    assert_eq!(o.status.code(), Some(65));
}

#[test]
fn a_rollup_checks_the_trades_it_reads() {
    let s = Sandbox::new();
    craft_trades(&s);
    scan(&s);
    // Rollup reads the raw trades (no compaction before): its findings are
    // the faults still in the data, not what compaction would repair.
    let o = s
        .cmd(&["rollup", "--json"])
        .env("MDKEEP__SCAN__SETTLE_TIME", "0s")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: Value = serde_json::from_slice(&o.stdout).unwrap();
    let (r, by) = findings(&s, "trades");
    assert_eq!(r["checked_now"], 0, "the rollup checked what it read: {r}\n{m}");
    let t = "exchange=x/symbol=T/date=2024-01-02";
    assert_eq!(rows(&by, t, "bad_price"), 2);
    assert_eq!(rows(&by, t, "id_gap"), 1);
    assert!(
        !by.contains_key(&(t.into(), "duplicate_keys".into())),
        "a read repairs nothing"
    );
}
