//! The daemon's dashboard as a browser sees it: every page fetched from a
//! running daemon over a pile with a finished job and quality findings, its
//! figures checked against `report --format json`, `jobs ls --json`,
//! `quality --json` and `coverage --json`; and the bearer token.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{free_port, get_ok as get, http_get, http_get_with, py, stop, wait_for, Sandbox};
use serde_json::Value;

fn start(s: &Sandbox, port: u16, env: &[(&str, &str)]) -> Child {
    s.daemon(port, env, Stdio::null())
}

fn get_json(port: u16, path: &str) -> Value {
    serde_json::from_str(&get(port, path)).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// A pile of generated trades plus one crafted series with two bad prices,
/// compacted (which records the findings), and its report caches filled.
fn pile(s: &Sandbox) {
    s.gen(2, 2, 2, 50);
    let dir = s.hot().join("trades/exchange=x/symbol=T/date=2024-01-02");
    std::fs::create_dir_all(&dir).unwrap();
    py(
        "import pyarrow as pa, pyarrow.parquet as pq, sys\n\
         t0 = 1704153600000\n\
         pq.write_table(pa.table({'ts': pa.array([t0 + i * 1000 for i in range(4)], pa.timestamp('ms')),\n\
             'trade_id': pa.array([1, 2, 3, 4], pa.int64()), 'price': [100.0, -1.0, -2.0, 100.0],\n\
             'amount': [1.0, 1.0, 1.0, 1.0], 'side': ['buy', 'sell', 'buy', 'sell']}), sys.argv[1])",
        &[&dir.join("a.parquet").display().to_string()],
    );
    s.settled(&["scan"]);
    s.settled(&["compact"]);
    s.ok(&["report", "--format", "json"]);
}

/// A command job that writes to both of its logs.
fn submit(s: &Sandbox) -> i64 {
    let spec = s.root().join("jobs/hello.toml");
    std::fs::create_dir_all(spec.parent().unwrap()).unwrap();
    std::fs::write(
        &spec,
        "name = \"hello\"\nframework = \"command\"\nmemory = \"64MiB\"\n\
         argv = [\"sh\", \"-c\", \"echo hello-from-the-job; echo warning-from-the-job >&2\"]\n",
    )
    .unwrap();
    s.json(&["jobs", "submit", spec.to_str().unwrap()])["id"]
        .as_i64()
        .unwrap()
}

/// The parts of a report that do not depend on the clock.
fn figures(r: &Value) -> Value {
    let keys = [
        "datasets",
        "gaps",
        "coverage",
        "history_totals",
        "jobs",
        "quality",
        "next_retention",
        "next_quota",
        "stores",
    ];
    keys.iter().map(|k| (k.to_string(), r[*k].clone())).collect()
}

#[test]
fn every_page_shows_what_the_cli_shows() {
    let s = Sandbox::new();
    pile(&s);
    let id = submit(&s);
    let port = free_port();
    let daemon = start(&s, port, &[]);
    wait_for("the job", Duration::from_secs(60), || {
        s.json(&["jobs", "show", &id.to_string()])["state"] == "succeeded"
    });

    // `/` and its JSON twin: the report's figures, as the CLI builds them.
    let o = s.cmd(&["report", "--format", "json"]).output().unwrap();
    let cli: Value = serde_json::from_slice(&o.stdout).unwrap();
    let api = get_json(port, "/api/report");
    assert_eq!(figures(&api), figures(&cli));
    let page = get(port, "/");
    assert!(page.contains("<h1>mdkeep data-retention report</h1>"), "{page}");
    assert!(page.contains("<header>") && page.contains("budget"), "{page}");
    assert!(page.contains("no maintain run yet"), "{page}");
    for d in cli["datasets"].as_array().unwrap() {
        assert!(page.contains(&format!("<td>{}</td>", d["files"])), "{d}");
        assert!(page.contains(&format!("<td>{}</td>", d["rows"])), "{d}");
    }
    assert!(page.contains("bad_price"), "the quality section: {page}");

    // Jobs: the same list as `jobs ls --json`, with the log and result links.
    let o = s.cmd(&["jobs", "ls", "--json"]).output().unwrap();
    let ls: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(get_json(port, "/api/jobs"), ls);
    let jobs = get(port, "/jobs");
    assert!(jobs.contains(&format!("href=\"jobs/{id}/log\"")), "{jobs}");
    assert!(jobs.contains(&format!("href=\"jobs/{id}/result.json\"")), "{jobs}");
    assert!(
        jobs.contains("<td>succeeded</td>") && jobs.contains("<td>hello</td>"),
        "{jobs}"
    );
    let log = get(port, &format!("/jobs/{id}/log"));
    assert!(
        log.contains("hello-from-the-job") && log.contains("warning-from-the-job"),
        "{log}"
    );
    let dir = ls[0]["dir"].as_str().unwrap();
    let result: Value = serde_json::from_str(&std::fs::read_to_string(format!("{dir}/result.json")).unwrap()).unwrap();
    assert_eq!(get_json(port, &format!("/jobs/{id}/result.json")), result);
    assert_eq!(http_get(port, "/jobs/999/log").unwrap().0, 404);

    // Quality and coverage: the stored findings and the index.
    let o = s.cmd(&["quality", "--stored", "--json"]).output().unwrap();
    let q: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        q["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "bad_price" && f["rows"] == 2),
        "{q}"
    );
    assert_eq!(get_json(port, "/api/quality"), q);
    let page = get(port, "/quality");
    assert!(
        page.contains("exchange=x/symbol=T/date=2024-01-02") && page.contains("<td>bad_price</td>"),
        "{page}"
    );
    let o = s.cmd(&["coverage", "--json"]).output().unwrap();
    let c: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(get_json(port, "/api/coverage"), c);
    let page = get(port, "/coverage");
    for series in c.as_array().unwrap() {
        let sym = series["series"]["symbol"].as_str().unwrap();
        assert!(page.contains(&format!("symbol={sym}")), "{sym}: {page}");
    }

    // Read-only and self-contained: no script, no form, nothing fetched.
    for path in ["/", "/jobs", "/quality", "/coverage"] {
        let page = get(port, path);
        for banned in ["<script", "<form", "<button", "src=", "href=\"http", "url("] {
            assert!(!page.contains(banned), "{path} holds {banned}");
        }
    }
    stop(daemon);
}

#[test]
fn with_a_token_every_page_but_healthz_asks_for_it() {
    let s = Sandbox::new();
    s.gen(1, 1, 1, 10);
    let token = s.root().join("http.token");
    std::fs::write(&token, "s3cret-token\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let port = free_port();
    let file = token.to_str().unwrap();
    // A token others can read is refused, naming the key.
    let o = s
        .cmd(&["daemon"])
        .env("MDKEEP__HTTP__BIND", format!("127.0.0.1:{port}"))
        .env("MDKEEP__HTTP__TOKEN_FILE", file)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("http.token_file") && err.contains("0600"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");

    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let daemon = start(&s, port, &[("MDKEEP__HTTP__TOKEN_FILE", file)]);
    wait_for("/healthz", Duration::from_secs(20), || {
        http_get(port, "/healthz").is_ok_and(|(code, _)| code == 200)
    });
    let pages = [
        "/",
        "/jobs",
        "/jobs/1/log",
        "/jobs/1/result.json",
        "/quality",
        "/coverage",
        "/api/report",
        "/api/jobs",
        "/api/quality",
        "/api/coverage",
        "/metrics",
        "/status",
    ];
    for path in pages {
        assert_eq!(http_get(port, path).unwrap().0, 401, "{path} without the token");
        let wrong = http_get_with(port, path, "Authorization: Bearer s3cret-tokeN\r\n").unwrap();
        assert_eq!(wrong.0, 401, "{path} with a wrong token");
    }
    for path in [
        "/",
        "/jobs",
        "/quality",
        "/coverage",
        "/api/jobs",
        "/metrics",
        "/status",
    ] {
        let (code, body) = http_get_with(port, path, "Authorization: Bearer s3cret-token\r\n").unwrap();
        assert_eq!(code, 200, "{path} with the token: {body}");
    }
    stop(daemon);
}
