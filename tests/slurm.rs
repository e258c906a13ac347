//! The Slurm runner against a real single-node Slurm cluster on loopback
//! (`scripts/slurm_cluster.sh`, 1000 MB node): mixed jobs within the node's
//! memory, OOM, timeout, cancel, refusal at submit, a worker killed and
//! restarted mid-job, and a real vectorbt job. Skipped, loudly, where Slurm
//! is not installed. One test, since the cluster's ports are fixed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{wait_for, Sandbox};
use serde_json::Value;

struct Cluster {
    dir: tempfile::TempDir,
}

impl Cluster {
    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm_cluster.sh")
    }

    fn start() -> Cluster {
        if Command::new("slurmctld").arg("-V").output().is_err() {
            common::missing(
                "Slurm (slurmctld)",
                ".ci/run installs slurm-wlm, slurmd, munge and time as root",
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let o = Command::new(Self::script())
            .arg("start")
            .arg(dir.path())
            .arg("1000")
            .output()
            .unwrap();
        if !o.status.success() {
            panic!(
                "the local Slurm cluster did not start: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        Cluster { dir }
    }

    fn conf(&self) -> String {
        self.dir.path().join("slurm.conf").display().to_string()
    }

    /// (name, mem MB, start s, end s) of every finished job, from the jobcomp file.
    fn finished(&self) -> Vec<(String, u64, i64, i64)> {
        let text = std::fs::read_to_string(self.dir.path().join("jobcomp.txt")).unwrap_or_default();
        let t = |s: &str| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
                .unwrap()
                .and_utc()
                .timestamp()
        };
        text.lines()
            .map(|l| {
                let f = |k: &str| {
                    l.split_whitespace()
                        .find_map(|w| w.strip_prefix(k))
                        .unwrap_or("")
                        .to_string()
                };
                let mem = f("Tres=")
                    .split(',')
                    .find_map(|kv| kv.strip_prefix("mem="))
                    .map(|m| m.trim_end_matches('M').parse().unwrap_or(0))
                    .unwrap_or(0);
                (f("Name="), mem, t(&f("StartTime=")), t(&f("EndTime=")))
            })
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(Self::script()).arg("stop").arg(self.dir.path()).output();
    }
}

fn spec(s: &Sandbox, name: &str, body: &str) -> String {
    let p = s.root().join(format!("{name}.toml"));
    std::fs::write(&p, format!("name = \"{name}\"\nframework = \"command\"\n{body}")).unwrap();
    p.display().to_string()
}

fn hog(mb: u64, hold_ms: u64) -> String {
    format!(
        "argv = [\"{}\", \"hog\", \"--mb\", \"{mb}\", \"--step-mb\", \"16\", \"--hold-ms\", \"{hold_ms}\"]\n",
        env!("CARGO_BIN_EXE_mdkeep")
    )
}

#[test]
#[ignore = "needs root and Slurm; .ci/run installs it"]
fn jobs_run_through_a_real_slurm_cluster() {
    let cluster = Cluster::start();
    let s = Sandbox::new();
    let conf = cluster.conf();
    let env = [
        ("MDKEEP__JOBS__RUNNER", "slurm"),
        ("MDKEEP__JOBS__SLURM__CONF", conf.as_str()),
    ];
    let submit = |path: &str| -> i64 {
        let o = s.cmd(&["jobs", "submit", path, "--json"]).envs(env).output().unwrap();
        assert!(o.status.success(), "submit: {}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<Value>(&o.stdout).unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let show = |id: i64| s.json(&["jobs", "show", &id.to_string()]);
    let worker = || -> Child {
        s.cmd(&["jobs", "work", "--once"])
            .envs(env)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };

    // More than the node could ever give is refused at submit, as Slurm would.
    let o = s
        .cmd(&[
            "jobs",
            "submit",
            &spec(&s, "huge", &format!("memory = \"2GiB\"\n{}", hog(8, 10))),
        ])
        .envs(env)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Requested node configuration is not available"));

    // Ten jobs of mixed memory, an over-limit one and one past its timeout.
    let mut ids = Vec::new();
    for i in 0..10u64 {
        let mem = [150, 250, 350, 450][i as usize % 4];
        ids.push(submit(&spec(
            &s,
            &format!("j{i}"),
            &format!("memory = \"{mem}MiB\"\n{}", hog(mem / 2, 1500)),
        )));
    }
    let oom = submit(&spec(&s, "oom", &format!("memory = \"100MiB\"\n{}", hog(400, 3000))));
    let slow = submit(&spec(
        &s,
        "slow",
        "memory = \"32MiB\"\ntimeout = \"3s\"\nargv = [\"sleep\", \"300\"]\n",
    ));
    let st = worker().wait().unwrap();
    assert!(st.success());
    for id in &ids {
        let j = show(*id);
        assert_eq!(j["state"], "succeeded", "{j}");
        assert!(j["slurm_id"].as_i64().is_some(), "{j}");
        assert!(j["peak_memory_bytes"].as_u64().unwrap() > 10 << 20, "{j}");
        assert_eq!(j["limit_mechanism"], "slurm");
    }
    let j = show(oom);
    assert_eq!(j["state"], "oom_killed", "{j}");
    assert!(j["peak_memory_bytes"].as_u64().is_some(), "{j}");
    assert_eq!(show(slow)["state"], "timed_out");
    // Slurm's own records: at no moment did the running jobs ask more than the node's 1000 MB.
    let done = cluster.finished();
    assert!(done.len() >= 12, "{done:?}");
    for (name, _, start, _) in &done {
        let held: u64 = done
            .iter()
            .filter(|(_, _, s0, e0)| s0 <= start && start < e0)
            .map(|(_, m, _, _)| m)
            .sum();
        assert!(held <= 1000, "{held} MB running at the start of {name}: {done:?}");
    }

    // Cancel: scancel while it runs.
    let long = submit(&spec(&s, "long", &format!("memory = \"64MiB\"\n{}", hog(16, 120_000))));
    let mut w = worker();
    wait_for("the long job to start in Slurm", Duration::from_secs(30), || {
        show(long)["slurm_id"].is_i64()
    });
    s.ok(&["jobs", "cancel", &long.to_string()]);
    wait_for("the worker to finish", Duration::from_secs(30), || {
        w.try_wait().unwrap().is_some()
    });
    assert_eq!(show(long)["state"], "cancelled");

    // A worker killed mid-job: the next one re-attaches, and nothing is submitted twice.
    let again = submit(&spec(&s, "again", &format!("memory = \"64MiB\"\n{}", hog(16, 6000))));
    let mut w = worker();
    wait_for("the job to reach Slurm", Duration::from_secs(30), || {
        show(again)["slurm_id"].is_i64()
    });
    let sid = show(again)["slurm_id"].as_i64().unwrap();
    w.kill().unwrap();
    w.wait().unwrap();
    assert_eq!(show(again)["state"], "running");
    let st = worker().wait().unwrap();
    assert!(st.success());
    let j = show(again);
    assert_eq!(
        (j["state"].as_str(), j["slurm_id"].as_i64()),
        (Some("succeeded"), Some(sid)),
        "{j}"
    );
    let name = format!("mdkeep-{again}-again");
    assert_eq!(
        cluster.finished().iter().filter(|d| d.0 == name).count(),
        1,
        "submitted twice"
    );

    // A secret reaches the job, but not Slurm's state folder, which keeps
    // every job's environment, nor the job folder once the job started.
    let secret = "slurm-sekrit-7781";
    let f = s.root().join("configs/secrets.toml");
    std::fs::create_dir_all(f.parent().unwrap()).unwrap();
    std::fs::write(&f, format!("API_KEY = \"{secret}\"\n")).unwrap();
    std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let sec = submit(&spec(
        &s,
        "secretive",
        "memory = \"32MiB\"\nsecrets = [\"API_KEY\"]\nargv = [\"sh\", \"-c\", \"printf %s \\\"$API_KEY\\\" > got-key; env > env.txt\"]\n",
    ));
    // The worker holds a storage key the job did not ask for.
    let aws = "aws-sekrit-5521";
    let st = s
        .cmd(&["jobs", "work", "--once"])
        .envs(env)
        .env("AWS_SECRET_ACCESS_KEY", aws)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let j = show(sec);
    assert_eq!(j["state"], "succeeded", "{j}");
    let dir = std::path::PathBuf::from(j["dir"].as_str().unwrap());
    assert_eq!(std::fs::read_to_string(dir.join("got-key")).unwrap(), secret);
    assert!(
        !dir.join("job.env").exists(),
        "the job's environment file outlived the job's start"
    );
    let job_env = std::fs::read_to_string(dir.join("env.txt")).unwrap();
    assert!(
        job_env.contains(&format!("MDKEEP_JOB_DIR={}", dir.display())),
        "{job_env}"
    );
    assert!(
        !job_env.contains(aws),
        "the worker's AWS key reached the job: {job_env}"
    );
    for f in common::walk(cluster.dir.path()) {
        if let Ok(b) = std::fs::read(&f) {
            let text = String::from_utf8_lossy(&b);
            assert!(!text.contains(secret), "the secret is in Slurm's {}", f.display());
            assert!(
                !text.contains(aws),
                "the worker's AWS key is in Slurm's {}",
                f.display()
            );
        }
    }

    // A real vectorbt backtest through Slurm on exported data, where vectorbt installed.
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join(".fwvenv/bin/python");
    let has_vbt = Command::new(&py)
        .args(["-c", "import vectorbt"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_vbt {
        common::missing("vectorbt in .fwvenv", ".ci/run installs the frameworks");
    }
    s.gen(2, 3, 2, 1000);
    s.ok(&["scan"]);
    s.ok(&["compact"]);
    s.ok(&["rollup"]);
    let vbt = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs/vectorbt-sma.toml");
    let pyvar = ("MDKEEP__JOBS__FRAMEWORKS__VECTORBT__PYTHON", py.to_str().unwrap());
    let o = s
        .cmd(&[
            "jobs",
            "submit",
            vbt.to_str().unwrap(),
            "--set",
            "memory=900MiB",
            "--json",
        ])
        .envs(env)
        .env(pyvar.0, pyvar.1)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let id = serde_json::from_slice::<Value>(&o.stdout).unwrap()["id"]
        .as_i64()
        .unwrap();
    let st = s
        .cmd(&["jobs", "work", "--once"])
        .envs(env)
        .env(pyvar.0, pyvar.1)
        .status()
        .unwrap();
    assert!(st.success());
    let j = show(id);
    assert_eq!(
        j["state"],
        "succeeded",
        "{j}\n{}",
        s.ok(&["jobs", "logs", &id.to_string()])
    );
    let r: Value =
        serde_json::from_slice(&std::fs::read(Path::new(j["dir"].as_str().unwrap()).join("result.json")).unwrap())
            .unwrap();
    assert!(r["metrics"]["trades"].as_u64().unwrap() > 0, "{r}");
}
