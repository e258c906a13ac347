//! Durable file operations: write-to-temporary, fsync, rename, fsync the folder.
//!
//! Every file mdkeep creates under a data root goes through [`AtomicFile`],
//! so a crash leaves either the old state or the new one, never half a file
//! under a `.parquet` name. Publishing never replaces a file that is already
//! there ([`rename_noreplace`]): a name that is taken is an error, not a
//! loss. Deciding *when* inputs may be deleted is not this module's
//! business; the catalog and the engine's journal own that.

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

    /// fsync the data, rename to the destination (never over an existing
    /// file: that fails with `AlreadyExists`), fsync the folder. The writer
    /// must have been flushed and dropped; fsync through a fresh descriptor
    /// reaches the same inode.
    pub fn commit(mut self) -> Result<PathBuf> {
        File::open(&self.tmp)
            .and_then(|f| f.sync_all())
            .map_err(Error::io("fsync", &self.tmp))?;
        rename_noreplace(&self.tmp, &self.dest).map_err(Error::io("publish (name taken?)", &self.dest))?;
        self.finish()
    }

    /// `commit`, replacing what the destination holds: for files that are
    /// not data (reports, exports a job reads, scripts), never under a tier root.
    pub fn commit_replacing(mut self) -> Result<PathBuf> {
        File::open(&self.tmp)
            .and_then(|f| f.sync_all())
            .map_err(Error::io("fsync", &self.tmp))?;
        fs::rename(&self.tmp, &self.dest).map_err(Error::io("rename into place", &self.dest))?;
        self.finish()
    }

    fn finish(&mut self) -> Result<PathBuf> {
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

/// Write `bytes` to `dest` atomically, replacing it (not for data files).
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<()> {
    let (af, f) = AtomicFile::create(dest)?;
    let mut w = BufWriter::new(f);
    w.write_all(bytes)
        .and_then(|_| w.flush())
        .map_err(Error::io("write", dest))?;
    drop(w);
    af.commit_replacing().map(|_| ())
}

/// Rename `from` to `to` unless `to` exists, which fails with
/// `AlreadyExists`: `renameat2(RENAME_NOREPLACE)`, or on a filesystem
/// without it, `link` then `unlink` (a link never replaces either).
pub fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
    let (f, t) = (c(from)?, c(to)?);
    // SAFETY: two NUL-terminated paths that outlive the call.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => {
            fs::hard_link(from, to)?;
            fs::remove_file(from)
        }
        _ => Err(e),
    }
}

/// Make `dir` its owner's alone (0700), creating it (and its parents, with
/// the usual mode) if need be: for the configs and the state folder, which
/// a job running as another user must not read.
pub fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if let Some(up) = dir.parent() {
        fs::create_dir_all(up).map_err(Error::io("create folder", up))?;
    }
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(Error::io("create folder", dir)(e));
        }
        _ => {}
    }
    let mode = fs::metadata(dir).map_err(Error::io("stat", dir))?.permissions().mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode & 0o7700)).map_err(Error::io("chmod", dir))?;
    }
    Ok(())
}

/// Read a file of secrets, refusing one that others may read (its mode must
/// be 0600 or tighter): `Err` says why, never what it holds.
pub fn read_private(path: &Path) -> std::result::Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} has mode {mode:o}; a secrets file must be 0600 (chmod 600)",
            path.display()
        ));
    }
    fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Whether `a` and `b` are the same file (one inode, e.g. hard links).
pub fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
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
    match rename_noreplace(from, to) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            // Another filesystem, e.g. a quarantine on another disk.
            let mut src = File::open(from).map_err(Error::io("open", from))?;
            let mut dst = File::options()
                .write(true)
                .create_new(true)
                .open(to)
                .map_err(Error::io("create", to))?;
            std::io::copy(&mut src, &mut dst).map_err(Error::io("copy", to))?;
            drop(dst);
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

/// (free, size) of the filesystem holding `path`.
pub fn fs_space(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frsize = st.f_frsize as u64;
    Some((st.f_bavail as u64 * frsize, st.f_blocks as u64 * frsize))
}

/// Where a local tier root's filesystem is seen: the root, or the config's
/// folder while the tier's folder does not exist yet.
fn on_disk<'a>(cfg: &'a crate::config::Config, root: &'a Path) -> &'a Path {
    if root.exists() {
        root
    } else {
        &cfg.root
    }
}

/// (free, size) of the filesystem a local tier root is on.
pub fn root_space(cfg: &crate::config::Config, root: &Path) -> Option<(u64, u64)> {
    fs_space(on_disk(cfg, root))
}

/// The device number of the filesystem a local tier root is on.
pub fn root_device(cfg: &crate::config::Config, root: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(on_disk(cfg, root)).ok().map(|m| m.dev())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_never_replaces_and_drop_cleans() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("sub/a.parquet");
        write_atomic(&dest, b"hello").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"hello");
        let (g, mut f) = AtomicFile::create(&dest).unwrap();
        f.write_all(b"other").unwrap();
        drop(f);
        let e = g.commit().unwrap_err();
        assert!(e.to_string().contains("a.parquet"), "{e}");
        assert_eq!(fs::read(&dest).unwrap(), b"hello", "the first file is kept");

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
