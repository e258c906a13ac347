//! Left alone, mdkeep never fights itself and no single bad file stops or
//! loses anything: the data lock between the daemon's tasks and the CLI,
//! bad files quarantined while the run goes on, publishing that never
//! replaces, inputs retired only while they are the file that was read, a
//! full disk, and the small things users hit. Rows are counted by DuckDB.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use common::{free_port, http_get, py, temp_files, wait_for, walk, Sandbox};
use serde_json::Value;

const SETTLED: (&str, &str) = ("MDKEEP__SCAN__SETTLE_TIME", "0s");

/// Write a trades file holding `(ts_ms, trade_id)` rows, zstd-compressed.
fn write_trades(path: &Path, rows: &[(i64, i64)]) {
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("trade_id", DataType::Int64, false),
        Field::new("price", DataType::Float64, false),
        Field::new("amount", DataType::Float64, false),
        Field::new("side", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.0)).with_timezone("UTC")),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(Float64Array::from_iter_values(
                rows.iter().map(|r| 100.0 + r.1 as f64 % 7.0),
            )),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|_| 0.5))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| {
                if r.1 % 2 == 0 {
                    "buy"
                } else {
                    "sell"
                }
            }))),
        ],
    )
    .unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let tmp = path.with_extension("writing");
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
        .build();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&tmp).unwrap(), schema, Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A day's folder of the trades dataset under the hot tier.
fn day_dir(s: &Sandbox, exchange: &str, symbol: &str, date: &str) -> PathBuf {
    s.hot()
        .join(format!("trades/exchange={exchange}/symbol={symbol}/date={date}"))
}

/// `n` trades on 2024-01-01 from 10:00, ids from `first`; a trade's time
/// follows from its id, so the same id in two files is the same row.
fn day_rows(first: i64, n: i64) -> Vec<(i64, i64)> {
    (first..first + n)
        .map(|id| (1_704_103_200_000 + id * 1000, id))
        .collect()
}

const COUNTS: &str = "import duckdb, sys\n\
     q = f\"SELECT exchange || '/' || symbol, count(*), count(DISTINCT trade_id) FROM read_parquet('{sys.argv[1]}/*/trades/**/*.parquet', hive_partitioning=true) GROUP BY 1 ORDER BY 1\"\n\
     for r in duckdb.connect().execute('SET enable_progress_bar = false').execute(q).fetchall():\n\
     \x20   print(r[0], r[1], r[2])";

/// Per (exchange, symbol): rows and distinct trade ids in every tier under
/// `root` (a `data` folder; not the quarantine), by DuckDB.
fn counts(root: &Path) -> Vec<(String, u64, u64)> {
    parse_counts(&py(COUNTS, &[&root.display().to_string()]))
}

/// `counts` while a daemon may be moving files under the reader: `None`
/// when a file went away mid-read.
fn try_counts(root: &Path) -> Option<Vec<(String, u64, u64)>> {
    let o = std::process::Command::new(common::python())
        .args(["-c", COUNTS])
        .arg(root)
        .output()
        .ok()?;
    let out = String::from_utf8_lossy(&o.stdout);
    let lines = out.lines().map(parse_line).collect::<Option<Vec<_>>>();
    lines.filter(|_| o.status.success())
}

fn parse_counts(out: &str) -> Vec<(String, u64, u64)> {
    out.lines()
        .map(|l| parse_line(l).unwrap_or_else(|| panic!("not `series rows distinct`: {l:?}")))
        .collect()
}

fn parse_line(l: &str) -> Option<(String, u64, u64)> {
    let v: Vec<&str> = l.split(' ').collect();
    match v[..] {
        [s, rows, distinct] => Some((s.to_string(), rows.parse().ok()?, distinct.parse().ok()?)),
        _ => None,
    }
}

