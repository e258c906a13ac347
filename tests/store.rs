//! The cold tier on a real S3 server (`s3s-fs`): moves there and back to
//! readers, exports, crashes mid-upload, an outage, retention and quotas on
//! the store, and keys that never reach a log.

mod common;

use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use common::s3::{S3Server, SECRET_KEY};
use common::{py, wait_for, walk, Sandbox, REWRITE_STEPS};
use serde_json::Value;

/// Every line any mdkeep run of these tests printed, to grep for the key.
static LOGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn cmd(s: &Sandbox, srv: &S3Server, extra: &[(&str, &str)], args: &[&str]) -> Command {
    let mut c = s.cmd(args);
    c.envs(srv.env("36h"))
        .env("RUST_LOG", "debug")
        .envs(extra.iter().map(|(k, v)| (*k, *v)));
    c
}

fn run(s: &Sandbox, srv: &S3Server, extra: &[(&str, &str)], args: &[&str]) -> Output {
    let o = cmd(s, srv, extra, args).output().expect("run mdkeep");
    let mut logs = LOGS.lock().unwrap();
    logs.push(String::from_utf8_lossy(&o.stdout).into_owned());
    logs.push(String::from_utf8_lossy(&o.stderr).into_owned());
    o
}

fn ok_json(s: &Sandbox, srv: &S3Server, extra: &[(&str, &str)], args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    let o = run(s, srv, extra, &a);
    assert!(
        o.status.success(),
        "mdkeep {a:?} failed ({:?}): {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// (rows, distinct trade ids) of the local trades, by DuckDB.
fn local_counts(s: &Sandbox) -> String {
    let roots: Vec<String> = ["data/processed", "data/warm", "data/cold"]
        .iter()
        .map(|r| s.root().join(r).display().to_string())
        .collect();
    py(
        "import duckdb, glob, sys\n\
         files = [f for r in sys.argv[1:] for f in glob.glob(r + '/trades/**/*.parquet', recursive=True)]\n\
         if not files:\n    print(0, 0); raise SystemExit\n\
         r = duckdb.connect().execute('SET enable_progress_bar = false').execute('SELECT count(*), count(DISTINCT trade_id) FROM read_parquet($1, hive_partitioning=true)', [files]).fetchone()\n\
         print(r[0], r[1])",
        &roots.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
    )
}

fn pair(s: &str) -> (u64, u64) {
    let mut it = s.split_whitespace().map(|x| x.parse::<u64>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

/// Local plus store rows, and whether every trade id is there exactly once.
fn total(s: &Sandbox, srv: &S3Server) -> (u64, u64) {
    let (lr, ld) = pair(&local_counts(s));
    let (sr, sd) = if srv.objects().iter().any(|o| o.ends_with(".parquet")) {
        pair(&srv.pyarrow_counts())
    } else {
        (0, 0)
    };
    (lr + sr, ld + sd)
}

fn pile(s: &Sandbox, days: u32, fph: u32, rows: u32) -> (u64, u64) {
    s.gen(1, days, fph, rows);
    s.ok(&["scan"]);
    s.ok(&["compact"]);
    pair(&local_counts(s))
}

fn assert_no_secret() {
    for l in LOGS.lock().unwrap().iter() {
        assert!(!l.contains(SECRET_KEY), "the secret key reached a log:\n{l}");
    }
}

fn data_objects(srv: &S3Server) -> Vec<String> {
    srv.objects().into_iter().filter(|o| o.ends_with(".parquet")).collect()
}

#[test]
fn tier_to_the_store_then_read_ls_export_and_scan() {
    let srv = S3Server::start();
    let s = Sandbox::new();
    let before = pile(&s, 3, 2, 300);
    assert_eq!(before.0, before.1, "the pile has duplicates after compaction");
    let export = |dir: &std::path::Path| {
        let d = dir.display().to_string();
        let args = [
            "export",
            "--dataset",
            "trades",
            "--from",
            "2024-01-01",
            "--to",
            "2024-01-02",
            "--format",
            "parquet",
            "--out",
            &d,
        ];
        ok_json(&s, &srv, &[], &args)
    };
    let ex_before = tempfile::tempdir().unwrap();
    export(ex_before.path());

    let plan = ok_json(&s, &srv, &[], &["tier", "--dry-run"]);
    assert_eq!(plan["moves"][0]["to"], "archive", "{plan}");
    assert!(srv.objects().is_empty(), "a dry run uploaded something");

    let m = ok_json(&s, &srv, &[], &["tier"]);
    assert_eq!(m["moves"].as_u64(), Some(1), "{m}");
    assert!(m["failed"].as_array().unwrap().is_empty());
    let objs = srv.objects();
    assert!(!data_objects(&srv).is_empty(), "{objs:?}");
    assert!(
        objs.iter().all(|o| o.ends_with(".parquet")),
        "claims left behind: {objs:?}"
    );
    assert!(objs[0].starts_with("processed/trades/exchange="), "{objs:?}");
    // An independent reader (pyarrow's own S3 client) sees the day on the store.
    let (sr, _) = pair(&srv.pyarrow_counts());
    assert!(sr > 0 && sr < before.0);
    assert_eq!(total(&s, &srv), before, "rows changed in the move");

    let ls = ok_json(&s, &srv, &[], &["ls"]);
    let tiers: Vec<String> = ls
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["tier"].as_str().unwrap().to_string())
        .collect();
    assert!(tiers.iter().any(|t| t == "archive"), "{ls}");

    // The range now lives on the store: exported byte for byte the same.
    let ex_after = tempfile::tempdir().unwrap();
    export(ex_after.path());
    let files = |d: &std::path::Path| {
        let mut v: Vec<(String, Vec<u8>)> = walk(d)
            .into_iter()
            .map(|p| {
                (
                    p.strip_prefix(d).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let (a, b) = (files(ex_before.path()), files(ex_after.path()));
    assert!(!a.is_empty());
    assert_eq!(a.len(), b.len());
    for ((na, ba), (nb, bb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert!(ba == bb, "{na} differs after the move to the store");
    }

    // scan reconciles with a listing: nothing added or removed.
    let sc = ok_json(&s, &srv, &[], &["scan"]);
    assert_eq!(sc["removed"].as_u64(), Some(0), "{sc}");
    assert_eq!(sc["added"].as_u64(), Some(0), "{sc}");
    // An object the catalog does not know is cataloged; a vanished one leaves.
    let obj = srv.dir().join("data/market-cold").join(&data_objects(&srv)[0]);
    let copy = obj.with_file_name("extra-0001.parquet");
    std::fs::copy(&obj, &copy).unwrap();
    let sc = ok_json(&s, &srv, &[], &["scan"]);
    assert_eq!(sc["added"].as_u64(), Some(1), "{sc}");
    std::fs::remove_file(&copy).unwrap();
    let sc = ok_json(&s, &srv, &[], &["scan"]);
    assert_eq!(sc["removed"].as_u64(), Some(1), "{sc}");

    // A second run has nothing to do.
    let again = ok_json(&s, &srv, &[], &["tier"]);
    assert_eq!(again["moves"].as_u64(), Some(0), "{again}");

    // The report counts the store tier; a second report answers the same
    // from what the first learned about each file, without re-reading them.
    let r = ok_json(&s, &srv, &[], &["report"]);
    assert!(r.to_string().contains("archive"), "{r}");
    let cached = py(
        "import sqlite3, sys\n\
         c = sqlite3.connect(sys.argv[1])\n\
         print(c.execute(\"SELECT count(*) FROM report_buckets WHERE tier = 'archive'\").fetchone()[0])",
        &[s.root().join("data/state/mdkeep.db").to_str().unwrap()],
    );
    assert!(cached.parse::<u64>().unwrap() > 0, "nothing cached");
    let r2 = ok_json(&s, &srv, &[], &["report"]);
    for k in ["datasets", "gaps", "coverage"] {
        assert_eq!(r[k], r2[k], "{k} differs when read from the cache");
    }
    assert_no_secret();
}

#[test]
fn crash_at_every_step_of_a_move_to_the_store() {
    for step in REWRITE_STEPS {
        let srv = S3Server::start();
        let s = Sandbox::new();
        let before = pile(&s, 3, 2, 200);
        let o = run(&s, &srv, &[("MDKEEP_FAILPOINT", step)], &["tier"]);
        assert!(!o.status.success(), "{step}: the failpoint did not fire");
        // Recovery (any command) leaves every row in exactly one live place.
        let m = ok_json(&s, &srv, &[], &["tier"]);
        assert!(m["failed"].as_array().unwrap().is_empty(), "{step}: {m}");
        assert_eq!(total(&s, &srv), before, "{step}: rows lost or doubled");
        let objs = srv.objects();
        assert!(objs.iter().all(|o| o.ends_with(".parquet")), "{step}: strays {objs:?}");
        let again = ok_json(&s, &srv, &[], &["tier"]);
        assert_eq!(again["moves"].as_u64(), Some(0), "{step}: {again}");
        assert_eq!(total(&s, &srv), before, "{step}");
    }
    assert_no_secret();
}

#[test]
fn kill_9_mid_multipart_upload() {
    let srv = S3Server::start();
    let s = Sandbox::new();
    // About 1.4 M rows on day 1: well over one 5 MiB part at zstd 12.
    let before = pile(&s, 2, 4, 15_000);
    // Two days only: day 1 is old enough for the archive at 20h.
    let env = [
        ("MDKEEP__DATASETS__TRADES__TIER_AFTER__ARCHIVE", "20h"),
        ("MDKEEP__DATASETS__TRADES__TIER_AFTER__WARM", "16h"),
        ("MDKEEP__DATASETS__TRADES__TIER_AFTER__COLD", "18h"),
        ("MDKEEP__TIERS__ARCHIVE__S3__PART_SIZE", "5MiB"),
    ];
    let mut child = cmd(&s, &srv, &env, &["tier"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // s3s-fs keeps a multipart upload's state beside the buckets.
    let uploading = || {
        std::fs::read_dir(srv.dir().join("data"))
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(".upload_id-"))
    };
    wait_for("a part of a multipart upload", Duration::from_secs(300), || {
        uploading() || child.try_wait().unwrap().is_some()
    });
    assert!(
        child.try_wait().unwrap().is_none(),
        "the move ended before a part went up"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(data_objects(&srv).is_empty(), "an incomplete upload is visible");
    assert_eq!(total(&s, &srv), before, "rows lost or doubled by the kill");

    let m = ok_json(&s, &srv, &env, &["tier"]);
    assert_eq!(m["recovered"]["rolled_back"].as_u64(), Some(1), "{m}");
    assert_eq!(m["moves"].as_u64(), Some(1), "{m}");
    let objs = srv.objects();
    assert!(
        objs.iter().all(|o| o.ends_with(".parquet")),
        "strays after the next tier: {objs:?}"
    );
    assert_eq!(total(&s, &srv), before);
    assert_no_secret();
}

#[test]
fn an_unreachable_store_fails_clearly_retries_and_loses_nothing() {
    let mut srv = S3Server::start();
    let s = Sandbox::new();
    let before = pile(&s, 3, 2, 200);
    srv.stop();

    let o = run(&s, &srv, &[], &["tier"]);
    assert_eq!(o.status.code(), Some(69), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not moved trades") && err.contains("archive"), "{err}");
    assert!(
        err.contains("s3://market-cold/"),
        "the error does not name the store: {err}"
    );
    assert!(err.contains("retr"), "no retries were made: {err}");
    assert_eq!(total(&s, &srv), before);

    // Local work goes on: scan and maintain succeed and say the store is down.
    let sc = ok_json(&s, &srv, &[], &["scan"]);
    assert_eq!(sc["unreachable"][0]["tier"], "archive", "{sc}");
    let o = run(&s, &srv, &[], &["maintain", "--json"]);
    assert_eq!(o.status.code(), Some(69), "{}", String::from_utf8_lossy(&o.stderr));
    let m: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(m["tier"]["failed"][0]["to"], "archive", "{m}");
    assert!(
        m["rollup"]["partitions"].as_u64().unwrap() > 0,
        "local steps did not run: {m}"
    );
    assert_eq!(total(&s, &srv), before);
    let r = ok_json(&s, &srv, &[], &["report"]);
    assert!(r.to_string().contains("unreachable"), "{r}");

    // A short outage inside the retry window: the move goes through.
    let slow = [
        ("MDKEEP__TIERS__ARCHIVE__S3__MAX_RETRIES", "10"),
        ("MDKEEP__TIERS__ARCHIVE__S3__RETRY_TIMEOUT", "30s"),
    ];
    let child = cmd(&s, &srv, &slow, &["tier", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    srv.resume();
    let o = child.wait_with_output().unwrap();
    LOGS.lock()
        .unwrap()
        .push(String::from_utf8_lossy(&o.stderr).into_owned());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(m["moves"].as_u64(), Some(1), "{m}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("backing off"));
    assert_eq!(total(&s, &srv), before);
    let objs = srv.objects();
    assert!(objs.iter().all(|o| o.ends_with(".parquet")), "{objs:?}");

    // The daemon's /metrics says whether the store answers.
    let port = common::free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut daemon = cmd(&s, &srv, &[("MDKEEP__HTTP__BIND", &bind)], &["daemon"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let metric = || {
        common::http_get(port, "/metrics").ok().and_then(|(_, body)| {
            body.lines()
                .find(|l| l.starts_with("mdkeep_store_up{"))
                .map(str::to_string)
        })
    };
    wait_for("/metrics", Duration::from_secs(30), || metric().is_some());
    assert_eq!(metric().unwrap(), "mdkeep_store_up{tier=\"archive\"} 1");
    srv.stop();
    assert_eq!(metric().unwrap(), "mdkeep_store_up{tier=\"archive\"} 0");
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert_no_secret();
}

#[test]
fn retention_and_quota_delete_objects_on_the_store() {
    let srv = S3Server::start();
    let s = Sandbox::new();
    let before = pile(&s, 3, 2, 200);
    ok_json(&s, &srv, &[], &["tier"]);
    let on_store = data_objects(&srv).len();
    assert!(on_store > 0);
    // Retention waits for the candles; the rollup reads day 1 from the store.
    ok_json(&s, &srv, &[], &["rollup"]);
    let keep = [("MDKEEP__DATASETS__TRADES__KEEP", "40h")];
    let plan = ok_json(&s, &srv, &keep, &["retention", "--dry-run"]);
    assert!(plan.to_string().contains("archive"), "{plan}");
    let m = ok_json(&s, &srv, &keep, &["retention"]);
    assert_eq!(m["partitions_dropped"].as_u64(), Some(1), "{m}");
    assert!(
        data_objects(&srv).is_empty(),
        "expired objects stayed: {:?}",
        srv.objects()
    );
    let (rows, _) = total(&s, &srv);
    assert!(rows < before.0 && rows > 0);

    // A byte cap on the store tier evicts its partitions, oldest first.
    let s2 = Sandbox::new();
    pile(&s2, 3, 2, 200);
    ok_json(&s2, &srv, &[], &["tier"]);
    assert!(!data_objects(&srv).is_empty());
    let cap = [("MDKEEP__TIERS__ARCHIVE__MAX_BYTES", "1KiB")];
    let q = ok_json(&s2, &srv, &cap, &["quota"]);
    assert!(q["usage"]["stores"]["archive"].as_u64().unwrap() > 1024, "{q}");
    assert!(data_objects(&srv).is_empty(), "{q}");
    assert_no_secret();
}

/// Run SQL on the state database (what `mdkeep pin` does for a local file).
fn sql(s: &Sandbox, stmt: &str, args: &[&str]) {
    let db = s.root().join("data/state/mdkeep.db");
    let mut a = vec![db.to_str().unwrap(), stmt];
    a.extend_from_slice(args);
    py(
        "import sqlite3, sys\n\
         c = sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2], sys.argv[3:]); c.commit()",
        &a,
    );
}

#[test]
fn a_trash_purge_while_the_store_is_down_is_deferred_and_the_run_goes_on() {
    let mut srv = S3Server::start();
    let s = Sandbox::new();
    pile(&s, 3, 2, 200);
    ok_json(&s, &srv, &[], &["tier"]);
    ok_json(&s, &srv, &[], &["rollup"]);
    // Pin every object on the store, so retention's drop trashes them.
    sql(&s, "INSERT INTO pins (tier, relpath, owner, created_at) SELECT tier, relpath, 'job:1', 0 FROM files WHERE tier = 'archive'", &[]);
    let keep = [
        ("MDKEEP__DATASETS__TRADES__KEEP", "40h"),
        ("MDKEEP__COMPACTION__TRASH_GRACE", "0s"),
    ];
    let m = ok_json(&s, &srv, &keep, &["retention"]);
    let trashed = m["pinned_to_trash"].as_u64().unwrap() as usize;
    assert!(trashed > 0, "{m}");
    let objects = data_objects(&srv);
    sql(&s, "DELETE FROM pins", &[]);
    ok_json(&s, &srv, &keep, &["scan"]); // marks them released

    // The store is down when their grace is over: deferred, the scan goes on.
    srv.stop();
    s.gen_with(1, 1, 2, 10, &["--exchange", "kraken"]);
    let sc = ok_json(&s, &srv, &keep, &["scan"]);
    assert!(sc["added"].as_u64().unwrap() > 0, "{sc}");
    let d = &sc["recovered"]["deferred"];
    assert_eq!(d.as_array().unwrap().len(), trashed, "{sc}");
    assert_eq!(
        (d[0]["kind"].as_str(), d[0]["step"].as_str()),
        (Some("trash"), Some("purge")),
        "{sc}"
    );
    assert!(d[0]["file"].as_str().unwrap().starts_with("s3://"), "{sc}");
    assert_eq!(data_objects(&srv), objects);

    // Back up: purged, nothing deferred.
    srv.resume();
    let sc = ok_json(&s, &srv, &keep, &["scan"]);
    assert!(sc["recovered"]["deferred"].as_array().unwrap().is_empty(), "{sc}");
    assert_eq!(sc["recovered"]["trash_purged"].as_u64(), Some(trashed as u64), "{sc}");
    assert_eq!(data_objects(&srv).len(), objects.len() - trashed, "{:?}", srv.objects());
    assert_no_secret();
}

#[test]
fn keys_from_a_secrets_file_and_clear_config_errors() {
    let srv = S3Server::start();
    let s = Sandbox::new();
    let before = pile(&s, 3, 2, 100);
    let secrets = s.root().join("configs/s3.toml");
    std::fs::create_dir_all(secrets.parent().unwrap()).unwrap();
    std::fs::write(
        &secrets,
        format!(
            "aws_access_key_id = \"{}\"\naws_secret_access_key = \"{SECRET_KEY}\"\n",
            common::s3::ACCESS_KEY
        ),
    )
    .unwrap();
    let with_file = [("MDKEEP__TIERS__ARCHIVE__S3__SECRETS_FILE", "configs/s3.toml")];
    // Readable by others: refused, naming the key and the mode, never the keys.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = cmd(&s, &srv, &with_file, &["tier"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("tiers.archive.s3.secrets_file") && err.contains("0600"),
        "{err}"
    );
    assert!(!err.contains(SECRET_KEY));
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut c = cmd(&s, &srv, &with_file, &["tier", "--json"]);
    c.env_remove("AWS_ACCESS_KEY_ID").env_remove("AWS_SECRET_ACCESS_KEY");
    let o = c.output().unwrap();
    LOGS.lock()
        .unwrap()
        .push(String::from_utf8_lossy(&o.stderr).into_owned());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(total(&s, &srv), before);

    // No keys at all: the error names the key to set, the move is not tried.
    let s2 = Sandbox::new();
    pile(&s2, 3, 2, 100);
    let mut c = cmd(&s2, &srv, &[], &["tier"]);
    c.env_remove("AWS_ACCESS_KEY_ID").env_remove("AWS_SECRET_ACCESS_KEY");
    let o = c.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("tiers.archive.s3.secrets_file") && err.contains("AWS_ACCESS_KEY_ID"),
        "{err}"
    );

    // A config that could escape the bucket is refused.
    let o = cmd(
        &s2,
        &srv,
        &[("MDKEEP__TIERS__ARCHIVE__ROOT", "s3://market-cold/../x")],
        &["ls"],
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&o.stderr).contains("tiers.archive.root"));
    assert_no_secret();
}

#[test]
fn a_job_gets_its_data_from_the_store() {
    let srv = S3Server::start();
    let s = Sandbox::new();
    pile(&s, 3, 2, 100);
    ok_json(&s, &srv, &[], &["tier"]);
    let day1 = s.root().join("data/processed/trades/exchange=binance");
    assert!(
        walk(&day1)
            .iter()
            .all(|p| !p.to_string_lossy().contains("date=2024-01-01")),
        "day 1 is still local"
    );
    let spec = s.root().join("jobs/count.toml");
    std::fs::create_dir_all(spec.parent().unwrap()).unwrap();
    std::fs::write(
        &spec,
        "name = \"count\"\nframework = \"command\"\nmemory = \"128MiB\"\ntimeout = \"2m\"\n\
         argv = [\"sh\", \"-c\", \"find \\\"$MDKEEP_DATA_DIR\\\" -name '*.parquet' | wc -l > \\\"$MDKEEP_ARTIFACTS/n\\\"; printf '{\\\"ok\\\": 1}' > \\\"$MDKEEP_RESULT\\\"\"]\n\
         [data]\ndataset = \"trades\"\nfrom = \"2024-01-01\"\nto = \"2024-01-02\"\nformat = \"parquet\"\n",
    )
    .unwrap();
    let id = ok_json(&s, &srv, &[], &["jobs", "submit", spec.to_str().unwrap()])["id"]
        .as_i64()
        .unwrap();
    ok_json(&s, &srv, &[], &["jobs", "work", "--once"]);
    let job = ok_json(&s, &srv, &[], &["jobs", "show", &id.to_string()]);
    assert_eq!(job["state"], "succeeded", "{job}");
    let n = walk(&s.root().join("data/jobs"))
        .into_iter()
        .find(|p| p.ends_with("n"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .unwrap_or_default();
    assert!(n.trim().parse::<u64>().unwrap_or(0) >= 1, "the job saw no data: {job}");
    assert_no_secret();
}

#[test]
fn uploads_are_create_only_and_reads_fetch_only_their_columns() {
    let srv = S3Server::start();
    let root = tempfile::tempdir().unwrap();
    let env: Vec<(String, String)> = srv.env("36h");
    // The library reads the keys from the process environment, as the binary does.
    for (k, v) in &env {
        if k.starts_with("AWS_") {
            std::env::set_var(k, v);
        }
    }
    let cfg = mdkeep::config::Config::from_str_with_env(
        mdkeep::config::DEFAULT_CONFIG,
        "<test>",
        root.path(),
        env.into_iter().filter(|(k, _)| k.starts_with("MDKEEP__")),
    )
    .unwrap();
    mdkeep::store::Stores::build(&cfg).install().tier("archive").unwrap();
    let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new(
        "x",
        arrow::datatypes::DataType::Int64,
        false,
    )]));
    let dest = cfg.tier_root("archive").unwrap().join("t/x.parquet");
    let props = parquet::file::properties::WriterProperties::builder().build();
    let w = mdkeep::store::StoreWriter::try_new(&dest, schema.clone(), props.clone()).unwrap();
    // A second writer for the same name is refused while the first holds it...
    let e = mdkeep::store::StoreWriter::try_new(&dest, schema.clone(), props.clone()).unwrap_err();
    assert!(e.to_string().contains("claimed"), "{e}");
    w.close().unwrap();
    mdkeep::store::remove(&mdkeep::store::write::claim_path(&dest)).unwrap();
    // ...and after it is done the object is never overwritten.
    let e = mdkeep::store::StoreWriter::try_new(&dest, schema, props).unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    assert!(
        srv.objects().contains(&"processed/t/x.parquet".to_string()),
        "{:?}",
        srv.objects()
    );

    // Ranged reads: one column of three costs about a third of the object.
    use arrow::array::{Int64Array, RecordBatch};
    let cols = ["a", "b", "c"];
    let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(
        cols.iter()
            .map(|c| arrow::datatypes::Field::new(*c, arrow::datatypes::DataType::Int64, false))
            .collect::<Vec<_>>(),
    ));
    let dest = cfg.tier_root("archive").unwrap().join("t/y.parquet");
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(50_000))
        .build();
    let mut w = mdkeep::store::StoreWriter::try_new(&dest, schema.clone(), props).unwrap();
    // Incompressible values, so each column costs its share.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as i64
    };
    for _ in 0..4 {
        let arrays = (0..3)
            .map(|_| std::sync::Arc::new(Int64Array::from_iter_values((0..50_000).map(|_| next()))) as _)
            .collect();
        w.write(&RecordBatch::try_new(schema.clone(), arrays).unwrap()).unwrap();
    }
    let size = w.close().unwrap();
    let before = mdkeep::store::fetched_bytes();
    let mut rows = 0;
    mdkeep::parquet_io::for_each_time(&dest, "b", |v| rows += v.len()).unwrap();
    let one_column = mdkeep::store::fetched_bytes() - before;
    assert_eq!(rows, 200_000);
    assert!(one_column < size / 2, "one column fetched {one_column} of {size} bytes");
    let before = mdkeep::store::fetched_bytes();
    let (_, batches) = mdkeep::parquet_io::open_batches(&dest, 8192).unwrap();
    assert_eq!(batches.map(|b| b.unwrap().num_rows()).sum::<usize>(), 200_000);
    let all = mdkeep::store::fetched_bytes() - before;
    assert!(all >= size * 9 / 10, "a full read fetched {all} of {size} bytes");
    eprintln!("object {size} bytes: one column fetched {one_column}, all columns {all}");
}
