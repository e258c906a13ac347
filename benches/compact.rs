//! Compaction throughput on a collector pile (criterion). The side-by-side
//! against DuckDB, polars and pyarrow, with peak RSS, is
//! `benches/compact_vs_peers.sh`.
//!
//! MDKEEP_BENCH_COMPACT_ROWS sets rows per flush (default 2,000: 2 symbols ×
//! 1 day × 96 flushes ≈ 390 k rows).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use mdkeep::catalog::scan::scan;
use mdkeep::compaction;
use mdkeep::gen::{generate, GenOptions};
use mdkeep::progress::Silent;
use mdkeep::state::Db;
use mdkeep::Config;

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    for e in walkdir::WalkDir::new(from).into_iter().flatten() {
        let dest = to.join(e.path().strip_prefix(from).unwrap());
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

fn bench_compact(c: &mut Criterion) {
    let rows: usize = std::env::var("MDKEEP_BENCH_COMPACT_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let pile = tempfile::tempdir().unwrap();
    let cfg = Config::load(pile.path(), None, Vec::new()).unwrap();
    let g = generate(
        &cfg,
        &GenOptions {
            symbols: 2,
            days: 1,
            rows_per_flush: rows,
            start: Some(chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap()),
            ..Default::default()
        },
    )
    .unwrap();

    let mut group = c.benchmark_group("compact");
    group.sample_size(10).measurement_time(Duration::from_secs(30));
    group.throughput(Throughput::Elements(g.rows));
    group.bench_function(format!("{}_files_{}_rows", g.files, g.rows), |b| {
        b.iter_batched(
            || {
                // A fresh, scanned copy of the pile for every run.
                let root = tempfile::tempdir().unwrap();
                // Copies are fresh files: no settle time, or the scan would call them pending.
                let env = vec![("MDKEEP__SCAN__SETTLE_TIME".to_string(), "0s".to_string())];
                let cfg = Config::load(root.path(), None, env).unwrap();
                mdkeep::init::init(&cfg, false).unwrap();
                copy_tree(&pile.path().join("data/processed"), &cfg.hot_tier().1);
                let mut db = Db::open(&cfg.state_db()).unwrap();
                scan(&cfg, &mut db, &Silent).unwrap();
                (root, cfg, db)
            },
            |(root, cfg, mut db)| {
                let plan = compaction::plan(&cfg, &db, &Default::default()).unwrap();
                let m = compaction::execute(&cfg, &mut db, &plan, &Silent).unwrap();
                assert_eq!(m.totals.rows_out, g.distinct_rows);
                drop(root);
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_compact);
criterion_main!(benches);