/// Every series holds each of its distinct keys exactly once, as `want` says.
fn assert_exactly_once(root: &Path, want: &[(String, u64, u64)], what: &str) {
    let now = counts(root);
    let got: Vec<(String, u64)> = now.iter().map(|(s, _, d)| (s.clone(), *d)).collect();
    let exp: Vec<(String, u64)> = want.iter().map(|(s, _, d)| (s.clone(), *d)).collect();
    assert_eq!(got, exp, "{what}: distinct keys per series");
    for (series, rows, distinct) in &now {
        assert_eq!(rows, distinct, "{what}: {series} holds a key twice");
    }
}

/// Every series still holds all of its distinct keys (duplicates that were
/// never compacted may remain).
fn assert_nothing_lost(root: &Path, want: &[(String, u64, u64)], what: &str) {
    let got: Vec<(String, u64)> = counts(root).into_iter().map(|(s, _, d)| (s, d)).collect();
    let exp: Vec<(String, u64)> = want.iter().map(|(s, _, d)| (s.clone(), *d)).collect();
    assert_eq!(got, exp, "{what}: distinct keys per series");
}

/// The run's first failure quarantined a file named `name` in `step`; its reason.
fn first_quarantined(run: &Value, step: &str, name: &str) -> String {
    let f = &run["failures"][0];
    assert_eq!(f["step"], step, "{run}");
    assert_eq!(f["outcome"], "quarantined", "{run}");
    assert!(f["file"].as_str().unwrap().ends_with(name), "{f}");
    f["reason"].as_str().unwrap().to_string()
}

