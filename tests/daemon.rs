//! `mdkeep daemon` as a real process: schedules that run every second,
//! a submitted job, /healthz and /metrics against the catalog, and SIGTERM.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{free_port, http_get, py, wait_for, Sandbox};
use serde_json::Value;

/// Distinct trades and rows over every root, by DuckDB.
fn trades(s: &Sandbox) -> String {
    py(
        "import duckdb, sys\n\
         r = duckdb.connect().execute('SET enable_progress_bar = false').execute(f\"SELECT count(DISTINCT trade_id) FROM read_parquet('{sys.argv[1]}/trades/**/*.parquet')\").fetchone()\n\
         print(r[0])",
        &[&s.hot().display().to_string()],
    )
}

/// The value of the sample `name{labels}` in a Prometheus text page.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn start(s: &Sandbox, port: u16, env: &[(&str, &str)], stderr: Stdio) -> std::process::Child {
    s.daemon(port, env, stderr)
}

#[test]
fn the_daemon_compacts_runs_a_job_serves_metrics_and_stops_on_sigterm() {
    let s = Sandbox::new();
    s.gen(1, 2, 2, 200);
    let want = trades(&s);
    let port = free_port();
    let env = [
        ("MDKEEP__SCHEDULE__SCAN__CRON", "* * * * * *"),
        ("MDKEEP__SCHEDULE__COMPACT__CRON", "*/2 * * * * *"),
        ("RUST_LOG", "mdkeep=info"),
    ];
    let mut daemon = start(&s, port, &env, Stdio::piped());

    wait_for("/healthz", Duration::from_secs(20), || {
        http_get(port, "/healthz").is_ok_and(|(code, body)| code == 200 && body.trim() == "ok")
    });
    // The container's HEALTHCHECK command agrees.
    let url = format!("http://127.0.0.1:{port}/healthz");
    assert!(s.cmd(&["healthcheck", "--url", &url]).status().unwrap().success());
    // The schedules scan and compact the collector's files on their own.
    wait_for("the scheduled compaction", Duration::from_secs(60), || {
        let ls = s.json(&["ls", "--dataset", "trades"]);
        let parts = ls.as_array().unwrap();
        !parts.is_empty() && parts.iter().all(|p| p["files"] == 1)
    });

    // A submitted job runs, woken promptly.
    let spec = s.root().join("jobs/quick.toml");
    std::fs::create_dir_all(spec.parent().unwrap()).unwrap();
    std::fs::write(
        &spec,
        format!(
            "name = \"quick\"\nframework = \"command\"\nmemory = \"64MiB\"\nargv = [\"{}\", \"hog\", \"--mb\", \"8\", \"--hold-ms\", \"50\"]\n",
            env!("CARGO_BIN_EXE_mdkeep")
        ),
    )
    .unwrap();
    let id = s.json(&["jobs", "submit", spec.to_str().unwrap()])["id"]
        .as_i64()
        .unwrap();
    let mut job = Value::Null;
    wait_for("the job", Duration::from_secs(30), || {
        job = s.json(&["jobs", "show", &id.to_string()]);
        job["state"] == "succeeded"
    });
    let t = |k: &str| chrono::DateTime::parse_from_rfc3339(job[k].as_str().unwrap()).unwrap();
    let latency = t("started_at") - t("queued_at");
    eprintln!("submit-to-start latency: {} ms", latency.num_milliseconds());
    assert!(latency.num_milliseconds() < 2000, "{job}");

    // /metrics agrees with the catalog once the compaction task has ended
    // (its catalog commit comes before it retires the inputs; the data
    // families are rendered again after each task).
    let ls = s.json(&["ls", "--dataset", "trades"]);
    let files: u64 = ls
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["files"].as_u64().unwrap())
        .sum();
    let bytes: u64 = ls
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["bytes"].as_u64().unwrap())
        .sum();
    let mut page = String::new();
    wait_for("the compaction task to end", Duration::from_secs(30), || {
        let (code, p) = http_get(port, "/metrics").unwrap();
        assert_eq!(code, 200, "{p}");
        page = p;
        sample(&page, "mdkeep_task_last_success_timestamp_seconds{task=\"compact\"}").is_some()
            && sample(&page, "mdkeep_dataset_files{dataset=\"trades\",tier=\"hot\"}") == Some(files as f64)
    });
    assert_eq!(
        sample(&page, "mdkeep_dataset_files{dataset=\"trades\",tier=\"hot\"}"),
        Some(files as f64),
        "{page}"
    );
    assert_eq!(
        sample(&page, "mdkeep_dataset_bytes{dataset=\"trades\",tier=\"hot\"}"),
        Some(bytes as f64)
    );
    assert_eq!(
        sample(&page, "mdkeep_jobs{state=\"succeeded\",framework=\"command\"}"),
        Some(1.0),
        "{page}"
    );
    assert!(
        sample(&page, "mdkeep_task_last_success_timestamp_seconds{task=\"compact\"}").is_some(),
        "{page}"
    );
    let (code, status) = http_get(port, "/status").unwrap();
    assert_eq!(code, 200);
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["deferred"], serde_json::json!([]), "nothing deferred: {status}");
    assert!(
        status["schedules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["task"] == "compact"),
        "{status}"
    );
    let o = s.cmd(&["schedule", "ls", "--json"]).envs(env).output().unwrap();
    let sched: Value = serde_json::from_slice(&o.stdout).unwrap();
    let compact = sched
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["task"] == "compact")
        .unwrap()
        .clone();
    assert!(compact["last_result"].as_str().unwrap().starts_with("ok"), "{sched}");
    assert!(compact["next_run"].is_string(), "{sched}");

    // A job still running at SIGTERM is interrupted (daemon.on_shutdown = "interrupt").
    let long = s.root().join("jobs/long.toml");
    std::fs::write(
        &long,
        format!(
            "name = \"long\"\nframework = \"command\"\nmemory = \"64MiB\"\nargv = [\"{}\", \"hog\", \"--mb\", \"8\", \"--hold-ms\", \"60000\"]\n",
            env!("CARGO_BIN_EXE_mdkeep")
        ),
    )
    .unwrap();
    let long_id = s.json(&["jobs", "submit", long.to_str().unwrap()])["id"]
        .as_i64()
        .unwrap();
    wait_for("the long job to start", Duration::from_secs(30), || {
        s.json(&["jobs", "show", &long_id.to_string()])["state"] == "running"
    });

    // SIGTERM: exit 0 within a few seconds, every row still there once.
    let t0 = Instant::now();
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let code = loop {
        if let Some(st) = daemon.try_wait().unwrap() {
            break st;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "the daemon did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(daemon.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(code.success(), "exit {code:?}: {err}");
    eprintln!("stopped {} ms after SIGTERM", t0.elapsed().as_millis());
    assert!(err.contains("daemon stopped"), "{err}");
    assert_eq!(s.json(&["jobs", "show", &long_id.to_string()])["state"], "interrupted");
    assert_eq!(trades(&s), want, "rows changed");
    let raw = py(
        "import duckdb, sys\n\
         print(duckdb.connect().execute('SET enable_progress_bar = false').execute(f\"SELECT count(*) - count(DISTINCT trade_id) FROM read_parquet('{sys.argv[1]}/trades/**/*.parquet')\").fetchone()[0])",
        &[&s.hot().display().to_string()],
    );
    assert_eq!(raw, "0", "duplicates left after compaction");
}

#[test]
fn healthz_stays_reachable_under_idle_connections_and_says_when_the_worker_stopped() {
    let s = Sandbox::new();
    s.gen(1, 1, 2, 50);
    let port = free_port();
    let env = [
        ("MDKEEP__HTTP__MAX_CONNECTIONS", "16"),
        ("MDKEEP__HTTP__HEADER_TIMEOUT", "1s"),
        ("MDKEEP__SCHEDULE__SCAN__CRON", "* * * * * *"),
    ];
    let mut daemon = start(&s, port, &env, Stdio::null());
    wait_for("/healthz", Duration::from_secs(20), || {
        http_get(port, "/healthz").is_ok_and(|(code, _)| code == 200)
    });

    // A thousand clients that connect and say nothing, and some that send half a header.
    let mut idle = Vec::new();
    for i in 0..1000 {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        if i % 10 == 0 {
            std::io::Write::write_all(&mut c, b"GET /metrics HTTP/1.1\r\nHost: x\r\n").unwrap();
        }
        idle.push(c);
    }
    let (code, body) = http_get(port, "/healthz").expect("/healthz answers beside 1000 idle connections");
    assert_eq!((code, body.trim()), (200, "ok"));

    // /metrics is valid Prometheus text, by the reference parser.
    wait_for("the metrics snapshot", Duration::from_secs(20), || {
        http_get(port, "/metrics").is_ok_and(|(_, p)| p.contains("mdkeep_dataset_files{"))
    });
    let (code, page) = http_get(port, "/metrics").unwrap();
    assert_eq!(code, 200);
    let page_file = s.root().join("metrics.txt");
    std::fs::write(&page_file, &page).unwrap();
    let families = py(
        "import sys\n\
         from prometheus_client.parser import text_string_to_metric_families\n\
         names = [f.name for f in text_string_to_metric_families(open(sys.argv[1]).read())]\n\
         print(len(names), ' '.join(sorted(names)))",
        &[&page_file.display().to_string()],
    );
    assert!(
        families.contains("mdkeep_dataset_files") && families.contains("mdkeep_metrics_snapshot_age_seconds"),
        "{families}"
    );
    drop(idle);
    // A client that never finishes its header is dropped after http.header_timeout.
    let mut slow = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Write::write_all(&mut slow, b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut rest = Vec::new();
    let read = std::io::Read::read_to_end(&mut slow, &mut rest);
    assert!(
        read.is_ok() && !String::from_utf8_lossy(&rest).contains("200 OK"),
        "a half header was kept or answered: {read:?} {}",
        String::from_utf8_lossy(&rest)
    );

    // The job worker stops (its table is gone): /healthz says so.
    let db = s.root().join("data/state/mdkeep.db");
    py(
        "import sqlite3, sys\n\
         c = sqlite3.connect(sys.argv[1]); c.execute('ALTER TABLE jobs RENAME TO jobs_gone'); c.commit()",
        &[&db.display().to_string()],
    );
    let mut last = (0, String::new());
    wait_for("/healthz to turn 503", Duration::from_secs(20), || {
        last = http_get(port, "/healthz").unwrap_or_default();
        last.0 == 503
    });
    assert!(last.1.contains("the job worker stopped"), "{}", last.1);
    let (_, status) = http_get(port, "/status").unwrap_or_default();
    eprintln!("/status after the worker stopped: {status}");

    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let _ = daemon.wait();
}

#[test]
fn a_bad_schedule_names_its_key() {
    let s = Sandbox::new();
    let o = s
        .cmd(&["daemon"])
        .env("MDKEEP__SCHEDULE__SCAN__CRON", "61 * * * *")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(78));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("schedule.scan.cron"), "{err}");
}

