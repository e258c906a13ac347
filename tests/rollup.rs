//! Rollup: candles from trades, checked against DuckDB over the raw trades,
//! and retention that waits for them.

mod common;

use common::{py, snapshot, Sandbox};

/// Two symbols, three days, compacted; days 1 and 2 are finished.
fn pile() -> Sandbox {
    let s = Sandbox::new();
    s.gen(2, 3, 2, 400);
    s.ok(&["scan"]);
    s.ok(&["compact"]);
    s
}

#[test]
fn candles_match_duckdb_over_the_raw_trades() {
    let s = pile();
    let before = snapshot(s.root());
    let plan = s.json(&["rollup", "--dry-run"]);
    assert_eq!(plan["items"].as_array().unwrap().len(), 4, "{plan}");
    assert_eq!(snapshot(s.root()), before, "a dry run changed something");

    let m = s.json(&["rollup"]);
    assert_eq!(m["partitions"], 4, "{m}");
    let candles = m["candles"]["1m"].as_u64().unwrap();
    assert!(candles > 1000, "{m}");
    assert_eq!(s.json(&["rollup"])["partitions"], 0, "a second run is a no-op");

    // DuckDB builds the same candles from the trades, with Freqtrade's rule,
    // after removing re-sent rows, over the two finished days.
    let out = py(
        "import duckdb, sys\n\
         root = sys.argv[1]\n\
         c = duckdb.connect().execute('SET enable_progress_bar = false')\n\
         c.execute(f\"CREATE VIEW t AS SELECT DISTINCT ON (symbol, trade_id) * FROM read_parquet('{root}/trades/**/*.parquet', hive_partitioning=true) WHERE date < '2024-01-03'\")\n\
         c.execute(\"CREATE VIEW want AS SELECT symbol, time_bucket(INTERVAL 1 minute, ts) AS ts, first(price ORDER BY ts, trade_id) AS open, max(price) AS high, min(price) AS low, last(price ORDER BY ts, trade_id) AS close, sum(amount) AS volume FROM t GROUP BY ALL\")\n\
         c.execute(f\"CREATE VIEW got AS SELECT symbol, ts, open, high, low, close, volume FROM read_parquet('{root}/ohlcv/**/*.parquet', hive_partitioning=true)\")\n\
         n_want = c.execute('SELECT count(*) FROM want').fetchone()[0]\n\
         n_got = c.execute('SELECT count(*) FROM got').fetchone()[0]\n\
         bad = c.execute('SELECT count(*) FROM want w FULL JOIN got g ON w.symbol = g.symbol AND w.ts = g.ts WHERE g.ts IS NULL OR w.ts IS NULL OR w.open <> g.open OR w.high <> g.high OR w.low <> g.low OR w.close <> g.close OR abs(w.volume - g.volume) > 1e-9 * greatest(1, w.volume)').fetchone()[0]\n\
         print(n_want, n_got, bad)",
        &[&s.hot().display().to_string()],
    );
    let v: Vec<u64> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
    assert_eq!(v[0], candles, "DuckDB counts {} candles, mdkeep wrote {candles}", v[0]);
    assert_eq!((v[1], v[2]), (candles, 0), "candles differ from DuckDB's: {out}");

    let ls = s.json(&["ls", "--dataset", "ohlcv"]);
    assert!(
        ls.as_array()
            .unwrap()
            .iter()
            .all(|p| p["partition"]["timeframe"] == "1m"),
        "{ls}"
    );
}

#[test]
fn retention_waits_for_the_rollup_then_maintain_does_both() {
    let s = Sandbox::new();
    s.gen(1, 3, 2, 300);
    s.ok(&["scan"]);
    let env = [("MDKEEP__DATASETS__TRADES__KEEP", "30h")];
    let run = |args: &[&str]| {
        let mut a = args.to_vec();
        a.push("--json");
        let o = s.cmd(&a).envs(env).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let plan = run(&["retention", "--dry-run"]);
    assert_eq!(plan["drops"].as_array().unwrap().len(), 0, "{plan}");
    assert_eq!(plan["waiting_for_rollup"].as_array().unwrap().len(), 1, "{plan}");
    assert_eq!(run(&["retention"])["partitions_dropped"], 0);

    let m = run(&["maintain"]);
    assert!(m["rollup"]["partitions"].as_u64().unwrap() >= 1, "{m}");
    assert_eq!(m["retention"]["partitions_dropped"], 1, "{m}");
    let hist = py(
        "import sqlite3, sys\n\
         c = sqlite3.connect(sys.argv[1])\n\
         print(' '.join(r[0] for r in c.execute(\"SELECT action FROM history WHERE action IN ('rollup', 'retention') ORDER BY id\")))",
        &[&s.root().join("data/state/mdkeep.db").display().to_string()],
    );
    let first_rollup = hist.find("rollup").expect("a rollup was recorded");
    let first_drop = hist.find("retention").expect("a drop was recorded");
    assert!(first_rollup < first_drop, "{hist}");
}
