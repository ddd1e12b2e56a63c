//! Finding the files to hash under the paths given to record.
//!
//! The walk never follows a symlink out of the recording root (THREATS G1), reports symlink
//! loops, dangling symlinks, FIFOs, sockets and devices as errors without opening them (G2, G3,
//! G4), and refuses names that are not valid UTF-8 or cannot be artifact names. Symlinked files
//! are recorded under the link's name with the target's content, as the reference records them;
//! symlinked folders are followed only when asked, as in the reference.

use std::fs;
use std::os::unix::fs::{DirEntryExt, FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use super::RecordError;
use super::exclude::{Excludes, GitignoreChain};

/// One file to hash.
#[derive(Debug, Clone)]
pub struct FileJob {
    /// The artifact name, relative to the root, before any prefix is stripped.
    pub name: String,
    /// The path to open: a real path with no symlink in its last component.
    pub path: PathBuf,
    /// The inode the walk saw, which the opened file must still have (G5).
    pub inode: u64,
}

/// What the walk found.
#[derive(Debug, Default)]
pub struct Walked {
    /// The files to hash, in walk order.
    pub files: Vec<FileJob>,
    /// Symlinks to folders that were not followed (`follow_symlink_dirs` is off).
    pub unfollowed_symlink_dirs: Vec<String>,
    /// Given paths that did not exist (only with `allow_missing`).
    pub missing: Vec<String>,
}

/// How to walk.
#[derive(Debug)]
pub struct WalkOptions<'a> {
    /// The recording root, canonical.
    pub root: &'a Path,
    /// Exclude patterns.
    pub excludes: &'a Excludes,
    /// Follow symlinks to folders (inside the root).
    pub follow_symlink_dirs: bool,
    /// Skip given paths that do not exist instead of failing.
    pub allow_missing: bool,
    /// Honour the tree's `.gitignore` files.
    pub use_gitignore: bool,
}

/// The real folders from the root down to the folder being read, to find symlink loops.
struct Ancestors {
    path: PathBuf,
    parent: Option<Rc<Ancestors>>,
}

impl Ancestors {
    fn contains(&self, path: &Path) -> bool {
        let mut node = Some(self);
        while let Some(n) = node {
            if n.path == path {
                return true;
            }
            node = n.parent.as_deref();
        }
        false
    }
}

struct Folder {
    /// Where it really is.
    real: PathBuf,
    /// Its artifact name ("" for the root).
    name: String,
    ancestors: Rc<Ancestors>,
    gitignore: Rc<GitignoreChain>,
}

/// Normalises a given path the way Python's `os.path.normpath` does, relative to `root`, and
/// returns its artifact name ("" for the root itself).
pub fn normalise(given: &str, root: &Path) -> Result<String, RecordError> {
    let path = Path::new(given);
    let relative: PathBuf = if path.is_absolute() {
        // An absolute path is fine when it lies inside the root.
        let absolute = lexical_normalise(path);
        match absolute.strip_prefix(root) {
            Ok(rest) => rest.to_owned(),
            Err(_) => {
                return Err(RecordError::OutsideRoot {
                    path: given.to_owned(),
                    target: absolute,
                });
            }
        }
    } else {
        lexical_normalise(path)
    };
    if relative.components().next() == Some(Component::ParentDir) {
        return Err(RecordError::OutsideRoot {
            path: given.to_owned(),
            target: root.join(&relative),
        });
    }
    relative
        .to_str()
        .map(str::to_owned)
        .ok_or_else(|| RecordError::NonUtf8Name(given.to_owned()))
}

/// `a/./b//c/../d` → `a/b/d`, without touching the file system; leading `..` of a relative
/// path are kept (and then refused by the caller).
fn lexical_normalise(path: &Path) -> PathBuf {
    let absolute = path.is_absolute();
    let mut parts = Vec::new();
    let mut ups = 0;
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::ParentDir => {
                if parts.pop().is_none() && !absolute {
                    ups += 1;
                }
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    let mut out = if absolute {
        PathBuf::from("/")
    } else {
        PathBuf::new()
    };
    for _ in 0..ups {
        out.push("..");
    }
    out.extend(parts);
    out
}

fn join_name(folder: &str, entry: &str) -> String {
    if folder.is_empty() {
        entry.to_owned()
    } else {
        format!("{folder}/{entry}")
    }
}

fn io_error<'a>(
    path: &'a Path,
    action: &'static str,
) -> impl FnOnce(std::io::Error) -> RecordError + 'a {
    move |source| RecordError::Io {
        path: path.to_owned(),
        action,
        source,
    }
}

