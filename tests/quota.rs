//! Quotas: evictions in the declared order, never keep_forever or pinned
//! data, and a loud failure when the limit cannot be met.

mod common;

use common::{snapshot, write_candles_feather, Sandbox};
use serde_json::Value;

/// Four compacted days of trades (priority 0) and Freqtrade candles (ohlcv,
/// priority 10): 20 days of 5m ETH/BTC candles in January 2018, as in a real
/// Freqtrade feather file.
fn pile() -> Sandbox {
    let s = Sandbox::new();
    s.gen(1, 4, 2, 500);
    s.ok(&["scan"]);
    s.ok(&["compact"]);
    // Candles only.
    let ft = s.root().join("ft");
    std::fs::create_dir_all(&ft).unwrap();
    write_candles_feather(&ft.join("ETH_BTC-5m.feather"), 1_515_560_100_000, 300_000, 5760);
    s.ok(&["ingest", "freqtrade", ft.to_str().unwrap(), "--exchange", "binance"]);
    s
}

fn quota(s: &Sandbox, env: &[(&str, &str)], args: &[&str]) -> (Option<i32>, Value, String) {
    let mut a = vec!["quota", "--json"];
    a.extend_from_slice(args);
    let o = s
        .cmd(&a)
        .env("MDKEEP__QUOTA__MIN_FREE", "0%")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    (o.status.code(), v, String::from_utf8_lossy(&o.stderr).into_owned())
}

/// The partitions a quota plan or report evicts, in order.
fn evicted_partitions(v: &serde_json::Value) -> Vec<&str> {
    v["evictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["partition"].as_str().unwrap())
        .collect()
}

#[test]
fn hard_limit_evicts_lowest_priority_oldest_first() {
    let s = pile();
    let (_, before, _) = quota(&s, &[], &["--dry-run"]);
    let total = before["usage"]["total"].as_u64().unwrap();
    let trades = s.json(&["ls", "--dataset", "trades"]);
    let day1 = trades[0]["bytes"].as_u64().unwrap();
    // Just enough below usage that the two oldest trade days must go.
    let hard = format!("{}B", total - day1 - 10);
    let env = [("MDKEEP__QUOTA__HARD_TOTAL", hard.as_str())];

    let snap = snapshot(s.root());
    let (code, plan, _) = quota(&s, &env, &["--dry-run"]);
    assert_eq!(code, Some(0));
    assert_eq!(snapshot(s.root()), snap, "a dry run changed something");
    let parts = evicted_partitions(&plan);
    assert_eq!(
        parts,
        vec![
            "exchange=binance/symbol=BTC_USDT/date=2024-01-01",
            "exchange=binance/symbol=BTC_USDT/date=2024-01-02"
        ]
    );

    let (code, r, err) = quota(&s, &env, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        r["usage_after"]["total"].as_u64().unwrap() <= hard.trim_end_matches('B').parse::<u64>().unwrap(),
        "{r}"
    );
    assert_eq!(s.json(&["ls", "--dataset", "trades"]).as_array().unwrap().len(), 2);
    let candles: u64 = s
        .json(&["ls", "--dataset", "ohlcv"])
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["rows"].as_u64().unwrap())
        .sum();
    assert!(candles > 0, "higher-priority candles were evicted");
}

#[test]
fn keep_forever_and_pinned_survive_and_an_unmet_limit_fails_loudly() {
    let s = pile();
    let pinned = s
        .data_files()
        .into_iter()
        .find(|p| p.to_string_lossy().contains("date=2024-01-02"))
        .unwrap();
    s.ok(&["pin", pinned.to_str().unwrap()]);
    let candles_before = s.json(&["ls", "--dataset", "ohlcv"]);
    let months = candles_before.as_array().unwrap();
    assert_eq!(months.len(), 1, "the candles exist before: {candles_before}");
    assert_eq!(months[0]["rows"].as_u64(), Some(5760));
    let env = [
        ("MDKEEP__QUOTA__HARD_TOTAL", "1KiB"),
        ("MDKEEP__DATASETS__OHLCV__KEEP_FOREVER", "true"),
    ];
    let (code, r, err) = quota(&s, &env, &[]);
    assert_eq!(code, Some(3), "{r}");
    assert!(err.contains("quota cannot be met"), "{err}");
    assert!(r["unmet"].is_string());
    assert!(pinned.exists(), "a pinned file was evicted");
    assert_eq!(
        s.json(&["ls", "--dataset", "ohlcv"]),
        candles_before,
        "keep_forever data was evicted"
    );
    // Everything else of trades went.
    let left: Vec<Value> = s.json(&["ls", "--dataset", "trades"]).as_array().unwrap().clone();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["partition"]["date"], "2024-01-02");
}

