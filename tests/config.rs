//! Config errors name the file and the key; init is idempotent.

mod common;

use common::Sandbox;

#[test]
fn bad_config_key_is_named_with_its_file() {
    let s = Sandbox::new();
    let path = s.root().join("configs/mdkeep.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("settle_time =", "setle_time =");
    std::fs::write(&path, text).unwrap();
    let o = s.run(&["scan"]);
    assert_eq!(o.status.code(), Some(78));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("scan.setle_time"), "{err}");
}

#[test]
fn bad_env_override_is_named() {
    let s = Sandbox::new();
    let o = s
        .cmd(&["scan"])
        .env("MDKEEP__SCAN__SETTLE_TIME", "soon")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(78));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("MDKEEP__SCAN__SETTLE_TIME") && err.contains("scan.settle_time"),
        "{err}"
    );
    // A good override takes effect: a 1000-day settle time makes everything pending.
    s.gen(1, 1, 1, 10);
    let o = s
        .cmd(&["scan", "--json"])
        .env("MDKEEP__SCAN__SETTLE_TIME", "100000d")
        .output()
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["pending"].as_array().unwrap().len(), 24);
}

#[test]
fn init_is_idempotent() {
    let s = Sandbox::empty();
    let first = s.json(&["init"]);
    assert!(!first["created"].as_array().unwrap().is_empty());
    assert!(s.root().join("configs/mdkeep.toml").exists());
    assert!(s.root().join("data/state/mdkeep.db").exists());
    let second = s.json(&["init"]);
    assert_eq!(second["created"].as_array().unwrap().len(), 0, "{second}");
}

#[test]
fn read_commands_need_init() {
    let s = Sandbox::empty();
    let o = s.run(&["ls"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("mdkeep init"));
    assert!(!s.root().join("data").exists(), "a read command must not create state");
}
