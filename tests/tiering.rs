//! Tiering: dry run, moves to a cold root outside data/, pins, and crashes mid-move.

mod common;

use common::{py, snapshot, temp_files, Sandbox};

/// Three compacted days; day 1 is old enough for cold, day 2 for warm.
fn three_days(cold_root: &std::path::Path) -> (Sandbox, Vec<(&'static str, String)>) {
    let env = vec![
        ("MDKEEP__DATASETS__TRADES__TIER_AFTER__WARM", "12h".to_string()),
        ("MDKEEP__DATASETS__TRADES__TIER_AFTER__COLD", "36h".to_string()),
        ("MDKEEP__TIERS__COLD__ROOT", cold_root.display().to_string()),
    ];
    let s = Sandbox::new();
    s.gen(1, 3, 2, 300);
    s.ok(&["scan"]);
    s.ok(&["compact"]);
    (s, env)
}

fn run_json(s: &Sandbox, env: &[(&str, String)], args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.push("--json");
    let o = s.cmd(&a).envs(env.iter().map(|(k, v)| (*k, v))).output().unwrap();
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// (rows, distinct trade ids) over the given roots, by DuckDB.
fn counts(roots: &[&std::path::Path]) -> String {
    let roots: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
    let roots: Vec<&str> = roots.iter().map(|r| r.as_str()).collect();
    py(
        "import duckdb, glob, sys\n\
         files = [f for r in sys.argv[1:] for f in glob.glob(r + '/trades/**/*.parquet', recursive=True)]\n\
         r = duckdb.connect().execute('SET enable_progress_bar = false').execute('SELECT count(*), count(DISTINCT trade_id) FROM read_parquet($1, hive_partitioning=true)', [files]).fetchone()\n\
         print(r[0], r[1])",
        &roots,
    )
}

#[test]
fn dry_run_then_move_to_a_cold_root_outside_data() {
    let cold = tempfile::tempdir().unwrap();
    let (s, env) = three_days(cold.path());
    let before_counts = counts(&[&s.hot()]);

    let before = snapshot(s.root());
    let plan = run_json(&s, &env, &["tier", "--dry-run"]);
    let moves = plan["moves"].as_array().unwrap();
    assert_eq!(moves.len(), 2, "{plan}");
    assert_eq!(moves[0]["to"], "cold");
    assert_eq!(moves[1]["to"], "warm");
    assert!(moves[0]["reason"].as_str().unwrap().contains("36h"));
    assert_eq!(snapshot(s.root()), before, "a dry run changed something");

    let m = run_json(&s, &env, &["tier"]);
    assert_eq!(m["moves"].as_u64(), Some(2));
    let ls = run_json(&s, &env, &["ls"]);
    let tiers: Vec<&str> = ls
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["tier"].as_str().unwrap())
        .collect();
    assert_eq!(tiers, vec!["cold", "warm", "hot"]);
    assert!(!common::walk(cold.path()).is_empty(), "nothing under the cold root");
    // Every row exactly once across the three roots, read by DuckDB.
    let warm = s.root().join("data/warm");
    assert_eq!(counts(&[&s.hot(), &warm, cold.path()]), before_counts);
    // A second run has nothing left to move.
    assert_eq!(run_json(&s, &env, &["tier"])["moves"].as_u64(), Some(0));
}

#[test]
fn pinned_source_survives_a_move() {
    let cold = tempfile::tempdir().unwrap();
    let (s, env) = three_days(cold.path());
    let day1 = s.data_files()[0].clone();
    s.ok(&["pin", day1.to_str().unwrap()]);
    let m = run_json(&s, &env, &["tier"]);
    assert_eq!(m["pinned_to_trash"].as_u64(), Some(1));
    assert_eq!(common::walk(&s.root().join("data/trash")).len(), 1);
}

#[test]
fn a_move_interrupted_at_any_step_leaves_every_row_once() {
    for step in common::REWRITE_STEPS {
        let cold = tempfile::tempdir().unwrap();
        let (s, env) = three_days(cold.path());
        let want = counts(&[&s.hot()]);
        let o = s
            .cmd(&["tier"])
            .envs(env.iter().map(|(k, v)| (*k, v)))
            .env("MDKEEP_FAILPOINT", step)
            .output()
            .unwrap();
        assert!(!o.status.success(), "{step}: the failpoint did not fire");
        run_json(&s, &env, &["scan"]);
        let warm = s.root().join("data/warm");
        assert_eq!(counts(&[&s.hot(), &warm, cold.path()]), want, "{step}");
        assert!(
            temp_files(s.root()).is_empty() && temp_files(cold.path()).is_empty(),
            "{step}: temporaries left"
        );
        // And the move completes afterwards.
        run_json(&s, &env, &["tier"]);
        assert_eq!(
            counts(&[&s.hot(), &warm, cold.path()]),
            want,
            "{step} (after the retry)"
        );
    }
}

#[test]
fn unknown_tier_in_tier_after_names_the_key() {
    let s = Sandbox::new();
    let o = s
        .cmd(&["tier"])
        .env("MDKEEP__DATASETS__TRADES__TIER_AFTER__FREEZER", "1d")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(78));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("datasets.trades.tier_after") && err.contains("freezer"),
        "{err}"
    );
}

