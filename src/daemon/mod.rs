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

pub mod alerting;
pub mod app;
pub mod dashboard;
pub mod http;
pub mod metrics;
pub mod server;
pub mod tasks;

use std::sync::Arc;

use crate::config::{Config, OnShutdown};
use crate::error::{Error, Result};
use crate::scheduler::driver::{self, Clock, Event, RunFuture};
use crate::scheduler::{self, Scheduler};
use crate::shutdown::Shutdown;
use crate::state::Db;

/// Run until `signal` resolves, then shut down as `daemon.on_shutdown` says.
pub async fn run(cfg: Config, signal: impl std::future::Future<Output = ()>) -> Result<()> {
    crate::init::check_writable(&cfg)?;
    let db = Db::open(&cfg.state_db())?;
    let specs = scheduler::from_config(&cfg)?;
    let clock = Clock::system();
    let (sched, initial) = Scheduler::new(
        specs,
        &scheduler::persisted_next(&db)?,
        clock.now(),
        cfg.daemon.starting_deadline.0,
    );
    let shutdown = Shutdown::new();
    let health = Arc::new(app::Health::default());
    let app_state = Arc::new(app::AppState::new(cfg.clone(), health.clone(), token(&cfg)?));
    let http = serve_http(&cfg, &app_state, &shutdown).await?;
    let mut worker = spawn_worker(&cfg, &shutdown, &health);
    // Only served pages need their snapshot and report refreshed after each task.
    let snapshot = http.is_some().then(|| app_state.clone());
    // Alerts are checked on a thread of their own after each task; a task never waits for them.
    let alerter = alerting::Alerter::spawn(&cfg, health.clone());
    let after = AfterTask { snapshot, alerter };
    let sched = spawn_scheduler(&cfg, db, sched, initial, clock, &shutdown, &health, after);
    tracing::info!(pid = std::process::id(), "daemon started");

    signal.await;
    tracing::info!("shutting down: no new jobs or tasks");
    shutdown.drain();
    let mut ended = None;
    if cfg.daemon.on_shutdown == OnShutdown::Finish {
        // A draining worker ends once its running jobs have; past the grace they are interrupted.
        tokio::select! {
            r = &mut worker => ended = Some(r),
            _ = tokio::time::sleep(cfg.daemon.shutdown_grace.0) => {}
        }
    }
    shutdown.stop();
    let _ = sched.await;
    let ended = match ended {
        Some(r) => r,
        None => worker.await,
    };
    match ended {
        Ok(r) => r?,
        Err(e) => tracing::error!(error = %e, "the job worker panicked"),
    }
    if let Some(h) = http {
        let _ = h.await;
    }
    tracing::info!("daemon stopped");
    Ok(())
}

/// The HTTP listener on `http.bind`, unless it is empty.
async fn serve_http(
    cfg: &Config,
    app_state: &Arc<app::AppState>,
    shutdown: &Shutdown,
) -> Result<Option<tokio::task::JoinHandle<()>>> {
    let bind = cfg.http.bind.trim();
    if bind.is_empty() {
        return Ok(None);
    }
    let listener = tokio::net::TcpListener::bind(bind).await.map_err(|e| Error::Config {
        source_name: cfg.source.clone(),
        key: "http.bind".into(),
        message: format!("cannot listen on {bind}: {e}"),
    })?;
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(%addr, "http: / /jobs /jobs/<id> /jobs/compare /quality /coverage /api/… /healthz /metrics /status");
    if cfg.http.token_file.is_none() && !is_loopback(bind) {
        tracing::warn!(%addr, "http: no http.token_file, so anyone who reaches this address can read every page");
    }
    app_state.refresh_later();
    let bounds = server::Bounds {
        max_connections: cfg.http.max_connections,
        header_timeout: cfg.http.header_timeout.0,
        request_timeout: cfg.http.request_timeout.0,
    };
    let app = http::router(app_state.clone());
    Ok(Some(tokio::spawn(server::serve(
        listener,
        app,
        bounds,
        shutdown.clone(),
    ))))
}

