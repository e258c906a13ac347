//! `mdkeep alerts test|ls|check`: try the targets, see what is firing, and
//! evaluate the rules once (what the daemon does after each task).

use mdkeep::alerts;

use super::{output, Cli};

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Send a test message to every target, or to the one named; exit 1 if one failed.
    Test {
        /// A target's name (its `name`, else its kind).
        target: Option<String>,
        /// Print each delivery as JSON.
        #[arg(long)]
        json: bool,
    },
    /// What is firing (or held before it fires), since when, and when it was last sent.
    Ls {
        /// Also this many alerts that ended, newest first.
        #[arg(long, default_value_t = 0)]
        recent: usize,
        /// Print the alerts and the targets' health as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Evaluate the rules now and send what is due (the daemon does this after each task).
    Check {
        /// Print what was sent as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cli: &Cli, c: &Cmd) -> anyhow::Result<i32> {
    let (cfg, db) = super::open_state(cli, None)?;
    match c {
        Cmd::Test { target, json } => {
            if cfg.alerts.targets.is_empty() {
                eprintln!("no [[alerts.targets]] in the config: nothing to test");
                return Ok(mdkeep::exit::REFUSED);
            }
            let ds = alerts::test(&cfg, &db, target.as_deref())?;
            if *json {
                output::json(&ds)?;
            } else {
                for d in &ds {
                    match &d.result {
                        Ok(()) => println!("{} ({}): delivered", d.target, d.kind),
                        Err(e) => println!("{} ({}): failed after {} attempts: {e}", d.target, d.kind, d.attempts),
                    }
                }
            }
            Ok(if ds.iter().all(|d| d.result.is_ok()) {
                mdkeep::exit::OK
            } else {
                mdkeep::exit::FAILURE
            })
        }
        Cmd::Ls { recent, json } => {
            let list = alerts::state::list(&db, *recent)?;
            let targets = alerts::state::targets(&db)?;
            if *json {
                output::json(&serde_json::json!({ "alerts": list, "targets": targets }))?;
                return Ok(mdkeep::exit::OK);
            }
            if list.is_empty() {
                println!("no alert is firing");
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|a| {
                        vec![
                            a.state.to_string(),
                            a.rule.clone(),
                            a.subject.clone(),
                            a.since.clone(),
                            a.last_sent.clone().unwrap_or_else(|| "-".into()),
                        ]
                    })
                    .collect();
                output::table(&["STATE", "RULE", "SUBJECT", "SINCE", "LAST SENT"], &rows);
                for a in &list {
                    println!("{}: {}", a.key, a.message);
                }
            }
            for t in targets.iter().filter(|t| t.failures > 0) {
                println!(
                    "target {} failing: {} deliveries in a row, last: {}",
                    t.target,
                    t.failures,
                    t.last_error.as_deref().unwrap_or("-")
                );
            }
            Ok(mdkeep::exit::OK)
        }
        Cmd::Check { json } => {
            let r = alerts::check(&cfg, &db, None)?;
            if *json {
                output::json(&r)?;
            } else {
                println!("{} conditions hold", r.holding.len());
                for s in &r.sent {
                    println!("sent {} {} to {}", s.state.as_str(), s.key, s.delivered_to.join(", "));
                }
                for d in &r.failed {
                    if let Err(e) = &d.result {
                        println!("{} failed: {e}", d.target);
                    }
                }
            }
            Ok(if r.failed.is_empty() {
                mdkeep::exit::OK
            } else {
                mdkeep::exit::FAILURE
            })
        }
    }
}
