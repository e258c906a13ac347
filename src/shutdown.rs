//! One handle for stopping, shared by the daemon's parts and `jobs work`.
//!
//! Owns the phases a program goes through when asked to stop: running,
//! draining (start and admit nothing new; what runs may reach its end) and
//! stopping (interrupt what runs), and turning SIGTERM and SIGINT into
//! them. Async code waits with [`Shutdown::reached`] in a `select!`;
//! blocking code asks [`Shutdown::is_draining`] or [`Shutdown::is_stopping`]
//! between steps.

use std::sync::Arc;

use tokio::sync::watch;

/// Where a program is on its way out. Phases only move forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Running,
    /// Start and admit nothing new; running work may finish.
    Draining,
    /// Interrupt running work too.
    Stopping,
}

/// A cloneable handle; every clone sees the same phase.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<Phase>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::new()
    }
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown {
            tx: Arc::new(watch::Sender::new(Phase::Running)),
        }
    }

    pub fn phase(&self) -> Phase {
        *self.tx.borrow()
    }

    /// Start and admit nothing new.
    pub fn drain(&self) {
        self.advance(Phase::Draining);
    }

    /// Interrupt what runs.
    pub fn stop(&self) {
        self.advance(Phase::Stopping);
    }

    fn advance(&self, to: Phase) {
        self.tx.send_if_modified(|now| {
            let later = to > *now;
            if later {
                *now = to;
            }
            later
        });
    }

    pub fn is_draining(&self) -> bool {
        self.phase() >= Phase::Draining
    }

    pub fn is_stopping(&self) -> bool {
        self.phase() >= Phase::Stopping
    }

    /// Resolves once the phase is `at` or later.
    pub async fn reached(&self, at: Phase) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|now| *now >= at).await;
    }

    /// From a blocking program: on the first SIGTERM or SIGINT move to
    /// `first`; a second one exits at once with 130 (every step is
    /// crash-safe, so recovery makes that safe).
    pub fn on_signals(&self, first: Phase) -> std::io::Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (me, (mut term, mut int)) = (self.clone(), rt.block_on(async { listeners() })?);
        std::thread::Builder::new().name("signals".into()).spawn(move || {
            rt.block_on(async move {
                tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
                me.advance(first);
                tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
                tracing::warn!("second signal: exiting now");
                std::process::exit(130);
            })
        })?;
        Ok(())
    }
}

type Listeners = (tokio::signal::unix::Signal, tokio::signal::unix::Signal);

fn listeners() -> std::io::Result<Listeners> {
    use tokio::signal::unix::{signal, SignalKind};
    Ok((signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?))
}

/// Inside a runtime: resolves on the first SIGTERM or SIGINT; a second one
/// exits at once with 130.
pub async fn signalled() {
    let Ok((mut term, mut int)) = listeners() else {
        return std::future::pending().await;
    };
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    tokio::spawn(async move {
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        tracing::warn!("second signal: exiting now");
        std::process::exit(130);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn phases_only_move_forward_and_wake_waiters() {
        let sd = Shutdown::new();
        let waiter = {
            let sd = sd.clone();
            tokio::spawn(async move { sd.reached(Phase::Draining).await })
        };
        assert!(!sd.is_draining());
        sd.stop();
        waiter.await.unwrap();
        sd.drain();
        assert_eq!(sd.phase(), Phase::Stopping, "a later phase is never undone");
        assert!(sd.is_draining() && sd.is_stopping());
    }
}
