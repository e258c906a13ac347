//! Ingest: Freqtrade folders (written here with the arrow crate or pyarrow,
//! in Freqtrade's own layout; the real files when
//! `MDKEEP_TEST_FREQTRADE_DIR` names them), arbitrary Parquet, and names
//! that would escape.

mod common;

use common::{py, write_candles_feather, Sandbox};
use serde_json::Value;

fn partitions(s: &Sandbox, dataset: &str) -> Vec<Value> {
    s.json(&["ls", "--dataset", dataset]).as_array().unwrap().clone()
}

#[test]
fn freqtrade_feather_imports_with_rows_and_time_range() {
    let s = Sandbox::new();
    let ft = tempfile::tempdir().unwrap();
    // 2023-12-31 23:00 UTC, hourly, 30 candles: spans two months.
    let start_ms = 1_704_063_600_000;
    write_candles_feather(&ft.path().join("BTC_USDT-1h.feather"), start_ms, 3_600_000, 30);
    let r = s.json(&[
        "ingest",
        "freqtrade",
        ft.path().to_str().unwrap(),
        "--exchange",
        "binance",
    ]);
    assert_eq!(r["rows"].as_u64(), Some(30), "{r}");

    let parts = partitions(&s, "ohlcv");
    assert_eq!(parts.len(), 2, "December and January: {parts:?}");
    assert_eq!(parts[0]["partition"]["symbol"], "BTC_USDT");
    assert_eq!(parts[0]["partition"]["timeframe"], "1h");
    assert_eq!(parts[0]["partition"]["month"], "2023-12");
    assert_eq!(parts[0]["rows"].as_u64(), Some(1));
    assert_eq!(parts[1]["rows"].as_u64(), Some(29));
    assert_eq!(parts[0]["min_ts"], "2023-12-31T23:00:00Z");
    assert_eq!(parts[1]["max_ts"], "2024-01-02T04:00:00Z");

    // Re-ingesting the same file replaces its output instead of doubling it.
    s.json(&[
        "ingest",
        "freqtrade",
        ft.path().to_str().unwrap(),
        "--exchange",
        "binance",
    ]);
    let total: u64 = partitions(&s, "ohlcv")
        .iter()
        .map(|p| p["rows"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 30);

    // Another engine reads the result with the right type and values.
    let out = py(
        "import pyarrow.dataset as ds, sys\n\
         t = ds.dataset(sys.argv[1], format='parquet', partitioning='hive').to_table()\n\
         print(t.num_rows, t.schema.field('ts').type, t.column('close').to_pylist()[0])",
        &[&s.hot().join("ohlcv").display().to_string()],
    );
    assert_eq!(out, "30 timestamp[ms, tz=UTC] 100.0");
}

/// A Freqtrade data folder as Freqtrade writes it, with pyarrow: 5m candles
/// of two spot pairs, 12,477 XRP/ETH trades from 2019-10-11T00:00:11.620Z as
/// `-trades.feather` (type all null) and as `-trades.parquet` (the same
/// trades), and futures candles under `futures/`.
fn freqtrade_folder(dir: &std::path::Path) {
    py(
        "import pyarrow as pa, pyarrow.feather as f, pyarrow.parquet as pq, sys, os\n\
         d = sys.argv[1]\n\
         os.makedirs(d + '/futures', exist_ok=True)\n\
         def candles(path, start_ms, n):\n\
         \x20   ts = pa.array([(start_ms + i * 300000) * 1000000 for i in range(n)], pa.timestamp('ns', tz='UTC'))\n\
         \x20   c = [1.0 + (i % 7) / 100 for i in range(n)]\n\
         \x20   f.write_feather(pa.table({'date': ts, 'open': c, 'high': [x + 0.02 for x in c], 'low': [x - 0.02 for x in c], 'close': c, 'volume': [10.0] * n}), path)\n\
         candles(d + '/ETH_BTC-5m.feather', 1515560100000, 5760)\n\
         candles(d + '/ADA_BTC-5m.feather', 1515560100000, 5720)\n\
         candles(d + '/futures/XRP_USDT_USDT-5m-futures.feather', 1630454400000, 1999)\n\
         n = 12477\n\
         ts = [1570752011620 + i * 17115 for i in range(n)]\n\
         price = [0.0014 + (i % 50) * 1e-6 for i in range(n)]\n\
         amount = [float(1 + i % 60) for i in range(n)]\n\
         cols = {'timestamp': pa.array(ts, pa.int64()), 'id': [str(13519807 + i) for i in range(n)],\n\
         \x20       'side': ['sell' if i % 3 else 'buy' for i in range(n)], 'price': price, 'amount': amount,\n\
         \x20       'cost': [p * a for p, a in zip(price, amount)]}\n\
         f.write_feather(pa.table({**{'timestamp': cols['timestamp'], 'id': cols['id']}, 'type': pa.nulls(n), **{k: cols[k] for k in ['side', 'price', 'amount', 'cost']}}), d + '/XRP_ETH-trades.feather')\n\
         pq.write_table(pa.table({**{'timestamp': cols['timestamp'], 'id': cols['id']}, 'type': pa.nulls(n, pa.string()), **{k: cols[k] for k in ['side', 'price', 'amount', 'cost']}}), d + '/XRP_ETH-trades.parquet')",
        &[&dir.display().to_string()],
    );
}

#[test]
fn a_freqtrade_folder_imports_every_file() {
    // The real files where CI has them; else the same layout written here.
    let made = tempfile::tempdir().unwrap();
    let dir = match std::env::var_os("MDKEEP_TEST_FREQTRADE_DIR") {
        Some(d) => std::path::PathBuf::from(d),
        None => {
            freqtrade_folder(made.path());
            made.path().to_path_buf()
        }
    };
    assert!(dir.is_dir(), "{} is missing", dir.display());
    let s = Sandbox::new();
    let r = s.json(&["ingest", "freqtrade", dir.to_str().unwrap(), "--exchange", "binance"]);
    // Count rows per source with pyarrow, independently.
    let expected: u64 = py(
        "import pyarrow.feather as f, pyarrow.parquet as pq, glob, sys\n\
         n = 0\n\
         for p in glob.glob(sys.argv[1] + '/*.feather') + glob.glob(sys.argv[1] + '/futures/*.feather'):\n\
         \x20   n += f.read_table(p).num_rows\n\
         n += pq.read_table(sys.argv[1] + '/XRP_ETH-trades.parquet').num_rows\n\
         print(n)",
        &[dir.to_str().unwrap()],
    )
    .parse()
    .unwrap();
    assert_eq!(r["rows"].as_u64(), Some(expected), "{r}");
    let trades = partitions(&s, "trades");
    let trade_rows: u64 = trades.iter().map(|p| p["rows"].as_u64().unwrap()).sum();
    // The feather and the parquet trades file hold the same 12,477 trades, into the same partitions.
    assert_eq!(trade_rows, 2 * 12_477);
    assert_eq!(trades[0]["partition"]["symbol"], "XRP_ETH");
    assert_eq!(trades[0]["min_ts"], "2019-10-11T00:00:11.620Z");
    let futures = partitions(&s, "ohlcv");
    assert!(futures.iter().any(|p| p["partition"]["symbol"] == "XRP_USDT_USDT"));
    // The catalog and the disk agree after a scan.
    let scan = s.json(&["scan"]);
    assert_eq!(scan["added"].as_u64(), Some(0));
    assert_eq!(scan["updated"].as_u64(), Some(0));
}

#[test]
fn ingest_refuses_names_that_escape() {
    let s = Sandbox::new();
    let src = s.root().join("in.parquet");
    py(
        "import pyarrow as pa, pyarrow.parquet as pq, sys\n\
         t = pa.table({'ts': pa.array([1704067200000], pa.timestamp('ms', tz='UTC')), 'trade_id': [1], 'price': [1.0], 'amount': [1.0], 'side': ['buy']})\n\
         pq.write_table(t, sys.argv[1])",
        &[&src.display().to_string()],
    );
    let src = src.display().to_string();
    for bad in ["../evil", "a/b", ".."] {
        let set = format!("symbol={bad}");
        let o = s.run(&[
            "ingest",
            "parquet",
            "--dataset",
            "trades",
            "--set",
            "exchange=binance",
            "--set",
            &set,
            &src,
        ]);
        assert_eq!(o.status.code(), Some(64), "{bad}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(bad),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert!(s.data_files().is_empty());
    assert!(!s.root().join("data/evil").exists());

    // The same file with a proper symbol goes in.
    let r = s.json(&[
        "ingest",
        "parquet",
        "--dataset",
        "trades",
        "--set",
        "exchange=binance",
        "--set",
        "symbol=BTC_USDT",
        &src,
    ]);
    assert_eq!(r["rows"].as_u64(), Some(1));
}

#[test]
fn ingest_checks_schema_before_writing() {
    let s = Sandbox::new();
    let src = s.root().join("bad.parquet");
    py(
        "import pyarrow as pa, pyarrow.parquet as pq, sys\n\
         pq.write_table(pa.table({'ts': pa.array([1], pa.timestamp('ms')), 'trade_id': ['x1'], 'price': [1.0]}), sys.argv[1])",
        &[&src.display().to_string()],
    );
    let o = s.run(&[
        "ingest",
        "parquet",
        "--dataset",
        "trades",
        "--set",
        "exchange=b",
        "--set",
        "symbol=S",
        src.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(65));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.parquet") && err.contains("trades"), "{err}");
    assert!(s.data_files().is_empty());
}

#[test]
fn freqtrade_json_trades_with_string_ids() {
    let s = Sandbox::new();
    let ft = tempfile::tempdir().unwrap();
    std::fs::write(
        ft.path().join("ETH_BTC-trades.json"),
        r#"[[1570752011620,"13519807",null,"sell",0.001,23.0,0.023],[1570752011700,"13519808",null,"buy",0.002,5.0,0.01]]"#,
    )
    .unwrap();
    std::fs::write(ft.path().join("README.txt"), "not data").unwrap();
    let r = s.json(&[
        "ingest",
        "freqtrade",
        ft.path().to_str().unwrap(),
        "--exchange",
        "kraken",
    ]);
    assert_eq!(r["rows"].as_u64(), Some(2));
    assert_eq!(r["skipped"].as_array().unwrap().len(), 1);
    let p = &partitions(&s, "trades")[0];
    assert_eq!(p["partition"]["exchange"], "kraken");
    assert_eq!(p["partition"]["date"], "2019-10-11");
}
