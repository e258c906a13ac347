//! `mdkeep jobs submit|ls|show|logs|cancel|retry|rerun|diff|compare|work`

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use std::time::Duration;

use mdkeep::config::units::human_bytes;
use mdkeep::jobs::{self, glance, queue, worker};
use mdkeep::report::jobs_page;
use mdkeep::report::page::short_time;
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
    /// List jobs, newest first, with their metrics (total return, max
    /// drawdown, trades), duration and data fingerprint.
    Ls {
        /// Only jobs in this state (queued, running, succeeded, failed, cancelled, timed_out, oom_killed, interrupted).
        #[arg(long)]
        state: Option<String>,
        /// Order by a metric, largest first: total_return, total_profit,
        /// max_drawdown, trades, funding_fees, duration or id.
        #[arg(long)]
        sort: Option<String>,
        /// With --sort: smallest first.
        #[arg(long)]
        asc: bool,
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
    /// Compare runs: their metrics side by side, and whether they read the
    /// same data (as `jobs diff` says it, each against the first).
    Compare {
        /// Two or more job ids.
        #[arg(required = true, num_args = 1..)]
        ids: Vec<i64>,
        /// Print {"jobs": [...], "same_data": bool|null, "data": [...]}.
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
        Cmd::Ls { state, sort, asc, json } => ls(&db, state.as_deref(), sort.as_deref(), *asc, *json)?,
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
            let (new, how) = jobs::rerun(&cfg, &db, *id)?;
            if *json {
                output::json(&serde_json::json!({ "id": new, "data": how }))?;
            } else {
                eprintln!("job {id} again: {how}");
                println!("{new}");
            }
        }
        Cmd::Diff { a, b, json } => return diff(&db, *a, *b, *json),
        Cmd::Compare { ids, json } => compare(&db, ids, *json)?,
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
fn ls(db: &Db, state: Option<&str>, sort: Option<&str>, asc: bool, json: bool) -> anyhow::Result<()> {
    let mut list = glance::summaries(db, state)?;
    if let Some(key) = sort {
        glance::sort(&mut list, key, asc)?;
    }
    if json {
        output::json(&list)?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            let v = &s.view;
            let [ret, dd, trades] = jobs_page::metrics_line(&s.metrics);
            vec![
                v.id.to_string(),
                v.name.clone(),
                v.group.clone(),
                v.state.to_string(),
                ret,
                dd,
                trades,
                jobs_page::duration(s.duration_seconds),
                jobs_page::short_fp(v.data_fingerprint.as_deref(), v.data_snapshot),
                human_bytes(v.reserved_memory_bytes),
                v.peak_memory_bytes.map(human_bytes).unwrap_or_default(),
                v.limit_mechanism.clone().unwrap_or_default(),
                short_time(&v.queued_at),
            ]
        })
        .collect();
    output::table(
        &[
            "id",
            "name",
            "framework",
            "state",
            "return",
            "drawdown",
            "trades",
            "duration",
            "data",
            "reserved",
            "peak",
            "limit",
            "queued",
        ],
        &rows,
    );
    Ok(())
}

/// `jobs compare A B ...`.
fn compare(db: &Db, ids: &[i64], json: bool) -> anyhow::Result<()> {
    let c = glance::compare(db, ids)?;
    if json {
        output::json(&c)?;
        return Ok(());
    }
    let mut head: Vec<String> = vec!["".into()];
    head.extend(c.jobs.iter().map(|j| format!("job {}", j.id)));
    let head: Vec<&str> = head.iter().map(String::as_str).collect();
    let line = |label: &str, f: &dyn Fn(&glance::Compared) -> String| -> Vec<String> {
        std::iter::once(label.to_string()).chain(c.jobs.iter().map(f)).collect()
    };
    let rows = vec![
        line("name", &|j| j.name.clone()),
        line("framework", &|j| j.framework.clone()),
        line("state", &|j| j.state.to_string()),
        line("total return", &|j| jobs_page::pct(j.summary.total_return)),
        line("total profit", &|j| {
            j.summary
                .total_profit
                .map(|v| format!("{v:.2}"))
                .unwrap_or_else(|| "-".into())
        }),
        line("max drawdown", &|j| jobs_page::pct(j.summary.max_drawdown)),
        line("trades", &|j| {
            j.summary.trades.map(|t| t.to_string()).unwrap_or_else(|| "-".into())
        }),
        line("duration", &|j| jobs_page::duration(j.duration_seconds)),
        line("data", &|j| {
            jobs_page::short_fp(j.data_fingerprint.as_deref(), j.data_snapshot)
        }),
        line("final equity", &|j| {
            j.equity_last.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into())
        }),
    ];
    output::table(&head, &rows);
    match c.same_data {
        Some(true) => println!(
            "same data: every job read fingerprint {}",
            c.jobs[0].data_fingerprint.as_deref().unwrap_or("-")
        ),
        None => println!("same data: unknown (a job has no data manifest)"),
        Some(false) => {
            println!("different data:");
            for d in c.data.iter().filter(|d| d.same != Some(true)) {
                println!("  jobs {} and {}:", d.a, d.b);
                for p in &d.partitions {
                    println!("    {p}");
                }
            }
        }
    }
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
        println!(
            "  data: fingerprint {fp}, {} rows{}",
            output::thousands(rows),
            v.data_snapshot
                .map(|n| format!(", lake snapshot {n}"))
                .unwrap_or_default()
        );
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
