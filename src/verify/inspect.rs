//! Running inspections: step 12 of the workflow.

use std::path::Path;

use crate::layout::Inspection;
use crate::link::Link;
use crate::record::{self, CommandOptions, RecordOptions};
use crate::rule::RuleKind;

use super::report::{Check, InspectionReport};
use super::{Run, Stop};

/// The environment variables an inspection keeps; everything else is cleared.
const KEPT_ENVIRONMENT: &[&str] = &["PATH", "LANG", "LC_ALL", "TZ", "TMPDIR"];

impl Run<'_> {
    /// A scratch copy of the working folder (files, folders and symlinks as they are), where
    /// the inspections run one after another.
    pub(super) fn scratch(&mut self) -> Result<tempfile::TempDir, Stop> {
        let source = match &self.options.workdir {
            Some(dir) => dir.clone(),
            None => std::env::current_dir().unwrap_or_else(|_| ".".into()),
        };
        let made = tempfile::Builder::new()
            .prefix("tollgate-inspect-")
            .tempdir()
            .map_err(|e| e.to_string())
            .and_then(|scratch| {
                copy_tree(&source, scratch.path())
                    .map_err(|e| format!("copying {}: {e}", source.display()))?;
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
    pub(super) fn inspect(
        &mut self,
        inspection: &Inspection,
        scratch: &Path,
    ) -> Result<Link, Stop> {
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
        let materials = record::record_artifacts(&here, &options)
            .map_err(|e| format!(": recording its materials: {e}"))?
            .artifacts;
        let command = CommandOptions {
            record_streams: true,
            silent: true,
            timeout: Some(self.options.inspection_timeout),
            current_dir: Some(scratch.to_owned()),
            keep_env: Some(KEPT_ENVIRONMENT.iter().map(|s| s.to_string()).collect()),
            ..CommandOptions::default()
        };
        let outcome =
            record::run_command(&inspection.run, &command).map_err(|e| format!(": {e}"))?;
        report.return_value = Some(outcome.return_value);
        if outcome.return_value != 0 {
            return Err(format!(
                ": {:?} exited with {}",
                inspection.run, outcome.return_value
            ));
        }
        let products = record::record_artifacts(&here, &options)
            .map_err(|e| format!(": recording its products: {e}"))?
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

/// Copies the tree at `from` into `to`: folders, regular files (with their permissions) and
/// symlinks that stay inside the tree (as symlinks, never followed); anything else, a symlink
/// leading out of the tree included, is left out, so nothing the inspections do reaches past
/// the copy.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    // The copy itself may lie inside the tree (a working folder that holds the temporary
    // folder): it is not copied into itself.
    let copy = std::fs::metadata(to)?;
    copy_level(from, to, 0, (copy.dev(), copy.ino()))
}

fn copy_level(from: &Path, to: &Path, depth: usize, copy: (u64, u64)) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            let meta = entry.metadata()?;
            if (meta.dev(), meta.ino()) == copy {
                continue;
            }
            std::fs::create_dir(&target)?;
            copy_level(&entry.path(), &target, depth + 1, copy)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)?;
        } else if kind.is_symlink() {
            let link = std::fs::read_link(entry.path())?;
            if stays_inside(depth, &link) {
                std::os::unix::fs::symlink(link, &target)?;
            }
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
        copy_tree(&from, &to).expect("copy");
        assert_eq!(std::fs::read(to.join("sub/file")).expect("file"), b"x");
        assert_eq!(
            std::fs::read_link(to.join("inside")).expect("link"),
            Path::new("sub/file")
        );
        assert!(to.join("escapes").symlink_metadata().is_err());
        assert!(to.join("absolute").symlink_metadata().is_err());

        // A copy made inside the tree it copies is not copied into itself.
        let inner = from.join("scratch");
        std::fs::create_dir(&inner).expect("mkdir");
        copy_tree(&from, &inner).expect("copy into itself");
        assert!(inner.join("sub/file").exists());
        assert!(!inner.join("scratch").exists());
    }
}
