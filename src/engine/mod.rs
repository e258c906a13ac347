//! The engine: the one way data files are rewritten.
//!
//! Owns the machinery every operation shares. [`journal`] records each
//! rewrite's inputs and outputs and recovers one a crash interrupted,
//! [`deferred`] lists what could not be finished yet (retried every run);
//! [`rewrite`] runs one series through the journal (plan inputs, write,
//! verify, swap, retire); [`merge`] with its sinks and external sort
//! streams the rows within a memory budget; [`scratch`] cleans up spill
//! folders. The planners (compaction, tiering, retention's trim, rollup,
//! export) decide *what* to rewrite and hand the engine a
//! [`series::SeriesPlan`] and a [`rewrite::Rewrite`] (or, for rollup and
//! export, a [`merge::Sink`] of their own); they never write a data file
//! themselves.

pub mod deferred;
pub mod journal;
pub mod merge;
pub mod pins;
pub mod quarantine;
pub mod release;
pub mod retire;
pub mod rewrite;
pub mod scratch;
pub mod series;
pub(crate) mod sink;
pub(crate) mod sort;

pub use quarantine::quarantine;
pub use rewrite::{Rewrite, RewriteTotals};
pub use scratch::Scratch;
pub use series::{PartitionPlan, PlanFile, SeriesPlan};