/// Run with the settle time off; (exit code, stdout, stderr).
fn run(s: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let o = s
        .cmd(args)
        .env(SETTLED.0, SETTLED.1)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn run_json(s: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> (i32, Value) {
    let mut a = args.to_vec();
    a.push("--json");
    let (code, out, err) = run(s, &a, env);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{a:?} exited {code}: bad JSON ({e}): {out}\n{err}"));
    (code, v)
}

/// Copy a pile file by file, each appearing whole under its name (as a collector's rename would).
fn drop_in(from: &Path, to: &Path) {
    for f in walk(from) {
        let dest = to.join(f.strip_prefix(from).unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        let tmp = dest.with_extension("copying");
        std::fs::copy(&f, &tmp).unwrap();
        std::fs::rename(&tmp, &dest).unwrap();
    }
}

/// A pile written by `mdkeep gen` in a root of its own, with its counts.
fn pile(exchange: &str, symbols: u32, days: u32, fph: u32, rows: u32) -> (Sandbox, Vec<(String, u64, u64)>) {
    let p = Sandbox::new();
    p.gen_with(symbols, days, fph, rows, &["--exchange", exchange]);
    let c = counts(&p.root().join("data"));
    (p, c)
}

fn spawn_daemon(s: &Sandbox, env: &[(&str, &str)]) -> (Child, u16) {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut child = s
        .cmd(&["daemon"])
        .env(SETTLED.0, SETTLED.1)
        .env("MDKEEP__HTTP__BIND", &bind)
        .env("MDKEEP__QUOTA__MIN_FREE", "0%")
        .env("MDKEEP__SCHEDULE__REPORT__ENABLED", "false")
        .env("RUST_LOG", "mdkeep=info")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("/healthz", Duration::from_secs(30), || {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("the daemon exited ({status}): {err}");
        }
        http_get(port, "/healthz").is_ok_and(|(code, _)| code == 200)
    });
    (child, port)
}

/// SIGTERM, wait, and return everything the daemon logged.
fn stop_daemon(d: Child) -> String {
    unsafe { libc::kill(d.id() as i32, libc::SIGTERM) };
    let out = d.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// What the lock file says about its holder (empty when none wrote yet).
fn holder(s: &Sandbox) -> String {
    std::fs::read_to_string(s.root().join("data/state/mdkeep.lock")).unwrap_or_default()
}

/// Runs of `task` in the daemon's log: (finished ok, failed, longest ms).
fn runs(log: &str, task: &str) -> (usize, usize, u64) {
    let tag = format!("task=\"{task}\"");
    let (mut ok, mut failed, mut longest) = (0, 0, 0);
    for l in log.lines().filter(|l| l.contains(&tag)) {
        if l.contains("task failed") {
            failed += 1;
        } else if l.contains("task finished") {
            ok += 1;
        }
        let ms = l
            .split("ms=")
            .nth(1)
            .and_then(|v| v.split(' ').next())
            .and_then(|v| v.parse().ok());
        longest = longest.max(ms.unwrap_or(0));
    }
    (ok, failed, longest)
}

/// How many scans the daemon started while a maintain was running.
fn scans_during_maintains(log: &str) -> usize {
    let (mut running, mut n) = (false, 0);
    for l in log.lines() {
        let maintain = l.contains("task=\"maintain\"");
        if maintain && l.contains("task started") {
            running = true;
        } else if maintain && (l.contains("task finished") || l.contains("task failed")) {
            running = false;
        } else if running && l.contains("task=\"scan\"") && l.contains("task started") {
            n += 1;
        }
    }
    n
}

#[test]
fn the_daemons_tasks_never_undo_each_other() {
    let s = Sandbox::new();
    let (first, mut want) = pile("binance", 4, 2, 4, 10000);
    drop_in(&first.hot(), &s.hot());
    let (d, _) = spawn_daemon(
        &s,
        &[
            ("MDKEEP__SCHEDULE__SCAN__CRON", "* * * * * *"),
            ("MDKEEP__SCHEDULE__MAINTAIN__CRON", "*/4 * * * * *"),
            // One series at a time: a maintain lasts several seconds.
            ("MDKEEP__COMPACTION__THREADS", "1"),
        ],
    );
    // Over a minute, a collector keeps dropping new series in.
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_secs(12));
        n += 1;
        let (more, c) = pile(&format!("x{n}"), 1, 1, 4, 4000);
        drop_in(&more.hot(), &s.hot());
        want.extend(c);
    }
    // The last drop gets its maintain too: every series compacted.
    wait_for("a maintain after the last drop", Duration::from_secs(120), || {
        std::thread::sleep(Duration::from_secs(2));
        try_counts(&s.root().join("data"))
            .is_some_and(|c| c.len() == want.len() && c.iter().all(|(_, rows, distinct)| rows == distinct))
    });
    let log = stop_daemon(d);
    let (ok, failed, longest) = runs(&log, "maintain");
    assert_eq!(failed, 0, "a maintain failed:\n{log}");
    assert!(ok >= 1, "no maintain finished:\n{log}");
    // The race was real: scans were started while a maintain ran.
    let during = scans_during_maintains(&log);
    assert!(
        during >= 2,
        "{during} scans started during a maintain (longest maintain {longest} ms)"
    );
    let (scans, scan_failed, _) = runs(&log, "scan");
    assert!(scans >= 10 && scan_failed == 0, "{scans} scans, {scan_failed} failed");
    assert!(!log.contains("rolled back"), "a task rolled another back:\n{log}");
    want.sort();
    assert_exactly_once(&s.root().join("data"), &want, "after a minute of the daemon");
    assert!(temp_files(&s.root().join("data")).is_empty());
}

#[test]
fn a_cli_compact_beside_the_daemons_maintain_waits_or_exits_75_and_loses_nothing() {
    let s = Sandbox::new();
    let (p, want) = pile("binance", 2, 2, 4, 6000);
    drop_in(&p.hot(), &s.hot());
    let (d, _) = spawn_daemon(
        &s,
        &[
            ("MDKEEP__SCHEDULE__SCAN__ENABLED", "false"),
            ("MDKEEP__SCHEDULE__MAINTAIN__CRON", "*/2 * * * * *"),
        ],
    );
    wait_for(
        "the daemon's maintain to hold the lock",
        Duration::from_secs(30),
        || holder(&s).contains("daemon task maintain"),
    );
    // No wait: told who holds it, exit 75, nothing touched.
    let (code, _, err) = run(&s, &["compact", "--wait", "0s"], &[]);
    if code == 75 {
        assert!(err.contains("daemon task maintain"), "names the holder: {err}");
    } else {
        assert_eq!(code, 0, "{err}");
    }
    // With a wait: it queues behind the daemon and then runs.
    let (code, _, err) = run(&s, &["compact", "--wait", "120s"], &[]);
    assert_eq!(code, 0, "{err}");
    let log = stop_daemon(d);
    assert!(!log.contains("rolled back"), "{log}");
    assert_exactly_once(&s.root().join("data"), &want, "CLI beside the daemon");
}

#[test]
fn kill_9_of_a_cli_compact_racing_the_daemon_loses_nothing() {
    let s = Sandbox::new();
    let (p, want) = pile("binance", 2, 1, 4, 5000);
    drop_in(&p.hot(), &s.hot());
    let (d, _) = spawn_daemon(
        &s,
        &[
            ("MDKEEP__SCHEDULE__SCAN__CRON", "* * * * * *"),
            ("MDKEEP__SCHEDULE__MAINTAIN__CRON", "*/3 * * * * *"),
        ],
    );
    for trial in 0..6u64 {
        // New flushes each time, so both sides always have work.
        let day = format!("2024-01-0{}", 2 + trial % 3);
        let dir = day_dir(&s, "binance", "BTC_USDT", &day);
        let base = 1_704_153_600_000 + (trial % 3) as i64 * 86_400_000;
        let first = 9_000_000 + (trial % 3) as i64 * 10_000;
        let rows: Vec<(i64, i64)> = (0..2000).map(|i| (base + i * 997, first + i)).collect();
        write_trades(&dir.join(format!("late-{trial}.parquet")), &rows);
        let mut c = s
            .cmd(&["compact", "--wait", "60s"])
            .env(SETTLED.0, SETTLED.1)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(150 + trial * 237 % 900));
        let _ = c.kill();
        let _ = c.wait();
    }
    let log = stop_daemon(d);
    let (code, _, err) = run(&s, &["maintain"], &[("MDKEEP__QUOTA__MIN_FREE", "0%")]);
    assert_eq!(code, 0, "{err}");
    let got = counts(&s.root().join("data"));
    let btc = got.iter().find(|c| c.0 == "binance/BTC_USDT").unwrap();
    let was = want.iter().find(|c| c.0 == "binance/BTC_USDT").unwrap();
    // Three days of late flushes, each written twice: every key once.
    assert_eq!(btc.1, btc.2, "no key twice: {got:?}\n{log}");
    assert_eq!(btc.2, was.2 + 6000, "{got:?}");
    let others: Vec<_> = want.iter().filter(|c| c.0 != "binance/BTC_USDT").cloned().collect();
    let root = s.root().join("data");
    let now: Vec<_> = counts(&root)
        .into_iter()
        .filter(|c| c.0 != "binance/BTC_USDT")
        .collect();
    let mut all = [now.clone(), vec![btc.clone()]].concat();
    all.sort();
    assert_exactly_once(&root, &all, "kill -9 racing the daemon");
    assert_eq!(
        now.iter().map(|c| c.2).collect::<Vec<_>>(),
        others.iter().map(|c| c.2).collect::<Vec<_>>()
    );
    assert!(temp_files(&s.root().join("data")).is_empty());
}