/// The bearer token in `http.token_file` (which must be 0600), if set.
fn token(cfg: &Config) -> Result<Option<String>> {
    let Some(path) = &cfg.http.token_file else {
        return Ok(None);
    };
    let bad = |message: String| Error::Config {
        source_name: cfg.source.clone(),
        key: "http.token_file".into(),
        message,
    };
    let text = crate::fsutil::read_private(&cfg.resolve(path)).map_err(bad)?;
    let token = text.trim().to_string();
    if token.is_empty() {
        return Err(bad(format!("{} is empty", path.display())));
    }
    Ok(Some(token))
}

/// Whether `bind` (host:port) listens on the loopback interface only.
fn is_loopback(bind: &str) -> bool {
    bind.parse::<std::net::SocketAddr>().is_ok_and(|a| a.ip().is_loopback()) || bind.starts_with("localhost:")
}

/// The job worker on a blocking thread; if it stops before the daemon
/// does, `/healthz` says so.
fn spawn_worker(cfg: &Config, shutdown: &Shutdown, health: &Arc<app::Health>) -> tokio::task::JoinHandle<Result<()>> {
    let (cfg, shutdown, health) = (cfg.clone(), shutdown.clone(), health.clone());
    tokio::task::spawn_blocking(move || -> Result<()> {
        let run = || -> Result<()> {
            let mut db = Db::open(&cfg.state_db())?;
            crate::jobs::worker::work(&cfg, &mut db, false, &shutdown)?;
            Ok(())
        };
        let r = run();
        if !shutdown.is_draining() {
            match &r {
                Ok(()) => health.stopped("the job worker stopped"),
                Err(e) => health.stopped(format!("the job worker stopped: {e}")),
            }
        }
        r
    })
}

/// What follows each task's end, without the task waiting for it.
struct AfterTask {
    /// The metrics snapshot and the dashboard's report, when served.
    snapshot: Option<Arc<app::AppState>>,
    /// The alerts thread, unless alerts are off.
    alerter: Option<alerting::Alerter>,
}

/// The scheduler: each due task on a blocking thread, each event recorded,
/// the metrics snapshot (when served) refreshed and the alerts checked
/// after each task.
#[allow(clippy::too_many_arguments)]
fn spawn_scheduler(
    cfg: &Config,
    db: Db,
    sched: Scheduler,
    initial: Vec<scheduler::Decision>,
    clock: Clock,
    shutdown: &Shutdown,
    health: &Arc<app::Health>,
    after: AfterTask,
) -> tokio::task::JoinHandle<()> {
    let run_task = {
        let (cfg, shutdown) = (cfg.clone(), shutdown.clone());
        move |task: &str| -> RunFuture {
            let (cfg, shutdown, task) = (cfg.clone(), shutdown.clone(), task.to_string());
            Box::pin(async move {
                tokio::task::spawn_blocking(move || tasks::run_task(&cfg, &task, &shutdown))
                    .await
                    .unwrap_or_else(|e| Err(format!("task panicked: {e}")))
            })
        }
    };
    let on_event = move |e: Event| {
        if let Err(err) = record(&db, &e) {
            tracing::warn!(error = %err, "cannot record a schedule event");
        }
        if let Event::Finished { .. } = &e {
            if let Some(st) = &after.snapshot {
                st.refresh_later();
            }
            if let Some(a) = &after.alerter {
                a.poke();
            }
        }
    };
    let drive = driver::drive(sched, initial, clock, run_task, on_event, shutdown.clone());
    let (shutdown, health) = (shutdown.clone(), health.clone());
    tokio::spawn(async move {
        let ended = tokio::spawn(drive).await;
        if !shutdown.is_draining() {
            match ended {
                Ok(()) => health.stopped("the scheduler stopped"),
                Err(e) => health.stopped(format!("the scheduler stopped: {e}")),
            }
        }
    })
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
