//! Freqtrade futures data, complete: a futures folder written in
//! Freqtrade's own formats (feather and json.gz) — futures, mark, index and
//! premium-index candles and funding rates, in the current and the older
//! funding layout — round-trips through `ingest freqtrade` and `export
//! --format freqtrade`; and (with the framework venvs) a real Freqtrade
//! futures backtest on the export charges funding, and a Nautilus backtest
//! trades the perpetual from the exported catalog alone.

mod common;

use std::path::{Path, PathBuf};

use common::{framework_python, py, Sandbox};
use serde_json::Value;

/// Three days (2024-01-01..04) of BTC/USDT:USDT near 40,000: 1m futures
/// candles (feather), 1h mark candles (feather), 1h index candles (json.gz,
/// 6-wide rows), 1h premium index (feather), and funding of 1e-4 at 00, 08
/// and 16h (json.gz, `[date, rate]` rows); ETH/USDT:USDT funding in the older
/// candle layout with the rate in `open` (feather).
const WRITE: &str = r#"
import gzip, json, sys, os
import pyarrow as pa, pyarrow.feather as feather
d = os.path.join(sys.argv[1], "futures"); os.makedirs(d, exist_ok=True)
t0, MIN, H = 1704067200000, 60_000, 3_600_000
def candles(step, n, base):
    ts = [t0 + i * step for i in range(n)]
    px = [base + (i % 60) * 2.0 for i in range(n)]
    return ts, [[p, p + 5.0, p - 5.0, p + 1.0, 10.0 + i % 7] for i, p in enumerate(px)]
def write_feather(name, ts, rows, cols=("open", "high", "low", "close", "volume")):
    t = {"date": pa.array(ts, pa.timestamp("ms", tz="UTC"))}
    for k, c in enumerate(cols):
        t[c] = pa.array([r[k] for r in rows], pa.float64())
    feather.write_feather(pa.table(t), os.path.join(d, name))
def write_jsongz(name, ts, rows):
    with gzip.open(os.path.join(d, name), "wt") as f:
        json.dump([[t] + r for t, r in zip(ts, rows)], f)
ts, rows = candles(MIN, 3 * 1440, 40000.0); write_feather("BTC_USDT_USDT-1m-futures.feather", ts, rows)
ts, rows = candles(H, 72, 40001.0); write_feather("BTC_USDT_USDT-1h-mark.feather", ts, rows)
ts, rows = candles(H, 72, 39999.0); write_jsongz("BTC_USDT_USDT-1h-index.json.gz", ts, rows)
ts, rows = candles(H, 72, 0.0001); write_feather("BTC_USDT_USDT-1h-premiumIndex.feather", ts, rows)
fts = [t0 + i * 8 * H for i in range(9)]
write_jsongz("BTC_USDT_USDT-1h-funding_rate.json.gz", fts, [[0.0001] for _ in fts])
write_feather("ETH_USDT_USDT-1h-funding_rate.feather", fts, [[0.0002 * (i + 1), 0, 0, 0, 0] for i in range(9)])
"#;

fn futures_folder(dir: &Path) {
    py(WRITE, &[&dir.display().to_string()]);
}

/// Every row of a Freqtrade feather file, as text.
fn rows(path: &Path) -> String {
    py(
        "import pyarrow.feather as f, sys\n\
         t = f.read_table(sys.argv[1])\n\
         print(t.schema.names, t.schema.field('date').type)\n\
         for r in t.to_pylist(): print(r)",
        &[&path.display().to_string()],
    )
}

