//! Every writer follows the same encoding rules: compaction, tier moves,
//! ingest and export's Parquet, read back by DuckDB's footer reader.

mod common;

use common::{py, Sandbox};

/// `{column: (encodings, has a bloom filter)}` of a file, from DuckDB.
fn encodings(path: &std::path::Path) -> serde_json::Value {
    let out = py(
        "import duckdb, sys, json\n\
         rows = duckdb.sql(f\"SELECT path_in_schema, encodings, bloom_filter_offset FROM parquet_metadata('{sys.argv[1]}')\").fetchall()\n\
         d = {}\n\
         for name, enc, bloom in rows:\n\
         \x20   e = d.setdefault(name, [set(), False])\n\
         \x20   e[0].update(x.strip() for x in enc.split(','))\n\
         \x20   e[1] = e[1] or bloom is not None\n\
         print(json.dumps({k: [sorted(v[0]), v[1]] for k, v in d.items()}))",
        &[&path.display().to_string()],
    );
    serde_json::from_str(&out).unwrap()
}

fn enc_of(v: &serde_json::Value, col: &str) -> Vec<String> {
    v[col][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect()
}

fn check_trades(v: &serde_json::Value, bloom: bool) {
    assert!(enc_of(v, "ts").contains(&"DELTA_BINARY_PACKED".into()), "{v}");
    assert!(enc_of(v, "trade_id").contains(&"DELTA_BINARY_PACKED".into()), "{v}");
    // A nearly unique price: no dictionary tried and dropped.
    let e = enc_of(v, "price");
    assert!(!e.iter().any(|x| x.contains("DICTIONARY")), "price: {e:?}");
    assert!(
        e.contains(&"BYTE_STREAM_SPLIT".into()) || e.contains(&"PLAIN".into()),
        "price: {e:?}"
    );
    // Sizes look unique in a sample but repeat across a row group: a dictionary.
    let e = enc_of(v, "amount");
    assert!(e.iter().any(|x| x.contains("DICTIONARY")), "amount: {e:?}");
    assert!(enc_of(v, "side").iter().any(|x| x.contains("DICTIONARY")), "{v}");
    assert_eq!(v["trade_id"][1], bloom, "bloom filter on trade_id: {v}");
}

fn compact(s: &Sandbox) {
    s.settled(&["scan"]);
    s.settled(&["compact"]);
}

#[test]
fn every_writer_chooses_encodings_from_the_data() {
    let s = Sandbox::new();
    // A bloom filter on trade_id, asked for in the config.
    let cfg = s.root().join("configs/mdkeep.toml");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("# bloom = [\"trade_id\"]", "bloom = [\"trade_id\"]");
    std::fs::write(&cfg, text).unwrap();
    s.gen(1, 2, 4, 2000);
    compact(&s);
    let files = s.data_files();
    assert!(!files.is_empty());
    for f in &files {
        check_trades(&encodings(f), true);
    }
    // A tier move writes the same way.
    let out = s
        .cmd(&["tier"])
        .env("MDKEEP__DATASETS__TRADES__TIER_AFTER__WARM", "1s")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let warm: Vec<_> = common::walk(&s.root().join("data/warm"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert!(!warm.is_empty(), "nothing moved");
    check_trades(&encodings(&warm[0]), true);
    // Export's Parquet too.
    let dir = s.root().join("export");
    s.ok(&[
        "export",
        "--dataset",
        "trades",
        "--format",
        "parquet",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let exported: Vec<_> = common::walk(&dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    check_trades(&encodings(&exported[0]), true);
    // Ingest: a file of someone else's, rewritten under the layout.
    let src = s.root().join("foreign.parquet");
    std::fs::copy(&warm[0], &src).unwrap();
    s.ok(&[
        "ingest",
        "parquet",
        "--dataset",
        "trades",
        "--set",
        "exchange=other",
        "--set",
        "symbol=X",
        src.to_str().unwrap(),
    ]);
    let ingested: Vec<_> = common::walk(&s.hot().join("trades/exchange=other"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    check_trades(&encodings(&ingested[0]), true);
}

#[test]
fn a_declared_encoding_wins_and_a_wrong_one_is_refused() {
    let s = Sandbox::new();
    let cfg = s.root().join("configs/mdkeep.toml");
    let base = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        format!("{base}\n[datasets.trades.encodings]\nprice = \"plain\"\namount = \"dict\"\n"),
    )
    .unwrap();
    s.gen(1, 1, 4, 2000);
    compact(&s);
    let v = encodings(&s.data_files()[0]);
    assert_eq!(enc_of(&v, "price"), ["PLAIN", "RLE"], "{v}");
    assert!(enc_of(&v, "amount").iter().any(|x| x.contains("DICTIONARY")), "{v}");
    std::fs::write(&cfg, format!("{base}\n[datasets.trades.encodings]\nside = \"delta\"\n")).unwrap();
    let o = s.run(&["ls"]);
    assert_eq!(o.status.code(), Some(78));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("datasets.trades.encodings.side"), "{err}");
}
