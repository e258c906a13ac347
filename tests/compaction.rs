//! Compaction against real piles, checked by DuckDB (the shared verifier).

mod common;

use std::time::Duration;

use common::{age, gen_trades_pile, py, snapshot, temp_files, verify_compacted, Sandbox};

const NO_SETTLE: (&str, &str) = ("MDKEEP__SCAN__SETTLE_TIME", "0s");

fn json(s: &Sandbox, args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.push("--json");
    let o = s.cmd(&a).env(NO_SETTLE.0, NO_SETTLE.1).output().unwrap();
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn compact_keeps_every_distinct_key_once_sorted_and_home() {
    let (s, pristine) = gen_trades_pile(&["--symbols", "2", "--days", "3", "--rows-per-flush", "500"]);
    let scan = json(&s, &["scan"]);
    assert_eq!(scan["added"].as_u64(), Some(2 * 3 * 96));
    let m = json(&s, &["compact"]);
    assert_eq!(m["files_in"].as_u64(), Some(576));
    assert_eq!(m["partitions_rewritten"].as_u64(), Some(6));
    assert!(m["duplicates_removed"].as_u64().unwrap() > 0);
    assert_eq!(
        m["rows_in"].as_u64().unwrap() - m["duplicates_removed"].as_u64().unwrap(),
        m["rows_out"].as_u64().unwrap()
    );
    for k in [
        "partitions_skipped",
        "files_out",
        "bytes_in",
        "bytes_out",
        "seconds",
        "peak_memory_bytes",
    ] {
        assert!(m.get(k).is_some(), "metrics lack {k}");
    }
    // Independent check: distinct keys, partition by own ts, sorted files, pyarrow-readable.
    verify_compacted(pristine.path(), &s.hot());
    assert!(temp_files(s.root()).is_empty());

    // Footers record the order and the page index is written.
    let f = s.data_files()[0].display().to_string();
    let out = py(
        "import pyarrow.parquet as pq, sys\n\
         md = pq.ParquetFile(sys.argv[1]).metadata\n\
         rg = md.row_group(0)\n\
         print([(c.column_index, c.descending) for c in rg.sorting_columns], rg.column(0).compression, rg.column(0).has_offset_index)",
        &[&f],
    );
    assert_eq!(out, "[(0, False), (1, False)] ZSTD True");

    // The catalog agrees with the disk and knows nothing is misfiled any more.
    let rescan = json(&s, &["scan"]);
    assert_eq!(rescan["files_read"].as_u64(), Some(0));
    assert_eq!(rescan["misfiled"].as_array().unwrap().len(), 0);
    assert_eq!(rescan["rows"].as_u64(), m["rows_out"].as_u64());
}

#[test]
fn second_run_is_a_no_op() {
    let (s, _p) = gen_trades_pile(&["--symbols", "1", "--days", "2", "--rows-per-flush", "200"]);
    json(&s, &["scan"]);
    json(&s, &["compact"]);
    let before = snapshot(&s.hot());
    let m = json(&s, &["compact"]);
    assert_eq!(m["partitions_rewritten"].as_u64(), Some(0));
    assert_eq!(m["files_in"].as_u64(), Some(0));
    assert_eq!(m["partitions_skipped"].as_u64(), Some(2));
    assert_eq!(snapshot(&s.hot()), before);
}

#[test]
fn dry_run_changes_nothing_on_disk_or_in_the_database() {
    let (s, _p) = gen_trades_pile(&["--symbols", "1", "--days", "2", "--rows-per-flush", "200"]);
    json(&s, &["scan"]);
    let before = snapshot(s.root());
    let plan = json(&s, &["compact", "--dry-run"]);
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["files_in"].as_u64(), Some(192));
    assert!(!plan["plan"]["series"][0]["partitions"][0]["reasons"]
        .as_array()
        .unwrap()
        .is_empty());
    let text = s
        .cmd(&["compact", "--dry-run"])
        .env(NO_SETTLE.0, NO_SETTLE.1)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("would rewrite"));
    assert_eq!(
        snapshot(s.root()),
        before,
        "the dry run touched the tree or the database"
    );
}

