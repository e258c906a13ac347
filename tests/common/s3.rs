//! A real S3 server for the store-tier tests: the `s3s-fs` crate over a
//! fresh folder, served on a free port by one tokio runtime inside the test
//! process (no separate install), with the env that points a sandbox's
//! `archive` tier at it.

use std::path::Path;
use std::time::Duration;

use super::{wait_for, walk};

pub const BUCKET: &str = "market-cold";
pub const ACCESS_KEY: &str = "mdkeep-test-access";
/// Distinctive, so a test can grep every log for it.
pub const SECRET_KEY: &str = "s3cr3t-Zq8wV1xR7pL0-never-logged";

pub struct S3Server {
    /// The serving thread and what tells it to stop.
    running: Option<(std::thread::JoinHandle<()>, tokio::sync::oneshot::Sender<()>)>,
    pub port: u16,
    pub root: tempfile::TempDir,
}

impl S3Server {
    /// Start on a free port with a fresh root holding an empty bucket.
    pub fn start() -> S3Server {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("data").join(BUCKET)).unwrap();
        // Bound here, not picked and bound later: a port found free can be
        // taken meanwhile (by any connection's local end).
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut s = S3Server {
            running: None,
            port: listener.local_addr().unwrap().port(),
            root,
        };
        s.serve_on(listener);
        s
    }

    /// Start (again) on the same port and folder.
    pub fn resume(&mut self) {
        let listener = std::net::TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        self.serve_on(listener);
    }

    fn serve_on(&mut self, listener: std::net::TcpListener) {
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let (data, port) = (self.root.path().join("data"), self.port);
        listener.set_nonblocking(true).unwrap();
        let thread = std::thread::spawn(move || serve(&data, listener, stopped));
        self.running = Some((thread, stop));
        wait_for("the S3 server to listen", Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
    }

    /// Stop serving at once, dropping connections in flight (as a crash or
    /// an outage would); the port refuses connections until `resume`.
    pub fn stop(&mut self) {
        if let Some((thread, stop)) = self.running.take() {
            let _ = stop.send(());
            let _ = thread.join();
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

/// Serve `s3s-fs` over `data` on `listener` until told to stop.
fn serve(data: &Path, listener: std::net::TcpListener, mut stopped: tokio::sync::oneshot::Receiver<()>) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut b = s3s::service::S3ServiceBuilder::new(s3s_fs::FileSystem::new(data).unwrap());
        b.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = b.build();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((socket, _)) = accepted else { continue };
                    let conn = http.serve_connection(TokioIo::new(socket), service.clone()).into_owned();
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                }
                _ = &mut stopped => break,
            }
        }
    });
    // Connections in flight go with the runtime, as with a killed server.
    rt.shutdown_background();
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
