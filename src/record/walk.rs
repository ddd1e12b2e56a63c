//! Finding the files to hash under the paths given to record.
//!
//! The walk never follows a symlink out of the recording root (THREATS G1), reports symlink
//! loops, dangling symlinks, FIFOs, sockets and devices as errors without opening them (G2, G3,
//! G4), and refuses names that are not valid UTF-8. Symlinked files are recorded under the
//! link's name with the target's content, as the reference records them; symlinked folders are
//! followed only when asked, as in the reference.
//!
//! Folders are opened once (`O_DIRECTORY | O_NOFOLLOW`) and files are later opened relative to
//! their folder, so that the kernel resolves one name per file, not a whole path, and a folder
//! swapped for a symlink mid-walk is noticed.

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use rustix::fs::{AtFlags, CWD, Dir, FileType, Mode, OFlags};

use super::RecordError;
use super::exclude::{Excludes, GitignoreChain};

/// One file to hash.
#[derive(Debug)]
pub struct FileJob {
    /// The artifact name, relative to the root, before any prefix is stripped.
    pub name: String,
    /// The folder holding the file.
    pub folder: Arc<OwnedFd>,
    /// The file's name in that folder.
    pub file: CString,
    /// The inode the walk saw, which the opened file must still have (G5).
    pub inode: u64,
}

/// What the walk passed over.
#[derive(Debug, Default)]
pub struct WalkNotes {
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
    fd: Arc<OwnedFd>,
    /// Where it really is.
    real: PathBuf,
    /// Its artifact name ("" for the root).
    name: String,
    ancestors: Rc<Ancestors>,
    gitignore: Rc<GitignoreChain>,
}

/// Receives each file the walk finds; an error stops the walk.
pub type Emit<'a> = dyn FnMut(FileJob) -> Result<(), RecordError> + 'a;

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

fn io_error(path: &Path, action: &'static str, error: rustix::io::Errno) -> RecordError {
    RecordError::Io {
        path: path.to_owned(),
        action,
        source: error.into(),
    }
}

fn open_folder(at: &OwnedFd, name: &str, real: &Path) -> Result<OwnedFd, RecordError> {
    rustix::fs::openat(
        at,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => RecordError::Changed {
            path: real.display().to_string(),
            what: "a folder was replaced",
        },
        other => io_error(real, "open the folder", other),
    })
}

fn open_path(path: &Path) -> Result<OwnedFd, RecordError> {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_error(path, "open the folder", e))
}

/// Walks every given path under `options.root`, handing each file to `emit`.
pub fn walk(
    paths: &[String],
    options: &WalkOptions<'_>,
    emit: &mut Emit<'_>,
) -> Result<WalkNotes, RecordError> {
    let mut notes = WalkNotes::default();
    let root_ancestors = Rc::new(Ancestors {
        path: options.root.to_owned(),
        parent: None,
    });
    let root_gitignore = if options.use_gitignore {
        GitignoreChain::enter(&Rc::new(GitignoreChain::default()), options.root)?
    } else {
        Rc::new(GitignoreChain::default())
    };
    let mut walker = Walker {
        options,
        notes: &mut notes,
        stack: Vec::new(),
        emit,
    };
    for given in paths {
        let name = normalise(given, options.root)?;
        let path = options.root.join(&name);
        let stat = match rustix::fs::statat(CWD, &path, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(rustix::io::Errno::NOENT) => {
                if options.allow_missing {
                    walker.notes.missing.push(given.clone());
                    continue;
                }
                return Err(RecordError::Missing(given.clone()));
            }
            Err(e) => return Err(io_error(&path, "read", e)),
        };
        let file_type = FileType::from_raw_mode(stat.st_mode);
        if !name.is_empty()
            && options
                .excludes
                .excludes(&name, file_type == FileType::Directory)
        {
            continue;
        }
        match file_type {
            FileType::Directory => walker.stack.push(Folder {
                fd: Arc::new(open_path(&path)?),
                real: path,
                name,
                ancestors: Rc::clone(&root_ancestors),
                gitignore: Rc::clone(&root_gitignore),
            }),
            _ => {
                let (parent, file) = split(&path)?;
                let parent_fd = Arc::new(open_path(&parent)?);
                walker.visit(
                    &parent_fd,
                    &parent,
                    name,
                    &file,
                    file_type,
                    stat.st_ino,
                    &root_ancestors,
                    &root_gitignore,
                )?;
            }
        }
        while let Some(folder) = walker.stack.pop() {
            walker.read_folder(folder)?;
        }
    }
    Ok(notes)
}

fn split(path: &Path) -> Result<(PathBuf, String), RecordError> {
    match (path.parent(), path.file_name().and_then(|n| n.to_str())) {
        (Some(parent), Some(file)) => Ok((parent.to_owned(), file.to_owned())),
        _ => Err(RecordError::NonUtf8Name(path.display().to_string())),
    }
}

struct Walker<'o, 'e, 'n> {
    options: &'o WalkOptions<'o>,
    notes: &'n mut WalkNotes,
    stack: Vec<Folder>,
    emit: &'e mut Emit<'e>,
}

