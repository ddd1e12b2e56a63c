//! Recording a step: hashing its materials and products, running its command, and building the
//! link that a functionary signs (the work of `in-toto-run` and `in-toto-record`); and
//! attesting, which wraps a tool's JSON output about some artifacts as a signed Statement
//! bound to a step (`attest`).
//!
//! Artifacts are named as the reference names them: relative to the recording root (the base
//! path, or the working directory), `/`-separated and normalised, with an optional prefix
//! stripped. What the reference would do silently or lossily is an error here: a path that does
//! not exist (unless `allow_missing`), a symlink leaving the root, a loop, a dangling symlink, a
//! FIFO or device, a name that is not UTF-8 or not a valid artifact name, two names that collide
//! once a prefix is stripped, and a file that changes while it is hashed.

mod attest;
mod command;
mod exclude;
mod git;
mod hash;
mod oci;
mod step;
mod uri;
mod walk;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::base::limits::{Limit, Limits};
use crate::model::artifact::{ArtifactError, ArtifactPath, Artifacts, DigestSet};

pub use attest::{AttestError, AttestOptions, Attested, attest};
pub use command::{CommandError, CommandOptions, CommandOutcome, run_command};
pub use exclude::DEFAULT_EXCLUDES;
pub use git::Revision;
pub use hash::Progress;
pub use step::{
    Notes, Outcome, Output, RunRequest, StepError, UnfinishedError, mock, run, start, stop, write,
};
pub use uri::Target;

