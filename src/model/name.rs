//! Step and inspection names.
//!
//! Names become parts of file names (`STEP.KEYID8.link`, sublayout folders), so they are held
//! to `[A-Za-z0-9][A-Za-z0-9._-]{0,127}`: no separator, no `..`, nothing a file system reads
//! specially (THREATS E6). The reference accepts any string here; Tollgate does not.

use std::fmt;

/// Why a name is rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "name {0:?} is not allowed: use 1 to 128 characters from A-Z, a-z, 0-9, '.', '_' and '-', \
     starting with a letter or digit"
)]
pub struct NameError(pub String);

/// A checked step or inspection name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StepName(String);

impl StepName {
    /// Checks `name`.
    pub fn new(name: &str) -> Result<StepName, NameError> {
        let bytes = name.as_bytes();
        let valid = (1..=128).contains(&bytes.len())
            && bytes[0].is_ascii_alphanumeric()
            && bytes
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if valid {
            Ok(StepName(name.to_owned()))
        } else {
            Err(NameError(name.to_owned()))
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StepName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e6_path_like_names_rejected() {
        let long = "a".repeat(129);
        for name in [
            "../x", "/abs", "a/b", ".", "..", "a\0b", "", "-lead", ".hidden", "a b", "é", &long,
        ] {
            assert!(StepName::new(name).is_err(), "{name:?}");
        }
        for name in ["build", "update-version", "v1.2_rc", "0", &"a".repeat(128)] {
            assert!(StepName::new(name).is_ok(), "{name:?}");
        }
    }
}
