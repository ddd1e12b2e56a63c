//! Reading untrusted files under a size cap, and writing files so that a crash never leaves a
//! partial one under its final name.
//!
//! Writes go to a temporary file in the target's own folder (created with mode 0600, and with
//! `O_EXCL`, by `tempfile`), are flushed to disk, then renamed into place; the folder is
//! flushed after the rename. Without `overwrite` the rename refuses an existing target, so two
//! writers racing for one name never silently replace each other.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::base::limits::Limit;

/// A file operation that failed, with the path it failed on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FsError {
    /// An I/O error.
    #[error("{path}: cannot {action}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done ("read", "write", ...).
        action: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A folder the file was to be written in is a file (or something else that is not a
    /// folder).
    #[error("{0}: is not a folder, so nothing can be written in it; choose another path")]
    NotAFolder(PathBuf),
    /// The target exists and overwriting was not asked for.
    #[error("{0}: already exists; choose another path or remove it first")]
    Exists(PathBuf),
    /// The file is larger than a limit allows.
    #[error("{path}: too large: over the limit {limit} of {max} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit's value.
        max: u64,
        /// Which limit.
        limit: Limit,
    },
}

impl FsError {
    fn io<'a>(path: &'a Path, action: &'static str) -> impl FnOnce(io::Error) -> FsError + 'a {
        move |source| FsError::Io {
            path: path.to_owned(),
            action,
            source,
        }
    }
}

/// Reads at most `max` bytes of `path`; a longer file is an error, found without reading more
/// than `max + 1` bytes.
pub fn read_capped(path: &Path, max: u64, limit: Limit) -> Result<Vec<u8>, FsError> {
    let file = File::open(path).map_err(FsError::io(path, "read"))?;
    // Sized from the file's length (when within the cap), so that a large link is read
    // straight into one buffer rather than through a dozen doubling copies.
    let expected = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut bytes = Vec::with_capacity(usize::try_from(expected.min(max)).unwrap_or(0));
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(FsError::io(path, "read"))?;
    if bytes.len() as u64 > max {
        return Err(FsError::TooLarge {
            path: path.to_owned(),
            max,
            limit,
        });
    }
    Ok(bytes)
}

/// How a written file may be seen by others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 0600: private keys.
    Private,
    /// 0644: everything else.
    Public,
}

/// Creates the folders missing above `path` (a file about to be written), as `mkdir -p` does.
/// Folders made for a [`Mode::Private`] file are 0700, so that a key's folder does not show its
/// names to others; existing folders are left as they are.
pub fn create_parents(path: &Path, mode: Mode) -> Result<(), FsError> {
    let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    if folder.is_dir() {
        return Ok(());
    }
    // The nearest part of the path that exists must be a folder too.
    if let Some(existing) = folder.ancestors().find(|p| p.symlink_metadata().is_ok())
        && !existing.is_dir()
    {
        return Err(FsError::NotAFolder(existing.to_owned()));
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    if mode == Mode::Private {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    #[cfg(not(unix))]
    let _ = mode;
    builder
        .create(folder)
        .map_err(FsError::io(folder, "create the folder"))
}

/// Writes `bytes` to `path` atomically. With `overwrite` false an existing `path` is an error
/// and is left untouched, even if it appears while writing.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Mode, overwrite: bool) -> Result<(), FsError> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    if !overwrite && path.symlink_metadata().is_ok() {
        return Err(FsError::Exists(path.to_owned()));
    }
    let mut temp = tempfile::Builder::new()
        .prefix(".tollgate-")
        .suffix(".tmp")
        .tempfile_in(&folder)
        .map_err(FsError::io(path, "create a temporary file beside"))?;
    if mode == Mode::Public {
        set_public(temp.as_file()).map_err(FsError::io(path, "set permissions of"))?;
    }
    temp.write_all(bytes).map_err(FsError::io(path, "write"))?;
    temp.as_file()
        .sync_all()
        .map_err(FsError::io(path, "flush"))?;
    if overwrite {
        temp.persist(path)
            .map_err(|e| FsError::io(path, "rename into")(e.error))?;
    } else {
        temp.persist_noclobber(path).map_err(|e| {
            if e.error.kind() == io::ErrorKind::AlreadyExists {
                FsError::Exists(path.to_owned())
            } else {
                FsError::io(path, "rename into")(e.error)
            }
        })?;
    }
    sync_folder(&folder);
    Ok(())
}

#[cfg(unix)]
fn set_public(file: &File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
}

#[cfg(not(unix))]
fn set_public(_: &File) -> io::Result<()> {
    Ok(())
}

/// Flushes a folder's entries, so that a rename survives a power loss. Best effort: some
/// platforms and file systems cannot open a folder for this.
fn sync_folder(folder: &Path) {
    if let Ok(dir) = File::open(folder) {
        let _ = dir.sync_all();
    }
}
