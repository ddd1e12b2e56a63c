//! Running inspections: step 10 of the workflow.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use crate::base::limits::{Limit, Limits};
use crate::model::layout::Inspection;
use crate::model::link::Link;
use crate::model::rule::RuleKind;
use crate::record::{self, CommandOptions, RecordOptions};

use super::report::{Check, InspectionReport};
use super::{Run, StepResult, VerifyError};

/// The most bytes of an inspection's stderr quoted when its command fails (its end, where
/// the error usually is).
const STDERR_QUOTED: usize = 2000;

/// The environment variables an inspection keeps; everything else is cleared.
const KEPT_ENVIRONMENT: &[&str] = &["PATH", "LANG", "LC_ALL", "TZ", "TMPDIR"];

impl Run<'_> {
    /// The working folder the inspections run on: `--workdir`, or the current folder.
    pub(super) fn workdir(&self) -> PathBuf {
        match &self.options.workdir {
            Some(dir) => dir.clone(),
            None => std::env::current_dir().unwrap_or_else(|_| ".".into()),
        }
    }

    /// A scratch copy of the working folder, as `plan` lists it (files, folders and symlinks
    /// as they are), where the inspections run one after another.
    pub(super) fn scratch(&mut self, plan: Result<Plan, String>) -> StepResult<tempfile::TempDir> {
        let made = plan.and_then(|plan| {
            let scratch = tempfile::Builder::new()
                .prefix("tollgate-inspect-")
                .tempdir()
                .map_err(|e| e.to_string())?;
            plan.copy_into(scratch.path())
                .map_err(|e| format!("copying {}: {e}", plan.source.display()))?;
            Ok(scratch)
        });
        made.map_err(|reason| {
            self.fail(
                Check::Inspection,
                None,
                format!(
                    "preparing a scratch copy of the working folder for the inspections: {reason}"
                ),
            )
        })
    }

    /// Runs one inspection in `scratch`: records `.`, runs the command with a minimal
    /// environment, records `.` again. Its link stays in memory, and the working folder is
    /// never touched (THREATS I5).
    pub(super) fn inspect(&mut self, inspection: &Inspection, scratch: &Path) -> StepResult<Link> {
        let name = &inspection.name;
        let mut report = InspectionReport {
            name: name.to_string(),
            run: inspection.run.clone(),
            return_value: None,
            rules: Vec::new(),
        };
        let outcome = self.run_inspection(inspection, scratch, &mut report);
        self.report.inspections.push(report);
        outcome.map_err(|reason| {
            self.fail(
                Check::Inspection,
                Some(name),
                format!("inspection {name}{reason}"),
            )
        })
    }

    /// Records `.`, runs the command, records `.` again; `Err` completes the sentence
    /// "inspection NAME…".
    fn run_inspection(
        &self,
        inspection: &Inspection,
        scratch: &Path,
        report: &mut InspectionReport,
    ) -> Result<Link, String> {
        if inspection.run.is_empty() {
            return Err(" has no command to run".into());
        }
        let (uris, git_files) = named_uris(inspection);
        let options = RecordOptions {
            base_path: Some(scratch.to_owned()),
            limits: self.options.limits,
            // A folder a rule names may appear only when the command has run (`.` is always
            // there).
            allow_missing: true,
            git_files,
            // Its own command may leave files behind; HEAD is what the rules check.
            allow_dirty: true,
            ..RecordOptions::default()
        };
        // The working folder, and the artifacts its rules name by URI (`dir:vendor`), which
        // walking `.` does not produce.
        let mut here = vec![".".to_owned()];
        here.extend(uris);
        // A file the recording refuses is in the working folder, which `verify` records whole:
        // the way out is a working folder holding only the received product.
        let whole = || {
            format!(
                " (the inspections record the whole working folder, {}, and verify excludes \
                 nothing: pass --workdir naming the folder that holds only the received product)",
                self.workdir().display()
            )
        };
        let materials = record::record_artifacts(&here, &options)
            .map_err(|e| format!(": recording its materials: {e}{}", whole()))?
            .artifacts;
        let command = CommandOptions {
            record_streams: true,
            silent: true,
            timeout: Some(self.options.inspection_timeout),
            current_dir: Some(scratch.to_owned()),
            keep_env: Some(KEPT_ENVIRONMENT.iter().map(|s| s.to_string()).collect()),
            stream_limit: self.options.limits.max_byproduct_bytes,
        };
        let outcome =
            record::run_command(&inspection.run, &command).map_err(|e| format!(": {e}"))?;
        report.return_value = Some(outcome.return_value);
        if outcome.return_value != 0 {
            return Err(format!(
                ": {:?} exited with {}{}",
                inspection.run,
                outcome.return_value,
                quote_stderr(&outcome.stderr)
            ));
        }
        let products = record::record_artifacts(&here, &options)
            .map_err(|e| format!(": recording its products: {e}{}", whole()))?
            .artifacts;
        Ok(Link {
            name: inspection.name.clone(),
            command: inspection.run.clone(),
            materials,
            products,
            byproducts: Default::default(),
            environment: Default::default(),
        })
    }
}

