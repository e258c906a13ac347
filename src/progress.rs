//! How the core says how far it got: a small trait that the CLI renders
//! (with indicatif) and everything else ignores.
//!
//! Owns the interface only; the library never draws anything.

/// Progress of one long step, in units the step chooses (rows, files).
pub trait Progress: Sync {
    /// How many units the step will do.
    fn set_length(&self, _total: u64) {}
    /// `n` more units are done.
    fn inc(&self, _n: u64) {}
    /// The step ended: whatever is shown goes away.
    fn finish(&self) {}
}

/// No progress shown: daemon tasks, nested steps, tests and benches.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Progress for Silent {}