#[test]
fn two_compacts_at_once_take_turns() {
    let s = Sandbox::new();
    let (p, want) = pile("binance", 2, 2, 4, 3000);
    drop_in(&p.hot(), &s.hot());
    assert_eq!(run(&s, &["scan"], &[]).0, 0);
    let spawn = || {
        s.cmd(&["compact", "--wait", "120s"])
            .env(SETTLED.0, SETTLED.1)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for c in [a, b] {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_exactly_once(&s.root().join("data"), &want, "two compacts");
}

#[test]
fn a_file_name_that_is_not_utf8_is_quarantined_and_maintenance_goes_on() {
    use std::os::unix::ffi::OsStrExt;
    let s = Sandbox::new();
    let dir = day_dir(&s, "binance", "BTC_USDT", "2024-01-01");
    write_trades(&dir.join("a.parquet"), &day_rows(1, 50));
    write_trades(&dir.join("b.parquet"), &day_rows(40, 50));
    let odd = dir.join(std::ffi::OsStr::from_bytes(b"odd\xff.parquet"));
    write_trades(&odd, &day_rows(1000, 5));
    let (code, r) = run_json(&s, &["maintain"], &[("MDKEEP__QUOTA__MIN_FREE", "0%")]);
    assert_eq!(code, 4, "done, with failures: {r}");
    let reason = first_quarantined(&r, "scan", ".parquet");
    assert!(reason.contains("UTF-8"), "{reason}");
    assert!(!odd.exists());
    assert_eq!(r["compact"]["rows_out"].as_u64(), Some(89), "{r}");
    // The next run is not stuck on it.
    let (code, r) = run_json(&s, &["maintain"], &[("MDKEEP__QUOTA__MIN_FREE", "0%")]);
    assert_eq!(code, 0, "{r}");
    assert_exactly_once(
        &s.root().join("data"),
        &[("binance/BTC_USDT".into(), 89, 89)],
        "odd name",
    );
}

#[test]
fn a_timestamp_its_unit_cannot_place_is_quarantined_and_the_rest_compacted() {
    let s = Sandbox::new();
    let dir = day_dir(&s, "binance", "BTC_USDT", "2024-01-01");
    write_trades(&dir.join("a.parquet"), &day_rows(1, 50));
    write_trades(&dir.join("b.parquet"), &day_rows(30, 50));
    // One microsecond value in a millisecond column.
    let mut bad = day_rows(500, 3);
    bad[1].0 = 1_704_110_400_000_000;
    write_trades(&dir.join("micros.parquet"), &bad);
    let (code, r) = run_json(&s, &["maintain"], &[("MDKEEP__QUOTA__MIN_FREE", "0%")]);
    assert_eq!(code, 4, "{r}");
    let reason = first_quarantined(&r, "scan", "micros.parquet");
    assert!(reason.contains("`ts`"), "{reason}");
    assert!(s.root().join("data/quarantine").exists());
    assert_eq!(r["compact"]["rows_out"].as_u64(), Some(79), "{r}");
    let (code, _, err) = run(&s, &["compact"], &[]);
    assert_eq!(code, 0, "not stuck: {err}");
    assert_exactly_once(
        &s.root().join("data"),
        &[("binance/BTC_USDT".into(), 79, 79)],
        "µs in ms",
    );
}

#[test]
fn an_unreadable_page_is_quarantined_by_compaction_and_the_series_retried() {
    let s = Sandbox::new();
    let dir = day_dir(&s, "binance", "BTC_USDT", "2024-01-01");
    write_trades(&dir.join("a.parquet"), &day_rows(1, 500));
    write_trades(&dir.join("b.parquet"), &day_rows(400, 500));
    let eth = day_dir(&s, "binance", "ETH_USDT", "2024-01-01");
    write_trades(&eth.join("a.parquet"), &day_rows(1, 100));
    write_trades(&eth.join("b.parquet"), &day_rows(50, 100));
    let broken = dir.join("broken.parquet");
    write_trades(&broken, &day_rows(2000, 500));
    // Footer intact, first page header garbage.
    let mut bytes = std::fs::read(&broken).unwrap();
    for b in &mut bytes[4..68] {
        *b = 0xff;
    }
    std::fs::write(&broken, &bytes).unwrap();
    assert_eq!(run(&s, &["scan"], &[]).0, 0, "the footer reads fine");
    let (code, m) = run_json(&s, &["compact"], &[]);
    assert_eq!(code, 4, "done, with failures: {m}");
    first_quarantined(&m, "compact", "broken.parquet");
    assert!(!broken.exists());
    let (code, m) = run_json(&s, &["compact"], &[]);
    assert_eq!(code, 0, "not stuck: {m}");
    assert_exactly_once(
        &s.root().join("data"),
        &[
            ("binance/BTC_USDT".into(), 899, 899),
            ("binance/ETH_USDT".into(), 149, 149),
        ],
        "broken page",
    );
}

#[test]
fn same_named_sources_keep_every_row_and_reingest_adds_nothing() {
    let s = Sandbox::new();
    let src = tempfile::tempdir().unwrap();
    let (a, b) = (src.path().join("a/trades.parquet"), src.path().join("b/trades.parquet"));
    write_trades(&a, &day_rows(1, 2));
    write_trades(&b, &day_rows(10, 2));
    let args = [
        "ingest",
        "parquet",
        "--dataset",
        "trades",
        "--set",
        "exchange=kraken",
        "--set",
        "symbol=X_Y",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ];
    let (code, _, err) = run(&s, &args, &[]);
    assert_eq!(code, 0, "{err}");
    assert_exactly_once(
        &s.root().join("data"),
        &[("kraken/X_Y".into(), 4, 4)],
        "same-named ingest",
    );
    let (code, _, err) = run(&s, &args, &[]);
    assert_eq!(code, 0, "{err}");
    assert_exactly_once(&s.root().join("data"), &[("kraken/X_Y".into(), 4, 4)], "ingested again");
}

#[test]
fn an_input_replaced_in_place_after_it_was_read_survives() {
    let s = Sandbox::new();
    let dir = day_dir(&s, "binance", "BTC_USDT", "2024-01-01");
    let a = dir.join("a.parquet");
    write_trades(&a, &day_rows(1, 20));
    write_trades(&dir.join("b.parquet"), &day_rows(21, 20));
    assert_eq!(run(&s, &["scan"], &[]).0, 0);
    let mut c = s
        .cmd(&["compact"])
        .env(SETTLED.0, SETTLED.1)
        .env("MDKEEP_FAILPOINT", "rewrite:before-commit=pause")
        .env("MDKEEP_FAILPOINT_PAUSE_MS", "1500")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(c.stderr.take().unwrap());
    let mut line = String::new();
    while err.read_line(&mut line).unwrap() > 0 && !line.contains("paused") {
        line.clear();
    }
    assert!(line.contains("paused"), "the failpoint was reached");
    // The collector rewrites a.parquet with more rows, by rename.
    write_trades(&a, &day_rows(1, 30));
    assert!(c.wait().unwrap().success());
    assert!(a.exists(), "the replaced file is kept");
    let (code, _, e) = run(&s, &["maintain"], &[("MDKEEP__QUOTA__MIN_FREE", "0%")]);
    assert_eq!(code, 0, "{e}");
    assert_exactly_once(
        &s.root().join("data"),
        &[("binance/BTC_USDT".into(), 40, 40)],
        "replaced in place",
    );
}

#[test]
#[ignore = "needs root to mount a small tmpfs"]
fn a_full_disk_exits_74_loses_nothing_and_maintain_still_frees_space() {
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test mounts a tmpfs: run it as root"
    );
    let s = Sandbox::new();
    let hot = s.hot();
    std::fs::create_dir_all(&hot).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=6m", "tmpfs"])
        .arg(&hot)
        .status()
        .unwrap();
    assert!(ok.success(), "mount tmpfs");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _guard = Unmount(hot.clone());
    // Fill most of it with one day's pile.
    let (p, want) = pile("binance", 1, 1, 4, 1000);
    drop_in(&p.hot(), &hot);
    let filler = hot.join("filler");
    let (free, _) = space(&hot);
    std::fs::write(&filler, vec![7u8; (free.saturating_sub(1 << 20)) as usize]).unwrap();
    let env = [("MDKEEP__QUOTA__MIN_FREE", "0%")];
    assert_eq!(run(&s, &["scan"], &env).0, 0);
    let (code, m) = run_json(&s, &["compact"], &env);
    assert_eq!(code, 74, "{m}");
    let reason = m["failures"][0]["reason"].as_str().unwrap().to_string();
    assert!(reason.contains(hot.to_str().unwrap()), "names the root: {reason}");
    assert!(temp_files(&s.root().join("data")).is_empty(), "no temporary left");
    assert_nothing_lost(&s.root().join("data"), &want, "disk full");
    let (code, r) = run_json(&s, &["maintain"], &env);
    assert_eq!(code, 74, "{r}");
    let order: Vec<&str> = r["order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for step in ["retention", "tier", "quota"] {
        assert!(order.contains(&step), "{step} ran: {order:?}");
        assert!(
            r["failures"].as_array().unwrap().iter().all(|f| f["step"] != step),
            "{step} did not fail: {r}"
        );
    }
    assert_nothing_lost(&s.root().join("data"), &want, "maintain on a full disk");
    // Below its floor, the steps that free space go before compaction.
    let (_, r) = run_json(&s, &["maintain", "--dry-run"], &[("MDKEEP__QUOTA__MIN_FREE", "50%")]);
    assert_eq!(r["dry_run"], true);
    let (_, r) = run_json(&s, &["maintain"], &[("MDKEEP__QUOTA__MIN_FREE", "50%")]);
    assert_eq!(r["low_space"], true, "{r}");
    assert_eq!(r["order"].as_array().unwrap().last().unwrap(), "compact", "{r}");
    std::fs::remove_file(&filler).unwrap();
}

fn space(p: &Path) -> (u64, u64) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0);
    (
        st.f_bavail as u64 * st.f_frsize as u64,
        st.f_blocks as u64 * st.f_frsize as u64,
    )
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let s = Sandbox::new();
    s.gen(2, 2, 2, 10);
    assert_eq!(run(&s, &["scan"], &[]).0, 0);
    let mut c = s
        .cmd(&["ls", "--dataset", "trades"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(c.stdout.take());
    let o = c.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));
}