#[test]
fn a_dataset_hard_limit_evicts_only_that_dataset_oldest_first() {
    let s = pile();
    let (_, before, _) = quota(&s, &[], &["--dry-run"]);
    let trades_used = before["usage"]["datasets"]["trades"].as_u64().unwrap();
    let days = s.json(&["ls", "--dataset", "trades"]);
    let day1 = days[0]["bytes"].as_u64().unwrap();
    // Trades now rank last in the global order, yet their own limit evicts
    // them, and only them: the candles (lower priority) stay.
    let limit = format!("{}B", trades_used - day1 - 10);
    let env = [
        ("MDKEEP__DATASETS__TRADES__HARD_LIMIT", limit.as_str()),
        ("MDKEEP__DATASETS__TRADES__PRIORITY", "100"),
    ];
    let candles_before = s.json(&["ls", "--dataset", "ohlcv"]);
    assert_eq!(candles_before.as_array().unwrap().len(), 1, "the candles exist before");
    let (code, r, err) = quota(&s, &env, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(r["hard"][0]["what"], "dataset trades", "{r}");
    let evicted = evicted_partitions(&r);
    assert_eq!(
        evicted,
        vec![
            "exchange=binance/symbol=BTC_USDT/date=2024-01-01",
            "exchange=binance/symbol=BTC_USDT/date=2024-01-02"
        ],
        "oldest first: {r}"
    );
    assert!(
        r["usage_after"]["datasets"]["trades"].as_u64().unwrap() <= limit.trim_end_matches('B').parse::<u64>().unwrap()
    );
    assert_eq!(s.json(&["ls", "--dataset", "ohlcv"]), candles_before);
}

#[test]
fn a_soft_limit_warns_and_tiers_early() {
    let s = pile();
    // Day 1 ended about 3 days before the newest row: not old enough for
    // warm at 5d, old enough at 5d × 0.5.
    let env = [
        ("MDKEEP__DATASETS__TRADES__TIER_AFTER__WARM", "5d"),
        ("MDKEEP__QUOTA__SOFT_TOTAL", "1KiB"),
    ];
    let o = s.cmd(&["tier", "--dry-run", "--json"]).envs(env).output().unwrap();
    let plain: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plain["moves"].as_array().unwrap().len(), 0, "{plain}");

    let snap = snapshot(s.root());
    let (code, plan, _) = quota(&s, &env, &["--dry-run"]);
    assert_eq!(code, Some(0));
    assert_eq!(snapshot(s.root()), snap, "a dry run changed something");
    assert_eq!(plan["soft"][0]["what"], "total", "{plan}");
    let early = plan["early_tier"]["moves"].as_array().unwrap();
    assert_eq!(early.len(), 1, "{plan}");
    assert_eq!(
        early[0]["partition"],
        "exchange=binance/symbol=BTC_USDT/date=2024-01-01"
    );
    assert!(early[0]["reason"].as_str().unwrap().contains("early"), "{plan}");

    let (code, r, err) = quota(&s, &env, &[]);
    assert_eq!(code, Some(0), "a soft limit only warns: {err}");
    assert!(err.contains("soft quota exceeded"), "{err}");
    assert_eq!(r["tiered_early"]["moves"], 1, "{r}");
    assert_eq!(r["evictions"].as_array().unwrap().len(), 0);
    let tiers: Vec<String> = s
        .json(&["ls", "--dataset", "trades"])
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}:{}",
                p["partition"]["date"].as_str().unwrap(),
                p["tier"].as_str().unwrap()
            )
        })
        .collect();
    assert!(tiers.contains(&"2024-01-01:warm".to_string()), "{tiers:?}");
}

#[test]
fn job_folders_are_counted_and_old_exports_go_while_logs_and_results_stay() {
    let s = pile();
    let spec = s.root().join("jobs/export.toml");
    std::fs::create_dir_all(spec.parent().unwrap()).unwrap();
    std::fs::write(
        &spec,
        "name = \"export\"\nframework = \"command\"\nargv = [\"true\"]\n[data]\ndataset = \"trades\"\nformat = \"parquet\"\n",
    )
    .unwrap();
    let id = s.json(&["jobs", "submit", spec.to_str().unwrap()])["id"]
        .as_i64()
        .unwrap();
    s.ok(&["jobs", "work", "--once"]);
    let dir = std::path::PathBuf::from(s.json(&["jobs", "show", &id.to_string()])["dir"].as_str().unwrap());
    assert!(dir.join("data").is_dir() && dir.join("result.json").is_file());

    // Kept for jobs.keep_exports (7 days by default), but counted.
    let (_, plan, _) = quota(&s, &[], &["--dry-run"]);
    assert!(plan["usage"]["jobs"].as_u64().unwrap() > 0, "{plan}");
    assert_eq!(plan["expired_exports"].as_array().unwrap().len(), 0, "{plan}");
    let env = [("MDKEEP__JOBS__KEEP_EXPORTS", "0s")];
    let (_, plan, _) = quota(&s, &env, &["--dry-run"]);
    assert_eq!(plan["expired_exports"][0]["job"].as_i64(), Some(id), "{plan}");
    assert!(dir.join("data").is_dir(), "a dry run deleted the export");
    let (code, _, err) = quota(&s, &env, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!dir.join("data").exists(), "the old export stayed");
    assert!(dir.join("result.json").is_file() && dir.join("stdout.log").is_file());
}

