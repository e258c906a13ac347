//! `mdkeep jobs submit|ls|show|logs|cancel|retry|rerun|diff|work`

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use std::time::Duration;

use mdkeep::config::units::human_bytes;
use mdkeep::jobs::{self, queue, worker};
use mdkeep::shutdown::{Phase, Shutdown};
use mdkeep::state::Db;

use super::{output, Cli};

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Queue a job from a spec file; prints its id.
    Submit {
        /// The job spec (TOML), e.g. jobs/command-example.toml.
        spec: PathBuf,
        /// Override a spec key, e.g. --set memory=1GiB --set data.symbols='["ETH_USDT"]'.
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_kv)]
        set: Vec<(String, String)>,
        /// Print {"id": N}.
        #[arg(long)]
        json: bool,
    },
    /// List jobs, newest first.
    Ls {
        /// Only jobs in this state (queued, running, succeeded, failed, cancelled, timed_out, oom_killed, interrupted).
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show one job and its history.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Print a job's stdout and stderr.
    Logs {
        id: i64,
        /// Keep printing until the job ends.
        #[arg(long, short)]
        follow: bool,
    },
    /// Cancel a queued job, or stop a running one.
    Cancel { id: i64 },
    /// Queue a finished job again.
    Retry { id: i64 },
    /// Submit a job's spec again, as a new job; prints its id.
    Rerun {
        id: i64,
        /// Print {"id": N}.
        #[arg(long)]
        json: bool,
    },
    /// Did two jobs read the same data? Lists the partitions that differ
    /// (rows added, removed or changed, and their time ranges). Exit 0 when
    /// the data is the same, 1 when it differs.
    Diff {
        a: i64,
        b: i64,
        /// Print {"same": bool, "a": {...}, "b": {...}, "partitions": [...]}.
        #[arg(long)]
        json: bool,
    },
    /// Run queued jobs within the memory budget (in the foreground).
    Work {
        /// Stop once the queue is empty and nothing runs.
        #[arg(long)]
        once: bool,
        #[arg(long)]
        json: bool,
    },
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))
}

pub fn run(cli: &Cli, cmd: &Cmd) -> anyhow::Result<i32> {
    let cfg = cli.load_config()?;
    let mut db = Db::open_existing(&cfg.state_db())?;
    match cmd {
        Cmd::Submit { spec, set, json } => {
            let id = jobs::submit(&cfg, &db, spec, set)?;
            if *json {
                output::json(&serde_json::json!({ "id": id }))?;
            } else {
                println!("{id}");
            }
        }
        Cmd::Ls { state, json } => ls(&db, state.as_deref(), *json)?,
        Cmd::Show { id, json } => show(&db, *id, *json)?,
        Cmd::Logs { id, follow } => return logs(&db, *id, *follow),
        Cmd::Cancel { id } => {
            let was = queue::cancel(&db, *id)?;
            println!("job {id}: {}", if was == "queued" { "cancelled" } else { "stopping" });
        }
        Cmd::Retry { id } => {
            queue::retry(&db, *id)?;
            println!("job {id}: queued again");
        }
        Cmd::Rerun { id, json } => {
            let new = jobs::rerun(&cfg, &db, *id)?;
            if *json {
                output::json(&serde_json::json!({ "id": new }))?;
            } else {
                println!("{new}");
            }
        }
        Cmd::Diff { a, b, json } => return diff(&db, *a, *b, *json),
        Cmd::Work { once, json } => {
            // SIGTERM or SIGINT interrupts the running jobs (re-queued when they have retries).
            let shutdown = Shutdown::new();
            shutdown.on_signals(Phase::Stopping)?;
            let r = worker::work(&cfg, &mut db, *once, &shutdown)?;
            if *json {
                output::json(&r)?;
            } else {
                let done: Vec<String> = r.finished.iter().map(|(k, v)| format!("{v} {k}")).collect();
                println!(
                    "worker ({} limits): {} started, {}, {} recovered, {} re-queued",
                    r.mechanism,
                    r.started,
                    if done.is_empty() {
                        "none finished".into()
                    } else {
                        done.join(", ")
                    },
                    r.recovered,
                    r.requeued
                );
            }
        }
    }
    Ok(0)
}