/// Why recording failed. No link is written after any of these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// A given material or product path does not exist (and missing paths are not skipped:
    /// see [`RecordOptions::allow_missing`]).
    #[error("{0}: no such file or folder")]
    Missing(String),
    /// A path or symlink leads outside the recording root (THREATS G1).
    #[error(
        "{path}: leads outside the recording root (to {}); in-toto records only files under it",
        .target.display()
    )]
    OutsideRoot {
        /// The artifact path or the given path.
        path: String,
        /// Where it leads.
        target: PathBuf,
    },
    /// A symlink that leads back into its own ancestors (G2).
    #[error("{path}: symlink loop (to {})", .target.display())]
    SymlinkLoop {
        /// The symlink's artifact path.
        path: String,
        /// Its target.
        target: PathBuf,
    },
    /// A symlink to nothing (G3).
    #[error("{path}: dangling symlink (to {}); remove it or exclude it", .target.display())]
    DanglingSymlink {
        /// The symlink's artifact path.
        path: String,
        /// Its target.
        target: PathBuf,
    },
    /// A FIFO, socket or device (G4); never opened.
    #[error("{path}: is {kind}; in-toto records regular files only: exclude it")]
    SpecialFile {
        /// The artifact path.
        path: String,
        /// What it is.
        kind: &'static str,
    },
    /// The file changed while it was recorded (G5).
    #[error("{path}: artifact changed during recording ({what}); no link was written")]
    Changed {
        /// The artifact path.
        path: String,
        /// What changed.
        what: &'static str,
    },
    /// A file could not be read (G6).
    #[error("{}: cannot {action}: {source}", .path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file name that is not valid UTF-8.
    #[error("{0}: the name is not valid UTF-8 and cannot be an artifact name; exclude it")]
    NonUtf8Name(String),
    /// A name that cannot be an artifact name (F1-F4).
    #[error("{0}; exclude it")]
    Name(#[from] ArtifactError),
    /// Two artifacts get one name once prefixes ([`RecordOptions::lstrip_paths`]) are stripped.
    #[error("stripping prefixes makes two artifacts share the name {0:?}")]
    LstripCollision(String),
    /// Two strip prefixes where one is a prefix of the other.
    #[error("strip prefixes {0:?} and {1:?}: one is a prefix of the other")]
    LstripPrefixes(String, String),
    /// Two files whose names differ only in case or Unicode normal form (THREATS F11).
    #[error(
        "{0:?} and {1:?} name one file on case-insensitive or normalising file systems; exclude one"
    )]
    Ambiguous(String, String),
    /// An exclude pattern that does not compile.
    #[error("exclude pattern {pattern:?}: {source}")]
    Exclude {
        /// The pattern (or the `.gitignore` file that holds it).
        pattern: String,
        /// The pattern compiler's error.
        #[source]
        source: ignore::Error,
    },
    /// More artifacts than [`Limits::max_artifacts`].
    #[error("{count} artifacts, over the limit {limit} of {max}")]
    TooManyArtifacts {
        /// How many.
        count: usize,
        /// The limit's value.
        max: usize,
        /// Which limit.
        limit: Limit,
    },
    /// The recording root cannot be used.
    #[error("base path {}: {source}", .path.display())]
    BasePath {
        /// The base path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A material or product named by URI (`dir:...`) that cannot be resolved.
    #[error("{uri}: {reason}")]
    Uri {
        /// The URI as given.
        uri: String,
        /// What is wrong.
        reason: String,
    },
    /// `git:REV` with a working tree that has changes, and [`RecordOptions::allow_dirty`]
    /// not set.
    #[error("{uri}: the working tree of {} has changes", .folder.display())]
    DirtyTree {
        /// The URI as given.
        uri: String,
        /// The repository's folder.
        folder: PathBuf,
    },
    /// `git:REV` where the repository's folder ([`RecordOptions::git_repo`]) is none.
    #[error("{uri}: {} is not a git repository ({})", .folder.display(), .source.message())]
    NotARepository {
        /// The URI as given.
        uri: String,
        /// The folder that was opened.
        folder: PathBuf,
        /// The cause.
        #[source]
        source: git2::Error,
    },
    /// `oci:PATH` naming an image index of several images, and no
    /// [`RecordOptions::platform`] to pick one.
    #[error("{uri}: the index lists {} images: {}", .images.len(), .images.join(", "))]
    SeveralImages {
        /// The URI as given.
        uri: String,
        /// The images the index lists, each as its platform and digest.
        images: Vec<String>,
    },
    /// The path of a URI (`dir:PATH`, `oci:PATH`) is not a relative, normalised artifact name.
    #[error(
        "{uri}: {source}; write the {what} as a relative path such as {example} (no ./, .. or \
         trailing /)"
    )]
    UriPath {
        /// The URI as given.
        uri: String,
        /// What the path names (`folder`, `image`).
        what: &'static str,
        /// A path of the right form.
        example: &'static str,
        /// Why the path is not an artifact name.
        #[source]
        source: Box<ArtifactError>,
    },
    /// `git:REV` could not be read from its repository.
    #[error("{uri}: {what}: {}", .source.message())]
    Git {
        /// The URI as given.
        uri: String,
        /// What was being read.
        what: String,
        /// The repository library's error.
        #[source]
        source: git2::Error,
    },
    /// An `oci:` image, or one of its files, could not be read or decoded.
    #[error("{uri}: {}{source}", .what.as_ref().map(|w| format!("{w}: ")).unwrap_or_default())]
    Oci {
        /// The URI as given.
        uri: String,
        /// What was being read, when it is not the image itself.
        what: Option<String>,
        /// The I/O, archive or JSON error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A bug: something that should not happen did.
    #[error("internal error: {0}")]
    Internal(String),
}

/// How to record artifacts.
#[derive(Debug, Clone, Default)]
pub struct RecordOptions {
    /// The folder artifact names are relative to (default: the working directory).
    pub base_path: Option<PathBuf>,
    /// Gitignore-style patterns of what not to record; `None` means [`DEFAULT_EXCLUDES`].
    pub excludes: Option<Vec<String>>,
    /// Prefixes to strip from artifact names (the first that matches).
    pub lstrip_paths: Vec<String>,
    /// Follow symlinks to folders (inside the root).
    pub follow_symlink_dirs: bool,
    /// Hash text with `\r\n` and `\r` read as `\n`.
    pub normalize_line_endings: bool,
    /// Skip given paths that do not exist, as the reference does, instead of failing.
    pub allow_missing: bool,
    /// Also honour the tree's own `.gitignore` files.
    pub use_gitignore: bool,
    /// Hashing threads (default: one per core).
    pub threads: Option<usize>,
    /// Caps.
    pub limits: Limits,
    /// Counters for a progress display.
    pub progress: Option<Arc<Progress>>,
    /// The repository `git:REV` reads (default: the base path, else the working folder).
    pub git_repo: Option<PathBuf>,
    /// With `git:REV`, also record every file tracked at that revision.
    pub git_files: bool,
    /// Record `git:REV` even when the working tree has changes.
    pub allow_dirty: bool,
    /// The platform (`os/arch[/variant]`) to pick from an `oci:` index of several images.
    pub platform: Option<String>,
}