#[test]
fn on_shutdown_finish_lets_a_running_job_end_within_the_grace() {
    let s = Sandbox::new();
    let port = free_port();
    let env = [
        ("MDKEEP__DAEMON__ON_SHUTDOWN", "finish"),
        ("MDKEEP__DAEMON__SHUTDOWN_GRACE", "30s"),
    ];
    let mut daemon = start(&s, port, &env, Stdio::null());
    let spec = s.root().join("jobs/short.toml");
    std::fs::create_dir_all(spec.parent().unwrap()).unwrap();
    std::fs::write(
        &spec,
        format!(
            "name = \"short\"\nframework = \"command\"\nmemory = \"64MiB\"\nargv = [\"{}\", \"hog\", \"--mb\", \"8\", \"--hold-ms\", \"2000\"]\n",
            env!("CARGO_BIN_EXE_mdkeep")
        ),
    )
    .unwrap();
    let id = s.json(&["jobs", "submit", spec.to_str().unwrap()])["id"]
        .as_i64()
        .unwrap();
    wait_for("the job to start", Duration::from_secs(30), || {
        s.json(&["jobs", "show", &id.to_string()])["state"] == "running"
    });
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let st = daemon.wait().unwrap();
    assert!(st.success(), "{st:?}");
    assert_eq!(s.json(&["jobs", "show", &id.to_string()])["state"], "succeeded");
}
