//! The README's first command: `mdkeep demo` on embedded defaults, in a
//! folder of its own, checked by what it prints and leaves behind.

mod common;

use common::py;

#[test]
fn the_demo_compacts_runs_two_jobs_and_writes_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("demo");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_mdkeep"))
        .args(["demo", "--dir"])
        .arg(&root)
        .env_remove("MDKEEP_ROOT")
        .env_remove("MDKEEP_CONFIG")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}\n{}", String::from_utf8_lossy(&o.stderr));

    // The pile, and what compaction made of it.
    assert!(out.contains("2. gen: a collector's pile: 384 small files"), "{out}");
    let compact = out
        .lines()
        .find(|l| l.contains("maintain / compact:"))
        .expect("a compaction line");
    assert!(compact.contains("384 files → 4"), "{compact}");
    assert!(compact.contains("→ 768,000 ("), "{compact}");
    // Both jobs, one framework at a time, succeeded.
    let jobs: Vec<&str> = out.lines().filter(|l| l.trim_start().starts_with("job ")).collect();
    assert_eq!(jobs.len(), 2, "{out}");
    assert!(jobs.iter().all(|j| j.contains("succeeded")), "{jobs:?}");
    // The report it names exists.
    let report = out
        .lines()
        .find_map(|l| l.split_once("report: ").map(|(_, p)| p.trim().to_string()))
        .expect("a report line");
    assert!(std::path::Path::new(&report).is_file(), "{report}");

    // DuckDB reads back every distinct trade, once.
    let counts = py(
        "import duckdb, sys\n\
         r = duckdb.connect().execute('SET enable_progress_bar = false').execute(f\"SELECT count(*), count(DISTINCT (symbol, trade_id)) FROM read_parquet('{sys.argv[1]}/trades/**/*.parquet', hive_partitioning=true)\").fetchone()\n\
         print(r[0], r[1])",
        &[&root.join("data/processed").display().to_string()],
    );
    assert_eq!(counts, "768000 768000");
}
