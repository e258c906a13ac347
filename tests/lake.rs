//! The lake (issue 30): a DuckLake 1.0 catalog that DuckDB 1.5.5 attaches
//! READ_ONLY and reads like the Hive glob, through compaction, time travel,
//! crashes at every rewrite failpoint, while a reader loops, and with a
//! partition on the in-process S3 server (read with DuckDB's s3 settings).
//!
//! The reader is pinned in its own venv (`.lakevenv`: duckdb 1.5.5 and the
//! ducklake and sqlite_scanner extension wheels), loaded from the wheels'
//! files with autoinstall off, so nothing reaches the network.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{copy_tree, Sandbox, REWRITE_STEPS};

const ENV: [(&str, &str); 2] = [
    ("MDKEEP__SCAN__SETTLE_TIME", "0s"),
    // The default (the sandbox turns holding off for the other suites).
    ("MDKEEP__LAKE__KEEP_SNAPSHOTS", "1h"),
];

/// The reader's pinned packages (separate from tests/requirements.txt).
const LAKE_PINS: [&str; 5] = [
    "duckdb==1.5.5",
    "duckdb-extension-ducklake==1.5.5",
    "duckdb-extension-sqlite-scanner==1.5.5",
    // For the S3 test: DuckDB reads the store tier's objects through httpfs.
    "duckdb-extension-httpfs==1.5.5",
    // DuckDB returns TIMESTAMP WITH TIME ZONE values to Python through pytz.
    "pytz==2025.2",
];

/// The `.lakevenv` Python, created on first use under a lock so parallel
/// tests wait for one install (the pattern of `common::python`).
fn lake_python() -> PathBuf {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let venv = root.join(".lakevenv");
        let check = format!(
            "import importlib.metadata as m\nfor l in {:?}:\n    n, v = l.split('==')\n    assert m.version(n) == v, (n, m.version(n))",
            LAKE_PINS
        );
        let ready = |py: &Path| {
            Command::new(py)
                .args(["-c", &check])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        let pins: Vec<&std::ffi::OsStr> = LAKE_PINS.iter().map(|p| p.as_ref()).collect();
        common::make_venv(&venv, &ready, &pins)
    })
    .clone()
}

/// Python that connects DuckDB with the two extensions loaded from the
/// wheels' files (autoinstall off) and defines `attach(lake)` (READ_ONLY)
/// and `q(sql)` (one row).
const PRELUDE: &str = r#"
import duckdb, glob, os, sys
import duckdb_extension_ducklake as _dl, duckdb_extension_sqlite_scanner as _sq
def _ext(mod, name):
    return glob.glob(os.path.join(os.path.dirname(mod.__file__), 'extensions', 'v1.5.5', name + '.duckdb_extension'))[0]
con = duckdb.connect()
con.execute("SET autoinstall_known_extensions=false; SET autoload_known_extensions=false; SET enable_progress_bar=false")
con.execute(f"LOAD '{_ext(_dl, 'ducklake')}'")
con.execute(f"LOAD '{_ext(_sq, 'sqlite_scanner')}'")
def attach(lake):
    con.execute(f"ATTACH 'ducklake:sqlite:{lake}' AS lake (READ_ONLY)")
def q(sql):
    return con.execute(sql).fetchone()
def glob_of(hot):
    return f"read_parquet('{hot}/trades/**/*.parquet', hive_partitioning=true)"
"#;

