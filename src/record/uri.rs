//! Artifacts named by URI (in-toto ITE-4): a material or product given as `scheme:path` is
//! resolved by its scheme instead of being walked as a file.
//!
//! - `dir:PATH` records the folder as one artifact, `dir:PATH`, whose SHA-256 is computed as
//!   the reference's `dir:` resolver computes it: over the lines `"<sha256>  <name>\n"` of
//!   every file in the folder (names relative to it, sorted bytewise, excludes applied), the
//!   same construction as `find . -type f | LC_ALL=C sort | xargs sha256sum | sha256sum`.
//! - `oci:PATH` records a container image by its manifest, configuration and layer digests.
//! - `git:REV` records a revision of a git repository (see [`super::Revision`]).
//! - `file:PATH` is a file or folder walked as usual, its names keeping the `file:` prefix, as
//!   the reference keeps it.
//!
//! Anything else is a file path, as in the reference (a file named `other:x` is a file).

use std::fmt::Write;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::{RecordError, RecordOptions, Recorded, strip_prefix};
use crate::model::artifact::{ArtifactPath, Artifacts, DigestSet};

/// How a material or product path is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<'a> {
    /// A file or folder, walked.
    Files(&'a str),
    /// `file:PATH`: walked, names prefixed with `file:`.
    FileUri(&'a str),
    /// `dir:PATH`: one digest for the folder.
    Dir(&'a str),
    /// `git:REV`: a revision of a git repository (see the `git` module).
    Git(&'a str),
    /// `oci:PATH`: a container image, as an OCI layout folder or archive.
    Oci(&'a str),
}

impl<'a> Target<'a> {
    /// Reads the scheme of a path as given on the command line.
    pub fn of(path: &'a str) -> Target<'a> {
        if let Some(rest) = path.strip_prefix("dir:") {
            Target::Dir(rest)
        } else if let Some(rest) = path.strip_prefix("oci:") {
            Target::Oci(rest)
        } else if let Some(rest) = path.strip_prefix("git:") {
            Target::Git(rest)
        } else if let Some(rest) = path.strip_prefix("file:") {
            Target::FileUri(rest)
        } else {
            Target::Files(path)
        }
    }
}

/// Checks the path of a URI (`dir:PATH`, `oci:PATH`) as an artifact name (relative,
/// normalised) and finds it under the recording root: its name and its place on disk. A
/// folder on the way that is a symlink leading out of the root is refused (THREATS G1); the
/// last component is the caller's to check.
pub(super) fn under_root(
    uri: &str,
    path: &str,
    (what, example): (&'static str, &'static str),
    options: &RecordOptions,
) -> Result<(ArtifactPath, PathBuf), RecordError> {
    let name = ArtifactPath::new(path).map_err(|source| RecordError::UriPath {
        uri: uri.to_owned(),
        what,
        example,
        source: Box::new(source),
    })?;
    let base = match &options.base_path {
        Some(base) => base.clone(),
        None => std::env::current_dir().map_err(|source| RecordError::BasePath {
            path: ".".into(),
            source,
        })?,
    };
    let full = base.join(name.as_str());
    // Where the folders on the way lead; a path that does not exist is the caller's to report.
    if let (Some(parent), Ok(root)) = (full.parent(), std::fs::canonicalize(&base))
        && let Ok(resolved) = std::fs::canonicalize(parent)
        && !resolved.starts_with(&root)
    {
        return Err(RecordError::OutsideRoot {
            path: uri.to_owned(),
            target: resolved,
        });
    }
    Ok((name, full))
}

/// The one artifact `dir:PATH` stands for: its name and digest.
pub fn dir_artifact(path: &str, options: &RecordOptions) -> Result<Recorded, RecordError> {
    let given = format!("dir:{path}");
    // The folder is named as an artifact name is: relative, normalised, no `./`, no trailing
    // `/` (the reference records `dir:./x` and `dir:x/` under names no rule for `dir:x` matches).
    let (folder, full) = under_root(&given, path, ("folder", "dir:vendor"), options)?;
    match std::fs::symlink_metadata(&full) {
        Ok(meta) if meta.is_dir() => {}
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(RecordError::Uri {
                uri: given,
                reason: "is a symlink; name the folder it leads to".into(),
            });
        }
        Ok(_) => {
            return Err(RecordError::Uri {
                uri: given,
                reason: "is not a folder".into(),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if options.allow_missing {
                return Ok(Recorded {
                    missing: vec![given],
                    ..Recorded::default()
                });
            }
            return Err(RecordError::Missing(given));
        }
        Err(source) => {
            return Err(RecordError::Io {
                path: full,
                action: "read",
                source,
            });
        }
    }
    // The folder's files, walked as any folder is (excludes, symlink rules, line endings),
    // named relative to it.
    let inner = RecordOptions {
        base_path: Some(full),
        lstrip_paths: Vec::new(),
        allow_missing: false,
        progress: None,
        ..options.clone()
    };
    let files = super::record_files(&[".".to_owned()], &inner)?;
    let mut listing = String::new();
    for (name, digests) in files.artifacts.iter() {
        let digest = digests
            .get("sha256")
            .ok_or_else(|| RecordError::Internal("a file without its sha256".into()))?;
        let _ = writeln!(listing, "{digest}  {name}");
    }
    let digest: [u8; 32] = Sha256::digest(listing.as_bytes()).into();
    let name = ArtifactPath::from_string(format!(
        "dir:{}",
        strip_prefix(folder.as_str(), &options.lstrip_paths)
    ))?;
    Ok(Recorded {
        artifacts: Artifacts::from_entries(vec![(name, DigestSet::sha256(&digest))])
            .map_err(|name| RecordError::Internal(format!("duplicate {name}")))?,
        git: None,
        unfollowed_symlink_dirs: files
            .unfollowed_symlink_dirs
            .into_iter()
            .map(|d| format!("{given}/{d}"))
            .collect(),
        missing: Vec::new(),
    })
}
