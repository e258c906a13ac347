//! Shared helpers for the integration tests: a sandbox root, running the
//! real `mdkeep` binary, and the venv's Python (DuckDB, pyarrow) as an
//! independent reader.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use serde_json::Value;

pub mod s3;

/// Every step at which a rewrite (compaction or tier move) can be aborted with MDKEEP_FAILPOINT.
#[allow(unused_imports)]
pub use mdkeep::failpoint::REWRITE_STEPS;

/// The binary under test: this build's, or `MDKEEP_TEST_BIN` (to show that a
/// test fails on an older build: `scripts/fails_before.sh`).
pub fn bin() -> PathBuf {
    std::env::var_os("MDKEEP_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_mdkeep")))
}

pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    /// A fresh root with `mdkeep init` done.
    pub fn new() -> Sandbox {
        let s = Sandbox::empty();
        s.ok(&["init"]);
        s
    }

    pub fn empty() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn hot(&self) -> PathBuf {
        self.root().join("data/processed")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .env("MDKEEP_ROOT", self.root())
            .env_remove("MDKEEP_CONFIG")
            .env_remove("MDKEEP_FAILPOINT");
        for (k, _) in std::env::vars() {
            if k.starts_with("MDKEEP__") {
                c.env_remove(k);
            }
        }
        // The embedded min_free (5%) would make every quota run depend on how
        // full the machine's disk is; tests that exercise it set their own.
        c.env("MDKEEP__QUOTA__MIN_FREE", "0%");
        // Retired files are deleted at once, not held for lake readers
        // (tests/lake.rs keeps snapshots, and holds, as a user's root does).
        // A build from before the lake (MDKEEP_TEST_BIN) refuses the key.
        if std::env::var_os("MDKEEP_TEST_BIN").is_none() {
            c.env("MDKEEP__LAKE__KEEP_SNAPSHOTS", "0s");
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run mdkeep")
    }

    /// Run, assert success, return stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "mdkeep {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).expect("utf8")
    }

    /// Run with no settle time (files just written count), assert success, return stdout.
    pub fn settled(&self, args: &[&str]) -> String {
        let o = self
            .cmd(args)
            .env("MDKEEP__SCAN__SETTLE_TIME", "0s")
            .output()
            .expect("run mdkeep");
        assert!(
            o.status.success(),
            "mdkeep {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).expect("utf8")
    }

    /// `mdkeep daemon` on 127.0.0.1:`port` with a 1 GiB job budget, maintain
    /// off, and `env` on top.
    pub fn daemon(&self, port: u16, env: &[(&str, &str)], stderr: std::process::Stdio) -> std::process::Child {
        self.cmd(&["daemon"])
            .env("MDKEEP__HTTP__BIND", format!("127.0.0.1:{port}"))
            .env("MDKEEP__SCHEDULE__MAINTAIN__ENABLED", "false")
            .env("MDKEEP__JOBS__MEMORY_BUDGET", "1GiB")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap()
    }

    /// Submit the spec at `spec` with `framework`'s profile pointed at
    /// `py`, run the queue dry, and require the job to succeed with a peak;
    /// returns its folder, its `result.json` and its logs.
    pub fn run_framework_job(&self, framework: &str, py: &Path, spec: &Path) -> (PathBuf, Value, String) {
        let var = format!("MDKEEP__JOBS__FRAMEWORKS__{}__PYTHON", framework.to_ascii_uppercase());
        // The venvs' Python links into root's home (pyenv), which a job run as
        // nobody cannot enter: a root test worker keeps root for these.
        let run_as = ("MDKEEP__JOBS__RUN_AS", "root");
        // MDKEEP_TEST_FRAMEWORK_LIMITS=1 runs them as a container would: the
        // watchdog, with every job process under its hard RLIMIT_DATA.
        let limits: Vec<(&str, &str)> = match std::env::var_os("MDKEEP_TEST_FRAMEWORK_LIMITS") {
            Some(_) => vec![
                ("MDKEEP__JOBS__LIMIT", "watchdog"),
                ("MDKEEP__JOBS__DATA_LIMIT", "always"),
            ],
            None => Vec::new(),
        };
        let o = self
            .cmd(&["jobs", "submit", spec.to_str().unwrap(), "--json"])
            .env(&var, py)
            .env(run_as.0, run_as.1)
            .envs(limits.iter().copied())
            .output()
            .unwrap();
        assert!(o.status.success(), "submit: {}", String::from_utf8_lossy(&o.stderr));
        let id = serde_json::from_slice::<Value>(&o.stdout).unwrap()["id"]
            .as_i64()
            .unwrap();
        let o = self
            .cmd(&["jobs", "work", "--once"])
            .env(&var, py)
            .env(run_as.0, run_as.1)
            .envs(limits.iter().copied())
            .output()
            .unwrap();
        assert!(o.status.success(), "work: {}", String::from_utf8_lossy(&o.stderr));
        let job = self.json(&["jobs", "show", &id.to_string()]);
        let logs = self.ok(&["jobs", "logs", &id.to_string()]);
        assert_eq!(job["state"], "succeeded", "{job}\n{logs}");
        assert!(job["peak_memory_bytes"].as_u64().unwrap() > 0, "{job}");
        let dir = PathBuf::from(job["dir"].as_str().expect("the job's folder"));
        let result = serde_json::from_slice(&std::fs::read(dir.join("result.json")).unwrap()).unwrap();
        (dir, result, logs)
    }

    /// Run with `--json` appended and parse stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let out = self.ok(&a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("mdkeep {a:?}: bad JSON ({e}):\n{out}"))
    }

    /// A small pile on fixed dates: `symbols` × `days` × 24 × `fph` files.
    pub fn gen(&self, symbols: u32, days: u32, fph: u32, rows: u32) -> Value {
        self.gen_with(symbols, days, fph, rows, &[])
    }

    /// `gen` with more options, e.g. `["--exchange", "kraken"]`.
    pub fn gen_with(&self, symbols: u32, days: u32, fph: u32, rows: u32, more: &[&str]) -> Value {
        let (symbols, days, fph, rows) = (symbols.to_string(), days.to_string(), fph.to_string(), rows.to_string());
        let mut args = vec![
            "gen",
            "--symbols",
            &symbols,
            "--days",
            &days,
            "--flushes-per-hour",
            &fph,
            "--rows-per-flush",
            &rows,
            "--start",
            "2024-01-01",
        ];
        args.extend_from_slice(more);
        self.json(&args)
    }

    /// All data files under the hot tier, sorted.
    pub fn data_files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = walk(&self.hot())
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .collect();
        v.sort();
        v
    }
}

pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Make a file look old enough to be settled.
pub fn age(path: &Path, by: Duration) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - by).unwrap();
}

/// The venv's Python, with DuckDB and pyarrow. `.ci/run` creates it; when
/// it is missing (a bare `cargo test` on a fresh clone) the first test that
/// needs it creates it, under a lock so parallel tests wait for one install.
pub fn python() -> PathBuf {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        if let Ok(p) = std::env::var("MDKEEP_TEST_PYTHON") {
            return PathBuf::from(p);
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        assert!(
            root.is_dir(),
            "{} is gone: this test binary was built for another checkout (cargo clean -p mdkeep)",
            root.display()
        );
        let venv = root.join(".venv");
        let pins = root.join("tests/requirements.txt");
        // Every pinned package at its pinned version, not only importable.
        let ready = |py: &Path| {
            Command::new(py)
                .args([
                    "-c",
                    "import sys, importlib.metadata as m\n\
                     for l in open(sys.argv[1]):\n\
                     \x20   l = l.split('#')[0].strip()\n\
                     \x20   if l:\n\
                     \x20       name, want = l.split('==')\n\
                     \x20       got = m.version(name)\n\
                     \x20       assert got == want, f'{name} {got}, pinned {want}'\n\
                     import duckdb, pyarrow, numpy",
                ])
                .arg(&pins)
                .output()
                .is_ok_and(|o| o.status.success())
        };
        make_venv(&venv, &ready, &["-r".as_ref(), pins.as_os_str()])
    })
    .clone()
}