/// Walks every given path under `options.root`.
pub fn walk(paths: &[String], options: &WalkOptions<'_>) -> Result<Walked, RecordError> {
    let mut walked = Walked::default();
    let root_ancestors = Rc::new(Ancestors {
        path: options.root.to_owned(),
        parent: None,
    });
    let root_gitignore = if options.use_gitignore {
        GitignoreChain::enter(&Rc::new(GitignoreChain::default()), options.root)?
    } else {
        Rc::new(GitignoreChain::default())
    };
    for given in paths {
        let name = normalise(given, options.root)?;
        let path = options.root.join(&name);
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if options.allow_missing {
                    walked.missing.push(given.clone());
                    continue;
                }
                return Err(RecordError::Missing(given.clone()));
            }
            Err(e) => return Err(io_error(&path, "read")(e)),
        };
        if !name.is_empty() && options.excludes.excludes(&name, meta.is_dir()) {
            continue;
        }
        let entry = Entry {
            name,
            path: path.clone(),
            file_type: meta.file_type(),
            inode: meta.ino(),
        };
        let mut stack = Vec::new();
        visit(
            entry,
            &root_ancestors,
            &root_gitignore,
            options,
            &mut walked,
            &mut stack,
        )?;
        while let Some(folder) = stack.pop() {
            read_folder(folder, options, &mut walked, &mut stack)?;
        }
    }
    Ok(walked)
}

struct Entry {
    name: String,
    path: PathBuf,
    file_type: fs::FileType,
    inode: u64,
}

fn read_folder(
    folder: Folder,
    options: &WalkOptions<'_>,
    walked: &mut Walked,
    stack: &mut Vec<Folder>,
) -> Result<(), RecordError> {
    let gitignore = if options.use_gitignore {
        GitignoreChain::enter(&folder.gitignore, &folder.real)?
    } else {
        Rc::clone(&folder.gitignore)
    };
    let ancestors = Rc::new(Ancestors {
        path: folder.real.clone(),
        parent: Some(Rc::clone(&folder.ancestors)),
    });
    let entries = fs::read_dir(&folder.real).map_err(io_error(&folder.real, "read the folder"))?;
    for entry in entries {
        let entry = entry.map_err(io_error(&folder.real, "read the folder"))?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            return Err(RecordError::NonUtf8Name(
                entry.path().to_string_lossy().into_owned(),
            ));
        };
        let file_type = entry.file_type().map_err(io_error(&entry.path(), "read"))?;
        let entry = Entry {
            name: join_name(&folder.name, file_name),
            path: entry.path(),
            file_type,
            inode: entry.ino(),
        };
        let is_dir = entry.file_type.is_dir();
        if options.excludes.excludes(&entry.name, is_dir)
            || (options.use_gitignore && gitignore.ignores(&entry.path, is_dir))
        {
            continue;
        }
        visit(entry, &ancestors, &gitignore, options, walked, stack)?;
    }
    Ok(())
}

fn visit(
    entry: Entry,
    ancestors: &Rc<Ancestors>,
    gitignore: &Rc<GitignoreChain>,
    options: &WalkOptions<'_>,
    walked: &mut Walked,
    stack: &mut Vec<Folder>,
) -> Result<(), RecordError> {
    let file_type = entry.file_type;
    if file_type.is_file() {
        walked.files.push(FileJob {
            name: entry.name,
            path: entry.path,
            inode: entry.inode,
        });
    } else if file_type.is_dir() {
        let real = fs::canonicalize(&entry.path).map_err(io_error(&entry.path, "resolve"))?;
        stack.push(Folder {
            real,
            name: entry.name,
            ancestors: Rc::clone(ancestors),
            gitignore: Rc::clone(gitignore),
        });
    } else if file_type.is_symlink() {
        visit_symlink(entry, ancestors, gitignore, options, walked, stack)?;
    } else {
        return Err(RecordError::SpecialFile {
            path: entry.name,
            kind: special_kind(&file_type),
        });
    }
    Ok(())
}

fn visit_symlink(
    entry: Entry,
    ancestors: &Rc<Ancestors>,
    gitignore: &Rc<GitignoreChain>,
    options: &WalkOptions<'_>,
    walked: &mut Walked,
    stack: &mut Vec<Folder>,
) -> Result<(), RecordError> {
    let target = match fs::canonicalize(&entry.path) {
        Ok(target) => target,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(RecordError::SymlinkLoop {
                path: entry.name,
                target: fs::read_link(&entry.path).unwrap_or_default(),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(RecordError::DanglingSymlink {
                path: entry.name,
                target: fs::read_link(&entry.path).unwrap_or_default(),
            });
        }
        Err(e) => return Err(io_error(&entry.path, "resolve")(e)),
    };
    if !target.starts_with(options.root) {
        return Err(RecordError::OutsideRoot {
            path: entry.name,
            target,
        });
    }
    let meta = fs::metadata(&target).map_err(io_error(&target, "read"))?;
    if meta.is_file() {
        walked.files.push(FileJob {
            name: entry.name,
            path: target,
            inode: meta.ino(),
        });
    } else if meta.is_dir() {
        if !options.follow_symlink_dirs {
            walked.unfollowed_symlink_dirs.push(entry.name);
        } else if ancestors.contains(&target) {
            return Err(RecordError::SymlinkLoop {
                path: entry.name,
                target,
            });
        } else {
            stack.push(Folder {
                real: target,
                name: entry.name,
                ancestors: Rc::clone(ancestors),
                gitignore: Rc::clone(gitignore),
            });
        }
    } else {
        return Err(RecordError::SpecialFile {
            path: entry.name,
            kind: special_kind(&meta.file_type()),
        });
    }
    Ok(())
}

fn special_kind(file_type: &fs::FileType) -> &'static str {
    if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_block_device() || file_type.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}