#[test]
fn pinned_input_survives_in_the_trash_until_unpinned() {
    let (s, _p) = gen_trades_pile(&["--symbols", "1", "--days", "1", "--rows-per-flush", "100"]);
    json(&s, &["scan"]);
    let victim = s.data_files()[5].clone();
    let bytes = std::fs::read(&victim).unwrap();
    s.ok(&["pin", victim.to_str().unwrap(), "--owner", "job-7"]);
    assert_eq!(json(&s, &["pins"])[0]["owner"], "job-7");
    let m = json(&s, &["compact"]);
    assert_eq!(m["pinned_to_trash"].as_u64(), Some(1));
    let trashed: Vec<_> = common::walk(&s.root().join("data/trash"));
    assert_eq!(trashed.len(), 1);
    assert_eq!(std::fs::read(&trashed[0]).unwrap(), bytes, "the pinned file is intact");
    assert!(
        !victim.exists(),
        "not under the tier root, where readers would count it twice"
    );
    // ls shows the trash as disk in use.
    let ls = s.ok(&["ls"]);
    assert!(
        ls.contains("outside the data: trash ") && !ls.contains("trash 0B"),
        "{ls}"
    );

    // Unpinned, it goes once the grace period has passed.
    s.ok(&["unpin", victim.to_str().unwrap()]);
    let zero_grace = |args: &[&str]| {
        s.cmd(args)
            .env("MDKEEP__COMPACTION__TRASH_GRACE", "0s")
            .output()
            .unwrap()
    };
    zero_grace(&["scan"]); // marks it released
    zero_grace(&["scan"]); // grace over: purged
    assert!(common::walk(&s.root().join("data/trash")).is_empty());
}