/// Run `code` after [`PRELUDE`] with `args` as argv[1..]; its stdout.
fn duck(code: &str, args: &[&str]) -> String {
    let o = Command::new(lake_python())
        .arg("-c")
        .arg(format!("{PRELUDE}\n{code}"))
        .args(args)
        .output()
        .expect("run the lake venv's python");
    assert!(
        o.status.success(),
        "duckdb failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

fn run(s: &Sandbox, args: &[&str]) -> std::process::Output {
    s.cmd(args).envs(ENV).output().unwrap()
}

fn ok(s: &Sandbox, args: &[&str]) -> String {
    let o = run(s, args);
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn lake(s: &Sandbox) -> String {
    s.root().join("data/lake.sqlite").display().to_string()
}

/// `lake check --json` must say the lake, the catalog and the disk agree.
fn assert_clean(s: &Sandbox, what: &str) -> serde_json::Value {
    let o = run(s, &["lake", "check", "--json"]);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{what}: lake check: {e}: {}", String::from_utf8_lossy(&o.stderr)));
    assert!(
        o.status.success() && r["differences"].as_array().unwrap().is_empty(),
        "{what}: lake check: {r:#}"
    );
    r
}

/// Every file in the trash has its trash row (a link a killed run made is
/// reused by recovery, never left behind unnamed), and no row names a
/// file twice.
fn assert_trash_accounted(s: &Sandbox, what: &str) {
    let script = r#"
import os, sqlite3, sys
db, trash = sys.argv[1], sys.argv[2]
rows = [p for (p,) in sqlite3.connect(db).execute("SELECT path FROM trash")]
files = {os.path.join(d, f) for d, _, fs in os.walk(trash) for f in fs}
print(sorted(files - set(rows)), len(rows) - len(set(rows)))
"#;
    let root = s.root();
    let o = Command::new("python3")
        .args(["-c", script])
        .arg(root.join("data/state/mdkeep.db"))
        .arg(root.join("data/trash"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{what}: {}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        text.trim(),
        "[] 0",
        "{what}: trash files without a row, rows named twice"
    );
}

/// Count, price sum, distinct ids and one symbol-day's count: through the
/// lake and by the glob over the hot tier; both lines must match.
const SAME_ANSWERS: &str = r#"
attach(sys.argv[1])
hot = sys.argv[2]
qs = ["SELECT count(*), round(sum(price), 4), count(DISTINCT trade_id) FROM {t}",
      "SELECT count(*), round(sum(amount), 4) FROM {t} WHERE symbol = 'BTC_USDT' AND date = '2024-01-02'",
      "SELECT count(DISTINCT symbol), min(ts), max(ts) FROM {t}"]
for s in qs:
    a = q(s.format(t='lake.trades'))
    b = q(s.format(t=glob_of(hot)))
    assert a == b, (s, a, b)
    print(a)
"#;

fn same_answers(s: &Sandbox) -> String {
    duck(SAME_ANSWERS, &[&lake(s), &s.hot().display().to_string()])
}

#[test]
fn the_lake_answers_like_the_glob_after_scan_and_compact() {
    let s = Sandbox::new();
    s.gen(2, 2, 2, 40);
    ok(&s, &["scan"]);
    let before = same_answers(&s);
    assert_clean(&s, "after scan");
    ok(&s, &["compact"]);
    let after = same_answers(&s);
    let r = assert_clean(&s, "after compact");
    assert!(
        r["kept_files"].as_u64().unwrap() > 0,
        "inputs kept for old snapshots: {r}"
    );
    // Distinct ids and the symbol-day slice's rows stay (compaction removed duplicates only).
    let distinct = |t: &str| t.lines().next().unwrap().split(", ").nth(2).unwrap().to_string();
    assert_eq!(distinct(&before), distinct(&after));
    assert!(ok(&s, &["lake", "attach"]).contains("(READ_ONLY)"));
}

#[test]
fn time_travel_reads_a_snapshot_taken_before_a_compaction() {
    let s = Sandbox::new();
    s.gen(1, 2, 2, 40);
    ok(&s, &["scan"]);
    let n = assert_clean(&s, "after scan")["snapshot"].as_i64().unwrap();
    let at = "attach(sys.argv[1])\nprint(q(f'SELECT count(*), round(sum(price), 4), count(DISTINCT trade_id) FROM lake.trades AT (VERSION => {sys.argv[2]})'))";
    let then = duck(at, &[&lake(&s), &n.to_string()]);
    ok(&s, &["compact"]);
    assert_ne!(assert_clean(&s, "after compact")["snapshot"].as_i64().unwrap(), n);
    assert_eq!(
        duck(at, &[&lake(&s), &n.to_string()]),
        then,
        "snapshot {n} after the compaction"
    );
    same_answers(&s);
}

#[test]
fn lake_check_is_clean_after_a_kill_at_every_rewrite_failpoint() {
    let p = Sandbox::new();
    p.gen(1, 2, 2, 30);
    for step in REWRITE_STEPS {
        let s = Sandbox::new();
        copy_tree(&p.hot(), &s.hot());
        ok(&s, &["scan"]);
        let o = s
            .cmd(&["compact"])
            .envs(ENV)
            .env("MDKEEP_FAILPOINT", step)
            .output()
            .unwrap();
        assert!(!o.status.success(), "{step}: compact should have aborted");
        ok(&s, &["scan"]);
        assert_clean(&s, &format!("after a kill at {step} and recovery"));
        assert_trash_accounted(&s, step);
        same_answers(&s);
        ok(&s, &["compact"]);
        assert_clean(&s, &format!("{step}: after the next compact"));
        same_answers(&s);
    }
}

#[test]
fn readers_through_the_lake_never_fail_while_compact_runs() {
    let s = Sandbox::new();
    s.gen(2, 2, 12, 20);
    ok(&s, &["scan"]);
    let stop = s.root().join("stop");
    let reader = r#"
import time
attach(sys.argv[1])
stop, reads, failed, seen = sys.argv[2], 0, [], set()
while True:
    last = os.path.exists(stop)
    try:
        seen.add(q('SELECT count(DISTINCT trade_id) FROM lake.trades')[0])
    except Exception as e:
        failed.append(str(e)[:200])
    reads += 1
    if last and reads >= 20:
        break
print(reads, len(failed), sorted(seen))
for f in failed[:3]:
    print(f)
"#;
    let child = Command::new(lake_python())
        .arg("-c")
        .arg(format!("{PRELUDE}\n{reader}"))
        .args([&lake(&s), &stop.display().to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    ok(&s, &["compact"]);
    std::fs::write(&stop, "").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "reader: {}", String::from_utf8_lossy(&out.stderr));
    let first: Vec<&str> = text.lines().next().unwrap().splitn(3, ' ').collect();
    assert_eq!(first[1], "0", "failed reads through the lake: {text}");
    assert!(!first[2].contains(','), "distinct ids changed under a reader: {text}");
    assert_clean(&s, "after compact under readers");
}

#[test]
fn a_partition_on_the_store_is_read_through_the_lake_with_duckdbs_s3_settings() {
    let srv = common::s3::S3Server::start();
    let s = Sandbox::new();
    s.gen(1, 3, 2, 300);
    let env = srv.env("36h");
    let mdkeep = |args: &[&str]| {
        let o = s
            .cmd(args)
            .envs(ENV)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    mdkeep(&["scan"]);
    mdkeep(&["compact"]);
    mdkeep(&["tier"]);
    let parts: serde_json::Value = serde_json::from_str(&mdkeep(&["ls", "--json"])).unwrap();
    let parts = parts.as_array().unwrap();
    let on_store: Vec<&serde_json::Value> = parts.iter().filter(|p| p["tier"] == "archive").collect();
    assert!(!on_store.is_empty(), "a partition moved to the store: {parts:?}");
    let total: u64 = parts.iter().map(|p| p["rows"].as_u64().unwrap()).sum();
    let store_rows: u64 = on_store.iter().map(|p| p["rows"].as_u64().unwrap()).sum();
    let mut days: Vec<String> = on_store
        .iter()
        .map(|p| p["partition"]["date"].as_str().unwrap().to_string())
        .collect();
    days.sort();
    days.dedup();
    let o = s
        .cmd(&["lake", "check", "--json"])
        .envs(ENV)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(r["differences"].as_array().unwrap().is_empty(), "{r:#}");

    // DuckDB's own S3 settings: a secret with the endpoint, path style, no TLS.
    let code = r#"
import duckdb_extension_httpfs as _hf
con.execute(f"LOAD '{_ext(_hf, 'httpfs')}'")
con.execute(f"""CREATE SECRET s3test (TYPE s3, KEY_ID '{os.environ['K']}', SECRET '{os.environ['S']}',
    ENDPOINT '127.0.0.1:{sys.argv[2]}', URL_STYLE 'path', USE_SSL false, REGION 'us-east-1')""")
attach(sys.argv[1])
import sqlite3
n = sqlite3.connect(sys.argv[1]).execute(
    "SELECT count(*) FROM ducklake_data_file WHERE end_snapshot IS NULL AND path LIKE 's3://%'").fetchone()[0]
days = ", ".join(f"'{d}'" for d in sys.argv[3].split(","))
print(n, q('SELECT count(*) FROM lake.trades')[0], q(f"SELECT count(*) FROM lake.trades WHERE date IN ({days})")[0])
"#;
    let o = Command::new(lake_python())
        .arg("-c")
        .arg(format!("{PRELUDE}\n{code}"))
        .args([&lake(&s), &srv.port.to_string(), &days.join(",")])
        .env("K", common::s3::ACCESS_KEY)
        .env("S", common::s3::SECRET_KEY)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "duckdb over S3:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8(o.stdout).unwrap();
    let v: Vec<u64> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
    assert!(
        v[0] >= on_store.len() as u64,
        "the lake names the store's objects: {out}"
    );
    assert_eq!(v[1], total, "every row, store tier included: {out}");
    assert_eq!(v[2], store_rows, "the store's partitions, read from S3: {out}");
}
