//! `mdkeep lake attach|status|check|rebuild`: the DuckLake catalog readers attach.

use mdkeep::lake;

use super::{output, Cli};

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Print the DuckDB statements that attach this root's lake, read-only.
    Attach,
    /// Snapshots kept, live files, and what is kept only for old snapshots.
    Status {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Compare the lake, the catalog and the disk; name every difference (exit 4 on any).
    Check {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a fresh lake from the catalog (starts a new snapshot history).
    Rebuild {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cli: &Cli, c: &Cmd) -> anyhow::Result<i32> {
    let (cfg, db) = super::open_state(cli, None)?;
    match c {
        Cmd::Attach => {
            print!("{}", lake::attach_sql(&cfg));
            Ok(mdkeep::exit::OK)
        }
        Cmd::Status { json } => {
            let s = lake::status::status(&cfg);
            if *json {
                output::json(&s)?;
            } else {
                match &s {
                    Some(s) => println!("{}", s.line()),
                    None if !cfg.lake.enabled => println!("the lake is off (lake.enabled = false)"),
                    None => println!(
                        "no lake yet at {} (the next change writes one)",
                        cfg.lake_path().display()
                    ),
                }
            }
            Ok(if s.as_ref().is_some_and(|s| s.error.is_some()) {
                mdkeep::exit::DONE_WITH_FAILURES
            } else {
                mdkeep::exit::OK
            })
        }
        Cmd::Check { json } => {
            let r = lake::check::check(&cfg, &db)?;
            if *json {
                output::json(&r)?;
            } else {
                println!(
                    "lake {}: snapshot {}, {} snapshots, {} live files, {} kept for old snapshots",
                    r.lake,
                    r.snapshot.map_or("-".into(), |s| s.to_string()),
                    r.snapshots,
                    r.live_files,
                    r.kept_files
                );
                for d in &r.differences {
                    println!("{}: {} ({})", d.kind, d.path, d.detail);
                }
                if r.clean() {
                    println!("the lake, the catalog and the disk agree");
                }
            }
            Ok(if r.clean() {
                mdkeep::exit::OK
            } else {
                mdkeep::exit::DONE_WITH_FAILURES
            })
        }
        Cmd::Rebuild { json } => {
            let _lock = mdkeep::lock::DataLock::acquire_for(&cfg, "lake rebuild", cli.wait.0)?;
            let r = lake::check::rebuild(&cfg, &db)?;
            if *json {
                output::json(&r)?;
            } else {
                println!(
                    "rebuilt {} from the catalog: {} files, snapshot {}",
                    r.lake,
                    r.files,
                    r.snapshot.map_or("-".into(), |s| s.to_string())
                );
                println!("note: {}", r.note);
                for u in &r.unreadable {
                    println!("left out (footer unreadable): {u}");
                }
            }
            Ok(mdkeep::exit::OK)
        }
    }
}
