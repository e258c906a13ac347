//! The container path (issue 31): the Dockerfile's runtime stage built
//! around this build's binary (`--target prebuilt`) on a local Debian
//! bookworm base, run under podman with docker-compose.yml's settings
//! (read-only root, no capabilities, no-new-privileges, pids 4096, 6 GB,
//! tmpfs /tmp, `./data` bind-mounted, run as the owner of `./data`).
//!
//! Needs podman, runc and the base image `.ci/run` makes
//! (`debootstrap --variant=minbase bookworm` + `podman import`, named by
//! `MDKEEP_TEST_BASE_IMAGE`, default `localhost/mdkeep-bookworm-base`).

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{free_port, wait_for};

/// The settings docker-compose.yml gives the service, for `podman run`.
const COMPOSE: [&str; 16] = [
    "--runtime=runc",
    "--read-only",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
    "--pids-limit=4096",
    "--memory=6g",
    "--memory-swap=6g",
    "--tmpfs=/tmp:size=512m,mode=1777",
    // This machine refuses to raise rlimits (see the README's container notes).
    "--ulimit=nofile=4096:4096",
    "--ulimit=nproc=8192:8192",
    "--network=host",
    "--stop-timeout=60",
    "--env=MDKEEP__JOBS__MEMORY_BUDGET=1GiB",
    "--env=MDKEEP__SCHEDULE__MAINTAIN__ENABLED=false",
    "--env=RUST_LOG=mdkeep=info",
    "--log-driver=k8s-file",
];

fn podman(args: &[&str]) -> Output {
    Command::new("podman").args(args).output().expect("run podman")
}