/// What an inspection's rules name under a URI scheme, which walking `.` does not produce:
/// the `dir:` and `oci:` artifacts they name (up to a pattern's first wildcard or `#`) and the
/// `file:` ones they name literally, in the order first named, and
/// `git:HEAD` (with every tracked file if a rule can concern `git:file/...`) when a rule
/// names a `git:` artifact. Also returns whether the files are wanted.
fn named_uris(inspection: &Inspection) -> (Vec<String>, bool) {
    let mut uris: Vec<String> = Vec::new();
    let mut git_files = false;
    let rules = inspection
        .expected_materials
        .iter()
        .chain(&inspection.expected_products);
    for rule in rules {
        let name = match rule.kind() {
            RuleKind::Match {
                pattern,
                source_prefix: None,
                ..
            }
            | RuleKind::Create(pattern)
            | RuleKind::Delete(pattern)
            | RuleKind::Modify(pattern)
            | RuleKind::Allow(pattern) => pattern.as_str().to_owned(),
            RuleKind::Require(name) => name.as_str().to_owned(),
            _ => continue,
        };
        let literal = !name.contains(['*', '?', '[']);
        let uri = match record::Target::of(&name) {
            record::Target::Files(_) => continue,
            record::Target::Git(_) => {
                git_files |= !literal || name.starts_with("git:file/");
                "git:HEAD".to_owned()
            }
            // An image or folder named by a pattern (`oci:dist/image.tar*`, to cover its
            // `#config` and `#layer/N` too): the literal part before the first wildcard or `#`.
            record::Target::Oci(_) | record::Target::Dir(_) => {
                let end = name.find(['*', '?', '[', '#']).unwrap_or(name.len());
                name[..end].to_owned()
            }
            _ if literal => name,
            _ => continue,
        };
        if !uris.contains(&uri) {
            uris.push(uri);
        }
    }
    (uris, git_files)
}

/// The end of a failed command's stderr, for its failure: `; its stderr: "..."`, or nothing
/// when it wrote none. Cut at a character boundary, at most [`STDERR_QUOTED`] bytes.
fn quote_stderr(stderr: &str) -> String {
    let text = stderr.trim();
    if text.is_empty() {
        return String::new();
    }
    let mut start = text.len().saturating_sub(STDERR_QUOTED);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let cut = if start > 0 { "..." } else { "" };
    format!("; its stderr: \"{cut}{}\"", &text[start..])
}

/// What a scratch copy of the working folder holds: listed, and counted against the limits,
/// before anything is copied, so that a huge folder is refused at once rather than copied for
/// minutes.
#[derive(Debug)]
pub(super) struct Plan {
    /// The working folder.
    source: PathBuf,
    /// Folders, relative to it, each after the folder holding it.
    folders: Vec<PathBuf>,
    /// Regular files, relative to it, with the size each had when listed.
    files: Vec<(PathBuf, u64)>,
    /// Symlinks that stay inside the tree, relative to it, and their targets.
    symlinks: Vec<(PathBuf, PathBuf)>,
}