#[test]
fn a_policy_command_on_an_empty_catalog_says_scan_fills_it() {
    let s = Sandbox::new();
    s.gen(1, 1, 1, 10);
    for cmd in ["compact", "tier", "rollup", "retention"] {
        let (code, _, err) = run(&s, &[cmd], &[]);
        assert_eq!(code, 0, "{cmd}: {err}");
        assert!(
            err.contains("catalog is empty") && err.contains("mdkeep scan"),
            "{cmd}: {err}"
        );
    }
}

#[test]
fn config_values_need_units_and_sane_limits() {
    let s = Sandbox::new();
    let cases: [(&str, &str, &str); 4] = [
        ("MDKEEP__DATASETS__TRADES__KEEP", "90", "datasets.trades.keep"),
        (
            "MDKEEP__COMPACTION__MEMORY_LIMIT",
            "268435456",
            "compaction.memory_limit",
        ),
        ("MDKEEP__QUOTA__MIN_FREE", "60%", "quota.min_free"),
        ("MDKEEP__TIERS__WARM__ROOT", "data/processed/warm", "tiers.warm.root"),
    ];
    for (k, v, key) in cases {
        let (code, _, err) = run(&s, &["ls"], &[(k, v)]);
        assert_eq!(code, 78, "{k}={v}: {err}");
        assert!(err.contains(key), "{k}={v} names `{key}`: {err}");
    }
}