fn ok(args: &[&str]) -> String {
    let o = podman(args);
    assert!(
        o.status.success(),
        "podman {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Build the image once: the Dockerfile's `prebuilt` target around this
/// build's binary (debug info stripped), on the local base.
fn image() -> String {
    let base = std::env::var("MDKEEP_TEST_BASE_IMAGE").unwrap_or_else(|_| "localhost/mdkeep-bookworm-base".into());
    assert!(
        podman(&["image", "exists", &base]).status.success(),
        "needs the base image {base} (.ci/run makes it with debootstrap and podman import)"
    );
    let ctx = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(src.join("Dockerfile"), ctx.path().join("Dockerfile")).unwrap();
    common::copy_tree(&src.join("configs"), &ctx.path().join("configs"));
    common::copy_tree(&src.join("jobs"), &ctx.path().join("jobs"));
    std::fs::create_dir_all(ctx.path().join("bin")).unwrap();
    let bin = ctx.path().join("bin/mdkeep");
    std::fs::copy(env!("CARGO_BIN_EXE_mdkeep"), &bin).unwrap();
    let o = Command::new("strip").arg("--strip-debug").arg(&bin).output().unwrap();
    assert!(o.status.success(), "strip: {}", String::from_utf8_lossy(&o.stderr));
    let tag = format!("localhost/mdkeep-test:{}", std::process::id());
    ok(&[
        "build",
        "--runtime=runc",
        "--network=host",
        "--format=docker",
        "--ulimit=nofile=4096:4096",
        "--ulimit=nproc=8192:8192",
        &format!("--build-arg=BASE={base}"),
        "--build-arg=BIN=bin/mdkeep",
        "--target=prebuilt",
        "-t",
        &tag,
        ctx.path().to_str().unwrap(),
    ]);
    tag
}

/// A data folder owned by `uid` (mode 0755), and the container on it.
fn start(image: &str, data: &Path, uid: u32, port: u16) -> String {
    let o = Command::new("chown")
        .arg(format!("{uid}:{uid}"))
        .arg(data)
        .output()
        .unwrap();
    assert!(o.status.success());
    let src = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut args: Vec<String> = vec!["run".into(), "-d".into()];
    args.extend(COMPOSE.iter().map(|s| s.to_string()));
    args.extend([
        "--user=10001:10001".into(),
        format!("--env=MDKEEP__HTTP__BIND=127.0.0.1:{port}"),
        format!("--volume={}:/srv/mdkeep/data", data.display()),
        format!("--volume={}:/srv/mdkeep/configs:ro", src.join("configs").display()),
        format!("--volume={}:/srv/mdkeep/jobs:ro", src.join("jobs").display()),
        image.into(),
    ]);
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    ok(&a)
}

fn exec(c: &str, args: &[&str]) -> Output {
    let mut a = vec!["exec", c, "mdkeep"];
    a.extend_from_slice(args);
    podman(&a)
}

struct Removed(String);
impl Drop for Removed {
    fn drop(&mut self) {
        let _ = podman(&["rm", "-f", "-t", "0", &self.0]);
    }
}

#[test]
#[ignore = "needs podman, runc and a bookworm base image (.ci/run makes them)"]
fn the_image_runs_with_composes_settings() {
    let image = image();
    let _img = scopeguard(&image);

    // A root-owned ./data (what `docker compose up` makes): exit 77 at once, saying why.
    let root_owned = tempfile::tempdir().unwrap();
    let port = free_port();
    let c = start(&image, root_owned.path(), 0, port);
    let _c = Removed(c.clone());
    let code = ok(&["wait", &c]);
    assert_eq!(code, "77", "a root-owned data folder: {}", ok(&["logs", &c]));
    let logs = String::from_utf8_lossy(&podman(&["logs", &c]).stderr).to_string() + &ok(&["logs", &c]);
    assert!(
        logs.contains("is not writable") && logs.contains("uid 10001") && logs.contains("chown"),
        "{logs}"
    );

    // Owned by the container's user: healthy, maintains, limits a job.
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let c = start(&image, data.path(), 10001, port);
    let _c2 = Removed(c.clone());
    let url = format!("--url=http://127.0.0.1:{port}/healthz");
    wait_for("the daemon to turn healthy", Duration::from_secs(60), || {
        exec(&c, &["healthcheck", &url]).status.success()
    });
    let gen = exec(
        &c,
        &[
            "gen",
            "--symbols",
            "2",
            "--days",
            "2",
            "--flushes-per-hour",
            "2",
            "--rows-per-flush",
            "50",
            "--start",
            "2024-01-01",
        ],
    );
    assert!(gen.status.success(), "{}", String::from_utf8_lossy(&gen.stderr));
    let m = exec(&c, &["maintain", "--json"]);
    assert!(m.status.success(), "maintain: {}", String::from_utf8_lossy(&m.stderr));
    let m: serde_json::Value = serde_json::from_slice(&m.stdout).unwrap();
    assert!(m["compact"]["files_out"].as_u64().unwrap() > 0, "{m}");

    // A 64 MiB job that allocates 400 MiB is stopped near its limit; the daemon stays up.
    std::fs::write(
        data.path().join("hog.toml"),
        "name = \"hog\"\nframework = \"command\"\nmemory = \"64MiB\"\n\
         argv = [\"mdkeep\", \"hog\", \"--mb\", \"400\", \"--step-mb\", \"8\", \"--step-ms\", \"1\", \"--hold-ms\", \"5000\"]\n",
    )
    .unwrap();
    let o = exec(&c, &["jobs", "submit", "/srv/mdkeep/data/hog.toml", "--json"]);
    assert!(o.status.success(), "submit: {}", String::from_utf8_lossy(&o.stderr));
    let id = serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["id"]
        .as_i64()
        .unwrap()
        .to_string();
    let mut job = serde_json::Value::Null;
    wait_for("the job to end", Duration::from_secs(120), || {
        let o = exec(&c, &["jobs", "show", &id, "--json"]);
        job = serde_json::from_slice(&o.stdout).unwrap_or_default();
        job["ended_at"].is_string()
            || ["oom_killed", "failed", "succeeded"].contains(&job["state"].as_str().unwrap_or(""))
    });
    assert_eq!(job["state"], "oom_killed", "{job}");
    let peak = job["peak_memory_bytes"].as_u64().unwrap();
    eprintln!(
        "in the container: peak {:.1} MiB ({:.2}x the 64 MiB limit) under {}: {}",
        peak as f64 / 1048576.0,
        peak as f64 / (64.0 * 1048576.0),
        job["limit_mechanism"],
        job["message"]
    );
    assert!(peak <= 80 << 20, "peak {peak}: {job}");
    assert!(
        exec(&c, &["healthcheck", &url]).status.success(),
        "the daemon went down"
    );

    // Nothing is written outside the data volume and the tmpfs.
    // (podman's own bind mounts of /etc/hosts, /etc/resolv.conf and
    // /etc/hostname show /etc as changed; the root itself is read-only.)
    let diff = ok(&["diff", &c]);
    let podmans = [
        "C /etc",
        "A /etc/hosts",
        "A /etc/resolv.conf",
        "A /etc/hostname",
        "C /run",
        "A /run/.containerenv",
    ];
    let written: Vec<&str> = diff.lines().filter(|l| !podmans.contains(&l.trim())).collect();
    assert!(written.is_empty(), "written outside the volume:\n{diff}");

    // SIGTERM stops it within stop_grace_period (60 s).
    let t = Instant::now();
    ok(&["stop", "-t", "60", &c]);
    let took = t.elapsed();
    assert!(took < Duration::from_secs(60), "stopped after {took:?}");
    eprintln!("stopped by SIGTERM in {took:?}");
}

/// Remove the test's image when the test ends.
fn scopeguard(image: &str) -> impl Drop + '_ {
    struct Img<'a>(&'a str);
    impl Drop for Img<'_> {
        fn drop(&mut self) {
            let _ = podman(&["rmi", "-f", self.0]);
        }
    }
    Img(image)
}
