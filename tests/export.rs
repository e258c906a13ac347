//! Export: each framework format read back by pyarrow/numpy, ranges, dedup
//! of uncompacted files, pins, and a range that lives on a cold root
//! outside data/.

mod common;

use std::path::Path;

use common::{py, Sandbox};
use serde_json::Value;

fn pile() -> Sandbox {
    let s = Sandbox::new();
    s.gen(2, 3, 2, 300);
    s.ok(&["scan"]);
    s
}

/// (rows, distinct trade ids, min ts ms, max ts ms) of one symbol's raw trades in [from, to), by DuckDB.
fn raw(s: &Sandbox, symbol: &str, from: &str, to: &str) -> Vec<i64> {
    py(
        "import duckdb, sys\n\
         root, sym, lo, hi = sys.argv[1:5]\n\
         r = duckdb.connect().execute('SET enable_progress_bar = false').execute(f\"SELECT count(DISTINCT trade_id), epoch_ms(min(ts)), epoch_ms(max(ts)) FROM read_parquet('{root}/trades/**/*.parquet', hive_partitioning=true) WHERE symbol = $1 AND ts >= $2::TIMESTAMP AND ts < $3::TIMESTAMP\", [sym, lo, hi]).fetchone()\n\
         print(*r)",
        &[&s.hot().display().to_string(), symbol, from, to],
    )
    .split_whitespace()
    .map(|x| x.parse().unwrap())
    .collect()
}

/// `mdkeep export ARGS --format FORMAT --out OUT --json`.
fn export(s: &Sandbox, args: &[&str], format: &str, out: &Path) -> Value {
    let out = out.to_str().unwrap();
    let mut a = vec!["export"];
    a.extend_from_slice(args);
    a.extend(["--format", format, "--out", out]);
    s.json(&a)
}

#[test]
fn parquet_export_of_uncompacted_files_is_sorted_deduplicated_and_in_range() {
    let s = pile();
    let out = s.root().join("out");
    let r = export(
        &s,
        &[
            "--dataset",
            "trades",
            "--symbol",
            "BTC_USDT",
            "--from",
            "2024-01-01T06:00:00Z",
            "--to",
            "2024-01-02T12:00:00Z",
        ],
        "parquet",
        &out,
    );
    let want = raw(&s, "BTC_USDT", "2024-01-01 06:00:00", "2024-01-02 12:00:00");
    assert_eq!(r["rows"].as_i64(), Some(want[0]), "{r}");
    assert!(
        r["duplicates_removed"].as_u64().unwrap() > 0,
        "the pile re-sends rows: {r}"
    );
    let got = py(
        "import pyarrow.parquet as pq, sys\n\
         t = pq.read_table(sys.argv[1])\n\
         ts = t.column('ts').cast('int64').to_pylist()\n\
         ids = t.column('trade_id').to_pylist()\n\
         print(t.num_rows, len(set(ids)), min(ts), max(ts), int(all(a <= b for a, b in zip(ts, ts[1:]))))",
        &[&out.join("BTC_USDT.parquet").display().to_string()],
    );
    let got: Vec<i64> = got.split_whitespace().map(|x| x.parse().unwrap()).collect();
    assert_eq!(got, vec![want[0], want[0], want[1], want[2], 1]);
    assert_eq!(
        s.json(&["pins"]).as_array().unwrap().len(),
        0,
        "the export left pins behind"
    );
}

