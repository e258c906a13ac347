//! Reports on generated piles with a known gap and known deletions: the gap
//! found exactly, deletions with their reasons, the forecast's arithmetic on
//! a synthetic growth history, the JSON schema, and a self-contained HTML page.

mod common;

use common::{py, Sandbox};
use serde_json::Value;

/// Two symbols, three days, compacted; ETH_USDT's 2024-01-02 then removed.
fn pile_with_a_gap() -> Sandbox {
    let s = Sandbox::new();
    s.gen(2, 3, 2, 200);
    s.ok(&["scan"]);
    s.ok(&["compact"]);
    std::fs::remove_dir_all(s.hot().join("trades/exchange=binance/symbol=ETH_USDT/date=2024-01-02")).unwrap();
    s.ok(&["scan"]);
    s
}

fn report(s: &Sandbox, env: &[(&str, &str)]) -> Value {
    let o = s
        .cmd(&["report", "--format", "json"])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn the_report_finds_exactly_the_missing_day() {
    let s = pile_with_a_gap();
    let r = report(&s, &[]);
    let gaps: Vec<&Value> = r["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["dataset"] == "trades")
        .collect();
    assert_eq!(gaps.len(), 1, "{:#}", r["gaps"]);
    let g = gaps[0];
    assert_eq!(g["series"], "exchange=binance/symbol=ETH_USDT");
    assert_eq!(g["from"], "2024-01-02T00:00:00Z");
    assert_eq!(g["to"], "2024-01-03T00:00:00Z");
    assert_eq!((g["missing"].as_u64(), g["cadence"].as_str()), (Some(24), Some("1h")));
    // The coverage map has BTC every day and ETH on days 1 and 3 only.
    let days = |sym: &str| -> Vec<String> {
        r["coverage"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["series"].as_str().unwrap().ends_with(sym))
            .map(|c| c["day"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(days("BTC_USDT"), ["2024-01-01", "2024-01-02", "2024-01-03"]);
    assert_eq!(days("ETH_USDT"), ["2024-01-01", "2024-01-03"]);
    // The table says the same.
    let table = s.ok(&["report"]);
    assert!(
        table.contains("Coverage gaps (1)") && table.contains("24 × 1h"),
        "{table}"
    );
}

#[test]
fn deletions_are_listed_with_their_reasons() {
    let s = Sandbox::new();
    s.gen(1, 4, 2, 200);
    s.ok(&["scan"]);
    s.ok(&["compact"]);
    s.ok(&["rollup"]);
    let o = s
        .cmd(&["retention"])
        .env("MDKEEP__DATASETS__TRADES__KEEP", "50h")
        .output()
        .unwrap();
    assert!(o.status.success());
    // Then a hard total that only evicting the oldest remaining day meets.
    let q = s.json(&["quota", "--dry-run"]);
    let total = q["usage"]["total"].as_u64().unwrap();
    let hard = format!("{}B", total - 100);
    let o = s
        .cmd(&["quota"])
        .env("MDKEEP__QUOTA__HARD_TOTAL", &hard)
        .env("MDKEEP__QUOTA__MIN_FREE", "0%")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = report(&s, &[]);
    let removed: Vec<(String, String, String)> = r["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["action"] == "retention" || h["action"] == "evict")
        .map(|h| {
            (
                h["action"].as_str().unwrap().to_string(),
                h["partition"].as_str().unwrap().to_string(),
                h["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(removed.len(), 2, "{removed:?}");
    assert_eq!(removed[0].0, "retention");
    assert!(removed[0].1.ends_with("date=2024-01-01"), "{removed:?}");
    assert!(removed[0].2.contains("keep = 50h"), "{removed:?}");
    assert_eq!(removed[1].0, "evict");
    assert!(removed[1].2.starts_with("quota: priority"), "{removed:?}");
    let totals = r["history_totals"].as_array().unwrap();
    assert!(
        totals.iter().any(|t| t["action"] == "retention" && t["events"] == 1),
        "{totals:?}"
    );
    let md = s.ok(&["report", "--format", "md"]);
    assert!(md.contains("## Removed, and why") && md.contains("keep = 50h"), "{md}");
}

#[test]
fn the_forecast_follows_a_synthetic_growth_history() {
    let s = Sandbox::new();
    s.gen(1, 1, 1, 50);
    s.ok(&["scan"]);
    // Five days ending yesterday, growing by exactly 1,000 bytes a day.
    py(
        "import sqlite3, sys, datetime\n\
         c = sqlite3.connect(sys.argv[1])\n\
         c.execute('DELETE FROM usage_daily')\n\
         today = datetime.datetime.now(datetime.timezone.utc).date()\n\
         for i in range(5):\n\
         \x20   day = (today - datetime.timedelta(days=5 - i)).isoformat()\n\
         \x20   c.execute('INSERT INTO usage_daily VALUES (?, ?, ?, ?, ?, ?)', (day, 'trades', 'hot', 1, 1, 10000 + 1000 * i))\n\
         c.commit()",
        &[&s.root().join("data/state/mdkeep.db").display().to_string()],
    );
    let probe = report(&s, &[]);
    let usage = s.json(&["quota", "--dry-run"])["usage"]["total"].as_u64().unwrap();
    assert_eq!(probe["growth"].as_array().unwrap().len(), 5);
    let hard = format!("{}B", usage + 25_000);
    let soft = format!("{}B", usage + 10_000);
    let r = report(
        &s,
        &[
            ("MDKEEP__QUOTA__HARD_TOTAL", &hard),
            ("MDKEEP__QUOTA__SOFT_TOTAL", &soft),
            ("MDKEEP__QUOTA__MIN_FREE", "0%"),
        ],
    );
    let f = |limit: &str| {
        r["forecast"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["limit"] == limit)
            .unwrap()
            .clone()
    };
    let (h, so) = (f("hard_total"), f("soft_total"));
    for (row, ahead) in [(&h, 25_000.0), (&so, 10_000.0)] {
        assert!(
            (row["growth_bytes_per_day"].as_f64().unwrap() - 1000.0).abs() < 1e-6,
            "{row}"
        );
        let used = row["usage_bytes"].as_u64().unwrap() as f64;
        let want = (row["limit_bytes"].as_u64().unwrap() as f64 - used) / 1000.0;
        assert!((row["days_until"].as_f64().unwrap() - want).abs() < 1e-9, "{row}");
        // Usage moves a little between the probe and the report (the state db); the limit was set from the probe.
        assert!(
            (row["days_until"].as_f64().unwrap() - ahead / 1000.0).abs() < 5.0,
            "{row}"
        );
        assert_eq!(row["reached"], false);
    }
    // A limit already passed says so, with no days.
    let r = report(
        &s,
        &[("MDKEEP__QUOTA__HARD_TOTAL", "1KiB"), ("MDKEEP__QUOTA__MIN_FREE", "0%")],
    );
    let h = r["forecast"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["limit"] == "hard_total")
        .unwrap()
        .clone();
    assert_eq!(
        (h["reached"].as_bool(), h["days_until"].is_null()),
        (Some(true), true),
        "{h}"
    );
}

#[test]
fn json_follows_its_schema_and_html_is_self_contained() {
    let s = pile_with_a_gap();
    s.ok(&["rollup"]);
    let json = s.root().join("report.json");
    s.ok(&["report", "--format", "json", "--out", json.to_str().unwrap()]);
    let out = py(
        "import json, sys, jsonschema\n\
         schema = json.load(open(sys.argv[1]))\n\
         doc = json.load(open(sys.argv[2]))\n\
         jsonschema.Draft202012Validator.check_schema(schema)\n\
         errors = list(jsonschema.Draft202012Validator(schema).iter_errors(doc))\n\
         print(len(errors), '; '.join(f'{list(e.path)}: {e.message}' for e in errors[:5]))",
        &[
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("docs/report.schema.json")
                .display()
                .to_string(),
            &json.display().to_string(),
        ],
    );
    assert_eq!(out.split_whitespace().next(), Some("0"), "schema violations: {out}");

    let html = s.root().join("report.html");
    s.ok(&["report", "--format", "html", "--out", html.to_str().unwrap()]);
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(page.matches("<svg").count(), 3, "three charts");
    for fetch in ["src=", "<link", "url(", "@import", "<script"] {
        assert!(!page.contains(fetch), "the page would fetch something: {fetch}");
    }
    assert!(page.contains("Coverage gaps (") && page.contains("ETH_USDT"));
}

#[test]
fn the_daemon_task_writes_dated_reports_and_keeps_the_newest() {
    let s = Sandbox::new();
    s.gen(1, 1, 1, 50);
    s.ok(&["scan"]);
    let dir = s.root().join("data/reports");
    std::fs::create_dir_all(&dir).unwrap();
    for d in ["2020-01-01", "2020-01-02", "2020-01-03"] {
        for ext in ["html", "json"] {
            std::fs::write(dir.join(format!("retention-{d}.{ext}")), "old").unwrap();
        }
    }
    let o = s
        .cmd(&["report", "--write-dated"])
        .env("MDKEEP__DAEMON__KEEP_REPORTS", "2")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(
        names.iter().any(|n| n.starts_with("retention-2020-01-03.html")),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.contains("2020-01-02")), "{names:?}");
}
