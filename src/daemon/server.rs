//! The HTTP listener, bounded: a header-read timeout, a per-request
//! timeout, and a cap on connections held at once.
//!
//! Owns accepting and the life of each connection, not the routes (those
//! are [`super::http`]'s). At the cap, the connection idle longest (no
//! request in progress: a client that connected and sent nothing, sent half
//! a header, or keeps an idle keep-alive) is closed to make room, so a
//! thousand idle sockets cannot keep `/healthz` from answering. A client
//! whose headers do not arrive within `http.header_timeout` is dropped by
//! hyper; a handler that runs past `http.request_timeout` answers 503.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::shutdown::{Phase, Shutdown};
use tower::ServiceExt;

/// The bounds [`serve`] keeps.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub request_timeout: Duration,
}

/// One open connection, as the acceptor sees it.
struct Conn {
    busy: AtomicBool,
    /// Milliseconds since the server started, at its last request's end (or its start).
    last_active_ms: AtomicU64,
    close: Notify,
}

type Table = Arc<Mutex<HashMap<u64, Arc<Conn>>>>;

/// Serve `app` on `listener` until `shutdown` drains.
pub async fn serve(listener: TcpListener, app: Router, bounds: Bounds, shutdown: Shutdown) {
    let epoch = Instant::now();
    let table: Table = Arc::default();
    let mut next_id = 0u64;
    loop {
        let stream = tokio::select! {
            _ = shutdown.reached(Phase::Draining) => break,
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, usually: let connections end, then go on.
                    tracing::warn!(error = %e, "http: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if !make_room(&table, bounds.max_connections) {
            tracing::debug!("http: every connection is busy; refusing one");
            continue;
        }
        next_id += 1;
        let conn = Arc::new(Conn {
            busy: AtomicBool::new(false),
            last_active_ms: AtomicU64::new(epoch.elapsed().as_millis() as u64),
            close: Notify::new(),
        });
        table.lock().expect("not poisoned").insert(next_id, conn.clone());
        let (app, table, shutdown, id) = (app.clone(), table.clone(), shutdown.clone(), next_id);
        tokio::spawn(async move {
            connection(stream, app, conn, bounds, epoch, shutdown).await;
            table.lock().expect("not poisoned").remove(&id);
        });
    }
}

/// Below the cap, or closed the connection idle longest to get there.
/// False when every connection is in the middle of a request.
fn make_room(table: &Table, cap: usize) -> bool {
    let mut t = table.lock().expect("not poisoned");
    if t.len() < cap.max(1) {
        return true;
    }
    let idle = t
        .iter()
        .filter(|(_, c)| !c.busy.load(Ordering::Relaxed))
        .min_by_key(|(_, c)| c.last_active_ms.load(Ordering::Relaxed))
        .map(|(id, _)| *id);
    match idle.and_then(|id| t.remove(&id)) {
        Some(c) => {
            c.close.notify_one();
            true
        }
        None => false,
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    app: Router,
    conn: Arc<Conn>,
    bounds: Bounds,
    epoch: Instant,
    shutdown: Shutdown,
) {
    let state = conn.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (app, state) = (app.clone(), state.clone());
        async move {
            state.busy.store(true, Ordering::Relaxed);
            let answer = tokio::time::timeout(bounds.request_timeout, app.oneshot(req.map(Body::new))).await;
            state.busy.store(false, Ordering::Relaxed);
            state
                .last_active_ms
                .store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
            Ok::<_, std::convert::Infallible>(match answer {
                Ok(Ok(r)) => r,
                Ok(Err(never)) => match never {},
                Err(_) => timed_out(bounds.request_timeout),
            })
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(bounds.header_timeout)
        .keep_alive(true);
    let serving = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(serving);
    tokio::select! {
        _ = serving.as_mut() => {}
        // Made room for a newer connection: dropping it closes the socket.
        _ = conn.close.notified() => {}
        _ = shutdown.reached(Phase::Draining) => {
            serving.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(bounds.request_timeout, serving).await;
        }
    }
}

fn timed_out(after: Duration) -> Response<Body> {
    let mut r = Response::new(Body::from(format!("no answer within {} ms\n", after.as_millis())));
    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    r
}