/// Make `venv` with `pip install INSTALL` unless `ready` already holds for
/// its Python, under a lock folder beside it so parallel tests wait for one
/// install. Returns its Python.
pub fn make_venv(venv: &Path, ready: &dyn Fn(&Path) -> bool, install: &[&std::ffi::OsStr]) -> PathBuf {
    let py = venv.join("bin/python");
    if ready(&py) {
        return py;
    }
    let lock = venv.with_extension("lock");
    let deadline = std::time::Instant::now() + Duration::from_secs(900);
    while std::fs::create_dir(&lock).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "waited 15 min for {}",
            lock.display()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    if !ready(&py) {
        let run = |c: &mut Command| {
            let o = c.output().expect("run python3");
            if !o.status.success() {
                let _ = std::fs::remove_dir(&lock);
                panic!(
                    "creating {} failed:\n{}",
                    venv.display(),
                    String::from_utf8_lossy(&o.stderr)
                );
            }
        };
        run(Command::new("python3").args(["-m", "venv"]).arg(venv));
        run(Command::new(&py).args(["-m", "pip", "install", "-q"]).args(install));
    }
    let _ = std::fs::remove_dir(&lock);
    py
}

/// Run a Python snippet (argv[1..] = args) and return its stdout, trimmed.
pub fn py(code: &str, args: &[&str]) -> String {
    py_env(code, args, &[])
}

/// `py` with extra environment variables (for keys, which must not be in argv).
pub fn py_env(code: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let o = Command::new(python())
        .arg("-c")
        .arg(code)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run python");
    assert!(
        o.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

/// A pile `mdkeep gen` wrote in a root of its own: the pristine input.
pub struct Pile {
    _root: Sandbox,
    hot: PathBuf,
}

impl Pile {
    /// The pile's tier root (it holds `trades/`).
    pub fn path(&self) -> &Path {
        &self.hot
    }
}

/// A root holding a collector's pile written by `mdkeep gen ARGS --start
/// 2024-01-01` (duplicates across flushes, rows misfiled across midnight,
/// shuffled writes), ready for `scan` with no settle time; and the pristine
/// pile, for [`verify_compacted`].
pub fn gen_trades_pile(args: &[&str]) -> (Sandbox, Pile) {
    let p = Sandbox::new();
    let mut a = vec!["gen"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["--start", "2024-01-01"]);
    p.json(&a);
    let s = Sandbox::new();
    copy_tree(&p.hot(), &s.hot());
    let hot = p.hot();
    (s, Pile { _root: p, hot })
}

pub fn copy_tree(from: &Path, to: &Path) {
    for f in walk(from) {
        let dest = to.join(f.strip_prefix(from).unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&f, &dest).unwrap();
    }
}

/// Every file under `dir` with a hash of its bytes: to prove a dry run changed nothing.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, u64, usize)> {
    let mut v: Vec<(PathBuf, u64, usize)> = walk(dir)
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            let h = b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
                (h ^ x as u64).wrapping_mul(0x0100_0000_01b3)
            });
            (p, h, b.len())
        })
        .collect();
    v.sort();
    v
}

/// Run the tests' own DuckDB verifier (`tests/verify_compacted.py`) on an
/// input pile and a compacted tier root.
pub fn verify_compacted(input: &Path, output: &Path) {
    let o = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/verify_compacted.py"))
        .arg(input)
        .arg(output)
        .output()
        .expect("run verify_compacted.py");
    assert!(
        o.status.success(),
        "verify_compacted.py: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Write Freqtrade candles as Freqtrade's feather files hold them (Arrow
/// IPC, LZ4): `n` candles from `start_ms`, every `step_ms`.
pub fn write_candles_feather(path: &Path, start_ms: i64, step_ms: i64, n: usize) {
    use arrow::array::{Float64Array, RecordBatch, TimestampNanosecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use std::sync::Arc;
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "date",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            false,
        ),
        Field::new("open", DataType::Float64, true),
        Field::new("high", DataType::Float64, true),
        Field::new("low", DataType::Float64, true),
        Field::new("close", DataType::Float64, true),
        Field::new("volume", DataType::Float64, true),
    ]));
    let dates: Vec<i64> = (0..n as i64).map(|i| (start_ms + i * step_ms) * 1_000_000).collect();
    let px: Vec<f64> = (0..n).map(|i| 100.0 + i as f64).collect();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(TimestampNanosecondArray::from(dates).with_timezone("UTC")),
            Arc::new(Float64Array::from(px.clone())),
            Arc::new(Float64Array::from(px.iter().map(|p| p + 1.0).collect::<Vec<_>>())),
            Arc::new(Float64Array::from(px.iter().map(|p| p - 1.0).collect::<Vec<_>>())),
            Arc::new(Float64Array::from(px.clone())),
            Arc::new(Float64Array::from(vec![10.0; n])),
        ],
    )
    .unwrap();
    let f = std::fs::File::create(path).unwrap();
    let opts = arrow::ipc::writer::IpcWriteOptions::default()
        .try_with_compression(Some(arrow::ipc::CompressionType::LZ4_FRAME))
        .unwrap();
    let mut w = arrow::ipc::writer::FileWriter::try_new_with_options(f, &schema, opts).unwrap();
    w.write(&batch).unwrap();
    w.finish().unwrap();
}

