//! `git:REV`: a revision of a git repository as artifacts, read through libgit2 (`git2`).
//!
//! A revision (`git:HEAD`, a branch, a tag, a commit id, anything `git rev-parse` reads) is
//! recorded under names that do not depend on how it was named, so that a rule can say "the
//! commit that was reviewed is the commit that was built" whatever each step called it:
//!
//! | name | digests |
//! |---|---|
//! | `git:commit` | `gitCommit` (the commit id), `sha256` (of the commit object's content, as `git cat-file commit` prints it) |
//! | `git:tree` | `gitTree` (the tree id), `sha256` (of the tree object's content) |
//! | `git:file/PATH` (with `git_files`) | `gitBlob` (the blob id), `sha256` (of the file's content at that revision) |
//!
//! `MATCH` needs a SHA-256 to agree, so the commit and tree carry one; with `git_files`
//! every tracked file is bound by the SHA-256 of its content, not by git's SHA-1 alone.
//! Submodules are recorded as `git:submodule/PATH` with their `gitCommit` only.
//!
//! Recording refuses a working tree with changes (tracked or untracked, not ignored) unless
//! `allow_dirty`: a step that records `git:HEAD` must not build something else.

use std::path::Path;

use git2::{ObjectType, Oid, Repository, StatusOptions, TreeWalkMode, TreeWalkResult};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{RecordError, RecordOptions, Recorded};
use crate::model::artifact::{ArtifactPath, Artifacts, DigestSet};

/// What recording a revision found out about it, for the link's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// The revision as given.
    pub rev: String,
    /// The commit id.
    pub commit: String,
    /// The branch checked out, if the revision is `HEAD` on a branch, or a branch name.
    pub branch: Option<String>,
    /// Whether the commit carries a signature (`gpgsig`); not checked, only reported.
    pub signed: bool,
    /// Whether the working tree had changes (recorded only with `allow_dirty`).
    pub dirty: bool,
}

impl Revision {
    /// The entry for the link's `environment`.
    pub fn to_value(&self) -> Value {
        json!({
            "rev": self.rev,
            "commit": self.commit,
            "branch": self.branch,
            "signed": self.signed,
            "dirty": self.dirty,
        })
    }
}

fn git(uri: &str, what: impl Into<String>, source: git2::Error) -> RecordError {
    RecordError::Git {
        uri: uri.to_owned(),
        what: what.into(),
        source,
    }
}