#[test]
fn a_move_killed_at_random_moments_leaves_every_row_once() {
    // How long an uninterrupted run takes here, so that the kills spread
    // over the run on a fast machine and a slow CI box alike.
    let full = {
        let cold = tempfile::tempdir().unwrap();
        let (s, env) = three_days(cold.path());
        let t0 = std::time::Instant::now();
        run_json(&s, &env, &["tier"]);
        t0.elapsed()
    };
    let mut interrupted = 0;
    for i in 0..8u32 {
        let cold = tempfile::tempdir().unwrap();
        let (s, env) = three_days(cold.path());
        let want = counts(&[&s.hot()]);
        let t0 = std::time::Instant::now();
        let mut child = s.cmd(&["tier"]).envs(env.iter().map(|(k, v)| (*k, v))).spawn().unwrap();
        std::thread::sleep(full.mul_f64(0.25 + 0.09 * f64::from(i)));
        child.kill().unwrap();
        child.wait().unwrap();
        let scan = run_json(&s, &env, &["scan"]);
        if scan["recovered"]["rolled_back"].as_u64().unwrap() + scan["recovered"]["finished"].as_u64().unwrap() > 0 {
            interrupted += 1;
        }
        let warm = s.root().join("data/warm");
        assert_eq!(
            counts(&[&s.hot(), &warm, cold.path()]),
            want,
            "kill {i} after {:?}",
            t0.elapsed()
        );
        assert!(
            temp_files(s.root()).is_empty() && temp_files(cold.path()).is_empty(),
            "kill {i}: temporaries left"
        );
        run_json(&s, &env, &["tier"]);
        assert_eq!(
            counts(&[&s.hot(), &warm, cold.path()]),
            want,
            "kill {i}, after the retry"
        );
    }
    assert!(interrupted >= 2, "only {interrupted} of 8 kills interrupted a move");
}

/// The raw files of the day that went to warm, as a collector re-sends them.
fn resend_warm_day(s: &Sandbox, raw: &std::path::Path) -> usize {
    let warm = s.root().join("data/warm");
    let day = common::walk(&warm)
        .iter()
        .find_map(|p| {
            p.to_str()?
                .split('/')
                .find(|seg| seg.starts_with("date="))
                .map(String::from)
        })
        .expect("a day in warm");
    let mut n = 0;
    for f in common::walk(raw)
        .into_iter()
        .filter(|f| f.to_str().unwrap().contains(&day))
    {
        let dest = s.hot().join(f.strip_prefix(raw).unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&f, &dest).unwrap();
        n += 1;
    }
    n
}

/// Issue 29, scenario 8: trades of a day already in warm arrive again; the
/// second move into warm merges with what warm holds, so DuckDB counts each
/// trade once (before: 2 files in warm and every re-sent trade twice).
#[test]
fn a_second_move_into_a_tier_merges_with_what_it_holds() {
    let cold = tempfile::tempdir().unwrap();
    let s = Sandbox::new();
    s.gen(1, 3, 2, 300);
    let raw = tempfile::tempdir().unwrap();
    common::copy_tree(&s.hot(), raw.path());
    s.ok(&["scan"]);
    s.ok(&["compact"]);
    let env = vec![
        ("MDKEEP__DATASETS__TRADES__TIER_AFTER__WARM", "12h".to_string()),
        ("MDKEEP__DATASETS__TRADES__TIER_AFTER__COLD", "36h".to_string()),
        ("MDKEEP__TIERS__COLD__ROOT", cold.path().display().to_string()),
        ("MDKEEP__SCAN__SETTLE_TIME", "0s".to_string()),
    ];
    let warm = s.root().join("data/warm");
    let roots = [&s.hot(), &warm, cold.path()];
    let want = counts(&[&s.hot()]);
    run_json(&s, &env, &["tier"]);
    assert_eq!(counts(&roots), want);

    assert!(resend_warm_day(&s, raw.path()) > 0);
    run_json(&s, &env, &["scan"]);
    run_json(&s, &env, &["compact"]);
    let plan = run_json(&s, &env, &["tier", "--dry-run"]);
    assert!(
        plan["moves"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["merge_after"] == true),
        "{plan}"
    );
    run_json(&s, &env, &["tier"]);
    assert_eq!(counts(&roots), want, "a re-sent trade is counted twice");
    let (rows, distinct) = want.split_once(' ').unwrap();
    assert_eq!(rows, distinct);
    // Nothing is left to merge or move.
    let again = run_json(&s, &env, &["tier", "--dry-run"]);
    assert!(again["moves"].as_array().unwrap().is_empty(), "{again}");
}
