//! Backtest results at a glance: three command jobs (two write metrics and
//! an `equity.parquet`, one writes neither) on `/jobs` (metrics, `?sort=`),
//! their pages (the equity SVG, or none), the comparison page and `jobs
//! compare --json` against the jobs' `result.json`; the quality page and
//! `quality --json` telling a repaired `duplicate_keys` from a present
//! `bad_price`; and the header's last maintain after a CLI run.

mod common;

use std::process::{Child, Stdio};
use std::time::Duration;

use common::{free_port, get_ok as get, http_get, py, python, stop, wait_for, Sandbox};
use serde_json::Value;

/// A job that writes its metrics to `$MDKEEP_RESULT` and ten points of
/// equity, from 1000 to 1000 × (1 + total_return), to `equity.parquet`.
const WRITER: &str = "import json, os, sys
import pyarrow as pa, pyarrow.parquet as pq
ret, dd, n = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
with open(os.environ['MDKEEP_RESULT'], 'w') as f:
    json.dump(dict(total_return=ret, max_drawdown=dd, trades=n, total_profit=1000 * ret, note='x'), f)
t0 = 1704153600000
ts = pa.array([t0 + i * 60000 for i in range(10)], pa.timestamp('ms', tz='UTC'))
eq = pa.array([1000.0 * (1 + ret * i / 9) for i in range(9)] + [1000.0 * (1 + ret)], pa.float64())
pq.write_table(pa.table(dict(ts=ts, equity=eq)), os.path.join(os.environ['MDKEEP_ARTIFACTS'], 'equity.parquet'))";

fn submit(s: &Sandbox, name: &str, memory: &str, argv: &str) -> i64 {
    let spec = s.root().join(format!("jobs/{name}.toml"));
    std::fs::create_dir_all(spec.parent().unwrap()).unwrap();
    std::fs::write(
        &spec,
        format!("name = \"{name}\"\nframework = \"command\"\nmemory = \"{memory}\"\nargv = {argv}\n"),
    )
    .unwrap();
    s.json(&["jobs", "submit", spec.to_str().unwrap()])["id"]
        .as_i64()
        .unwrap()
}

fn writer(s: &Sandbox, name: &str, ret: f64, dd: f64, trades: u64) -> i64 {
    let py = python().display().to_string();
    // pyarrow alone needs more than a shell's 64 MiB.
    submit(
        s,
        name,
        "512MiB",
        &format!("[\"{py}\", \"-c\", '''{WRITER}''', \"{ret}\", \"{dd}\", \"{trades}\"]"),
    )
}

fn start(s: &Sandbox, port: u16) -> Child {
    let d = s.daemon(port, &[], Stdio::null());
    wait_for("/healthz", Duration::from_secs(20), || {
        http_get(port, "/healthz").is_ok_and(|(code, _)| code == 200)
    });
    d
}

/// Where each job's row starts on a `/jobs` page.
fn order(page: &str, ids: &[i64]) -> Vec<usize> {
    ids.iter()
        .map(|id| {
            page.find(&format!("<a href=\"jobs/{id}\">"))
                .unwrap_or_else(|| panic!("job {id} is not listed: {page}"))
        })
        .collect()
}

fn result_json(s: &Sandbox, id: i64) -> Value {
    let dir = s.json(&["jobs", "show", &id.to_string()])["dir"]
        .as_str()
        .unwrap()
        .to_string();
    serde_json::from_str(&std::fs::read_to_string(format!("{dir}/result.json")).unwrap()).unwrap()
}