impl RecordOptions {
    /// The exclude patterns in force.
    pub fn exclude_patterns(&self) -> Vec<String> {
        match &self.excludes {
            Some(patterns) => patterns.clone(),
            None => DEFAULT_EXCLUDES.iter().map(|p| p.to_string()).collect(),
        }
    }

    /// What the recording settings were, for the signed link's `environment` (THREATS G8,
    /// G9): a verifier can see which files were left out and how text was hashed.
    pub fn environment(&self) -> Value {
        json!({
            "exclude_patterns": self.exclude_patterns(),
            "follow_symlink_dirs": self.follow_symlink_dirs,
            "lstrip_paths": self.lstrip_paths,
            "normalize_line_endings": self.normalize_line_endings,
            "use_gitignore": self.use_gitignore,
        })
    }
}

/// Artifacts recorded, and what was passed over.
#[derive(Debug, Default)]
pub struct Recorded {
    /// Name to digest.
    pub artifacts: Artifacts,
    /// Symlinks to folders that were not followed.
    pub unfollowed_symlink_dirs: Vec<String>,
    /// Given paths that did not exist (with `allow_missing`).
    pub missing: Vec<String>,
    /// The git revision recorded, if `git:REV` was given.
    pub git: Option<Revision>,
}

/// Records the artifacts at `paths`: files or folders relative to the root, or URIs that a
/// scheme resolves (see [`Target`]: `dir:PATH`, `file:PATH`).
pub fn record_artifacts(
    paths: &[String],
    options: &RecordOptions,
) -> Result<Recorded, RecordError> {
    let mut files = Vec::new();
    let mut file_uris = Vec::new();
    let mut parts = Vec::new();
    let mut revision: Option<Revision> = None;
    for path in paths {
        match Target::of(path) {
            Target::Files(path) => files.push(path.to_owned()),
            Target::FileUri(path) => file_uris.push(path.to_owned()),
            Target::Dir(path) => parts.push(uri::dir_artifact(path, options)?),
            Target::Oci(path) => parts.push(oci::image(path, options)?),
            Target::Git(rev) => {
                if let Some(other) = &revision
                    && other.rev != rev
                {
                    return Err(RecordError::Uri {
                        uri: format!("git:{rev}"),
                        reason: format!(
                            "git:{} is given too: record one revision per side, its names \
                             (git:commit, git:tree, git:file/...) do not say which",
                            other.rev
                        ),
                    });
                }
                if revision.is_none() {
                    let (recorded, found) = git::revision(rev, options)?;
                    parts.push(recorded);
                    revision = Some(found);
                }
            }
        }
    }
    if !file_uris.is_empty() {
        let mut recorded = record_files(&file_uris, options)?;
        recorded.artifacts = recorded
            .artifacts
            .iter()
            .map(|(name, digests)| {
                Ok((
                    ArtifactPath::from_string(format!("file:{name}"))?,
                    digests.clone(),
                ))
            })
            .collect::<Result<_, RecordError>>()?;
        parts.push(recorded);
    }
    if parts.is_empty() {
        return record_files(&files, options);
    }
    if !files.is_empty() {
        parts.push(record_files(&files, options)?);
    }
    // One set of artifacts: the same artifact named twice is recorded once; two different
    // ones under one name cannot be.
    let mut entries: Vec<(ArtifactPath, DigestSet)> = Vec::new();
    let mut merged = Recorded::default();
    for mut part in parts {
        entries.extend(part.artifacts.iter().map(|(n, d)| (n.clone(), d.clone())));
        merged
            .unfollowed_symlink_dirs
            .append(&mut part.unfollowed_symlink_dirs);
        merged.missing.append(&mut part.missing);
    }
    merged.git = revision;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.dedup();
    merged.artifacts = Artifacts::from_entries(entries)
        .map_err(|name| RecordError::LstripCollision(name.as_str().to_owned()))?;
    if let Some((a, b)) = crate::model::artifact::ambiguous_names(&merged.artifacts) {
        return Err(RecordError::Ambiguous(a, b));
    }
    Ok(merged)
}

