//! Framework adapters: one normalized set of metrics per job, read from each
//! framework's stable outputs.
//!
//! Owns only reading results back. Scripts (vectorbt, hftbacktest,
//! nautilus, command) write `artifacts/metrics.json` themselves, at the path
//! in `MDKEEP_RESULT`; Freqtrade's own backtest export is read from the
//! artifacts folder it was pointed at.

use std::path::Path;

use serde_json::{json, Value};

/// Metrics for `result.json`, or null when the job left none.
pub fn metrics(framework: &str, dir: &Path) -> Value {
    let artifacts = dir.join("artifacts");
    if let Some(v) = read_json(&artifacts.join("metrics.json")) {
        return v;
    }
    match framework {
        "freqtrade" => freqtrade(&artifacts).unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

fn read_json(p: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(p).ok()?).ok()
}

/// Freqtrade writes `backtest-result-<time>.zip` (holding a `.json` of the
/// same name) and points `.last_result.json` at it. The per-strategy block
/// carries the figures we keep.
fn freqtrade(artifacts: &Path) -> Option<Value> {
    let last = read_json(&artifacts.join(".last_result.json"))?;
    let name = last.get("latest_backtest")?.as_str()?;
    let path = artifacts.join(name);
    let doc: Value = if name.ends_with(".zip") {
        let f = std::fs::File::open(&path).ok()?;
        let mut z = zip::ZipArchive::new(f).ok()?;
        let inner = name.trim_end_matches(".zip").to_string() + ".json";
        let mut e = z.by_name(&inner).ok()?;
        let mut s = String::new();
        std::io::Read::read_to_string(&mut e, &mut s).ok()?;
        serde_json::from_str(&s).ok()?
    } else {
        read_json(&path)?
    };
    let (strategy, r) = doc.get("strategy")?.as_object()?.iter().next()?;
    let num = |k: &str| r.get(k).cloned().unwrap_or(Value::Null);
    // Futures trades carry what funding cost them; Freqtrade keeps no total.
    let funding: f64 = r
        .get("trades")
        .and_then(Value::as_array)
        .map(|ts| ts.iter().filter_map(|t| t.get("funding_fees")?.as_f64()).sum())
        .unwrap_or(0.0);
    Some(json!({
        "framework": "freqtrade",
        "strategy": strategy,
        "total_trades": num("total_trades"),
        "profit_total": num("profit_total"),
        "profit_total_abs": num("profit_total_abs"),
        "max_drawdown_account": num("max_drawdown_account"),
        "max_drawdown_abs": num("max_drawdown_abs"),
        "wins": num("wins"),
        "losses": num("losses"),
        "stake_currency": num("stake_currency"),
        "starting_balance": num("starting_balance"),
        "backtest_start": num("backtest_start"),
        "backtest_end": num("backtest_end"),
        "trading_mode": num("trading_mode"),
        "funding_fees": funding,
    }))
}
