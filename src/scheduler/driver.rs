//! The async loop that carries a [`Scheduler`] out.
//!
//! Owns waiting, not deciding: it sleeps until the next run (`sleep_until`
//! on tokio's clock, so tests drive it with a paused clock), starts due
//! tasks through the runner it is given, notes when they finish, and stops
//! on shutdown after the runs in flight have returned (each is a blocking
//! maintenance step, crash-safe at every point, that returns at its end).

use std::future::Future;
use std::pin::Pin;

use crate::shutdown::{Phase, Shutdown};
use chrono::{DateTime, Utc};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{Decision, Scheduler};

/// Wall time tied to tokio's clock: `now()` moves with tokio time, paused or not.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall: DateTime<Utc>,
    at: Instant,
}

impl Clock {
    pub fn starting_at(wall: DateTime<Utc>) -> Clock {
        Clock {
            wall,
            at: Instant::now(),
        }
    }

    pub fn system() -> Clock {
        Clock::starting_at(Utc::now())
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.wall + chrono::Duration::from_std(self.at.elapsed()).unwrap_or_default()
    }

    fn instant_for(&self, t: DateTime<Utc>) -> Instant {
        let ahead = (t - self.now()).to_std().unwrap_or_default();
        Instant::now() + ahead
    }
}

/// A task run: `Ok(summary)` or `Err(message)`.
pub type RunFuture = Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;

/// What happened, for the state database, logs and metrics.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Started {
        task: String,
        scheduled: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    Finished {
        task: String,
        at: DateTime<Utc>,
        started: DateTime<Utc>,
        result: Result<String, String>,
    },
    Skipped {
        task: String,
        scheduled: DateTime<Utc>,
        why: &'static str,
    },
    Next {
        task: String,
        next: Option<DateTime<Utc>>,
    },
}

/// Run `sched` until `shutdown` drains; `initial` are the decisions
/// [`Scheduler::new`] made about missed runs.
pub async fn drive(
    mut sched: Scheduler,
    initial: Vec<Decision>,
    clock: Clock,
    run: impl Fn(&str) -> RunFuture,
    mut on_event: impl FnMut(Event),
    shutdown: Shutdown,
) {
    let mut inflight: JoinSet<(String, DateTime<Utc>, Result<String, String>)> = JoinSet::new();
    let act = |d: Decision, inflight: &mut JoinSet<_>, on_event: &mut dyn FnMut(Event)| match d {
        Decision::Start { task, scheduled } => {
            let at = clock.now();
            on_event(Event::Started {
                task: task.clone(),
                scheduled,
                at,
            });
            let fut = run(&task);
            inflight.spawn(async move { (task, at, fut.await) });
        }
        Decision::SkipOverlap { task, scheduled } => on_event(Event::Skipped {
            task,
            scheduled,
            why: "overlap: the previous run is still going",
        }),
        Decision::SkipMissed { task, scheduled } => on_event(Event::Skipped {
            task,
            scheduled,
            why: "missed during downtime, past the starting deadline",
        }),
    };
    for d in initial {
        act(d, &mut inflight, &mut on_event);
    }
    let tasks: Vec<String> = sched_tasks(&sched);
    for t in &tasks {
        on_event(Event::Next {
            task: t.clone(),
            next: sched.next_run(t),
        });
    }
    while !shutdown.is_draining() {
        let wake = sched.next_wake().map(|t| clock.instant_for(t));
        tokio::select! {
            _ = async { match wake { Some(w) => tokio::time::sleep_until(w).await, None => std::future::pending().await } } => {
                let now = clock.now();
                for d in sched.due(now) {
                    let task = match &d {
                        Decision::Start { task, .. } | Decision::SkipOverlap { task, .. } | Decision::SkipMissed { task, .. } => task.clone(),
                    };
                    act(d, &mut inflight, &mut on_event);
                    on_event(Event::Next { next: sched.next_run(&task), task });
                }
            }
            Some(done) = inflight.join_next(), if !inflight.is_empty() => {
                if let Ok((task, started, result)) = done {
                    sched.finished(&task);
                    on_event(Event::Finished { task, at: clock.now(), started, result });
                }
            }
            _ = shutdown.reached(Phase::Draining) => {}
        }
    }
    // Stop starting; let the runs in flight reach their end.
    while let Some(done) = inflight.join_next().await {
        if let Ok((task, started, result)) = done {
            sched.finished(&task);
            on_event(Event::Finished {
                task,
                at: clock.now(),
                started,
                result,
            });
        }
    }
}

fn sched_tasks(s: &Scheduler) -> Vec<String> {
    s.entries.keys().cloned().collect()
}