impl Walker<'_, '_, '_> {
    fn read_folder(&mut self, folder: Folder) -> Result<(), RecordError> {
        let gitignore = if self.options.use_gitignore {
            GitignoreChain::enter(&folder.gitignore, &folder.real)?
        } else {
            Rc::clone(&folder.gitignore)
        };
        let ancestors = Rc::new(Ancestors {
            path: folder.real.clone(),
            parent: Some(Rc::clone(&folder.ancestors)),
        });
        let mut dir = Dir::read_from(&*folder.fd)
            .map_err(|e| io_error(&folder.real, "read the folder", e))?;
        while let Some(entry) = dir.read() {
            let entry = entry.map_err(|e| io_error(&folder.real, "read the folder", e))?;
            let raw = entry.file_name();
            if raw == c"." || raw == c".." {
                continue;
            }
            let Ok(file) = raw.to_str() else {
                return Err(RecordError::NonUtf8Name(
                    folder
                        .real
                        .join(raw.to_string_lossy().as_ref())
                        .display()
                        .to_string(),
                ));
            };
            let mut file_type = entry.file_type();
            if file_type == FileType::Unknown {
                let stat = rustix::fs::statat(&*folder.fd, raw, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| io_error(&folder.real.join(file), "read", e))?;
                file_type = FileType::from_raw_mode(stat.st_mode);
            }
            let name = join_name(&folder.name, file);
            let is_dir = file_type == FileType::Directory;
            if self.options.excludes.excludes(&name, is_dir)
                || (self.options.use_gitignore
                    && gitignore.ignores(&folder.real.join(file), is_dir))
            {
                continue;
            }
            self.visit(
                &folder.fd,
                &folder.real,
                name,
                file,
                file_type,
                entry.ino(),
                &ancestors,
                &gitignore,
            )?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn visit(
        &mut self,
        folder_fd: &Arc<OwnedFd>,
        folder_real: &Path,
        name: String,
        file: &str,
        file_type: FileType,
        inode: u64,
        ancestors: &Rc<Ancestors>,
        gitignore: &Rc<GitignoreChain>,
    ) -> Result<(), RecordError> {
        match file_type {
            FileType::RegularFile => (self.emit)(FileJob {
                name,
                folder: Arc::clone(folder_fd),
                file: CString::new(file).map_err(|_| RecordError::NonUtf8Name(file.to_owned()))?,
                inode,
            }),
            FileType::Directory => {
                let real = folder_real.join(file);
                self.stack.push(Folder {
                    fd: Arc::new(open_folder(folder_fd, file, &real)?),
                    real,
                    name,
                    ancestors: Rc::clone(ancestors),
                    gitignore: Rc::clone(gitignore),
                });
                Ok(())
            }
            FileType::Symlink => {
                self.visit_symlink(&folder_real.join(file), name, ancestors, gitignore)
            }
            other => Err(RecordError::SpecialFile {
                path: name,
                kind: special_kind(other),
            }),
        }
    }

    fn visit_symlink(
        &mut self,
        path: &Path,
        name: String,
        ancestors: &Rc<Ancestors>,
        gitignore: &Rc<GitignoreChain>,
    ) -> Result<(), RecordError> {
        let link_target = || std::fs::read_link(path).unwrap_or_default();
        let target = match std::fs::canonicalize(path) {
            Ok(target) => target,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(RecordError::SymlinkLoop {
                    path: name,
                    target: link_target(),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RecordError::DanglingSymlink {
                    path: name,
                    target: link_target(),
                });
            }
            Err(source) => {
                return Err(RecordError::Io {
                    path: path.to_owned(),
                    action: "resolve",
                    source,
                });
            }
        };
        if !target.starts_with(self.options.root) {
            return Err(RecordError::OutsideRoot { path: name, target });
        }
        let stat = rustix::fs::statat(CWD, &target, AtFlags::empty())
            .map_err(|e| io_error(&target, "read", e))?;
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::RegularFile => {
                let (parent, file) = split(&target)?;
                (self.emit)(FileJob {
                    name,
                    folder: Arc::new(open_path(&parent)?),
                    file: CString::new(file)
                        .map_err(|_| RecordError::NonUtf8Name(target.display().to_string()))?,
                    inode: stat.st_ino,
                })
            }
            FileType::Directory => {
                if !self.options.follow_symlink_dirs {
                    self.notes.unfollowed_symlink_dirs.push(name);
                } else if ancestors.contains(&target) {
                    return Err(RecordError::SymlinkLoop { path: name, target });
                } else {
                    self.stack.push(Folder {
                        fd: Arc::new(open_path(&target)?),
                        real: target,
                        name,
                        ancestors: Rc::clone(ancestors),
                        gitignore: Rc::clone(gitignore),
                    });
                }
                Ok(())
            }
            other => Err(RecordError::SpecialFile {
                path: name,
                kind: special_kind(other),
            }),
        }
    }
}

fn special_kind(file_type: FileType) -> &'static str {
    match file_type {
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::BlockDevice | FileType::CharacterDevice => "a device",
        _ => "not a regular file",
    }
}
