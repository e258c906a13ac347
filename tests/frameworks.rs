//! Real framework backtests through `mdkeep jobs`: vectorbt, Freqtrade,
//! hftbacktest and NautilusTrader, from the venvs `.ci/run` makes.
//! Each job gets generated trades rolled up into candles and exported in its
//! framework's own format, and must end with a `result.json` holding the
//! framework's own figures and an `artifacts/equity.parquet` that ends where
//! its `total_return` says. Ignored by a plain `cargo test`; under
//! `--include-ignored` a framework that is not installed fails the test.

mod common;

use std::path::PathBuf;

use common::{framework_python, py, Sandbox};
use serde_json::Value;

fn spec(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("jobs")
        .join(name)
        .display()
        .to_string()
}

/// Two days of two symbols, compacted and rolled up into 1m candles.
fn candles() -> Sandbox {
    let s = Sandbox::new();
    s.gen(2, 3, 2, 1000);
    s.ok(&["scan"]);
    s.ok(&["compact"]);
    s.ok(&["rollup"]);
    s
}

fn run_job(s: &Sandbox, framework: &str, py: &std::path::Path, spec_file: &str) -> (PathBuf, Value) {
    let (dir, result, _) = s.run_framework_job(framework, py, std::path::Path::new(&spec(spec_file)));
    (dir, result)
}

/// The job's `artifacts/equity.parquet` (`ts` a timestamp, `equity` a
/// float) ends at `capital` × (1 + `total_return`).
fn equity_agrees(dir: &std::path::Path, capital: f64, total_return: f64) {
    let path = dir.join("artifacts/equity.parquet");
    assert!(path.is_file(), "no {}", path.display());
    let out = py(
        "import pyarrow.parquet as pq, sys\n\
         t = pq.read_table(sys.argv[1])\n\
         assert str(t.schema.field('ts').type).startswith('timestamp'), t.schema\n\
         assert str(t.schema.field('equity').type) == 'double', t.schema\n\
         print(t.num_rows, t.column('equity').to_pylist()[-1])",
        &[&path.display().to_string()],
    );
    let mut parts = out.split_whitespace();
    let rows: u64 = parts.next().unwrap().parse().unwrap();
    let last: f64 = parts.next().unwrap().parse().unwrap();
    assert!(rows > 1, "{out}");
    let want = capital * (1.0 + total_return);
    assert!(
        (last - want).abs() <= 1e-6 * capital.abs().max(1.0),
        "equity ends at {last}, total_return {total_return} on {capital} says {want}"
    );
}

#[test]
#[ignore = "needs the backtest frameworks; .ci/run installs them"]
fn vectorbt_backtests_the_exported_close_table() {
    let py = framework_python("vectorbt");
    let s = candles();
    let (dir, r) = run_job(&s, "vectorbt", &py, "vectorbt-sma.toml");
    let m = &r["metrics"];
    assert_eq!(m["framework"], "vectorbt", "{r}");
    assert_eq!(m["symbols"], serde_json::json!(["BTC_USDT", "ETH_USDT"]), "{r}");
    // Two finished days of 1m candles per symbol.
    assert_eq!(m["candles"], 2880, "{r}");
    assert!(m["trades"].as_u64().unwrap() > 0, "{r}");
    assert!(m["total_return"].is_number() && m["max_drawdown"].is_number(), "{r}");
    // The portfolio's value: init_cash × (1 + total_return) at the end.
    equity_agrees(
        &dir,
        m["init_cash"].as_f64().unwrap(),
        m["total_return"].as_f64().unwrap(),
    );
}

#[test]
#[ignore = "needs the backtest frameworks; .ci/run installs them"]
fn freqtrade_backtests_its_own_feather_files() {
    let py = framework_python("freqtrade");
    let s = candles();
    let (dir, r) = run_job(&s, "freqtrade", &py, "freqtrade-sma.toml");
    let m = &r["metrics"];
    assert_eq!(m["framework"], "freqtrade", "{r}");
    assert_eq!(m["strategy"], "SmaCross", "{r}");
    assert!(m["total_trades"].as_u64().unwrap() > 0, "{r}");
    assert!(
        m["profit_total"].is_number() && m["max_drawdown_account"].is_number(),
        "{r}"
    );
    assert!(m["backtest_start"].as_str().unwrap().starts_with("2024-01-01"), "{r}");
    // Closed-trade equity: starting_balance × (1 + profit_total) after the last trade.
    equity_agrees(
        &dir,
        m["starting_balance"].as_f64().unwrap(),
        m["profit_total"].as_f64().unwrap(),
    );
}

#[test]
#[ignore = "needs the backtest frameworks; .ci/run installs them"]
fn hftbacktest_makes_markets_on_the_exported_npz() {
    let py = framework_python("hftbacktest");
    let s = candles();
    let (dir, r) = run_job(&s, "hftbacktest", &py, "hftbacktest-trade-mm.toml");
    let m = &r["metrics"];
    assert_eq!(m["framework"], "hftbacktest", "{r}");
    assert!(m["fills"].as_u64().unwrap_or(0) > 0, "{r}");
    assert!(m["total_profit"].is_number(), "{r}");
    // The book plus the profit so far: book_size × (1 + total_return) at the end.
    equity_agrees(
        &dir,
        m["book_size"].as_f64().unwrap(),
        m["total_return"].as_f64().unwrap(),
    );
}

#[test]
#[ignore = "needs the backtest frameworks; .ci/run installs them"]
fn nautilus_backtests_the_exported_catalog() {
    let py = framework_python("nautilus_trader");
    let s = candles();
    let (dir, r) = run_job(&s, "nautilus", &py, "nautilus-ema-cross.toml");
    let m = &r["metrics"];
    assert_eq!(m["framework"], "nautilus_trader", "{r}");
    assert_eq!(m["iterations"], 1440, "one day of 1m bars: {r}");
    // The instrument came from the exported catalog, not from the script.
    assert_eq!(m["instruments_from_catalog"], 1, "{r}");
    assert!(m["fills"].as_u64().unwrap_or(0) > 0, "{r}");
    assert!(m["total_profit"].is_number(), "{r}");
    // The account's quote balance marked at each close: init_cash × (1 + total_return).
    equity_agrees(
        &dir,
        m["init_cash"].as_f64().unwrap(),
        m["total_return"].as_f64().unwrap(),
    );
}
