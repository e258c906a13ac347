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
