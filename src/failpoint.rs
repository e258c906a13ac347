//! Named steps where a crash-safety test aborts or pauses the process.
//!
//! Owns the list of names and what reaching one does. With the
//! `failpoints` feature, `MDKEEP_FAILPOINT=<name>` aborts the process at that
//! step and `MDKEEP_FAILPOINT=<name>=pause` says so on stderr and sleeps
//! `MDKEEP_FAILPOINT_PAUSE_MS` (default 3000), so a test can change the disk
//! at that moment. The tests turn the feature on (the package is its own
//! dev-dependency); a build without it has none of this code.

/// Every step of a journaled rewrite (compaction, tier move) that can fail.
pub const REWRITE_STEPS: [&str; 5] = [
    "rewrite:after-journal",
    "rewrite:after-first-output",
    "rewrite:before-commit",
    "rewrite:after-commit",
    "rewrite:mid-delete",
];

/// Retention's drop, after the catalog commit and before the files go.
pub const RETENTION_AFTER_COMMIT: &str = "retention:after-commit";

/// An export, with its sources pinned, before it reads them.
pub const EXPORT_PINNED: &str = "export:pinned";

/// Every name, for tests that want them all.
pub fn names() -> impl Iterator<Item = &'static str> {
    REWRITE_STEPS.into_iter().chain([RETENTION_AFTER_COMMIT, EXPORT_PINNED])
}

/// Reached step `name`: abort or pause when the test asks for it.
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    debug_assert!(names().any(|n| n == name), "unlisted failpoint {name}");
    let Ok(v) = std::env::var("MDKEEP_FAILPOINT") else {
        return;
    };
    if v == name {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
    if v.strip_suffix("=pause") == Some(name) {
        let ms = std::env::var("MDKEEP_FAILPOINT_PAUSE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3000);
        eprintln!("failpoint {name}: paused");
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

/// Without the `failpoints` feature a step is nothing.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}
