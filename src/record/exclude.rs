//! Exclude patterns, in gitignore syntax, matched against artifact names relative to the
//! recording root (the reference's semantics), and the tree's own `.gitignore` files when
//! asked for.
//!
//! Patterns come only from the caller (flags, the API), never from files in the recorded tree,
//! unless the caller asks for `.gitignore` files explicitly (THREATS G9).

use std::path::Path;
use std::rc::Rc;

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::RecordError;

/// The reference's default exclude patterns, used when none are given.
pub const DEFAULT_EXCLUDES: [&str; 4] = ["*.link*", ".git", "*.pyc", "*~"];

/// Compiled exclude patterns.
#[derive(Debug)]
pub struct Excludes {
    matcher: Gitignore,
}

impl Excludes {
    /// Compiles gitignore-style `patterns`.
    pub fn new(patterns: &[String]) -> Result<Excludes, RecordError> {
        let mut builder = GitignoreBuilder::new("");
        for pattern in patterns {
            builder
                .add_line(None, pattern)
                .map_err(|source| RecordError::Exclude {
                    pattern: pattern.clone(),
                    source,
                })?;
        }
        let matcher = builder.build().map_err(|source| RecordError::Exclude {
            pattern: patterns.join(" "),
            source,
        })?;
        Ok(Excludes { matcher })
    }

    /// Whether the artifact name (relative to the root, `/`-separated) is excluded.
    pub fn excludes(&self, name: &str, is_dir: bool) -> bool {
        self.matcher.matched(name, is_dir).is_ignore()
    }
}

/// The `.gitignore` files of the folders from the root down to one folder, innermost last.
#[derive(Debug, Default)]
pub struct GitignoreChain {
    parent: Option<Rc<GitignoreChain>>,
    matcher: Option<Gitignore>,
}

impl GitignoreChain {
    /// The chain for a folder: its parent's, plus the folder's own `.gitignore` if any.
    pub fn enter(
        parent: &Rc<GitignoreChain>,
        folder: &Path,
    ) -> Result<Rc<GitignoreChain>, RecordError> {
        let file = folder.join(".gitignore");
        if !file.is_file() {
            return Ok(Rc::clone(parent));
        }
        let (matcher, error) = Gitignore::new(&file);
        if let Some(source) = error {
            return Err(RecordError::Exclude {
                pattern: file.display().to_string(),
                source,
            });
        }
        Ok(Rc::new(GitignoreChain {
            parent: Some(Rc::clone(parent)),
            matcher: Some(matcher),
        }))
    }

    /// Whether the innermost `.gitignore` with an opinion on `path` (absolute) ignores it.
    pub fn ignores(&self, path: &Path, is_dir: bool) -> bool {
        let mut chain = Some(self);
        while let Some(node) = chain {
            if let Some(matcher) = &node.matcher {
                match matcher.matched(path, is_dir) {
                    Match::Ignore(_) => return true,
                    Match::Whitelist(_) => return false,
                    Match::None => {}
                }
            }
            chain = node.parent.as_deref();
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_excludes_match_as_the_reference_does() {
        let defaults: Vec<String> = DEFAULT_EXCLUDES.iter().map(|s| s.to_string()).collect();
        let excludes = Excludes::new(&defaults).expect("valid");
        for (name, is_dir, excluded) in [
            ("build.abcd1234.link", false, true),
            ("links/x.link-unfinished", false, true),
            (".git", true, true),
            ("sub/.git", true, true),
            ("a.pyc", false, true),
            ("dir/a.pyc", false, true),
            ("notes.txt~", false, true),
            ("src/main.rs", false, false),
            ("linker.rs", false, false),
            (".gitignore", false, false),
        ] {
            assert_eq!(excludes.excludes(name, is_dir), excluded, "{name}");
        }
    }

    /// A pattern that does not compile keeps the glob compiler's error as its source.
    #[test]
    fn a_bad_pattern_keeps_its_cause() {
        let err = Excludes::new(&["{a".to_owned()]).expect_err("unclosed group");
        let source = std::error::Error::source(&err).expect("a source");
        assert!(
            source.downcast_ref::<ignore::Error>().is_some(),
            "{source:?}"
        );
        assert!(
            err.to_string().starts_with("exclude pattern \"{a\": "),
            "{err}"
        );
    }
}
