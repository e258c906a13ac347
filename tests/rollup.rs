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

/// Overwrite a few KiB inside `file`'s `column` chunk (row group 0); the
/// footer stays intact, so only reading that column's pages fails.
fn corrupt_column(file: &std::path::Path, column: &str) {
    py(
        "import pyarrow.parquet as pq, sys\n\
         p, name = sys.argv[1], sys.argv[2]\n\
         rg = pq.ParquetFile(p).metadata.row_group(0)\n\
         c = next(rg.column(i) for i in range(rg.num_columns) if rg.column(i).path_in_schema == name)\n\
         start = c.dictionary_page_offset or c.data_page_offset\n\
         size = c.total_compressed_size\n\
         at, n = start + size // 4, min(4096, size // 2)\n\
         with open(p, 'r+b') as f:\n\
         \x20   f.seek(at)\n\
         \x20   f.write(bytes((i * 67 + 13) % 256 for i in range(n)))",
        &[file.to_str().unwrap(), column],
    );
}

/// The one file of a compacted partition.
fn only_file(dir: &std::path::Path) -> std::path::PathBuf {
    let files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

/// One unreadable file is quarantined by rollup with its name and reason;
/// every other finished partition is rolled up, and retention is not left
/// waiting on anything. The next run is clean.
#[test]
fn an_unreadable_file_is_quarantined_and_every_other_partition_rolls_up() {
    // The ts column: a bad page there fails decoding (a float column's raw
    // zstd blocks would decode to wrong values, which `verify` catches).
    let column = "ts";
    {
        let s = Sandbox::new();
        s.gen(2, 5, 1, 200);
        s.ok(&["scan"]);
        s.ok(&["compact"]);
        let broken = only_file(&s.hot().join("trades/exchange=binance/symbol=BTC_USDT/date=2024-01-01"));
        corrupt_column(&broken, column);
        let env = [("MDKEEP__DATASETS__TRADES__KEEP", "1d")];
        let o = s.cmd(&["maintain", "--json"]).envs(env).output().unwrap();
        let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(o.status.code(), Some(4), "{column}: done, with failures: {m}");
        let failures = m["failures"].as_array().unwrap();
        assert_eq!(failures.len(), 1, "{column}: {m}");
        let f = &failures[0];
        assert_eq!(
            (f["step"].as_str(), f["outcome"].as_str()),
            (Some("rollup"), Some("quarantined")),
            "{column}: {m}"
        );
        assert_eq!(
            f["file"].as_str().unwrap(),
            broken.display().to_string(),
            "{column}: {m}"
        );
        assert!(!broken.exists(), "{column}: the bad file went to the quarantine");
        // 2 symbols × 4 finished days, less the one whose only file went.
        assert_eq!(m["rollup"]["partitions"], 7, "{column}: {m}");
        let o = s.cmd(&["retention", "--dry-run", "--json"]).envs(env).output().unwrap();
        let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            plan["waiting_for_rollup"].as_array().unwrap().len(),
            0,
            "{column}: {plan}"
        );
        let o = s.cmd(&["maintain", "--json"]).envs(env).output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{column}: not stuck: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
}

/// A rollup that fails for a reason other than a bad input skips only its
/// partitions; retention lists what it keeps for them as `rollup_failed`,
/// with the attempts and the error, and is done once the rollup succeeds.
#[test]
fn retention_says_which_partitions_a_failing_rollup_keeps_and_why() {
    let s = Sandbox::new();
    s.gen(2, 3, 1, 200);
    s.ok(&["scan"]);
    s.ok(&["compact"]);
    // BTC's candles cannot be written: a plain file where their folder goes.
    let blocker = s.hot().join("ohlcv/exchange=binance/symbol=BTC_USDT");
    std::fs::create_dir_all(blocker.parent().unwrap()).unwrap();
    std::fs::write(&blocker, b"in the way").unwrap();
    for eth_days in [2, 0] {
        let o = s.run(&["rollup", "--json"]);
        let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_ne!(o.status.code(), Some(0), "{m}");
        assert_eq!(m["partitions"], eth_days, "ETH's two finished days rolled up once: {m}");
        let failures = m["failures"].as_array().unwrap();
        assert_eq!(failures.len(), 2, "{m}");
        assert!(
            failures
                .iter()
                .all(|f| f["outcome"] == "skipped" && f["file"].as_str().unwrap().contains("symbol=BTC_USDT")),
            "{m}"
        );
    }
    let env = [("MDKEEP__DATASETS__TRADES__KEEP", "30h")];
    let o = s.cmd(&["retention", "--dry-run", "--json"]).envs(env).output().unwrap();
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let blocked = plan["rollup_failed"].as_array().unwrap();
    assert_eq!(blocked.len(), 1, "{plan}");
    assert_eq!(
        blocked[0]["partition"],
        "exchange=binance/symbol=BTC_USDT/date=2024-01-01"
    );
    assert_eq!(blocked[0]["attempts"], 2, "{plan}");
    assert!(
        blocked[0]["last_error"].as_str().unwrap().contains("symbol=BTC_USDT"),
        "{plan}"
    );
    assert_eq!(plan["waiting_for_rollup"].as_array().unwrap().len(), 0, "{plan}");
    let o = s.cmd(&["retention", "--json"]).envs(env).output().unwrap();
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(4), "kept, and said so: {m}");
    assert_eq!(m["partitions_dropped"], 1, "ETH's day 1 went: {m}");
    assert!(
        m["failures"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("rollup failed 2 times"),
        "{m}"
    );

    std::fs::remove_file(&blocker).unwrap();
    s.ok(&["rollup"]);
    let o = s.cmd(&["retention", "--json"]).envs(env).output().unwrap();
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(0), "{m}");
    assert_eq!(
        m["partitions_dropped"], 1,
        "BTC's day 1 went once its candles were verified: {m}"
    );
}
