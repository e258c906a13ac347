//! `maintain`: every step in order, under one lock that a dead owner loses.

mod common;

use common::{snapshot, Sandbox};

#[test]
fn maintain_runs_every_step_and_a_second_run_is_quiet() {
    let s = Sandbox::new();
    s.gen(1, 2, 2, 100);
    let env = ("MDKEEP__QUOTA__MIN_FREE", "0%");
    let before = snapshot(s.root());
    let o = s
        .cmd(&["maintain", "--dry-run", "--json"])
        .env(env.0, env.1)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(snapshot(s.root()), before, "a dry run changed something");

    let o = s.cmd(&["maintain", "--json"]).env(env.0, env.1).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for k in ["scan", "compact", "rollup", "retention", "tier", "quota"] {
        assert!(r.get(k).is_some(), "no {k} step: {r}");
    }
    assert_eq!(r["scan"]["added"].as_u64(), Some(96));
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
    let mut holder = std::process::Command::new("sleep").arg("60").spawn().unwrap();
    let db = rusqlite::Connection::open(s.root().join("data/state/mdkeep.db")).unwrap();
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    db.execute(
        "INSERT INTO locks (name, pid, acquired_at, heartbeat_at) VALUES ('maintenance', ?1, ?2, ?2)",
        rusqlite::params![holder.id() as i64, now],
    )
    .unwrap();
    let o = s
        .cmd(&["maintain"])
        .env("MDKEEP__QUOTA__MIN_FREE", "0%")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(75));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("already running") && err.contains(&holder.id().to_string()),
        "{err}"
    );

    holder.kill().unwrap();
    holder.wait().unwrap();
    let o = s
        .cmd(&["maintain"])
        .env("MDKEEP__QUOTA__MIN_FREE", "0%")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "stale lock not taken over: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let left: i64 = db.query_row("SELECT count(*) FROM locks", [], |r| r.get(0)).unwrap();
    assert_eq!(left, 0, "the lock was not released");
}