fn fail(uri: &str, reason: impl Into<String>) -> RecordError {
    RecordError::Uri {
        uri: uri.to_owned(),
        reason: reason.into(),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn digests(name: &str, pairs: Vec<(&str, String)>) -> Result<DigestSet, RecordError> {
    let mut pairs: Vec<(String, String)> =
        pairs.into_iter().map(|(a, v)| (a.to_owned(), v)).collect();
    pairs.sort();
    Ok(DigestSet::from_pairs(name, pairs)?)
}

/// Records `git:REV` in the repository at `options.git_repo` (else the base path, else the
/// working folder).
pub fn revision(rev: &str, options: &RecordOptions) -> Result<(Recorded, Revision), RecordError> {
    let uri = format!("git:{rev}");
    if rev.is_empty() {
        return Err(fail(
            &uri,
            "no revision: write git:HEAD, a branch, a tag or a commit id",
        ));
    }
    let folder = match (&options.git_repo, &options.base_path) {
        (Some(repo), _) => repo.clone(),
        (None, Some(base)) => base.clone(),
        (None, None) => ".".into(),
    };
    let repo = open(&folder, &uri)?;
    let object = repo
        .revparse_single(rev)
        .map_err(|e| git(&uri, format!("no such revision in {}", folder.display()), e))?;
    let commit = object
        .peel_to_commit()
        .map_err(|_| fail(&uri, "does not name a commit"))?;
    let dirty = dirty(&repo, &uri)?;
    if dirty && !options.allow_dirty {
        return Err(RecordError::DirtyTree {
            uri,
            folder: folder.to_owned(),
        });
    }
    let odb = repo
        .odb()
        .map_err(|e| git(&uri, "cannot read objects", e))?;
    let read = |id: Oid| {
        odb.read(id)
            .map(|o| o.data().to_vec())
            .map_err(|e| git(&uri, format!("cannot read object {id}"), e))
    };
    let tree = commit
        .tree()
        .map_err(|e| git(&uri, "cannot read the tree", e))?;
    let mut entries = vec![
        (
            ArtifactPath::new("git:commit")?,
            digests(
                "git:commit",
                vec![
                    ("gitCommit", commit.id().to_string()),
                    ("sha256", sha256_hex(&read(commit.id())?)),
                ],
            )?,
        ),
        (
            ArtifactPath::new("git:tree")?,
            digests(
                "git:tree",
                vec![
                    ("gitTree", tree.id().to_string()),
                    ("sha256", sha256_hex(&read(tree.id())?)),
                ],
            )?,
        ),
    ];
    if options.git_files {
        files(&repo, &tree, &uri, options, &mut entries)?;
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let artifacts = Artifacts::from_entries(entries)
        .map_err(|name| fail(&uri, format!("two files named {name}")))?;
    let branch = branch(&repo, rev);
    let signed = commit.header_field_bytes("gpgsig").is_ok();
    Ok((
        Recorded {
            artifacts,
            ..Recorded::default()
        },
        Revision {
            rev: rev.to_owned(),
            commit: commit.id().to_string(),
            branch,
            signed,
            dirty,
        },
    ))
}

fn open(folder: &Path, uri: &str) -> Result<Repository, RecordError> {
    Repository::open(folder).map_err(|source| RecordError::NotARepository {
        uri: uri.to_owned(),
        folder: folder.to_owned(),
        source,
    })
}

fn dirty(repo: &Repository, uri: &str) -> Result<bool, RecordError> {
    if repo.is_bare() {
        return Ok(false);
    }
    let mut options = StatusOptions::new();
    options
        .include_untracked(true)
        .include_ignored(false)
        .recurse_untracked_dirs(true)
        .exclude_submodules(true);
    let statuses = repo
        .statuses(Some(&mut options))
        .map_err(|e| git(uri, "cannot read the status", e))?;
    Ok(!statuses.is_empty())
}

fn branch(repo: &Repository, rev: &str) -> Option<String> {
    if rev == "HEAD" {
        let head = repo.head().ok()?;
        return head
            .is_branch()
            .then(|| head.shorthand().map(str::to_owned))?;
    }
    repo.find_branch(rev, git2::BranchType::Local)
        .ok()
        .map(|_| rev.to_owned())
}

fn files(
    repo: &Repository,
    tree: &git2::Tree<'_>,
    uri: &str,
    options: &RecordOptions,
    entries: &mut Vec<(ArtifactPath, DigestSet)>,
) -> Result<(), RecordError> {
    let mut found: Vec<(String, Oid, bool)> = Vec::new();
    let mut bad: Option<RecordError> = None;
    tree.walk(TreeWalkMode::PreOrder, |folder, entry| {
        let Some(name) = entry.name() else {
            bad = Some(fail(
                uri,
                format!("{folder}: a file name that is not UTF-8 cannot be an artifact name"),
            ));
            return TreeWalkResult::Abort;
        };
        match entry.kind() {
            Some(ObjectType::Blob) => found.push((format!("{folder}{name}"), entry.id(), false)),
            Some(ObjectType::Commit) => found.push((format!("{folder}{name}"), entry.id(), true)),
            _ => {}
        }
        TreeWalkResult::Ok
    })
    .map_err(|e| git(uri, "cannot walk the tree", e))?;
    if let Some(error) = bad {
        return Err(error);
    }
    if found.len() + entries.len() > options.limits.max_artifacts {
        return Err(RecordError::TooManyArtifacts {
            count: found.len() + entries.len(),
            max: options.limits.max_artifacts,
            limit: crate::base::limits::Limit::Artifacts,
        });
    }
    for (path, id, submodule) in found {
        if submodule {
            let name = format!("git:submodule/{path}");
            let digest = digests(&name, vec![("gitCommit", id.to_string())])?;
            entries.push((ArtifactPath::from_string(name)?, digest));
            continue;
        }
        let blob = repo
            .find_blob(id)
            .map_err(|e| git(uri, format!("{path}: cannot read"), e))?;
        let name = format!("git:file/{path}");
        let digest = digests(
            &name,
            vec![
                ("gitBlob", id.to_string()),
                ("sha256", sha256_hex(blob.content())),
            ],
        )?;
        entries.push((ArtifactPath::from_string(name)?, digest));
    }
    Ok(())
}