#[test]
fn freqtrade_and_vectorbt_exports_of_rolled_up_candles() {
    let s = pile();
    s.ok(&["compact"]);
    s.ok(&["rollup"]);
    let ft = s.root().join("ft");
    let r = export(&s, &["--dataset", "ohlcv", "--timeframe", "1m"], "freqtrade", &ft);
    assert_eq!(r["files"].as_array().unwrap().len(), 2, "{r}");
    let got = py(
        "import pyarrow.feather as f, sys\n\
         t = f.read_table(sys.argv[1])\n\
         d = t.column('date').to_pylist()\n\
         print(','.join(t.column_names), t.schema.field('date').type, t.num_rows, int(all(a < b for a, b in zip(d, d[1:]))))",
        &[&ft.join("BTC_USDT-1m.feather").display().to_string()],
    );
    let candles = |sym: &str| -> u64 {
        let ls = s.json(&["ls", "--dataset", "ohlcv"]);
        ls.as_array()
            .unwrap()
            .iter()
            .filter(|p| p["partition"]["symbol"] == sym)
            .map(|p| p["rows"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(
        got,
        format!(
            "date,open,high,low,close,volume timestamp[ms, tz=UTC] {} 1",
            candles("BTC_USDT")
        )
    );

    let vbt = s.root().join("vbt");
    export(&s, &["--dataset", "ohlcv", "--timeframe", "1m"], "vectorbt", &vbt);
    let got = py(
        "import pyarrow.parquet as pq, sys\n\
         t = pq.read_table(sys.argv[1])\n\
         print(','.join(t.column_names), t.num_rows)",
        &[&vbt.join("close.parquet").display().to_string()],
    );
    let (cols, rows) = got.split_once(' ').unwrap();
    assert_eq!(cols, "date,BTC_USDT,ETH_USDT");
    let rows: u64 = rows.parse().unwrap();
    assert!(rows >= candles("BTC_USDT").max(candles("ETH_USDT")), "{got}");
}

#[test]
fn hftbacktest_npz_has_the_event_dtype_and_ordered_times() {
    let s = pile();
    let out = s.root().join("hbt");
    let r = export(
        &s,
        &["--dataset", "trades", "--symbol", "ETH_USDT", "--to", "2024-01-02"],
        "hftbacktest",
        &out,
    );
    let want = raw(&s, "ETH_USDT", "2000-01-01", "2024-01-02 00:00:00");
    assert_eq!(r["rows"].as_i64(), Some(want[0]));
    let got = py(
        "import numpy as np, sys\n\
         a = np.load(sys.argv[1])['data']\n\
         names = ','.join(a.dtype.names)\n\
         ev = a['ev']\n\
         trade = int(np.all((ev & 2) == 2) and np.all((ev >> 31) & 1 == 1) and np.all((ev >> 30) & 1 == 1))\n\
         sides = int(np.all(((ev >> 29) & 1) + ((ev >> 28) & 1) == 1))\n\
         print(names, a.dtype.itemsize, len(a), int(np.all(np.diff(a['exch_ts']) >= 0)), trade, sides, a['exch_ts'][0] // 1000000, a['exch_ts'][-1] // 1000000)",
        &[&out.join("ETH_USDT.npz").display().to_string()],
    );
    let want_line = format!(
        "ev,exch_ts,local_ts,px,qty,order_id,ival,fval 64 {} 1 1 1 {} {}",
        want[0], want[1], want[2]
    );
    assert_eq!(got, want_line);
}

#[test]
fn a_range_on_a_cold_root_outside_data_exports_byte_for_byte_the_same() {
    let cold = tempfile::tempdir().unwrap();
    let s = pile();
    s.ok(&["compact"]);
    let env = [
        ("MDKEEP__DATASETS__TRADES__TIER_AFTER__COLD", "36h".to_string()),
        ("MDKEEP__DATASETS__TRADES__TIER_AFTER__WARM", "12h".to_string()),
        ("MDKEEP__TIERS__COLD__ROOT", cold.path().display().to_string()),
    ];
    let export = |dir: &str| {
        let out = s.root().join(dir);
        let o = s
            .cmd(&[
                "export",
                "--dataset",
                "trades",
                "--symbol",
                "BTC_USDT",
                "--to",
                "2024-01-02",
                "--format",
                "parquet",
                "--out",
                out.to_str().unwrap(),
                "--json",
            ])
            .envs(env.iter().map(|(k, v)| (*k, v)))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (std::fs::read(out.join("BTC_USDT.parquet")).unwrap(), r)
    };
    let (before, r1) = export("before");
    assert_eq!(r1["source_files"]["hot"], 1, "{r1}");
    let o = s
        .cmd(&["tier"])
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (after, r2) = export("after");
    assert_eq!(r2["source_files"]["cold"], 1, "{r2}");
    assert!(before == after, "the export from the cold root differs");
    let o = s
        .cmd(&["ls", "--json"])
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .output()
        .unwrap();
    let ls: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(ls.as_array().unwrap().iter().any(|p| p["tier"] == "cold"), "{ls}");
}

#[test]
fn bad_requests_are_refused_with_the_reason() {
    let s = pile();
    let o = s.run(&[
        "export",
        "--dataset",
        "trades",
        "--symbol",
        "../etc",
        "--format",
        "parquet",
        "--out",
        "x",
    ]);
    assert_eq!(o.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&o.stderr).contains("symbol"));
    let o = s.run(&["export", "--dataset", "trades", "--format", "vectorbt", "--out", "x"]);
    assert_eq!(o.status.code(), Some(64));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("candles"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = s.run(&[
        "export",
        "--dataset",
        "trades",
        "--symbol",
        "NOPE",
        "--format",
        "parquet",
        "--out",
        "x",
    ]);
    assert_eq!(o.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nothing to export"));
}

#[test]
fn nautilus_trades_carry_the_instrument_precision() {
    let s = pile();
    let out = s.root().join("naut");
    export(
        &s,
        &[
            "--dataset",
            "trades",
            "--symbol",
            "BTC_USDT",
            "--to",
            "2024-01-02",
            "--precision",
            "2,6",
        ],
        "nautilus",
        &out,
    );
    // Fixed-point values are little-endian int128 of value × 10^16, rounded to the precision.
    let got = py(
        "import glob, sys, pyarrow.parquet as pq\n\
         f = sorted(glob.glob(sys.argv[1] + '/data/trade_tick/*/*.parquet'))[0]\n\
         t = pq.read_table(f)\n\
         meta = t.schema.metadata\n\
         px = [int.from_bytes(b, 'little', signed=True) for b in t.column('price').to_pylist()[:200]]\n\
         qty = [int.from_bytes(b, 'little', signed=True) for b in t.column('size').to_pylist()[:200]]\n\
         print(meta[b'price_precision'].decode(), meta[b'size_precision'].decode(), all(p % 10**14 == 0 for p in px), all(q % 10**10 == 0 for q in qty), t.num_rows > 0)",
        &[out.to_str().unwrap()],
    );
    assert_eq!(got, "2 6 True True True");
    let bad = s.run(&[
        "export",
        "--dataset",
        "trades",
        "--format",
        "nautilus",
        "--precision",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(bad.status.code(), Some(2), "a bad --precision is a usage error");
}
