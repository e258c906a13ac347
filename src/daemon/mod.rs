//! `mdkeep daemon`: the scheduler, the job worker and the HTTP endpoint in
//! one tokio runtime, for months unattended.
//!
//! Owns the wiring and the shutdown, nothing else: the core stays blocking
//! and runs on `spawn_blocking` threads. A shutdown (the future the caller
//! passes in, SIGTERM or SIGINT for the binary) stops admitting jobs and
//! starting tasks, lets a task in flight reach its end (every step is
//! crash-safe, so a forced exit loses nothing either), and interrupts the
//! running jobs or lets them finish within `daemon.shutdown_grace`, as
//! `daemon.on_shutdown` says.

pub mod http;
pub mod metrics;
pub mod server;
pub mod tasks;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;

use crate::config::{Config, OnShutdown};
use crate::error::{Error, Result};
use crate::scheduler::driver::{self, Clock, Event, RunFuture};
use crate::scheduler::{self, Scheduler};
use crate::state::Db;

/// Run until `shutdown` resolves.
pub async fn run(cfg: Config, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
    let db = Db::open(&cfg.state_db())?;
    let specs = scheduler::from_config(&cfg)?;
    let clock = Clock::system();
    let (sched, initial) = Scheduler::new(
        specs,
        &scheduler::persisted_next(&db)?,
        clock.now(),
        cfg.daemon.starting_deadline.0,
    );
    let (stop_tx, stop_rx) = watch::channel(false);

    let health = Arc::new(http::Health::default());
    let app_state = Arc::new(http::AppState::new(cfg.clone(), health.clone()));
    let http = match cfg.http.bind.trim() {
        "" => None,
        bind => {
            let listener = tokio::net::TcpListener::bind(bind).await.map_err(|e| Error::Config {
                source_name: cfg.source.clone(),
                key: "http.bind".into(),
                message: format!("cannot listen on {bind}: {e}"),
            })?;
            let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
            tracing::info!(%addr, "http: /healthz /metrics /status");
            let st = app_state.clone();
            tokio::task::spawn_blocking(move || st.refresh_metrics());
            let bounds = server::Bounds {
                max_connections: cfg.http.max_connections,
                header_timeout: cfg.http.header_timeout.0,
                request_timeout: cfg.http.request_timeout.0,
            };
            let app = http::router(app_state.clone());
            Some(tokio::spawn(server::serve(listener, app, bounds, stop_rx.clone())))
        }
    };

    let (stop_jobs, drain_jobs) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let worker = {
        let (cfg, stop, drain, health) = (cfg.clone(), stop_jobs.clone(), drain_jobs.clone(), health.clone());
        tokio::task::spawn_blocking(move || -> Result<()> {
            let run = || -> Result<()> {
                let mut db = Db::open(&cfg.state_db())?;
                crate::jobs::worker::work_with(
                    &cfg,
                    &mut db,
                    false,
                    &|| stop.load(Ordering::Relaxed),
                    &|| drain.load(Ordering::Relaxed),
                    None,
                )?;
                Ok(())
            };
            let r = run();
            if !stop.load(Ordering::Relaxed) {
                match &r {
                    Ok(()) => health.stopped("the job worker stopped"),
                    Err(e) => health.stopped(format!("the job worker stopped: {e}")),
                }
            }
            r
        })
    };

    let stop_tasks = Arc::new(AtomicBool::new(false));
    let run_task = {
        let (cfg, stop) = (cfg.clone(), stop_tasks.clone());
        move |task: &str| -> RunFuture {
            let (cfg, stop, task) = (cfg.clone(), stop.clone(), task.to_string());
            Box::pin(async move {
                tokio::task::spawn_blocking(move || tasks::run_task(&cfg, &task, &|| stop.load(Ordering::Relaxed)))
                    .await
                    .unwrap_or_else(|e| Err(format!("task panicked: {e}")))
            })
        }
    };
    let snapshot = app_state.clone();
    let on_event = move |e: Event| {
        if let Err(err) = record(&db, &e) {
            tracing::warn!(error = %err, "cannot record a schedule event");
        }
        if matches!(e, Event::Finished { .. }) {
            let st = snapshot.clone();
            tokio::task::spawn_blocking(move || st.refresh_metrics());
        }
    };
    let sched = {
        let (drive, stop, health) = (
            driver::drive(sched, initial, clock, run_task, on_event, stop_rx.clone()),
            stop_rx.clone(),
            health.clone(),
        );
        tokio::spawn(async move {
            let ended = tokio::spawn(drive).await;
            if !*stop.borrow() {
                match ended {
                    Ok(()) => health.stopped("the scheduler stopped"),
                    Err(e) => health.stopped(format!("the scheduler stopped: {e}")),
                }
            }
        })
    };
    tracing::info!(pid = std::process::id(), "daemon started");

    shutdown.await;
    tracing::info!("shutting down: no new jobs or tasks");
    let _ = stop_tx.send(true);
    stop_tasks.store(true, Ordering::Relaxed);
    match cfg.daemon.on_shutdown {
        OnShutdown::Interrupt => stop_jobs.store(true, Ordering::Relaxed),
        OnShutdown::Finish => {
            drain_jobs.store(true, Ordering::Relaxed);
            let grace = cfg.daemon.shutdown_grace.0;
            let deadline = Instant::now() + grace;
            let db = Db::open(&cfg.state_db())?;
            while Instant::now() < deadline && crate::jobs::budget::jobs_reserved(&db)? > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            stop_jobs.store(true, Ordering::Relaxed);
        }
    }
    let _ = sched.await;
    match worker.await {
        Ok(r) => r?,
        Err(e) => tracing::error!(error = %e, "the job worker panicked"),
    }
    if let Some(h) = http {
        let _ = h.await;
    }
    tracing::info!("daemon stopped");
    Ok(())
}

fn record(db: &Db, e: &Event) -> Result<()> {
    match e {
        Event::Started { task, scheduled, at } => {
            tracing::info!(task, scheduled = %scheduled, "task started");
            scheduler::record_start(db, task, *at)
        }
        Event::Finished {
            task,
            at,
            started,
            result,
        } => {
            let ms = (*at - *started).num_milliseconds();
            match result {
                Ok(summary) => tracing::info!(task, ms, summary, "task finished"),
                Err(error) => tracing::error!(task, ms, error, "task failed"),
            }
            let text = match result {
                Ok(s) => format!("ok: {s}"),
                Err(e) => format!("error: {e}"),
            };
            scheduler::record_end(db, task, *at, result.is_ok(), &text, ms)
        }
        Event::Skipped { task, scheduled, why } => {
            tracing::warn!(task, scheduled = %scheduled, why, "run skipped");
            scheduler::record_skip(db, task, why)
        }
        Event::Next { task, next } => scheduler::store_next(db, task, *next),
    }
}
