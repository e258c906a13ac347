//! Scratch folders that clean up after themselves.
//!
//! Owns the guard: spill runs of a merge and temporary exports live in a
//! folder that is removed when its [`Scratch`] drops, on success and on
//! every error path alike. A crash leaves it to recovery.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A scratch folder that is removed when the guard drops, on success and
/// on every error path alike (spill runs, temporary exports).
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// Own `path`, which may not exist yet (the work makes it when it needs it).
    pub fn at(path: PathBuf) -> Scratch {
        Scratch { path }
    }

    /// Make `path` and own it.
    pub fn create(path: PathBuf) -> Result<Scratch> {
        std::fs::create_dir_all(&path).map_err(Error::io("create folder", &path))?;
        Ok(Scratch { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        match std::fs::remove_dir_all(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot remove a scratch folder")
            }
            _ => {}
        }
    }
}
