//! Reproducible backtests: the fingerprint of the data a job read stays
//! the same over reruns, a recompaction and a tier move; one late row
//! changes it, `jobs diff` names the partition and `+1 row`; a spec pinned
//! to the old fingerprint is refused with the diff.

mod common;

use std::process::Output;

use common::{py, Sandbox};
use serde_json::Value;

/// Every command runs with colder tiers (one outside the data folder)
/// that take partitions 12h and 36h older than the newest row.
struct Pile {
    s: Sandbox,
    _cold: tempfile::TempDir,
    env: Vec<(&'static str, String)>,
}

impl Pile {
    fn new() -> Pile {
        let cold = tempfile::tempdir().unwrap();
        let env = vec![
            ("MDKEEP__DATASETS__TRADES__TIER_AFTER__WARM", "12h".to_string()),
            ("MDKEEP__DATASETS__TRADES__TIER_AFTER__COLD", "36h".to_string()),
            ("MDKEEP__TIERS__COLD__ROOT", cold.path().display().to_string()),
            ("MDKEEP__SCAN__SETTLE_TIME", "0s".to_string()),
        ];
        let s = Sandbox::new();
        s.gen(1, 2, 2, 200);
        let p = Pile { s, _cold: cold, env };
        p.ok(&["scan"]);
        p
    }