#[test]
fn unsorted_and_heavily_overlapping_inputs_sort_and_merge_in_rounds() {
    // Twelve files, each spanning the whole day in random order: more
    // overlap than one pass may hold open under the smallest memory limit.
    let s = Sandbox::new();
    let dir = s.hot().join("trades/exchange=x/symbol=S/date=2024-01-01");
    std::fs::create_dir_all(&dir).unwrap();
    py(
        "import numpy as np, pyarrow as pa, pyarrow.parquet as pq, sys\n\
         rng = np.random.default_rng(1)\n\
         for f in range(12):\n\
         \x20   ids = rng.integers(0, 150000, 40000)\n\
         \x20   ts = 1704067200000 + ids * 500\n\
         \x20   t = pa.table({'ts': pa.array(ts, pa.timestamp('ms', tz='UTC')), 'trade_id': ids, 'price': ids * 0.5, 'amount': np.ones(len(ids)), 'side': ['buy'] * len(ids)})\n\
         \x20   pq.write_table(t, f'{sys.argv[1]}/f{f}.parquet', row_group_size=7000)",
        &[dir.to_str().unwrap()],
    );
    let distinct: u64 = py(
        "import duckdb, sys; print(duckdb.connect().execute('SET enable_progress_bar = false').execute(f\"SELECT count(DISTINCT trade_id) FROM '{sys.argv[1]}/*.parquet'\").fetchone()[0])",
        &[dir.to_str().unwrap()],
    )
    .parse()
    .unwrap();
    for f in common::walk(&dir) {
        age(&f, Duration::from_secs(3600));
    }
    s.ok(&["scan"]);
    let o = s
        .cmd(&["compact", "--json"])
        .env("MDKEEP__COMPACTION__MEMORY_LIMIT", "16MiB")
        .env("MDKEEP__COMPACTION__THREADS", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(m["sorted_runs"].as_u64().unwrap() >= 12, "{m}");
    assert!(m["merge_rounds"].as_u64().unwrap() >= 1, "{m}");
    assert_eq!(m["rows_out"].as_u64(), Some(distinct));
    let check = py(
        "import duckdb, glob, numpy as np, pyarrow.parquet as pq, sys\n\
         n, d = duckdb.connect().execute('SET enable_progress_bar = false').execute(f\"SELECT count(*), count(DISTINCT trade_id) FROM '{sys.argv[1]}/*.parquet'\").fetchone()\n\
         bad = 0\n\
         for f in glob.glob(sys.argv[1] + '/*.parquet'):\n\
         \x20   t = pq.read_table(f)\n\
         \x20   ts, ids = t.column('ts').cast('int64').to_numpy(), t.column('trade_id').to_numpy()\n\
         \x20   bad += int(np.sum((ts[1:] < ts[:-1]) | ((ts[1:] == ts[:-1]) & (ids[1:] < ids[:-1]))))\n\
         print(n, d, bad)",
        &[dir.to_str().unwrap()],
    );
    assert_eq!(check, format!("{distinct} {distinct} 0"));
    // No spill or scratch file outlives the run.
    assert!(common::walk(&s.root().join("data/tmp")).is_empty());
}

#[test]
fn bad_where_and_unknown_dataset_are_refused() {
    let s = Sandbox::new();
    let o = s.run(&["compact", "--dataset", "nope"]);
    assert_eq!(o.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nope"));
    let o = s.run(&["compact", "--where", "symbol"]);
    assert_eq!(o.status.code(), Some(2));
}

/// One 1m candle at 2024-01-02 00:00 with `close`, as a collector writes it.
fn write_candle(path: &std::path::Path, close: f64) {
    py(
        "import pyarrow as pa, pyarrow.parquet as pq, sys\n\
         c = float(sys.argv[2])\n\
         pq.write_table(pa.table({'ts': pa.array([1704153600000], pa.timestamp('ms')), 'open': [c], 'high': [c],\n\
             'low': [c], 'close': [c], 'volume': [1.0]}), sys.argv[1])",
        &[&path.display().to_string(), &close.to_string()],
    );
}

/// Issue 29, scenario 1: `a` (close 1.0) arrived 20 minutes ago, `b` (close
/// 2.0) is still settling when `a` is compacted. The rewrite gives its output
/// a fresh mtime; `b` must still count as the later arrival once it settles.
/// Returns the surviving close and the candle count. `env` sets the rule.
fn candle_after_a_rewrite_then_a_late_file(env: &[(&str, &str)]) -> (f64, u64) {
    let s = Sandbox::new();
    let dir = s.hot().join("ohlcv/exchange=x/symbol=T/timeframe=1m/month=2024-01");
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (dir.join("a.parquet"), dir.join("b.parquet"));
    write_candle(&a, 1.0);
    age(&a, Duration::from_secs(20 * 60));
    write_candle(&b, 2.0);
    let run = |args: &[&str]| {
        let o = s
            .cmd(args)
            .env("MDKEEP__SCAN__SETTLE_TIME", "5m")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    run(&["scan"]);
    run(&["compact"]);
    assert!(!a.exists() && b.exists(), "a is rewritten, b is still settling");
    // b settles: its mtime is still 10 minutes after a's.
    age(&b, Duration::from_secs(10 * 60));
    run(&["scan"]);
    run(&["compact"]);
    assert!(!b.exists(), "b was merged");
    let out = py(
        "import pyarrow.parquet as pq, pyarrow as pa, glob, sys\n\
         t = pa.concat_tables([pq.read_table(f) for f in glob.glob(sys.argv[1] + '/*.parquet')])\n\
         print(t.num_rows, t.column('close')[0].as_py())",
        &[&dir.display().to_string()],
    );
    let (n, close) = out.split_once(' ').unwrap();
    (close.parse().unwrap(), n.parse().unwrap())
}

#[test]
fn newest_means_arrival_order_across_rewrites() {
    assert_eq!(
        candle_after_a_rewrite_then_a_late_file(&[]),
        (2.0, 1),
        "the later arrival wins"
    );
}

#[test]
fn oldest_means_arrival_order_across_rewrites() {
    let global = [("MDKEEP__COMPACTION__KEEP", "oldest")];
    assert_eq!(
        candle_after_a_rewrite_then_a_late_file(&global),
        (1.0, 1),
        "the first arrival wins"
    );
    // The same rule set for the dataset alone.
    let own = [("MDKEEP__DATASETS__OHLCV__KEEP_DUPLICATE", "oldest")];
    assert_eq!(
        candle_after_a_rewrite_then_a_late_file(&own),
        (1.0, 1),
        "the dataset's own rule"
    );
}