/// `jobs ls`.
fn ls(db: &Db, state: Option<&str>, json: bool) -> anyhow::Result<()> {
    let list = queue::list(db, state)?;
    let views: Vec<_> = list.iter().map(|j| j.view()).collect();
    if json {
        output::json(&views)?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|v| {
            vec![
                v.id.to_string(),
                v.name.clone(),
                v.group.clone(),
                v.state.to_string(),
                human_bytes(v.reserved_memory_bytes),
                v.peak_memory_bytes.map(human_bytes).unwrap_or_default(),
                v.limit_mechanism.clone().unwrap_or_default(),
                v.queued_at.clone(),
            ]
        })
        .collect();
    output::table(
        &[
            "id",
            "name",
            "framework",
            "state",
            "reserved",
            "peak",
            "limit",
            "queued",
        ],
        &rows,
    );
    Ok(())
}

/// `jobs show`.
fn show(db: &Db, id: i64, json: bool) -> anyhow::Result<()> {
    let j = queue::get(db, id)?;
    let events = queue::events(db, id)?;
    if json {
        let mut v = serde_json::to_value(j.view())?;
        v["events"] = serde_json::to_value(&events)?;
        v["spec"] = serde_json::to_value(&j.spec)?;
        output::json(&v)?;
        return Ok(());
    }
    let v = j.view();
    println!("job {} `{}` ({}), {}", v.id, v.name, v.group, v.state);
    println!(
        "  memory: reserved {}, peak {}, limit by {}",
        human_bytes(v.reserved_memory_bytes),
        v.peak_memory_bytes.map(human_bytes).unwrap_or("-".into()),
        v.limit_mechanism.as_deref().unwrap_or("-")
    );
    println!(
        "  attempts {} of {}, exit code {:?}",
        v.attempts,
        v.retries + 1,
        v.exit_code
    );
    println!("  folder {}", v.dir);
    if let (Some(fp), Some(rows)) = (&v.data_fingerprint, v.data_rows) {
        println!("  data: fingerprint {fp}, {} rows", output::thousands(rows));
    }
    for e in events {
        println!("  {}  {:<12} {}", e.at, e.state, e.message);
    }
    Ok(())
}

/// `jobs diff A B`.
fn diff(db: &Db, a: i64, b: i64, json: bool) -> anyhow::Result<i32> {
    use mdkeep::export::manifest;
    let load = |id: i64| -> anyhow::Result<manifest::Manifest> {
        queue::data_manifest(db, id)?.ok_or_else(|| {
            anyhow::anyhow!("job {id} has no data manifest: its spec has no [data], or its export has not run")
        })
    };
    let (ma, mb) = (load(a)?, load(b)?);
    let changes = manifest::diff(&ma, &mb);
    let same = ma.fingerprint == mb.fingerprint;
    if json {
        let side = |id: i64, m: &manifest::Manifest| serde_json::json!({ "job": id, "dataset": m.dataset, "data_fingerprint": m.fingerprint, "data_rows": m.rows });
        output::json(&serde_json::json!({
            "same": same,
            "a": side(a, &ma),
            "b": side(b, &mb),
            "partitions": changes,
        }))?;
    } else if same {
        println!(
            "jobs {a} and {b} read the same data: fingerprint {}, {} rows",
            ma.fingerprint,
            output::thousands(ma.rows)
        );
    } else {
        println!(
            "jobs {a} and {b} read different data: {} ({} rows) → {} ({} rows)",
            ma.fingerprint,
            output::thousands(ma.rows),
            mb.fingerprint,
            output::thousands(mb.rows)
        );
        if ma.dataset != mb.dataset {
            println!("  datasets differ: {} → {}", ma.dataset, mb.dataset);
        }
        for c in &changes {
            println!("  {c}");
        }
    }
    Ok(if same { mdkeep::exit::OK } else { mdkeep::exit::FAILURE })
}

fn logs(db: &Db, id: i64, follow: bool) -> anyhow::Result<i32> {
    let job = queue::get(db, id)?;
    let dir = Path::new(&job.dir);
    let files = [dir.join("stdout.log"), dir.join("stderr.log")];
    let mut offsets = [0u64, 0u64];
    loop {
        // Decided before reading, so what the job wrote last is still printed.
        let last = !follow || queue::get(db, id)?.life.is_done();
        for (i, p) in files.iter().enumerate() {
            if let Ok(mut f) = std::fs::File::open(p) {
                f.seek(SeekFrom::Start(offsets[i]))?;
                let mut buf = Vec::new();
                f.read_to_end(&mut buf)?;
                offsets[i] += buf.len() as u64;
                if i == 0 {
                    std::io::stdout().write_all(&buf)?;
                } else {
                    std::io::stderr().write_all(&buf)?;
                }
            }
        }
        if last {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(0)
}
