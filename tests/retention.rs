//! Retention: whole old partitions go, against a guarded clock; dry runs and
//! crashes change nothing they should not.

mod common;

use std::time::Duration;

use common::{age, py, snapshot, Sandbox};

fn rows_by_date(s: &Sandbox) -> String {
    py(
        "import duckdb, sys\n\
         print(duckdb.connect().execute('SET enable_progress_bar = false').execute(f\"SELECT string_agg(CAST(date AS VARCHAR), ',' ORDER BY date) FROM (SELECT DISTINCT date FROM read_parquet('{sys.argv[1]}/trades/**/*.parquet', hive_partitioning=true))\").fetchone()[0])",
        &[&s.hot().display().to_string()],
    )
}

#[test]
fn old_partitions_go_and_a_dry_run_changes_nothing() {
    let s = Sandbox::new();
    s.gen(1, 3, 1, 50);
    s.ok(&["scan"]);
    s.ok(&["compact"]);
    // Trades keep their candles: retention waits for a verified rollup.
    s.ok(&["rollup"]);
    let keep = ("MDKEEP__DATASETS__TRADES__KEEP", "1d");
    let before = snapshot(s.root());
    let o = s
        .cmd(&["retention", "--dry-run", "--json"])
        .env(keep.0, keep.1)
        .output()
        .unwrap();
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["drops"].as_array().unwrap().len(), 1, "{plan}");
    assert_eq!(
        plan["drops"][0]["partition"],
        "exchange=binance/symbol=BTC_USDT/date=2024-01-01"
    );
    assert_eq!(snapshot(s.root()), before, "a dry run changed something");

    let o = s.cmd(&["retention", "--json"]).env(keep.0, keep.1).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(m["partitions_dropped"].as_u64(), Some(1));
    assert_eq!(rows_by_date(&s), "2024-01-02,2024-01-03");
    // The catalog agrees, and the drop is in the history for reports.
    let ls = s.json(&["ls", "--dataset", "trades"]);
    assert_eq!(ls.as_array().unwrap().len(), 2);
}

#[test]
fn a_future_dated_row_does_not_purge_the_dataset() {
    // Recent data: the last three days; and one row stamped in 2030.
    let s = Sandbox::new();
    s.json(&[
        "gen",
        "--symbols",
        "1",
        "--days",
        "3",
        "--flushes-per-hour",
        "1",
        "--rows-per-flush",
        "20",
    ]);
    let last_dir = s.data_files().last().unwrap().parent().unwrap().to_path_buf();
    let future = last_dir.join("clock-skew.parquet");
    py(
        "import pyarrow as pa, pyarrow.parquet as pq, sys\n\
         t = pa.table({'ts': pa.array([1893456000000], pa.timestamp('ms', tz='UTC')), 'trade_id': [9], 'price': [1.0], 'amount': [1.0], 'side': ['buy']})\n\
         pq.write_table(t, sys.argv[1])",
        &[future.to_str().unwrap()],
    );
    age(&future, Duration::from_secs(3600));
    s.ok(&["scan"]);
    s.ok(&["rollup"]);
    let o = s
        .cmd(&["retention", "--json"])
        .env("MDKEEP__DATASETS__TRADES__KEEP", "2d")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // Only the oldest day ended more than two days before now; the 2030 row changes nothing.
    assert_eq!(m["partitions_dropped"].as_u64(), Some(1), "{m}");
    assert_eq!(s.json(&["ls", "--dataset", "trades"]).as_array().unwrap().len(), 2);
}

#[test]
fn a_crash_after_the_catalog_commit_is_finished_by_recovery() {
    let s = Sandbox::new();
    s.gen(1, 3, 1, 50);
    s.ok(&["scan"]);
    s.ok(&["rollup"]);
    let o = s
        .cmd(&["retention"])
        .env("MDKEEP__DATASETS__TRADES__KEEP", "1d")
        .env("MDKEEP_FAILPOINT", "retention:after-commit")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let r = s.json(&["scan"]);
    assert_eq!(r["recovered"]["finished"].as_u64(), Some(1), "{r}");
    assert_eq!(r["added"].as_u64(), Some(0), "files of a dropped partition came back");
    assert_eq!(rows_by_date(&s), "2024-01-02,2024-01-03");
}

/// Trades kept 36 hours, straddling partitions trimmed.
const TRIM_36H: [(&str, &str); 2] = [
    ("MDKEEP__DATASETS__TRADES__KEEP", "36h"),
    ("MDKEEP__DATASETS__TRADES__TRIM", "true"),
];

