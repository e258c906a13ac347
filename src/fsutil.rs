//! Durable file operations: write-to-temporary, fsync, rename, fsync the folder.
//!
//! Every file mdkeep creates under a data root goes through [`AtomicFile`],
//! so a crash leaves either the old state or the new one, never half a file
//! under a `.parquet` name. Deciding *when* inputs may be deleted is not
//! this module's business; the catalog and compaction journal own that.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Prefix and suffix of in-flight files: hidden and not `*.parquet`, so
/// `data/processed/**/*.parquet` globs never see them.
pub const TMP_PREFIX: &str = ".part-";
pub const TMP_SUFFIX: &str = ".tmp";

/// A file being written under a temporary name in its final folder. The
/// caller writes through the `File` it got from [`AtomicFile::create`] (often
/// handing it to a Parquet writer that consumes it), then calls `commit`.
pub struct AtomicFile {
    tmp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl AtomicFile {
    pub fn create(dest: impl Into<PathBuf>) -> Result<(AtomicFile, File)> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dest = dest.into();
        let dir = dest
            .parent()
            .ok_or_else(|| Error::Invalid(format!("{} has no folder", dest.display())))?;
        fs::create_dir_all(dir).map_err(Error::io("create folder", dir))?;
        let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("out");
        let tmp = dir.join(format!(
            "{TMP_PREFIX}{name}-{}-{}{TMP_SUFFIX}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let f = File::create(&tmp).map_err(Error::io("create", &tmp))?;
        Ok((
            AtomicFile {
                tmp,
                dest,
                committed: false,
            },
            f,
        ))
    }

    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// fsync the data, rename over the destination, fsync the folder. The
    /// writer must have been flushed and dropped; fsync through a fresh
    /// descriptor reaches the same inode.
    pub fn commit(mut self) -> Result<PathBuf> {
        File::open(&self.tmp)
            .and_then(|f| f.sync_all())
            .map_err(Error::io("fsync", &self.tmp))?;
        fs::rename(&self.tmp, &self.dest).map_err(Error::io("rename into place", &self.dest))?;
        self.committed = true;
        fsync_dir(self.dest.parent().unwrap_or(Path::new(".")))?;
        Ok(self.dest.clone())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        // Not committed: the temporary must not outlive us.
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Write `bytes` to `dest` atomically.
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<()> {
    let (af, f) = AtomicFile::create(dest)?;
    let mut w = BufWriter::new(f);
    w.write_all(bytes)
        .and_then(|_| w.flush())
        .map_err(Error::io("write", dest))?;
    drop(w);
    af.commit().map(|_| ())
}

/// fsync a folder so a rename or unlink in it survives a power cut.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("fsync folder", dir))
}

/// Move a file, across filesystems if need be (copy, fsync, then unlink).
pub fn move_file(from: &Path, to: &Path) -> Result<()> {
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir).map_err(Error::io("create folder", dir))?;
    }
    match fs::rename(from, to) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(18) => {
            // EXDEV: another filesystem, e.g. a quarantine on another disk.
            fs::copy(from, to).map_err(Error::io("copy", to))?;
            File::open(to)
                .and_then(|f| f.sync_all())
                .map_err(Error::io("fsync", to))?;
            fs::remove_file(from).map_err(Error::io("remove", from))?;
        }
        Err(e) => return Err(Error::io("move", from)(e)),
    }
    if let Some(dir) = to.parent() {
        fsync_dir(dir)?;
    }
    if let Some(dir) = from.parent() {
        fsync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_replaces_and_drop_cleans() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("sub/a.parquet");
        write_atomic(&dest, b"hello").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"hello");

        let (g, mut f) = AtomicFile::create(d.path().join("sub/b.parquet")).unwrap();
        f.write_all(b"x").unwrap();
        drop(f);
        drop(g);
        let left: Vec<_> = fs::read_dir(d.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("a.parquet")]);
    }
}