    fn run(&self, args: &[&str]) -> Output {
        self.s
            .cmd(args)
            .envs(self.env.iter().map(|(k, v)| (*k, v)))
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    /// Run the queue dry and return job `id` as `jobs show --json` has it.
    fn work(&self, id: i64) -> Value {
        self.ok(&["jobs", "work", "--once"]);
        let job = self.json(&["jobs", "show", &id.to_string()]);
        assert_eq!(job["state"], "succeeded", "{job}");
        job
    }

    fn fingerprint(&self, id: i64) -> String {
        self.work(id)["data_fingerprint"].as_str().unwrap().to_string()
    }

    /// One trade a second after `first` in hot `part` (a new file, not yet scanned).
    fn late_trade(&self, part: &str, first: &str) {
        let late = self.s.hot().join("trades").join(part).join("late.parquet");
        std::fs::create_dir_all(late.parent().unwrap()).unwrap();
        py(
            "import pyarrow as pa, pyarrow.parquet as pq, sys, datetime\n\
             t = datetime.datetime.fromisoformat(sys.argv[2].replace('Z', '+00:00')) + datetime.timedelta(seconds=1)\n\
             pq.write_table(pa.table({'ts': pa.array([t], pa.timestamp('ms', tz='UTC')), 'trade_id': pa.array([987654321], pa.int64()),\n\
                 'price': [100.0], 'amount': [1.0], 'side': ['buy']}), sys.argv[1])",
            &[&late.display().to_string(), first],
        );
    }

    fn rerun(&self, id: i64) -> i64 {
        self.json(&["jobs", "rerun", &id.to_string()])["id"].as_i64().unwrap()
    }
}

const SPEC: &str = "name = \"fingerprinted\"\nframework = \"command\"\nmemory = \"64MiB\"\nargv = [\"true\"]\n\
                    [data]\ndataset = \"trades\"\nformat = \"parquet\"\n";

#[test]
fn the_fingerprint_follows_the_rows_not_the_files() {
    let p = Pile::new();
    let spec = p.s.root().join("jobs/fp.toml");
    std::fs::create_dir_all(spec.parent().unwrap()).unwrap();
    std::fs::write(&spec, SPEC).unwrap();
    let a = p.json(&["jobs", "submit", spec.to_str().unwrap()])["id"]
        .as_i64()
        .unwrap();
    let job = p.work(a);
    let fp = job["data_fingerprint"].as_str().unwrap().to_string();
    assert_eq!(fp.len(), 32, "{job}");
    let rows = job["data_rows"].as_u64().unwrap();
    assert!(rows > 0);

    // The folder has the manifest; result.json carries the fingerprint.
    let dir = std::path::PathBuf::from(job["dir"].as_str().unwrap());
    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.join("data.manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["fingerprint"], fp.as_str());
    assert_eq!(manifest["rows"], rows);
    let parts = manifest["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 2, "{manifest}");
    assert!(manifest["files"].as_array().unwrap().iter().all(|f| f["tier"] == "hot"));
    let result: Value = serde_json::from_slice(&std::fs::read(dir.join("result.json")).unwrap()).unwrap();
    assert_eq!(result["data_fingerprint"], fp.as_str());
    assert_eq!(result["data_rows"], rows);
    assert!(p
        .ok(&["jobs", "show", &a.to_string()])
        .contains(&format!("fingerprint {fp}")));

    // The same spec again, on unchanged data.
    let b = p.rerun(a);
    assert_eq!(p.fingerprint(b), fp);
    let same = p.run(&["jobs", "diff", &a.to_string(), &b.to_string()]);
    assert!(same.status.success());
    assert!(String::from_utf8_lossy(&same.stdout).contains("the same data"));

    // After a recompaction of the same rows, and after a tier move.
    p.ok(&["compact"]);
    let c = p.rerun(a);
    assert_eq!(p.fingerprint(c), fp, "after compaction");
    let moved = p.json(&["tier"]);
    // Ages count from the newest row: the older day moves.
    assert_eq!(moved["moves"], 1, "{moved}");
    let d = p.rerun(a);
    let job_d = p.work(d);
    assert_eq!(job_d["data_fingerprint"], fp.as_str(), "after a tier move");
    let dir_d = std::path::PathBuf::from(job_d["dir"].as_str().unwrap());
    let m: Value = serde_json::from_slice(&std::fs::read(dir_d.join("data.manifest.json")).unwrap()).unwrap();
    assert!(m["files"].as_array().unwrap().iter().any(|f| f["tier"] != "hot"), "{m}");

    // One late trade in the range changes it; the diff names its partition.
    let part = parts[1]["partition"].as_str().unwrap().to_string();
    let first = parts[1]["first"].as_str().unwrap().to_string();
    p.late_trade(&part, &first);
    p.ok(&["scan"]);
    // Without kept snapshots (this pile keeps none), a rerun of job a falls
    // back to its fingerprint, which the data no longer has: refused.
    let o = p.run(&["jobs", "rerun", &a.to_string()]);
    assert_eq!(o.status.code(), Some(65), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains(&fp));
    let e = p.json(&["jobs", "submit", spec.to_str().unwrap()])["id"]
        .as_i64()
        .unwrap();
    let fp_e = p.fingerprint(e);
    assert_ne!(fp_e, fp);
    let diff = p.run(&["jobs", "diff", &a.to_string(), &e.to_string()]);
    assert_eq!(diff.status.code(), Some(1));
    let text = String::from_utf8_lossy(&diff.stdout);
    assert!(text.contains(&format!("{part} changed: +1 row")), "{text}");
    let o = p.run(&["jobs", "diff", &a.to_string(), &e.to_string(), "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["same"], false);
    assert_eq!(j["partitions"].as_array().unwrap().len(), 1, "{j}");
    assert_eq!(
        j["partitions"][0]["rows_after"].as_u64().unwrap(),
        j["partitions"][0]["rows_before"].as_u64().unwrap() + 1
    );

    // A spec pinned to the old fingerprint is refused, showing the diff.
    let pin = format!("data.fingerprint=\"{fp}\"");
    let o = p.run(&["jobs", "submit", spec.to_str().unwrap(), "--set", &pin]);
    assert_eq!(o.status.code(), Some(65));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("data.fingerprint") && err.contains(&fp) && err.contains(&fp_e),
        "{err}"
    );
    assert!(err.contains(&format!("{part} changed: +1 row")), "{err}");
    // Pinned to the data as it is, it runs.
    let pin = format!("data.fingerprint=\"{fp_e}\"");
    let id = p.json(&["jobs", "submit", spec.to_str().unwrap(), "--set", &pin])["id"]
        .as_i64()
        .unwrap();
    assert_eq!(p.fingerprint(id), fp_e);
}

#[test]
fn a_rerun_reads_the_lake_snapshot_its_job_read() {
    let mut p = Pile::new();
    p.env.push(("MDKEEP__LAKE__KEEP_SNAPSHOTS", "1h".to_string()));
    p.env.push(("MDKEEP__LAKE__READER_GRACE", "0s".to_string()));
    let spec = p.s.root().join("jobs/fp.toml");
    std::fs::create_dir_all(spec.parent().unwrap()).unwrap();
    std::fs::write(&spec, SPEC).unwrap();
    let submit = |sets: &[&str]| {
        let mut args = vec!["jobs", "submit", spec.to_str().unwrap()];
        for s in sets {
            args.extend(["--set", s]);
        }
        p.json(&args)["id"].as_i64().unwrap()
    };
    let a = submit(&[]);
    let job = p.work(a);
    let fp = job["data_fingerprint"].as_str().unwrap().to_string();
    let snap = job["data_snapshot"]
        .as_i64()
        .expect("the job records its lake snapshot");
    let dir = std::path::PathBuf::from(job["dir"].as_str().unwrap());
    let result: Value = serde_json::from_slice(&std::fs::read(dir.join("result.json")).unwrap()).unwrap();
    assert_eq!(result["data_snapshot"], snap);
    assert!(p
        .ok(&["jobs", "show", &a.to_string()])
        .contains(&format!("lake snapshot {snap}")));

    // A late row, then a compaction that retires every file job a read.
    let parts: Value = serde_json::from_slice(&std::fs::read(dir.join("data.manifest.json")).unwrap()).unwrap();
    let part = parts["partitions"][0]["partition"].as_str().unwrap().to_string();
    let first = parts["partitions"][0]["first"].as_str().unwrap().to_string();
    p.late_trade(&part, &first);
    p.ok(&["scan"]);
    p.ok(&["compact"]);
    let now = submit(&[]);
    let fp_now = p.fingerprint(now);
    assert_ne!(fp_now, fp, "the live data has the late row");

    // The rerun reads snapshot `snap` again: the same rows, from the trash.
    let r = p.json(&["jobs", "rerun", &a.to_string()]);
    assert!(r["data"].as_str().unwrap().contains(&format!("snapshot {snap}")), "{r}");
    let b = p.work(r["id"].as_i64().unwrap());
    assert_eq!(b["data_fingerprint"], fp.as_str(), "{b}");
    assert_eq!(b["data_snapshot"], snap);
    let m: Value = serde_json::from_slice(
        &std::fs::read(std::path::Path::new(b["dir"].as_str().unwrap()).join("data.manifest.json")).unwrap(),
    )
    .unwrap();
    assert!(
        m["files"].as_array().unwrap().iter().any(|f| f["tier"] == "trash"),
        "{m}"
    );
    // The list and the comparison show each job's fingerprint and snapshot.
    let (a_id, b_id) = (a.to_string(), b["id"].to_string());
    assert!(
        p.ok(&["jobs", "ls"]).contains(&format!("{} @{snap}", &fp[..12])),
        "jobs ls names the snapshot"
    );
    let c = p.json(&["jobs", "compare", &a_id, &b_id]);
    assert!(
        c["jobs"].as_array().unwrap().iter().all(|j| j["data_snapshot"] == snap),
        "{c}"
    );
    assert_eq!(c["same_data"], true, "{c}");

    // So do `data.snapshot` and `export --snapshot`.
    let pinned = format!("data.snapshot={snap}");
    assert_eq!(p.fingerprint(submit(&[&pinned])), fp);
    let out = p.s.root().join("at-snapshot");
    let e = p.json(&[
        "export",
        "--dataset",
        "trades",
        "--format",
        "parquet",
        "--out",
        out.to_str().unwrap(),
        "--snapshot",
        &snap.to_string(),
    ]);
    assert_eq!(e["data_fingerprint"], fp.as_str(), "{e}");
    assert_eq!(e["snapshot"], snap);

    // A snapshot the lake does not keep is refused at submit, naming the key.
    let o = p.run(&[
        "jobs",
        "submit",
        spec.to_str().unwrap(),
        "--set",
        "data.snapshot=999999",
    ]);
    assert_eq!(o.status.code(), Some(65));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("data.snapshot") && err.contains("999999"), "{err}");

    // `lake status` counts what old snapshots keep.
    let st = p.json(&["lake", "status"]);
    assert!(st["kept_files"].as_u64().unwrap() > 0, "{st}");
    assert!(st["oldest_snapshot"].as_i64().unwrap() <= snap, "{st}");
}