/// `symbols` series over 3 days, scanned, compacted and rolled up.
fn compacted_and_rolled_up(symbols: u32) -> Sandbox {
    let s = Sandbox::new();
    s.gen(symbols, 3, 2, 200);
    s.ok(&["scan"]);
    s.ok(&["compact"]);
    s.ok(&["rollup"]);
    s
}

#[test]
fn trim_rewrites_a_straddling_partition_without_its_expired_rows() {
    let s = compacted_and_rolled_up(1);
    let env = TRIM_36H;
    let before = snapshot(s.root());
    let o = s.cmd(&["retention", "--dry-run", "--json"]).envs(env).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(snapshot(s.root()), before, "a dry run changed something");
    assert_eq!(plan["drops"].as_array().unwrap().len(), 1, "{plan}");
    assert_eq!(plan["trims"].as_array().unwrap().len(), 1, "{plan}");
    assert_eq!(
        plan["trims"][0]["partition"],
        "exchange=binance/symbol=BTC_USDT/date=2024-01-02"
    );
    let cut = plan["cut"]["trades"].as_str().unwrap().to_string();

    // What must stay: every distinct trade at or after the cut, by DuckDB.
    let count = |root: &std::path::Path| {
        py(
            "import duckdb, sys\n\
             r = duckdb.connect().execute('SET enable_progress_bar = false').execute(f\"SELECT count(DISTINCT trade_id), count(*) FILTER (WHERE ts < TIMESTAMPTZ '{sys.argv[2]}') FROM read_parquet('{sys.argv[1]}/trades/**/*.parquet')\").fetchone()\n\
             print(r[0], r[1])",
            &[&root.display().to_string(), &cut],
        )
    };
    let want = py(
        "import duckdb, sys\n\
         print(duckdb.connect().execute('SET enable_progress_bar = false').execute(f\"SELECT count(DISTINCT trade_id) FROM read_parquet('{sys.argv[1]}/trades/**/*.parquet') WHERE ts >= TIMESTAMPTZ '{sys.argv[2]}'\").fetchone()[0])",
        &[&s.hot().display().to_string(), &cut],
    );
    let o = s.cmd(&["retention", "--json"]).envs(env).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (m["partitions_dropped"].as_u64(), m["partitions_trimmed"].as_u64()),
        (Some(1), Some(1)),
        "{m}"
    );
    assert_eq!(
        count(&s.hot()),
        format!("{want} 0"),
        "rows before the cut remain, or rows after it went"
    );
    // The trimmed partition keeps its verified candles: no second rollup.
    let again = s.cmd(&["rollup", "--dry-run", "--json"]).envs(env).output().unwrap();
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["items"].as_array().unwrap().len(), 0, "{again}");
    // And a second retention has nothing left to do.
    let o = s.cmd(&["retention", "--dry-run", "--json"]).envs(env).output().unwrap();
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        plan["trims"].as_array().unwrap().len() + plan["drops"].as_array().unwrap().len(),
        0,
        "{plan}"
    );
}

#[test]
fn a_trim_that_meets_a_bad_file_quarantines_it_and_the_other_trims_run() {
    let s = compacted_and_rolled_up(2);
    let env = TRIM_36H;
    let o = s.cmd(&["retention", "--dry-run", "--json"]).envs(env).output().unwrap();
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["trims"].as_array().unwrap().len(), 2, "{plan}");
    // BTC's straddling day: footer intact, first page header garbage.
    let day = s.hot().join("trades/exchange=binance/symbol=BTC_USDT/date=2024-01-02");
    let broken = std::fs::read_dir(&day).unwrap().next().unwrap().unwrap().path();
    let mut bytes = std::fs::read(&broken).unwrap();
    for b in &mut bytes[4..68] {
        *b = 0xff;
    }
    std::fs::write(&broken, &bytes).unwrap();

    let o = s.cmd(&["retention", "--json"]).envs(env).output().unwrap();
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(4), "done, with failures: {m}");
    assert_eq!(m["partitions_trimmed"], 1, "ETH's trim ran: {m}");
    let f = &m["failures"][0];
    assert_eq!(
        (f["step"].as_str(), f["outcome"].as_str()),
        (Some("retention"), Some("quarantined")),
        "{m}"
    );
    assert_eq!(f["file"].as_str().unwrap(), broken.display().to_string(), "{m}");
    assert!(!broken.exists(), "the bad file went to the quarantine");
    // Not stuck: the next run has no trim left to try.
    let o = s.cmd(&["retention", "--json"]).envs(env).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
}
