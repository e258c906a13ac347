//! What the lake costs this process, for `compact --json` and
//! `benches/lake_cost.sh`: the time spent on the lake's catalog (syncs,
//! holds and their repoints, expiry) and the time waited out for
//! `lake.reader_grace` (a wait for readers, not work). Summed over threads,
//! so with parallel series the lake's figure can exceed its share of the
//! wall time; it is an upper bound.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

static LAKE_NS: AtomicU64 = AtomicU64::new(0);
static GRACE_NS: AtomicU64 = AtomicU64::new(0);

/// Run `f`, counting its time as the lake's.
pub(crate) fn timed<T>(f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    LAKE_NS.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
    out
}

/// Count `d` as waited for the reader grace.
pub(crate) fn waited(d: Duration) {
    GRACE_NS.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
}

/// The lake's time in this process so far.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct LakeCost {
    /// Catalog work: syncs, holds, repoints, expiry.
    pub lake_seconds: f64,
    /// Waiting out `lake.reader_grace` before old names go.
    pub reader_grace_wait_seconds: f64,
}

/// [`LakeCost`] since the process started.
pub fn so_far() -> LakeCost {
    LakeCost {
        lake_seconds: LAKE_NS.load(Ordering::Relaxed) as f64 / 1e9,
        reader_grace_wait_seconds: GRACE_NS.load(Ordering::Relaxed) as f64 / 1e9,
    }
}
