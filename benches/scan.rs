//! Scanning many small files: cold (empty catalog, every footer read) and
//! warm (nothing changed, no file body read).
//!
//! MDKEEP_BENCH_SCAN_DAYS sets the pile's size: 8 symbols × days × 24 × 4
//! flushes (the default 2 days is 1,536 files; 13 days is 9,984).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use mdkeep::catalog::scan::scan;
use mdkeep::gen::{generate, GenOptions};
use mdkeep::progress::Silent;
use mdkeep::state::Db;
use mdkeep::Config;

fn bench_scan(c: &mut Criterion) {
    let days: u32 = std::env::var("MDKEEP_BENCH_SCAN_DAYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::load(dir.path(), None, Vec::new()).unwrap();
    mdkeep::init::init(&cfg, false).unwrap();
    let pile = generate(
        &cfg,
        &GenOptions {
            symbols: 8,
            days,
            rows_per_flush: 200,
            start: Some(chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap()),
            ..Default::default()
        },
    )
    .unwrap();
    let files = pile.files;

    let mut g = c.benchmark_group(format!("scan_{files}_files"));
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("cold", |b| {
        b.iter_batched(
            || {
                let _ = std::fs::remove_file(cfg.state_db());
                let _ = std::fs::remove_file(cfg.state_db().with_extension("db-wal"));
                let _ = std::fs::remove_file(cfg.state_db().with_extension("db-shm"));
                Db::open(&cfg.state_db()).unwrap()
            },
            |mut db| {
                let r = scan(&cfg, &mut db, &Silent).unwrap();
                assert_eq!(r.added, files);
            },
            BatchSize::PerIteration,
        )
    });
    let mut db = Db::open(&cfg.state_db()).unwrap();
    scan(&cfg, &mut db, &Silent).unwrap();
    g.bench_function("warm", |b| {
        b.iter(|| {
            let r = scan(&cfg, &mut db, &Silent).unwrap();
            assert_eq!(r.unchanged, files);
        })
    });
    g.finish();
}

criterion_group!(benches, bench_scan);
criterion_main!(benches);
