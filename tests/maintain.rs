//! `maintain`: every step in order, under one lock that a dead owner loses.

mod common;

use common::{snapshot, Sandbox};

#[test]
fn maintain_runs_every_step_and_a_second_run_is_quiet() {
    let s = Sandbox::new();
    s.gen(1, 2, 2, 100);
    let env = ("MDKEEP__QUOTA__MIN_FREE", "0%");
    // The dry run sees work pending in a scanned catalog, plans it, and changes nothing.
    let scan = s.json(&["scan"]);
    assert_eq!(scan["added"].as_u64(), Some(96));
    let before = snapshot(s.root());
    let o = s
        .cmd(&["maintain", "--dry-run", "--json"])
        .env(env.0, env.1)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(snapshot(s.root()), before, "a dry run changed something");
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["compact"]["files_in"].as_u64(), Some(96), "{plan}");
    assert!(plan["compact"]["partitions_rewritten"].as_u64() >= Some(2), "{plan}");
    assert_eq!(plan["rollup"]["partitions"].as_u64(), Some(1), "{plan}");

    let o = s.cmd(&["maintain", "--json"]).env(env.0, env.1).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for k in ["scan", "compact", "rollup", "retention", "tier", "quota"] {
        assert!(r.get(k).is_some(), "no {k} step: {r}");
    }
    assert_eq!(r["scan"]["unchanged"].as_u64(), Some(96), "scanned before: {r}");
    assert_eq!(r["compact"]["files_in"].as_u64(), Some(96));
    assert_eq!(r["rollup"]["partitions"].as_u64(), Some(1), "day 1 is finished: {r}");
    let again: serde_json::Value = serde_json::from_slice(
        &s.cmd(&["maintain", "--json"])
            .env(env.0, env.1)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(again["compact"]["files_in"].as_u64(), Some(0));
    assert_eq!(again["rollup"]["partitions"].as_u64(), Some(0));
}

#[test]
fn a_live_owner_blocks_a_second_run_and_a_dead_one_loses_the_lock() {
    let s = Sandbox::new();
    // Another process (here Python, as a CLI in another PID namespace would
    // be) holds the data lock's flock.
    let lock = s.root().join("data/state/mdkeep.lock");
    let mut holder = std::process::Command::new(common::python())
        .args([
            "-c",
            "import fcntl, sys, time\n\
             f = open(sys.argv[1], 'a+')\n\
             fcntl.flock(f, fcntl.LOCK_EX)\n\
             f.truncate(0); f.write('run=test pid=1 command=holder-of-the-test'); f.flush()\n\
             print('held', flush=True)\n\
             time.sleep(60)",
        ])
        .arg(&lock)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(holder.stdout.take().unwrap()), &mut line).unwrap();
    assert_eq!(line.trim(), "held");
    let o = s
        .cmd(&["maintain", "--wait", "300ms"])
        .env("MDKEEP__QUOTA__MIN_FREE", "0%")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(75));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("holder-of-the-test"), "names the holder: {err}");

    // Killed: the kernel releases its lock at once.
    holder.kill().unwrap();
    holder.wait().unwrap();
    let o = s
        .cmd(&["maintain", "--wait", "0s"])
        .env("MDKEEP__QUOTA__MIN_FREE", "0%")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "a dead holder's lock was not free: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), "", "released: nobody is named");
}

/// `chattr +i` on a path, undone on drop so the sandbox can be removed.
struct Immutable(std::path::PathBuf);

impl Immutable {
    fn set(path: &std::path::Path) -> Immutable {
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "this test makes a file immutable (chattr +i): run it as root"
        );
        let ok = std::process::Command::new("chattr").arg("+i").arg(path).status();
        if !ok.is_ok_and(|s| s.success()) {
            common::missing(
                "chattr +i on the temp folder's filesystem",
                "run as root on ext4/xfs/btrfs",
            );
        }
        Immutable(path.to_path_buf())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

const MIN_FREE: (&str, &str) = ("MDKEEP__QUOTA__MIN_FREE", "0%");

/// Run with `--json` (and `min_free` off): exit code and parsed stdout.
fn run_json(s: &Sandbox, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut a = args.to_vec();
    a.push("--json");
    let o = s.cmd(&a).env(MIN_FREE.0, MIN_FREE.1).output().unwrap();
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "mdkeep {a:?} ({:?}): {e}\n{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (o.status.code(), v)
}

/// Trades in the catalog, over every partition (`ls --json`).
fn catalog_rows(s: &Sandbox) -> u64 {
    let ls = s.json(&["ls", "--dataset", "trades"]);
    ls.as_array().unwrap().iter().map(|p| p["rows"].as_u64().unwrap()).sum()
}

fn exchange_files(s: &Sandbox, exchange: &str) -> Vec<std::path::PathBuf> {
    let tag = format!("exchange={exchange}");
    s.data_files()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(&tag))
        .collect()
}