/// Lists the tree at `source` (without following symlinks) for a scratch copy: folders,
/// regular files and symlinks that stay inside the tree (copied as symlinks, never followed);
/// anything else, a symlink leading out of the tree included, is left out, so nothing the
/// inspections do reaches past the copy. More entries or bytes than `limits` allow is a
/// [`VerifyError::WorkdirTooLarge`], found without walking further; the inner `Err` is an I/O
/// error, reported as the inspections' failure when they would run.
pub(super) fn plan(source: &Path, limits: &Limits) -> Result<Result<Plan, String>, VerifyError> {
    let mut plan = Plan {
        source: source.to_owned(),
        folders: Vec::new(),
        files: Vec::new(),
        symlinks: Vec::new(),
    };
    let mut count = Count {
        entries: 0,
        bytes: 0,
    };
    match plan_level(&mut plan, Path::new(""), 0, &mut count, limits) {
        Ok(Ok(())) => Ok(Ok(plan)),
        Ok(Err(e)) => Ok(Err(e)),
        Err((found, max, limit)) => Err(VerifyError::WorkdirTooLarge {
            path: source.to_owned(),
            found,
            max,
            limit,
        }),
    }
}

struct Count {
    entries: usize,
    bytes: u64,
}

/// The outer `Err` is a limit exceeded: what was found, the limit's value, which limit.
type Planned = Result<Result<(), String>, (String, String, Limit)>;

fn plan_level(
    plan: &mut Plan,
    relative: &Path,
    depth: usize,
    count: &mut Count,
    limits: &Limits,
) -> Planned {
    let folder = plan.source.join(relative);
    let io = |e: std::io::Error| format!("{}: {e}", folder.display());
    let entries = match std::fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(e) => return Ok(Err(io(e))),
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => return Ok(Err(io(e))),
        };
        // Not followed: the metadata of a symlink is its own.
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(e) => return Ok(Err(format!("{}: {e}", entry.path().display()))),
        };
        count.entries += 1;
        if count.entries > limits.max_workdir_files {
            return Err((
                format!("more than {} entries", limits.max_workdir_files),
                format!("{} entries", limits.max_workdir_files),
                Limit::WorkdirFiles,
            ));
        }
        let path = relative.join(entry.file_name());
        let kind = meta.file_type();
        if kind.is_dir() {
            plan.folders.push(path.clone());
            if let Err(stop) = plan_level(plan, &path, depth + 1, count, limits)? {
                return Ok(Err(stop));
            }
        } else if kind.is_file() {
            count.bytes = count.bytes.saturating_add(meta.len());
            if count.bytes > limits.max_workdir_bytes {
                let max = size_text(limits.max_workdir_bytes);
                return Err((
                    format!("more than {max} in files"),
                    max,
                    Limit::WorkdirBytes,
                ));
            }
            plan.files.push((path, meta.len()));
        } else if kind.is_symlink() {
            let link = match std::fs::read_link(entry.path()) {
                Ok(link) => link,
                Err(e) => return Ok(Err(format!("{}: {e}", entry.path().display()))),
            };
            if stays_inside(depth, &link) {
                plan.symlinks.push((path, link));
            }
        }
    }
    Ok(Ok(()))
}

/// A byte count for people: `1073741824 bytes (1.0 GiB)`, the unit only from a MiB up.
fn size_text(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes < MIB {
        return format!("{bytes} bytes");
    }
    // Approximate on purpose: the exact count is given first.
    let (value, unit) = if bytes < 1024 * MIB {
        (bytes as f64 / MIB as f64, "MiB")
    } else {
        (bytes as f64 / (1024 * MIB) as f64, "GiB")
    };
    format!("{bytes} bytes ({value:.1} {unit})")
}