/// The same rows read from Freqtrade's json.gz (epoch ms dates).
fn json_rows(path: &Path) -> Vec<Vec<f64>> {
    let text = py(
        "import gzip, json, sys\nprint(json.dumps(json.load(gzip.open(sys.argv[1], 'rt'))))",
        &[&path.display().to_string()],
    );
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_freqtrade_futures_folder_round_trips() {
    let s = Sandbox::new();
    let src = s.root().join("ft");
    futures_folder(&src);
    let r = s.json(&["ingest", "freqtrade", src.to_str().unwrap(), "--exchange", "binance"]);
    assert!(r["skipped"].as_array().unwrap().is_empty(), "{r}");
    for (ds, rows_in) in [
        ("ohlcv", 4320),
        ("mark", 72),
        ("index", 72),
        ("premium", 72),
        ("funding", 18),
    ] {
        let ls = s.json(&["ls", "--dataset", ds]);
        let n: u64 = ls.as_array().unwrap().iter().map(|p| p["rows"].as_u64().unwrap()).sum();
        assert_eq!(n, rows_in, "{ds}: {ls}");
    }

    let out = s.root().join("export");
    let e = s.json(&[
        "export",
        "--dataset",
        "ohlcv",
        "--format",
        "freqtrade",
        "--exchange",
        "binance",
        "--timeframe",
        "1m",
        "--out",
        out.to_str().unwrap(),
    ]);
    let mut names: Vec<String> = e["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            Path::new(f["path"].as_str().unwrap())
                .strip_prefix(&out)
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "futures/BTC_USDT_USDT-1h-funding_rate.feather",
            "futures/BTC_USDT_USDT-1h-index.feather",
            "futures/BTC_USDT_USDT-1h-mark.feather",
            "futures/BTC_USDT_USDT-1h-premiumIndex.feather",
            "futures/BTC_USDT_USDT-1m-futures.feather",
        ],
        "{e}"
    );
    let f = |n: &str| (src.join("futures").join(n), out.join("futures").join(n));
    // Feather in, feather out: every row equal.
    for name in [
        "BTC_USDT_USDT-1m-futures.feather",
        "BTC_USDT_USDT-1h-mark.feather",
        "BTC_USDT_USDT-1h-premiumIndex.feather",
    ] {
        let (a, b) = f(name);
        assert_eq!(rows(&a), rows(&b), "{name}");
    }
    // json.gz in, feather out: the same values.
    let back = |name: &str| -> Vec<Vec<f64>> {
        let text = py(
            "import pyarrow.feather as f, sys, json\n\
             t = f.read_table(sys.argv[1])\n\
             cols = [c.cast('int64').to_pylist() if i == 0 else c.to_pylist() for i, c in enumerate(t.columns)]\n\
             print(json.dumps([list(r) for r in zip(*cols)]))",
            &[&out.join("futures").join(name).display().to_string()],
        );
        serde_json::from_str(&text).unwrap()
    };
    assert_eq!(
        back("BTC_USDT_USDT-1h-index.feather"),
        json_rows(&f("BTC_USDT_USDT-1h-index.json.gz").0)
    );
    assert_eq!(
        back("BTC_USDT_USDT-1h-funding_rate.feather"),
        json_rows(&f("BTC_USDT_USDT-1h-funding_rate.json.gz").0)
    );
    // Funding is written in Freqtrade's current layout, whatever it came in;
    // ETH has no candles, so it was not brought along: export it alone.
    assert!(!out.join("futures/ETH_USDT_USDT-1h-funding_rate.feather").exists());
    s.json(&[
        "export",
        "--dataset",
        "funding",
        "--format",
        "freqtrade",
        "--symbol",
        "ETH_USDT_USDT",
        "--out",
        out.to_str().unwrap(),
    ]);
    let eth = rows(&out.join("futures/ETH_USDT_USDT-1h-funding_rate.feather"));
    assert!(
        eth.starts_with("['date', 'funding_rate'] timestamp[ms, tz=UTC]"),
        "{eth}"
    );
    assert!(eth.contains("'funding_rate': 0.0018"), "{eth}");
}

#[test]
#[ignore = "needs the backtest frameworks; .ci/run installs them"]
fn a_freqtrade_futures_backtest_on_the_export_charges_funding() {
    let py = framework_python("freqtrade");
    let s = Sandbox::new();
    let src = s.root().join("ft");
    futures_folder(&src);
    s.json(&["ingest", "freqtrade", src.to_str().unwrap(), "--exchange", "binance"]);
    let spec = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("jobs/freqtrade-futures.toml");
    let (dir, r, logs) = s.run_framework_job("freqtrade", &py, &spec);
    for f in [
        "BTC_USDT_USDT-1m-futures",
        "BTC_USDT_USDT-1h-mark",
        "BTC_USDT_USDT-1h-funding_rate",
    ] {
        assert!(dir.join("data/futures").join(format!("{f}.feather")).is_file(), "{f}");
    }
    let m = &r["metrics"];
    assert_eq!(m["trading_mode"], "futures", "{r}");
    assert!(m["total_trades"].as_u64().unwrap() >= 2, "{r}");
    // Funding was charged: each trade held over funding times at 1e-4.
    let fees = m["funding_fees"].as_f64().unwrap();
    eprintln!("funding fees over {} trades: {fees}", m["total_trades"]);
    assert!(fees.abs() > 1e-3, "no funding charged: {r}\n{logs}");
    // The manifest covers the mark and funding series it was handed.
    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.join("data.manifest.json")).unwrap()).unwrap();
    let parts: Vec<&str> = manifest["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["partition"].as_str().unwrap())
        .collect();
    assert!(
        parts.iter().any(|p| p.starts_with("funding:")) && parts.iter().any(|p| p.starts_with("mark:")),
        "{parts:?}"
    );
    assert_eq!(r["data_fingerprint"], manifest["fingerprint"]);
}

#[test]
#[ignore = "needs the backtest frameworks; .ci/run installs them"]
fn a_nautilus_backtest_loads_the_perpetual_and_its_bars_from_the_catalog_alone() {
    let py = framework_python("nautilus_trader");
    let s = Sandbox::new();
    let src = s.root().join("ft");
    futures_folder(&src);
    s.json(&["ingest", "freqtrade", src.to_str().unwrap(), "--exchange", "binance"]);
    let out = s.root().join("catalog");
    s.json(&[
        "export",
        "--dataset",
        "ohlcv",
        "--format",
        "nautilus",
        "--exchange",
        "binance",
        "--symbol",
        "BTC_USDT_USDT",
        "--timeframe",
        "1m",
        "--from",
        "2024-01-01",
        "--to",
        "2024-01-02",
        "--out",
        out.to_str().unwrap(),
    ]);
    let iid = "BTCUSDT-PERP.BINANCE";
    assert!(out.join("data/crypto_perpetual").join(iid).is_dir());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("jobs/nautilus/catalog_node.py");
    let o = std::process::Command::new(&py)
        .args([script.to_str().unwrap(), out.to_str().unwrap(), iid, "MARGIN"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}{}", String::from_utf8_lossy(&o.stderr));
    let r: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(r["instruments"], serde_json::json!([iid]), "{r}");
    assert_eq!(r["classes"], serde_json::json!(["CryptoPerpetual"]), "{r}");
    // Nautilus silently runs 0 iterations when it finds no instrument.
    assert_eq!(r["iterations"], 1440, "{r}");
    assert!(r["fills"].as_u64().unwrap() > 0, "{r}");
}
