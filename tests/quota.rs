//! Quotas: evictions in the declared order, never keep_forever or pinned
//! data, and a loud failure when the limit cannot be met.

mod common;

use common::{shared, snapshot, Sandbox};
use serde_json::Value;

/// Four compacted days of trades (priority 0) and real Freqtrade candles (ohlcv, priority 10).
fn pile() -> Sandbox {
    let s = Sandbox::new();
    s.gen(1, 4, 2, 500);
    s.ok(&["scan"]);
    s.ok(&["compact"]);
    // Candles only, read in place through a link.
    let ft = s.root().join("ft");
    std::fs::create_dir_all(&ft).unwrap();
    std::os::unix::fs::symlink(
        shared("data/freqtrade/ETH_BTC-5m.feather"),
        ft.join("ETH_BTC-5m.feather"),
    )
    .unwrap();
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

#[test]
fn hard_limit_evicts_lowest_priority_oldest_first() {
    let s = pile();
    let (_, before, _) = quota(&s, &[], &["--dry-run"]);
    let total = before["usage"]["total"].as_u64().unwrap();
    let trades = s.json(&["ls", "--dataset", "trades"]);
    let day1 = trades[0]["bytes"].as_u64().unwrap();
    // Just enough below usage that the two oldest trade days must go.
    let hard = (total - day1 - 10).to_string();
    let env = [("MDKEEP__QUOTA__HARD_TOTAL", hard.as_str())];

    let snap = snapshot(s.root());
    let (code, plan, _) = quota(&s, &env, &["--dry-run"]);
    assert_eq!(code, Some(0));
    assert_eq!(snapshot(s.root()), snap, "a dry run changed something");
    let parts: Vec<&str> = plan["evictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["partition"].as_str().unwrap())
        .collect();
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
        r["usage_after"]["total"].as_u64().unwrap() <= hard.parse::<u64>().unwrap(),
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