/// Hidden in-flight files left anywhere under `dir`.
pub fn temp_files(dir: &Path) -> Vec<PathBuf> {
    walk(dir)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(".part-")))
        .collect()
}

/// Poll `f` every 50 ms until it holds; panic after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = std::time::Instant::now();
    while !f() {
        assert!(t.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A port that was free a moment ago, for a server under test.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A page that must answer 200: its body.
pub fn get_ok(port: u16, path: &str) -> String {
    let (code, body) = http_get(port, path).unwrap();
    assert_eq!(code, 200, "GET {path}: {body}");
    body
}

/// Stop a daemon started by a test (SIGTERM, then wait).
pub fn stop(mut d: std::process::Child) {
    // SAFETY: a plain signal to our own child.
    unsafe { libc::kill(d.id() as i32, libc::SIGTERM) };
    let _ = d.wait();
}

/// `GET path` over plain HTTP/1.1; (status, body).
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    http_get_with(port, path, "")
}

/// [`http_get`] with more header lines (each ending in `\r\n`).
pub fn http_get_with(port: u16, path: &str, headers: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port))?;
    c.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    c.read_to_string(&mut text)?;
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// The frameworks' Python, if it can import `module`: vectorbt and Freqtrade
/// live in `.fwvenv`; hftbacktest and NautilusTrader in `.fwvenv-extra`,
/// since their numpy and pandas pins clash with vectorbt's
/// (`MDKEEP_FRAMEWORKS_PYTHON` and `MDKEEP_FRAMEWORKS_EXTRA_PYTHON` override).
pub fn framework_python(module: &str) -> PathBuf {
    let (var, venv) = match module {
        "hftbacktest" | "nautilus_trader" => ("MDKEEP_FRAMEWORKS_EXTRA_PYTHON", ".fwvenv-extra"),
        _ => ("MDKEEP_FRAMEWORKS_PYTHON", ".fwvenv"),
    };
    let py = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(venv).join("bin/python"));
    let ok = std::process::Command::new(&py)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        missing(
            &format!("{} importing {module}", py.display()),
            ".ci/run installs the frameworks into .fwvenv and .fwvenv-extra",
        );
    }
    py
}

/// A test marked `#[ignore = "needs …"]` found what it needs missing: it
/// fails, saying what to install; it never passes without having run.
pub fn missing(what: &str, install: &str) -> ! {
    panic!("needs {what}, which is missing: {install}")
}

/// Something this machine cannot provide at all (e.g. a cgroup-v2 memory
/// controller): named on stderr and, under `.ci/run`, in the list it
/// prints at the end (`MDKEEP_TEST_UNAVAILABLE` names the file). Under
/// `MDKEEP_TEST_STRICT=1` it must be named in `MDKEEP_TEST_MACHINE_LACKS`
/// (comma-separated), or the test fails.
pub fn unavailable(test: &str, what: &str) {
    let lacks = std::env::var("MDKEEP_TEST_MACHINE_LACKS").unwrap_or_default();
    let known = lacks.split(',').any(|l| !l.is_empty() && what.contains(l.trim()));
    if std::env::var("MDKEEP_TEST_STRICT").is_ok_and(|v| v == "1") && !known {
        panic!(
            "{test}: needs {what} (strict mode; list it in MDKEEP_TEST_MACHINE_LACKS if this machine cannot have it)"
        );
    }
    eprintln!("NOT RUN in {test}: {what}");
    if let Ok(list) = std::env::var("MDKEEP_TEST_UNAVAILABLE") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::File::options().create(true).append(true).open(list) {
            let _ = writeln!(f, "{test}: {what}");
        }
    }
}
