//! A real S3 server for the store-tier tests: `s3s-fs` over a fresh folder
//! on a free port, with the env that points a sandbox's `archive` tier at it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, wait_for, walk};

pub const BUCKET: &str = "market-cold";
pub const ACCESS_KEY: &str = "mdkeep-test-access";
/// Distinctive, so a test can grep every log for it.
pub const SECRET_KEY: &str = "s3cr3t-Zq8wV1xR7pL0-never-logged";

pub struct S3Server {
    child: Option<Child>,
    pub port: u16,
    pub root: tempfile::TempDir,
    pub log: PathBuf,
}

/// The installed `s3s-fs`, or a panic saying how to get it.
fn binary() -> PathBuf {
    let candidates = [
        std::env::var_os("S3S_FS").map(PathBuf::from),
        std::env::var_os("CARGO_HOME").map(|h| PathBuf::from(h).join("bin/s3s-fs")),
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/s3s-fs")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
        .or_else(|| {
            let o = Command::new("which").arg("s3s-fs").output().ok()?;
            o.status
                .success()
                .then(|| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        })
        .expect(
            "s3s-fs is not installed: run .ci/run, or `cargo install s3s-fs --version 0.14.1 --features binary --locked`",
        )
}

impl S3Server {
    /// Start on a free port with a fresh root holding an empty bucket.
    pub fn start() -> S3Server {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("data").join(BUCKET)).unwrap();
        let log = root.path().join("s3s-fs.log");
        let mut s = S3Server {
            child: None,
            port: free_port(),
            root,
            log,
        };
        s.resume();
        s
    }

    /// Start (again) on the same port and folder.
    pub fn resume(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(binary())
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(self.root.path().join("data"))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start s3s-fs");
        self.child = Some(child);
        let port = self.port;
        wait_for("s3s-fs to listen", Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
    }

    /// Kill the server (as a crash or an outage would).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment that adds an `archive` tier on this server to the
    /// default config, with trades moving there after `after`, plus the keys.
    pub fn env(&self, after: &str) -> Vec<(String, String)> {
        let t = "MDKEEP__TIERS__ARCHIVE__";
        vec![
            (format!("{t}ROOT"), format!("s3://{BUCKET}/processed")),
            (format!("{t}ZSTD_LEVEL"), "12".into()),
            (format!("{t}TARGET_FILE_SIZE"), "256MiB".into()),
            (format!("{t}S3__ENDPOINT"), self.endpoint()),
            (format!("{t}S3__PATH_STYLE"), "true".into()),
            (format!("{t}S3__ALLOW_HTTP"), "true".into()),
            (format!("{t}S3__MAX_RETRIES"), "3".into()),
            (format!("{t}S3__RETRY_TIMEOUT"), "4s".into()),
            // Ages must grow towards colder tiers; these keep day 2 hot.
            ("MDKEEP__DATASETS__TRADES__TIER_AFTER__WARM".into(), "30h".into()),
            ("MDKEEP__DATASETS__TRADES__TIER_AFTER__COLD".into(), "33h".into()),
            ("MDKEEP__DATASETS__TRADES__TIER_AFTER__ARCHIVE".into(), after.into()),
            ("AWS_ACCESS_KEY_ID".into(), ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), SECRET_KEY.into()),
        ]
    }

    /// Every object the server holds under the bucket (relative keys), by
    /// the server's own folder: nothing hides from this.
    pub fn objects(&self) -> Vec<String> {
        let b = self.root.path().join("data").join(BUCKET);
        let mut v: Vec<String> = walk(&b)
            .into_iter()
            .map(|p| p.strip_prefix(&b).unwrap().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// (rows, distinct trade ids) of the trades on the store, read by
    /// pyarrow's own S3 client.
    pub fn pyarrow_counts(&self) -> String {
        py_s3(
            self,
            "import pyarrow.dataset as ds, pyarrow.compute as pc\n\
             base = f'{BUCKET}/processed/trades'\n\
             files = [i.path for i in fs.get_file_info(pafs.FileSelector(base, recursive=True)) if i.path.endswith('.parquet')]\n\
             d = ds.dataset(files, filesystem=fs, format='parquet', partitioning='hive', partition_base_dir=base)\n\
             t = d.to_table(columns=['trade_id'])\n\
             print(t.num_rows, len(pc.unique(t['trade_id'])))",
        )
    }

    pub fn dir(&self) -> &Path {
        self.root.path()
    }
}

/// Run Python with `fs` bound to a pyarrow S3FileSystem on this server;
/// the keys go through the environment, not argv.
pub fn py_s3(s: &S3Server, body: &str) -> String {
    let code = format!(
        "import os\nfrom pyarrow import fs as pafs\nBUCKET = '{BUCKET}'\n\
         fs = pafs.S3FileSystem(access_key=os.environ['K'], secret_key=os.environ['S'], \
         endpoint_override='127.0.0.1:{}', scheme='http', region='us-east-1')\n{body}",
        s.port
    );
    super::py_env(&code, &[], &[("K", ACCESS_KEY), ("S", SECRET_KEY)])
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