#[test]
fn jobs_show_their_metrics_equity_and_comparison() {
    let s = Sandbox::new();
    let a = writer(&s, "good", 0.125, 0.03, 7);
    let b = writer(&s, "bad", -0.05, 0.2, 3);
    let c = submit(&s, "silent", "64MiB", "[\"sh\", \"-c\", \"echo nothing to report\"]");
    // The venv's Python links into root's home: a root test worker keeps root.
    let o = s
        .cmd(&["jobs", "work", "--once"])
        .env("MDKEEP__JOBS__RUN_AS", "root")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for id in [a, b, c] {
        let j = s.json(&["jobs", "show", &id.to_string()]);
        assert_eq!(
            j["state"],
            "succeeded",
            "{j}\n{}",
            s.ok(&["jobs", "logs", &id.to_string()])
        );
    }

    // `jobs ls --json` carries the normalized metrics; `--sort` orders by them.
    let ls = s.json(&["jobs", "ls", "--sort", "total_return"]);
    let ids: Vec<i64> = ls
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![a, b, c], "{ls}");
    assert_eq!(ls[0]["metrics"]["total_return"], 0.125, "{ls}");
    assert_eq!(ls[0]["metrics"]["trades"], 7, "{ls}");
    assert!(ls[2]["metrics"]["total_return"].is_null(), "{ls}");
    assert!(ls[0]["duration_seconds"].as_f64().unwrap() >= 0.0, "{ls}");
    let text = s.ok(&["jobs", "ls"]);
    assert!(text.contains("12.50 %") && text.contains("-5.00 %"), "{text}");

    // A maintain run from the CLI shows in the header.
    // (Its exit code does not matter here: ok or not, the run is recorded.)
    s.run(&["maintain"]);
    let port = free_port();
    let daemon = start(&s, port);
    let jobs = get(port, "/jobs");
    assert!(
        jobs.contains("last maintain") && !jobs.contains("no maintain run yet"),
        "{jobs}"
    );
    assert!(
        jobs.contains("<td>12.50 %</td>") && jobs.contains("<td>-5.00 %</td>"),
        "{jobs}"
    );
    assert!(
        jobs.contains("<td>3.00 %</td>") && jobs.contains("<td>7</td>"),
        "{jobs}"
    );
    let by_return = get(port, "/jobs?sort=total_return");
    let at = order(&by_return, &[a, b, c]);
    assert!(at[0] < at[1] && at[1] < at[2], "largest first, none last: {by_return}");
    let asc = get(port, "/jobs?sort=total_return&order=asc");
    let at = order(&asc, &[a, b, c]);
    assert!(at[1] < at[0] && at[0] < at[2], "smallest first, none last: {asc}");
    let by_dd = get(port, "/jobs?sort=max_drawdown");
    let at = order(&by_dd, &[a, b]);
    assert!(at[1] < at[0], "{by_dd}");
    assert_eq!(http_get(port, "/jobs?sort=nonsense").unwrap().0, 400);
    // `/api/jobs` is still `jobs ls --json`.
    let o = s.cmd(&["jobs", "ls", "--json"]).output().unwrap();
    let cli: Value = serde_json::from_slice(&o.stdout).unwrap();
    let api: Value = serde_json::from_str(&get(port, "/api/jobs")).unwrap();
    assert_eq!(api, cli);

    // A job's page: its metrics, the equity SVG, or none.
    let page = get(port, &format!("/jobs/{a}"));
    assert!(page.contains("<svg") && page.contains("Equity of job"), "{page}");
    assert!(
        page.contains("<td>total_return</td>") && page.contains("<td>0.125</td>"),
        "{page}"
    );
    assert!(page.contains("<td>note</td>"), "every metric: {page}");
    assert!(
        page.contains("href=\"../jobs\""),
        "the header's links lead back up: {page}"
    );
    let none = get(port, &format!("/jobs/{c}"));
    assert!(none.contains("No equity curve") && !none.contains("<svg"), "{none}");
    assert!(none.contains("nothing to report"), "the log tail: {none}");
    assert_eq!(http_get(port, "/jobs/999").unwrap().0, 404);
    assert_eq!(http_get(port, &format!("/jobs/{a}/log")).unwrap().0, 200);
    let r: Value = serde_json::from_str(&get(port, &format!("/jobs/{a}/result.json"))).unwrap();
    assert_eq!(r, result_json(&s, a));

    // The comparison, as a page and as JSON, agrees with the result.json files.
    let ids = format!("{a},{b},{c}");
    let cmp = get(port, &format!("/jobs/compare?ids={ids}"));
    assert!(
        cmp.contains("<td>12.50 %</td>") && cmp.contains("<td>-5.00 %</td>"),
        "{cmp}"
    );
    assert!(cmp.contains("<svg") && cmp.contains(&format!("job {b} · bad")), "{cmp}");
    let o = s
        .cmd(&[
            "jobs",
            "compare",
            &a.to_string(),
            &b.to_string(),
            &c.to_string(),
            "--json",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cli: Value = serde_json::from_slice(&o.stdout).unwrap();
    let api: Value = serde_json::from_str(&get(port, &format!("/api/jobs/compare?ids={ids}"))).unwrap();
    assert_eq!(api, cli);
    for (i, id) in [a, b, c].into_iter().enumerate() {
        let j = &cli["jobs"][i];
        assert_eq!(j["id"], id, "{cli}");
        assert_eq!(j["metrics"], result_json(&s, id)["metrics"], "{cli}");
    }
    let last = |i: usize| cli["jobs"][i]["equity_last"].as_f64().unwrap();
    assert!(
        (last(0) - 1125.0).abs() < 1e-9 && (last(1) - 950.0).abs() < 1e-9,
        "{cli}"
    );
    assert!(cli["jobs"][2]["equity_last"].is_null(), "{cli}");
    assert!(cli["same_data"].is_null(), "no job read a [data] export: {cli}");
    assert_eq!(http_get(port, "/jobs/compare?ids=1,999").unwrap().0, 404);
    assert_eq!(http_get(port, "/jobs/compare").unwrap().0, 400);

    for path in [
        "/jobs".to_string(),
        format!("/jobs/{a}"),
        format!("/jobs/compare?ids={ids}"),
    ] {
        let page = get(port, &path);
        for banned in ["<script", "<form", "<button", "src=", "href=\"http", "url("] {
            assert!(!page.contains(banned), "{path} holds {banned}");
        }
    }
    stop(daemon);
}

/// One series with two bad prices, and a second file repeating a row.
fn duplicates_and_bad_prices(s: &Sandbox) {
    let dir = s.hot().join("trades/exchange=x/symbol=T/date=2024-01-02");
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, ids: &str, prices: &str| {
        py(
            "import pyarrow as pa, pyarrow.parquet as pq, sys\n\
             ids, prices = eval(sys.argv[2]), eval(sys.argv[3])\n\
             t0 = 1704153600000\n\
             pq.write_table(pa.table({'ts': pa.array([t0 + i * 1000 for i in ids], pa.timestamp('ms')),\n\
                 'trade_id': pa.array(ids, pa.int64()), 'price': prices,\n\
                 'amount': [1.0] * len(ids), 'side': ['buy'] * len(ids)}), sys.argv[1])",
            &[&dir.join(name).display().to_string(), ids, prices],
        );
    };
    write("a.parquet", "[1, 2, 3, 4]", "[100.0, -1.0, -2.0, 100.0]");
    write("b.parquet", "[4, 5]", "[100.0, 101.0]");
    s.settled(&["scan"]);
    s.settled(&["compact"]);
}

#[test]
fn quality_tells_repaired_findings_from_present_ones() {
    let s = Sandbox::new();
    duplicates_and_bad_prices(&s);
    let q = s.json(&["quality", "--stored"]);
    let find = |kind: &str| -> Value {
        q["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind}: {q}"))
            .clone()
    };
    let dup = find("duplicate_keys");
    assert_eq!(dup["status"], "repaired", "{dup}");
    assert_eq!(dup["rows"], 1, "{dup}");
    // The file the copy came from is gone: the finding names the file holding the rows now.
    assert_eq!(dup["file_exists"], false, "{dup}");
    assert!(
        dup["now_in"][0]
            .as_str()
            .unwrap()
            .starts_with("trades/exchange=x/symbol=T/date=2024-01-02/"),
        "{dup}"
    );
    let bad = find("bad_price");
    assert_eq!(bad["status"], "present", "{bad}");
    assert_eq!(bad["rows"], 2, "{bad}");
    assert_eq!(bad["file_exists"], true, "{bad}");
    let text = s.ok(&["quality", "--stored"]);
    assert!(text.contains("repaired") && text.contains("present"), "{text}");
    // The report sums them apart.
    let rep = s.json(&["report"]);
    let by_kind = rep["quality"]["by_kind"].as_array().unwrap();
    assert!(
        by_kind
            .iter()
            .any(|k| k["kind"] == "duplicate_keys" && k["status"] == "repaired"),
        "{by_kind:?}"
    );
    assert!(
        by_kind
            .iter()
            .any(|k| k["kind"] == "bad_price" && k["status"] == "present"),
        "{by_kind:?}"
    );

    // The page: "In the data now", then "Repaired by mdkeep", each finding in its own.
    let port = free_port();
    let daemon = start(&s, port);
    let page = get(port, "/quality");
    let (now, repaired) = page.split_at(page.find("Repaired by mdkeep").expect("two sections"));
    assert!(
        now.contains("In the data now") && now.contains("<td>bad_price</td>"),
        "{page}"
    );
    assert!(!now.contains("<td>duplicate_keys</td>"), "{page}");
    assert!(
        repaired.contains("<td>duplicate_keys</td>") && repaired.contains("now in "),
        "{page}"
    );
    assert!(!repaired.contains("<td>bad_price</td>"), "{page}");
    assert!(page.contains("overflow-wrap:anywhere"), "long paths wrap");
    // Times to the second on the page; the JSON keeps them whole.
    assert!(page.contains("2024-01-02 00:00:02"), "{page}");
    stop(daemon);
}