#[test]
#[ignore = "needs root to mount a small tmpfs"]
fn min_free_evicts_only_the_short_filesystem_and_at_most_the_cap() {
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test mounts a tmpfs: run it as root"
    );
    let s = Sandbox::new();
    let mnt = s.root().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=32m", "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(ok.success(), "mount tmpfs");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.clone());
    // Six days of trades: the two oldest go cold (the tmpfs), one warm and
    // three stay hot (the machine's disk).
    let cold = mnt.join("cold");
    let cold_root = cold.display().to_string();
    let tiered = [
        ("MDKEEP__TIERS__COLD__ROOT", cold_root.as_str()),
        ("MDKEEP__DATASETS__TRADES__TIER_AFTER__WARM", "2d"),
        ("MDKEEP__DATASETS__TRADES__TIER_AFTER__COLD", "3d"),
        ("MDKEEP__QUOTA__MIN_FREE", "0%"),
    ];
    s.gen(1, 6, 2, 500);
    for cmd in ["scan", "compact", "tier"] {
        let o = s.cmd(&[cmd]).envs(tiered).output().unwrap();
        assert!(o.status.success(), "{cmd}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let ls = |s: &Sandbox| -> Vec<(String, String, u64)> {
        let v = s
            .cmd(&["ls", "--dataset", "trades", "--json"])
            .envs(tiered)
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&v.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["partition"]["date"].as_str().unwrap().to_string(),
                    p["tier"].as_str().unwrap().to_string(),
                    p["rows"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let before = ls(&s);
    let tiers: Vec<&str> = before.iter().map(|p| p.1.as_str()).collect();
    assert_eq!(tiers, ["cold", "cold", "warm", "hot", "hot", "hot"], "{before:?}");
    // Another program fills the tmpfs: 256 KiB stay free, below min_free = 4 MiB.
    let (free, _) = {
        let out = std::process::Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(&mnt)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (text.lines().nth(1).unwrap().trim().parse::<u64>().unwrap(), ())
    };
    std::fs::write(mnt.join("filler"), vec![7u8; (free - 256 * 1024) as usize]).unwrap();
    let mut env = tiered.to_vec();
    env.retain(|(k, _)| *k != "MDKEEP__QUOTA__MIN_FREE");
    env.push(("MDKEEP__QUOTA__MIN_FREE", "4MiB"));
    env.push(("MDKEEP__QUOTA__MAX_EVICT_PER_RUN", "100%"));

    // Trades whose candles are not verified yet stay, whatever the space.
    let (_, plan, _) = quota(&s, &env, &["--dry-run"]);
    assert_eq!(evicted_partitions(&plan).len(), 0, "{plan}");
    assert!(plan["unmet"].as_str().unwrap().contains("short of min_free"), "{plan}");
    let o = s.cmd(&["rollup"]).envs(tiered).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // Rolled up: only the tmpfs's partitions may go, oldest first.
    let (_, plan, _) = quota(&s, &env, &["--dry-run"]);
    let evictions = plan["evictions"].as_array().unwrap();
    assert_eq!(evictions.len(), 2, "{plan}");
    assert!(
        evictions.iter().all(|e| e["tier"] == "cold"),
        "only the short filesystem: {plan}"
    );
    // At most the cap per run: room for the oldest, not the next.
    let one = evictions[0]["bytes"].as_u64().unwrap();
    let cap = format!("{}B", one + 1);
    env.retain(|(k, _)| *k != "MDKEEP__QUOTA__MAX_EVICT_PER_RUN");
    env.push(("MDKEEP__QUOTA__MAX_EVICT_PER_RUN", cap.as_str()));
    let (code, r, _) = quota(&s, &env, &[]);
    assert_eq!(code, Some(3), "still short after the cap: {r}");
    assert!(r["unmet"].as_str().unwrap().contains("max_evict_per_run"), "{r}");
    assert_eq!(
        evicted_partitions(&r),
        ["exchange=binance/symbol=BTC_USDT/date=2024-01-01"]
    );
    let after = ls(&s);
    assert_eq!(after, before[1..].to_vec(), "only the oldest cold partition went");
}