/// Hashes the files at `paths` (files or folders, relative to the root).
fn record_files(paths: &[String], options: &RecordOptions) -> Result<Recorded, RecordError> {
    if paths.is_empty() {
        return Ok(Recorded::default());
    }
    let base = match &options.base_path {
        Some(path) => path.clone(),
        None => std::env::current_dir().map_err(|source| RecordError::BasePath {
            path: PathBuf::from("."),
            source,
        })?,
    };
    let root = std::fs::canonicalize(&base).map_err(|source| RecordError::BasePath {
        path: base.clone(),
        source,
    })?;
    check_lstrip_prefixes(&options.lstrip_paths)?;
    let excludes = exclude::Excludes::new(&options.exclude_patterns())?;
    let walk_options = walk::WalkOptions {
        root: &root,
        excludes: &excludes,
        follow_symlink_dirs: options.follow_symlink_dirs,
        allow_missing: options.allow_missing,
        use_gitignore: options.use_gitignore,
    };
    let threads = options.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1)
    });
    let hashed = hash::walk_and_hash(
        |emit| walk::walk(paths, &walk_options, emit),
        // Names are checked as the walk finds them: a bad one stops everything early.
        |name| {
            Ok(ArtifactPath::new(strip_prefix(
                name,
                &options.lstrip_paths,
            ))?)
        },
        options.limits.max_artifacts,
        threads,
        options.normalize_line_endings,
        options.progress.as_ref(),
    )?;
    let mut files = hashed.files;
    files.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    if let Some(w) = files.windows(2).find(|w| w[0].0 == w[1].0) {
        if !options.lstrip_paths.is_empty() {
            // Two files that strip to one name are an error.
            return Err(RecordError::LstripCollision(w[0].0.as_str().to_owned()));
        }
        // The same file given twice (`-m a a`, `-m . a`) is recorded once, but only if it
        // read the same both times.
        if let Some(w) = files
            .windows(2)
            .find(|w| w[0].0 == w[1].0 && w[0].1 != w[1].1)
        {
            return Err(RecordError::Changed {
                path: w[0].0.as_str().to_owned(),
                what: "it was given twice and read differently each time",
            });
        }
        files.dedup_by(|a, b| a.0 == b.0);
    }
    let artifacts = Artifacts::from_sorted(
        files
            .into_iter()
            .map(|(path, digest)| (path, DigestSet::sha256(&digest)))
            .collect(),
    );
    if let Some((a, b)) = crate::model::artifact::ambiguous_names(&artifacts) {
        return Err(RecordError::Ambiguous(a, b));
    }
    let walked = hashed.notes;
    Ok(Recorded {
        artifacts,
        unfollowed_symlink_dirs: walked.unfollowed_symlink_dirs,
        missing: walked.missing,
        git: None,
    })
}

fn check_lstrip_prefixes(prefixes: &[String]) -> Result<(), RecordError> {
    for (i, a) in prefixes.iter().enumerate() {
        for b in &prefixes[i + 1..] {
            if a.starts_with(b.as_str()) || b.starts_with(a.as_str()) {
                return Err(RecordError::LstripPrefixes(a.clone(), b.clone()));
            }
        }
    }
    Ok(())
}

/// Strips the first prefix that matches, as text (the reference's rule).
fn strip_prefix<'a>(name: &'a str, prefixes: &[String]) -> &'a str {
    prefixes
        .iter()
        .find_map(|prefix| name.strip_prefix(prefix.as_str()))
        .unwrap_or(name)
}

/// The `environment` object of a link recorded with `options`.
pub fn environment(options: &RecordOptions) -> Map<String, Value> {
    environment_with(options, &[])
}

/// The `environment` of a link, with the git revisions each side recorded (`materials`,
/// `products`): the commit, the branch, whether it is signed and whether the tree was dirty.
pub fn environment_with(
    options: &RecordOptions,
    revisions: &[(&str, &Revision)],
) -> Map<String, Value> {
    let mut tollgate = options.environment();
    if !revisions.is_empty()
        && let Some(object) = tollgate.as_object_mut()
    {
        let git: Map<String, Value> = revisions
            .iter()
            .map(|(side, revision)| ((*side).to_owned(), revision.to_value()))
            .collect();
        object.insert("git".into(), Value::Object(git));
    }
    Map::from_iter([("tollgate".to_owned(), tollgate)])
}
