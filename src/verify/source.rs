//! Where verification reads links from: a [`LinkSource`] hands over a link file's bytes by its
//! path, and lists a folder's files, so that the verifier needs to know neither where the
//! files are kept nor in what format they travel. [`Folder`] reads them from disk; a bundle
//! (`crate::ship::bundle`) is another source. A source decides nothing: every file it hands
//! over is verified in full.

use std::borrow::Cow;
use std::fmt::Debug;
use std::path::Path;

use crate::base::fsio::{self, FsError};
use crate::base::limits::Limit;

/// A place link files are read from, by the paths verification forms: the link folder joined
/// with `STEP.KEYID8.link`, and a sublayout's links under `STEP.KEYID8/` beside it.
pub trait LinkSource: Debug + Send + Sync {
    /// The bytes of the file at `path`, at most `max_bytes` of them ([`Limit::MetadataBytes`]);
    /// `Ok(None)` when there is no such file. A source whose files are already in memory may
    /// leave the cap to the envelope decoder, which enforces the same limit.
    fn read(&self, path: &Path, max_bytes: u64) -> Result<Option<Cow<'_, [u8]>>, FsError>;

    /// The names of the files in the folder `dir`, in no particular order; `None` when it
    /// cannot be listed.
    fn list(&self, dir: &Path) -> Option<Vec<String>>;

    /// Where the links of the folder `dir` are looked for, in words for a message: the
    /// folder's path, or "the bundle".
    fn place(&self, dir: &Path) -> String;

    /// Whether the folders named by paths must exist on disk (checked before verifying, so
    /// that a typo in a path is bad input rather than a chain without links).
    fn on_disk(&self) -> bool {
        false
    }
}

/// The links on disk, at the paths verification forms (under
/// [`super::VerifyOptions::link_dir`]): the source when none is given.
#[derive(Debug, Clone, Copy, Default)]
pub struct Folder;

impl LinkSource for Folder {
    fn read(&self, path: &Path, max_bytes: u64) -> Result<Option<Cow<'_, [u8]>>, FsError> {
        match fsio::read_capped(path, max_bytes, Limit::MetadataBytes) {
            Ok(bytes) => Ok(Some(Cow::Owned(bytes))),
            Err(FsError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn list(&self, dir: &Path) -> Option<Vec<String>> {
        let entries = std::fs::read_dir(dir).ok()?;
        Some(
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .collect(),
        )
    }

    fn place(&self, dir: &Path) -> String {
        dir.display().to_string()
    }

    fn on_disk(&self) -> bool {
        true
    }
}