#[test]
#[ignore = "needs root to make a file immutable (chattr +i)"]
fn an_undeletable_input_is_deferred_and_never_stops_other_partitions() {
    let s = Sandbox::new();
    let a = s.gen_with(1, 1, 2, 100, &["--exchange", "binance"]);
    assert_eq!(s.json(&["scan"])["added"].as_u64(), Some(48));
    let victim = exchange_files(&s, "binance")[3].clone();
    let guard = Immutable::set(&victim);

    // The swap commits, the retire fails: deferred, exit 4 (not 74).
    let (code, m) = run_json(&s, &["compact"]);
    assert_eq!(code, Some(4), "{m}");
    let f = &m["failures"][0];
    assert_eq!(f["outcome"], "deferred", "{m}");
    assert_eq!(f["file"], victim.display().to_string(), "{m}");
    assert!(victim.exists());
    let rows_a = a["distinct_rows"].as_u64().unwrap();
    assert_eq!(catalog_rows(&s), rows_a, "rows of A counted twice or lost");

    // Another exchange's new files: scanned, compacted, maintained; the
    // undeletable input is never cataloged or picked again.
    let b = s.gen_with(1, 1, 2, 100, &["--exchange", "kraken"]);
    let sc = s.json(&["scan"]);
    assert_eq!(sc["added"].as_u64(), Some(48), "{sc}");
    assert_eq!(sc["unsettled"][0]["path"], victim.display().to_string(), "{sc}");
    assert_eq!(sc["recovered"]["deferred"][0]["step"], "retire", "{sc}");
    let (code, m) = run_json(&s, &["compact"]);
    assert_eq!(code, Some(4), "still deferred: {m}");
    assert_eq!(m["files_in"].as_u64(), Some(48), "{m}");
    assert!(m["failures"].as_array().unwrap().is_empty(), "{m}");
    assert!(exchange_files(&s, "kraken").len() < 48, "B was not compacted");
    let (code, r) = run_json(&s, &["maintain"]);
    assert_eq!(code, Some(4), "{r}");
    let d = &r["deferred"][0];
    assert_eq!(r["deferred"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(
        (d["kind"].as_str(), d["step"].as_str()),
        (Some("journal"), Some("retire")),
        "{r}"
    );
    assert_eq!(d["file"], victim.display().to_string(), "{r}");
    assert!(d["reason"].as_str().unwrap().contains("ermitted"), "{r}");
    assert!(d["since"].as_str().is_some_and(|t| t.starts_with("20")), "{r}");
    let rows_b = b["distinct_rows"].as_u64().unwrap();
    assert_eq!(catalog_rows(&s), rows_a + rows_b, "a row counted twice or lost");

    // The daemon lists it in /status and on the dashboard.
    let port = common::free_port();
    let mut daemon = s.daemon(port, &[], std::process::Stdio::null());
    let mut status = serde_json::Value::Null;
    common::wait_for("/status", std::time::Duration::from_secs(30), || {
        common::http_get(port, "/status")
            .ok()
            .and_then(|(_, b)| serde_json::from_str(&b).ok())
            .map(|v| status = v)
            .is_some()
    });
    let (_, page) = common::http_get(port, "/").unwrap();
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert_eq!(status["deferred"][0]["file"], victim.display().to_string(), "{status}");
    assert!(
        page.contains("Deferred") && page.contains(victim.to_str().unwrap()),
        "{page}"
    );

    // Deletable again: the next run finishes the journal.
    drop(guard);
    let (code, r) = run_json(&s, &["maintain"]);
    assert_eq!(code, Some(0), "{r}");
    assert!(r["deferred"].as_array().unwrap().is_empty(), "{r}");
    assert!(!victim.exists());
    assert_eq!(catalog_rows(&s), rows_a + rows_b);
}

#[test]
#[ignore = "needs root to make a folder immutable (chattr +i)"]
fn a_partition_folder_that_turns_read_only_after_the_swap_defers_its_retires() {
    let s = Sandbox::new();
    let a = s.gen(1, 1, 2, 100);
    s.json(&["scan"]);
    let folder = s.data_files()[0].parent().unwrap().to_path_buf();
    // Pause right after the catalog swap and make the folder immutable (as
    // root, chmod 0555 would not stop an unlink).
    let mut child = s
        .cmd(&["compact", "--json"])
        .env("MDKEEP_FAILPOINT", "rewrite:after-commit=pause")
        .env("MDKEEP_FAILPOINT_PAUSE_MS", "1500")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("paused") {
        let mut line = String::new();
        assert!(std::io::BufRead::read_line(&mut err, &mut line).unwrap() > 0, "{seen}");
        seen.push_str(&line);
    }
    let guard = Immutable::set(&folder);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(4), "{seen}{rest}");
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(m["failures"][0]["outcome"], "deferred", "{m}");
    // Nothing counted twice, the next scan leaves the old files out.
    let rows = a["distinct_rows"].as_u64().unwrap();
    assert_eq!(catalog_rows(&s), rows);
    let sc = s.json(&["scan"]);
    assert_eq!(sc["added"].as_u64(), Some(0), "{sc}");
    assert_eq!(sc["unsettled"].as_array().unwrap().len(), 48, "{sc}");
    assert_eq!(catalog_rows(&s), rows);
    drop(guard);
    let sc = s.json(&["scan"]);
    assert!(sc["recovered"]["deferred"].as_array().unwrap().is_empty(), "{sc}");
    assert_eq!(sc["recovered"]["finished"].as_u64(), Some(1), "{sc}");
    assert_eq!(s.data_files().len() as u64, m["files_out"].as_u64().unwrap());
    assert_eq!(catalog_rows(&s), rows);
}