impl Plan {
    /// Copies what the plan lists into the empty folder `to`: the folders first, then the files
    /// on every core, then the symlinks. Never a hard link or a shared file: an inspection may
    /// write to its copy.
    ///
    /// Each file is opened beneath the working folder without following a symlink on any part
    /// of its path, must still be a regular file of the size it was listed with, and only that
    /// many bytes are copied (`copy_file_range` on Linux): a file swapped for a symlink, a FIFO
    /// or a bigger file since it was listed fails the inspections instead of being followed,
    /// blocking them, or outgrowing the limits. Symlinks that would lead out of the copy through
    /// other symlinks are removed once all exist.
    fn copy_into(&self, to: &Path) -> Result<(), String> {
        for folder in &self.folders {
            std::fs::create_dir(to.join(folder))
                .map_err(|e| format!("{}: {e}", folder.display()))?;
        }
        let root = rustix::fs::open(
            &self.source,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| format!("{}: {e}", self.source.display()))?;
        let copied = crate::base::parallel::map(&self.files, |(file, size)| {
            copy_file(&root, file, *size, &to.join(file))
                .map_err(|e| format!("{}: {e}", file.display()))
        });
        copied.into_iter().collect::<Result<Vec<()>, String>>()?;
        for (path, link) in &self.symlinks {
            std::os::unix::fs::symlink(link, to.join(path))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        remove_escaping_symlinks(to, &self.symlinks)
    }
}

/// Copies the regular file `file` (relative to the folder `root`) to `to`, as it was listed:
/// opened without following symlinks anywhere on its path, and exactly `size` bytes.
fn copy_file(root: &OwnedFd, file: &Path, size: u64, to: &Path) -> std::io::Result<()> {
    use std::io::{Error, ErrorKind};
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    let changed = |what: &str| {
        Error::new(
            ErrorKind::InvalidData,
            format!("{what} since it was listed"),
        )
    };
    let mut names = file.components().peekable();
    let mut folder: Option<OwnedFd> = None;
    let mut opened = None;
    while let Some(name) = names.next() {
        let at = folder.as_ref().unwrap_or(root);
        let last = names.peek().is_none();
        let flags = if last {
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC
        } else {
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
        };
        let fd = rustix::fs::openat(at, name.as_os_str(), flags, Mode::empty()).map_err(|e| {
            if e == rustix::io::Errno::LOOP || e == rustix::io::Errno::NOTDIR {
                changed("replaced by a symlink or a file")
            } else {
                Error::from(e)
            }
        })?;
        if last {
            opened = Some(fd);
        } else {
            folder = Some(fd);
        }
    }
    let source = std::fs::File::from(opened.ok_or_else(|| changed("gone"))?);
    let meta = source.metadata()?;
    if !meta.is_file() {
        return Err(changed("no longer a regular file"));
    }
    if meta.len() != size {
        return Err(changed(&format!("{} bytes instead of {size}", meta.len())));
    }
    let mut copy = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(meta.permissions().mode() & 0o7777)
        .open(to)?;
    let copied = std::io::copy(&mut std::io::Read::take(source, size), &mut copy)?;
    if copied != size {
        return Err(changed(&format!("{copied} bytes instead of {size}")));
    }
    Ok(())
}

/// Removes every symlink of the copy that resolves outside it: each stays inside on its own
/// (see [`stays_inside`]), but a chain of them can still lead out (`a -> sub/b/..` where
/// `sub/b -> ..`). Removing one can only leave others dangling, never make one escape, so one
/// pass is enough. Dangling symlinks stay, as in the working folder.
fn remove_escaping_symlinks(to: &Path, symlinks: &[(PathBuf, PathBuf)]) -> Result<(), String> {
    let top = std::fs::canonicalize(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for (path, _) in symlinks {
        let at = to.join(path);
        if let Ok(resolved) = std::fs::canonicalize(&at)
            && !resolved.starts_with(&top)
        {
            std::fs::remove_file(&at).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// Whether a relative symlink `link`, in a folder `depth` levels below the root, points inside
/// the tree.
fn stays_inside(depth: usize, link: &Path) -> bool {
    use std::path::Component;
    let mut level = depth as isize;
    for component in link.components() {
        match component {
            Component::Normal(_) => level += 1,
            Component::ParentDir => level -= 1,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return false,
        }
        if level < 0 {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_working_folder_over_a_limit_is_refused_before_anything_is_copied() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/a"), [0u8; 600]).expect("write");
        std::fs::write(dir.path().join("b"), [0u8; 600]).expect("write");
        // A symlink to a big file counts as itself, not as what it points to.
        std::os::unix::fs::symlink("sub/a", dir.path().join("c")).expect("symlink");
        let small = |bytes, files| Limits {
            max_workdir_bytes: bytes,
            max_workdir_files: files,
            ..Limits::default()
        };
        let listed = plan(dir.path(), &small(1200, 4))
            .expect("within")
            .expect("listed");
        assert_eq!(listed.files.len(), 2);
        assert_eq!(listed.folders, vec![PathBuf::from("sub")]);
        assert_eq!(listed.symlinks.len(), 1);
        match plan(dir.path(), &small(1199, 4)) {
            Err(VerifyError::WorkdirTooLarge { limit, found, .. }) => {
                assert_eq!(limit, Limit::WorkdirBytes);
                assert_eq!(found, "more than 1199 bytes in files");
            }
            other => panic!("expected too large, got {other:?}"),
        }
        match plan(dir.path(), &small(1200, 3)) {
            Err(VerifyError::WorkdirTooLarge { limit, found, .. }) => {
                assert_eq!(limit, Limit::WorkdirFiles);
                assert_eq!(found, "more than 3 entries");
            }
            other => panic!("expected too many, got {other:?}"),
        }
    }

    #[test]
    fn sizes_are_given_exactly_then_in_words() {
        assert_eq!(size_text(100), "100 bytes");
        assert_eq!(size_text(1024 * 1024 * 1024), "1073741824 bytes (1.0 GiB)");
        assert_eq!(size_text(3 * 1024 * 1024 / 2), "1572864 bytes (1.5 MiB)");
    }

    #[test]
    fn a_failed_commands_stderr_is_quoted_by_its_end() {
        assert_eq!(quote_stderr("  \n"), "");
        assert_eq!(
            quote_stderr("tar: Cannot open: No such file\n"),
            "; its stderr: \"tar: Cannot open: No such file\""
        );
        let long = format!("{}é{}", "x".repeat(5000), "y".repeat(STDERR_QUOTED - 1));
        let quoted = quote_stderr(&long);
        assert!(quoted.starts_with("; its stderr: \"...y"), "{quoted}");
        assert!(quoted.len() < STDERR_QUOTED + 30);
    }

    #[test]
    fn only_symlinks_that_stay_inside_the_copy_are_copied() {
        assert!(stays_inside(0, Path::new("a/b")));
        assert!(stays_inside(1, Path::new("../a")));
        assert!(stays_inside(2, Path::new("./../../x")));
        assert!(!stays_inside(0, Path::new("../a")));
        assert!(!stays_inside(1, Path::new("../../a")));
        assert!(!stays_inside(3, Path::new("/etc/passwd")));
        assert!(!stays_inside(0, Path::new("a/../../b")));

        let dir = tempfile::tempdir().expect("tempdir");
        let from = dir.path().join("from");
        std::fs::create_dir_all(from.join("sub")).expect("mkdir");
        std::fs::write(from.join("sub/file"), "x").expect("write");
        std::os::unix::fs::symlink("sub/file", from.join("inside")).expect("symlink");
        std::os::unix::fs::symlink("../outside", from.join("escapes")).expect("symlink");
        std::os::unix::fs::symlink("/etc", from.join("absolute")).expect("symlink");
        let to = dir.path().join("to");
        std::fs::create_dir(&to).expect("mkdir");
        let copy = |from: &Path, to: &Path| {
            plan(from, &Limits::default())
                .expect("within the limits")
                .expect("listed")
                .copy_into(to)
        };
        copy(&from, &to).expect("copy");
        assert_eq!(std::fs::read(to.join("sub/file")).expect("file"), b"x");
        assert_eq!(
            std::fs::read_link(to.join("inside")).expect("link"),
            Path::new("sub/file")
        );
        assert!(to.join("escapes").symlink_metadata().is_err());
        assert!(to.join("absolute").symlink_metadata().is_err());

        // The tree is listed before the copy is made, so a copy made inside the tree it copies
        // (a working folder that holds the temporary folder) is not copied into itself.
        let listed = plan(&from, &Limits::default())
            .expect("within the limits")
            .expect("listed");
        let inner = from.join("scratch");
        std::fs::create_dir(&inner).expect("mkdir");
        listed.copy_into(&inner).expect("copy into itself");
        assert!(inner.join("sub/file").exists());
        assert!(!inner.join("scratch").exists());
    }

    /// THREATS I5: symlinks that each stay inside can still chain out of the copy
    /// (`x -> sub/b/..` where `sub/b -> ..`); none of them may survive in the copy.
    #[test]
    fn i5_a_chain_of_symlinks_leading_out_of_the_copy_is_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let from = dir.path().join("from");
        std::fs::create_dir_all(from.join("sub")).expect("mkdir");
        std::fs::write(from.join("sub/file"), "x").expect("write");
        let link = |target: &str, name: &str| {
            std::os::unix::fs::symlink(target, from.join(name)).expect("symlink")
        };
        link("..", "sub/b");
        link("sub/b/..", "x");
        link("x/..", "y");
        link("sub/b/sub/file", "z");
        let to = dir.path().join("to");
        std::fs::create_dir(&to).expect("mkdir");
        plan(&from, &Limits::default())
            .expect("within the limits")
            .expect("listed")
            .copy_into(&to)
            .expect("copy");
        // Inside, alone or through another symlink: kept.
        assert_eq!(
            std::fs::read(to.join("sub/b/sub/file")).expect("via b"),
            b"x"
        );
        assert_eq!(std::fs::read(to.join("z")).expect("via z"), b"x");
        // Out of the copy through sub/b: removed, and y, which led out through x, with it.
        assert!(to.join("x").symlink_metadata().is_err());
        assert!(std::fs::canonicalize(to.join("y")).is_err());
    }

    /// A file swapped for a symlink, or grown, between listing and copying is not followed or
    /// copied past what was counted: the copy fails instead.
    #[test]
    fn a_file_changed_after_it_was_listed_fails_the_copy() {
        let dir = tempfile::tempdir().expect("tempdir");
        let from = dir.path().join("from");
        std::fs::create_dir_all(from.join("sub")).expect("mkdir");
        std::fs::write(from.join("sub/file"), "x").expect("write");
        std::fs::write(from.join("grows"), "x").expect("write");
        std::fs::write(dir.path().join("secret"), "secret").expect("write");
        let copy_after = |change: &dyn Fn()| {
            let listed = plan(&from, &Limits::default())
                .expect("within the limits")
                .expect("listed");
            change();
            let to = tempfile::tempdir().expect("tempdir");
            listed.copy_into(to.path())
        };
        let err = copy_after(&|| {
            std::fs::remove_file(from.join("sub/file")).expect("rm");
            std::os::unix::fs::symlink(dir.path().join("secret"), from.join("sub/file"))
                .expect("symlink");
        })
        .expect_err("a file swapped for a symlink");
        assert!(err.contains("sub/file: replaced by a symlink"), "{err}");
        std::fs::remove_file(from.join("sub/file")).expect("rm");
        std::fs::write(from.join("sub/file"), "x").expect("write");

        let err = copy_after(&|| {
            std::fs::rename(from.join("sub"), dir.path().join("moved")).expect("mv");
            std::os::unix::fs::symlink(dir.path().join("moved"), from.join("sub"))
                .expect("symlink");
        })
        .expect_err("a folder swapped for a symlink");
        assert!(err.contains("sub/file: replaced by a symlink"), "{err}");
        std::fs::remove_file(from.join("sub")).expect("rm");
        std::fs::rename(dir.path().join("moved"), from.join("sub")).expect("mv back");

        let err = copy_after(&|| std::fs::write(from.join("grows"), "xx").expect("write"))
            .expect_err("a file that grew");
        assert!(
            err.contains("grows: 2 bytes instead of 1 since it was listed"),
            "{err}"
        );
    }
}
