//! Crash safety: `mdkeep compact` killed with SIGKILL at random moments (and
//! aborted at each named step), then `scan` (which recovers) and `compact`
//! again. Every key must be present exactly once and no temporary survive.

mod common;

use std::path::Path;
use std::time::Instant;

use common::{copy_tree, gen_trades_pile, py, temp_files, verify_compacted, Sandbox};

const ENV: [(&str, &str); 1] = [("MDKEEP__SCAN__SETTLE_TIME", "0s")];

fn fresh_copy(pristine: &Path) -> Sandbox {
    let s = Sandbox::new();
    copy_tree(pristine, &s.hot());
    run(&s, &["scan"]);
    s
}

fn run(s: &Sandbox, args: &[&str]) {
    let o = s.cmd(args).envs(ENV).output().unwrap();
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

/// Per series (symbol): (rows, distinct keys) over the hot tier, by DuckDB.
fn counts(s: &Sandbox) -> Vec<(String, u64, u64)> {
    let out = py(
        "import duckdb, sys\n\
         for r in duckdb.connect().execute('SET enable_progress_bar = false').execute(f\"SELECT symbol, count(*), count(DISTINCT trade_id) FROM read_parquet('{sys.argv[1]}/**/*.parquet', hive_partitioning=true) GROUP BY 1 ORDER BY 1\").fetchall():\n\
         \x20   print(r[0], r[1], r[2])",
        &[&s.hot().display().to_string()],
    );
    out.lines()
        .map(|l| {
            let v: Vec<&str> = l.split(' ').collect();
            (v[0].to_string(), v[1].parse().unwrap(), v[2].parse().unwrap())
        })
        .collect()
}

/// After a crash: recovery leaves either the whole input or the whole output,
/// never a mix; then compaction completes and verifies.
/// Each series is rewritten atomically on its own, so after a crash each
/// holds either all of its input or exactly its compacted output.
fn recover_and_check(s: &Sandbox, pristine: &Path, raw: &[(String, u64, u64)], what: &str) -> u64 {
    let o = s.cmd(&["scan", "--json"]).envs(ENV).output().unwrap();
    assert!(
        o.status.success(),
        "{what}: scan: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let scan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let recovered =
        scan["recovered"]["rolled_back"].as_u64().unwrap() + scan["recovered"]["finished"].as_u64().unwrap();
    let now = counts(s);
    assert_eq!(now.len(), raw.len(), "{what}: series lost");
    for ((sym, rows, distinct), (_, raw_rows, raw_distinct)) in now.iter().zip(raw) {
        assert_eq!(
            distinct, raw_distinct,
            "{what}: {sym}: keys lost or invented after recovery"
        );
        assert!(
            rows == raw_rows || rows == raw_distinct,
            "{what}: {sym}: {rows} rows after recovery: neither the input ({raw_rows}) nor the output ({raw_distinct})"
        );
    }
    assert!(
        temp_files(s.root()).is_empty(),
        "{what}: temporaries left: {:?}",
        temp_files(s.root())
    );
    run(s, &["compact"]);
    verify_compacted(pristine, &s.hot());
    assert!(
        temp_files(s.root()).is_empty(),
        "{what}: temporaries left after compact"
    );
    assert!(
        common::walk(&s.root().join("data/tmp")).is_empty(),
        "{what}: scratch left"
    );
    recovered
}

#[test]
fn kill_minus_nine_at_random_moments_loses_nothing() {
    let (mut kills, mut mid_rewrite) = (0, 0);
    for (seed, symbols) in [("11", "2"), ("12", "3"), ("13", "2")] {
        let (_s, pristine) = gen_trades_pile(&[
            "--symbols",
            symbols,
            "--days",
            "2",
            "--rows-per-flush",
            "400",
            "--seed",
            seed,
        ]);
        let raw = counts(&{
            let s = Sandbox::new();
            copy_tree(pristine.path(), &s.hot());
            s
        });
        // How long an uninterrupted run takes, to spread kills across it.
        let timing = fresh_copy(pristine.path());
        let t0 = Instant::now();
        run(&timing, &["compact"]);
        let full = t0.elapsed();
        for i in 0..11u64 {
            let s = fresh_copy(pristine.path());
            let mut child = s.cmd(&["compact"]).envs(ENV).spawn().unwrap();
            // Spread over [0, 1.1 × full), in a different order for each pile.
            let frac = ((i * 7 + seed.parse::<u64>().unwrap()) % 11) as f64 / 10.0;
            std::thread::sleep(full.mul_f64(frac));
            child.kill().unwrap(); // SIGKILL
            let status = child.wait().unwrap();
            kills += 1;
            let what = format!("pile {seed}, kill {i} at {frac:.1}× ({status})");
            if recover_and_check(&s, pristine.path(), &raw, &what) > 0 {
                mid_rewrite += 1;
            }
        }
    }
    assert!(kills >= 30);
    // Enough kills must land inside a rewrite for the test to mean something.
    assert!(
        mid_rewrite >= 5,
        "only {mid_rewrite} of {kills} kills interrupted a rewrite"
    );
}

#[test]
fn abort_at_every_step_recovers() {
    let (_s, pristine) = gen_trades_pile(&[
        "--symbols",
        "2",
        "--days",
        "2",
        "--rows-per-flush",
        "200",
        "--seed",
        "21",
    ]);
    let raw = counts(&{
        let s = Sandbox::new();
        copy_tree(pristine.path(), &s.hot());
        s
    });
    for step in common::REWRITE_STEPS {
        let s = fresh_copy(pristine.path());
        let o = s
            .cmd(&["compact"])
            .envs(ENV)
            .env("MDKEEP_FAILPOINT", step)
            .output()
            .unwrap();
        assert!(!o.status.success(), "{step}: the failpoint did not fire");
        let recovered = recover_and_check(&s, pristine.path(), &raw, step);
        assert!(recovered > 0, "{step}: nothing to recover");
    }
}
