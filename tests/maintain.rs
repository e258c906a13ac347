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
