//! Artifact names and digest sets as checked types.
//!
//! An [`ArtifactPath`] is relative, `/`-separated and normalised, so that a rule such as
//! `DISALLOW foo` can never be dodged by recording `./foo` or `a/../foo` (THREATS F1-F4). A
//! [`DigestSet`] maps hash algorithm names to lowercase hex of the right length (F10).

use std::collections::BTreeMap;
use std::fmt;

/// Why an artifact name or digest is rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArtifactError {
    /// A name that is not a normalised relative path.
    #[error("artifact path {path:?}: {reason}")]
    Path {
        /// The name as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A digest value that is not lowercase hex of the algorithm's length.
    #[error("artifact {path:?}: digest {algorithm:?}: {reason}")]
    Digest {
        /// The artifact.
        path: String,
        /// The algorithm name.
        algorithm: String,
        /// What is wrong.
        reason: String,
    },
}

/// A checked artifact name: non-empty, relative, `/`-separated, with no empty, `.` or `..`
/// component, no backslash, no control character, and not a Windows drive path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ArtifactPath(Box<str>);

impl ArtifactPath {
    /// Checks `path`.
    pub fn new(path: &str) -> Result<ArtifactPath, ArtifactError> {
        ArtifactPath::from_string(path.to_owned())
    }

    /// Checks `path`, keeping its allocation.
    pub fn from_string(path: String) -> Result<ArtifactPath, ArtifactError> {
        ArtifactPath::from_boxed(path.into_boxed_str())
    }

    /// Checks `path`, keeping its allocation.
    pub(crate) fn from_boxed(path: Box<str>) -> Result<ArtifactPath, ArtifactError> {
        let fail = |reason| {
            Err(ArtifactError::Path {
                path: String::from(&*path),
                reason,
            })
        };
        if path.is_empty() {
            return fail("empty");
        }
        let bytes = path.as_bytes();
        // Most names are printable ASCII, which one branch-free (vectorised) pass confirms.
        // Others take the exact pass: control characters are U+0000-U+001F and U+007F-U+009F,
        // the last ones written 0xC2 0x80-0x9F in UTF-8.
        let printable_ascii = bytes
            .iter()
            .fold(true, |ok, &b| ok & (0x20..0x7f).contains(&b) & (b != b'\\'));
        if !printable_ascii {
            let mut previous = 0u8;
            for &b in bytes {
                if b < 0x20 || b == 0x7f || (previous == 0xc2 && (0x80..=0x9f).contains(&b)) {
                    return fail("contains a control character");
                }
                if b == b'\\' {
                    return fail("contains a backslash: artifact paths use '/'");
                }
                previous = b;
            }
        }
        if bytes[0] == b'/' {
            return fail("absolute: artifact paths are relative");
        }
        if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
            return fail("a drive path: artifact paths are relative");
        }
        for component in bytes.split(|&b| b == b'/') {
            match component {
                b"" => return fail("not normalised: empty component ('//' or a trailing '/')"),
                b"." | b".." => return fail("not normalised: '.' or '..' component"),
                _ => {}
            }
        }
        Ok(ArtifactPath(path))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ArtifactPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Hex lengths of the algorithms whose digest length is known. Other algorithm names are
/// accepted with any even, non-zero length of lowercase hex.
const KNOWN_LENGTHS: &[(&str, &[usize])] = &[
    ("md5", &[32]),
    ("sha1", &[40]),
    ("sha224", &[56]),
    ("sha256", &[64]),
    ("sha384", &[96]),
    ("sha512", &[128]),
    ("sha512_224", &[56]),
    ("sha512_256", &[64]),
    ("sha3_224", &[56]),
    ("sha3_256", &[64]),
    ("sha3_384", &[96]),
    ("sha3_512", &[128]),
    ("blake2b", &[128]),
    ("blake2s", &[64]),
    ("blake2b-256", &[64]),
    ("gitCommit", &[40, 64]),
    ("gitTree", &[40, 64]),
    ("gitBlob", &[40, 64]),
    ("dirHash1", &[64]),
];

/// A checked digest set: algorithm name to lowercase hex digest, at least one entry, sorted
/// by algorithm. Nearly every set is one SHA-256 digest, and a link may hold a million of
/// them, so that case is held as 32 bytes; any other set as a sorted list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestSet(Digests);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Digests {
    /// Exactly one digest, SHA-256.
    Sha256([u8; 32]),
    /// Anything else, sorted by algorithm.
    General(Vec<(String, String)>),
}

impl DigestSet {
    /// Checks the digests recorded for the artifact `path`.
    pub fn new(path: &str, digests: BTreeMap<String, String>) -> Result<DigestSet, ArtifactError> {
        DigestSet::from_pairs(path, digests.into_iter().collect())
    }

    /// Checks digests given as (algorithm, hex) pairs sorted by algorithm, each once.
    pub fn from_pairs(
        path: &str,
        digests: Vec<(String, String)>,
    ) -> Result<DigestSet, ArtifactError> {
        let fail = |algorithm: &str, reason: String| {
            Err(ArtifactError::Digest {
                path: path.to_owned(),
                algorithm: algorithm.to_owned(),
                reason,
            })
        };
        if digests.is_empty() {
            return fail("", "no digest recorded".into());
        }
        for (algorithm, value) in &digests {
            let name_ok = !algorithm.is_empty()
                && algorithm
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !name_ok {
                return fail(algorithm, "not a hash algorithm name".into());
            }
            if value.is_empty() {
                return fail(algorithm, "empty".into());
            }
            if !value
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            {
                return fail(algorithm, "not lowercase hex".into());
            }
            let lengths = KNOWN_LENGTHS
                .iter()
                .find(|(name, _)| name == algorithm)
                .map(|(_, lengths)| *lengths);
            match lengths {
                Some(lengths) if !lengths.contains(&value.len()) => {
                    return fail(
                        algorithm,
                        format!("{} hex characters, expected {lengths:?}", value.len()),
                    );
                }
                None if value.len() % 2 != 0 => {
                    return fail(algorithm, "odd number of hex characters".into());
                }
                _ => {}
            }
        }
        if let [(algorithm, value)] = digests.as_slice()
            && algorithm == "sha256"
            && let Some(bytes) = unhex32(value)
        {
            return Ok(DigestSet(Digests::Sha256(bytes)));
        }
        Ok(DigestSet(Digests::General(digests)))
    }

    /// A set of one SHA-256 digest, from a hasher's output.
    pub fn sha256(digest: &[u8; 32]) -> DigestSet {
        DigestSet(Digests::Sha256(*digest))
    }

    /// The digests as (algorithm, lowercase hex), sorted by algorithm.
    pub fn iter(&self) -> impl Iterator<Item = (&str, std::borrow::Cow<'_, str>)> {
        let (single, general) = match &self.0 {
            Digests::Sha256(bytes) => (Some(("sha256", hex32_string(bytes).into())), &[][..]),
            Digests::General(pairs) => (None, pairs.as_slice()),
        };
        single
            .into_iter()
            .chain(general.iter().map(|(a, d)| (a.as_str(), d.as_str().into())))
    }

    /// The digest for `algorithm`, in lowercase hex.
    pub fn get(&self, algorithm: &str) -> Option<std::borrow::Cow<'_, str>> {
        self.iter().find(|(a, _)| *a == algorithm).map(|(_, d)| d)
    }

    /// Whether the set holds `algorithm`.
    pub fn has(&self, algorithm: &str) -> bool {
        match &self.0 {
            Digests::Sha256(_) => algorithm == "sha256",
            Digests::General(pairs) => pairs.iter().any(|(a, _)| a == algorithm),
        }
    }
}

impl std::borrow::Borrow<str> for ArtifactPath {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for ArtifactPath {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl serde::Serialize for DigestSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Digests::Sha256(bytes) => {
                let hex = hex32(bytes);
                let text = std::str::from_utf8(&hex).unwrap_or("");
                serializer.collect_map(std::iter::once(("sha256", text)))
            }
            Digests::General(pairs) => serializer.collect_map(pairs.iter().map(|(a, d)| (a, d))),
        }
    }
}

/// Lowercase hex of a SHA-256 digest, without an allocation: arithmetic alone, no table and
/// no branch, so that the compiler vectorises it (a link may hold a million digests).
pub(crate) fn hex32(bytes: &[u8; 32]) -> [u8; 64] {
    fn digit(value: u8) -> u8 {
        value + if value < 10 { b'0' } else { b'a' - 10 }
    }
    let mut out = [0u8; 64];
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = digit(byte >> 4);
        pair[1] = digit(byte & 0x0f);
    }
    out
}

/// Lowercase hex of a SHA-256 digest, as a string.
fn hex32_string(bytes: &[u8; 32]) -> String {
    hex32(bytes).iter().map(|&b| char::from(b)).collect()
}

/// The 32 bytes written as 64 lowercase hex digits, or `None` for anything else. A million
/// digests may be read per link, so the digits are turned into values with arithmetic alone,
/// no branch and no table, which the compiler vectorises.
pub(crate) fn unhex32(text: &str) -> Option<[u8; 32]> {
    let text: &[u8; 64] = text.as_bytes().try_into().ok()?;
    let mut values = [0u8; 64];
    let mut valid = true;
    for (value, &c) in values.iter_mut().zip(text) {
        let digit = c.wrapping_sub(b'0');
        let letter = c.wrapping_sub(b'a');
        valid &= (digit < 10) | (letter < 6);
        *value = if digit < 10 {
            digit
        } else {
            letter.wrapping_add(10)
        };
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(values.chunks_exact(2)) {
        *byte = pair[0] << 4 | pair[1];
    }
    valid.then_some(out)
}

/// The artifacts of one side of a link (materials or products): a map from name to digests,
/// held as one sorted list, because a link may hold a million of them and a list costs a
/// fraction of a tree's memory. Lookups are binary searches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Artifacts(Vec<(ArtifactPath, DigestSet)>);

impl Artifacts {
    /// No artifacts.
    pub fn new() -> Artifacts {
        Artifacts::default()
    }

    /// Builds the map from entries in any order; `Err` names an artifact given twice.
    pub fn from_entries(
        mut entries: Vec<(ArtifactPath, DigestSet)>,
    ) -> Result<Artifacts, ArtifactPath> {
        if !entries.windows(2).all(|w| w[0].0 < w[1].0) {
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            if let Some(w) = entries.windows(2).find(|w| w[0].0 == w[1].0) {
                return Err(w[0].0.clone());
            }
        }
        // A list grown by doubling may hold twice what it needs; links are kept whole.
        entries.shrink_to_fit();
        Ok(Artifacts(entries))
    }

    /// Wraps entries already sorted by name with each name once (as a parsed artifact map, or
    /// a recording's sorted and deduplicated files, holds them), without checking again.
    pub(crate) fn from_sorted(mut entries: Vec<(ArtifactPath, DigestSet)>) -> Artifacts {
        debug_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
        entries.shrink_to_fit();
        Artifacts(entries)
    }

    /// How many artifacts.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.0.binary_search_by(|(n, _)| n.as_str().cmp(name)).ok()
    }

    /// The digests of `name`.
    pub fn get(&self, name: &str) -> Option<&DigestSet> {
        self.position(name).map(|i| &self.0[i].1)
    }

    /// Looks `name` up starting at position `from`, for callers that look up names in
    /// ascending order: it gallops forward from `from`, so a walk over sorted names costs
    /// about one comparison each. Returns the position to start the next look-up at, and the
    /// digests if `name` is there.
    pub fn seek(&self, from: usize, name: &str) -> (usize, Option<&DigestSet>) {
        let rest = &self.0[from.min(self.0.len())..];
        let mut bound = 1;
        while bound < rest.len() && rest[bound - 1].0.as_str() < name {
            bound *= 2;
        }
        let window = &rest[..bound.min(rest.len())];
        let at = from + window.partition_point(|(n, _)| n.as_str() < name);
        match self.0.get(at) {
            Some((n, digests)) if n.as_str() == name => (at, Some(digests)),
            _ => (at, None),
        }
    }

    /// Whether `name` is recorded.
    pub fn contains_key(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    /// The artifacts in name order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&ArtifactPath, &DigestSet)> + Clone {
        self.0.iter().map(|(n, d)| (n, d))
    }

    /// The names in order.
    pub fn keys(&self) -> impl Iterator<Item = &ArtifactPath> {
        self.0.iter().map(|(n, _)| n)
    }
}

/// Finds two names that a case-insensitive or normalising file system would take for one
/// file (`README` and `readme`, or `café` composed and decomposed), so that one cannot stand
/// in for the other (THREATS F11).
pub fn ambiguous_names(artifacts: &Artifacts) -> Option<(String, String)> {
    use std::borrow::Cow;
    use unicode_normalization::UnicodeNormalization;
    fn fold(name: &str) -> Cow<'_, str> {
        if name.is_ascii() {
            // Branch-free, so vectorised: nearly every name has no capital.
            if name
                .bytes()
                .fold(false, |upper, b| upper | b.is_ascii_uppercase())
            {
                Cow::Owned(name.to_ascii_lowercase())
            } else {
                Cow::Borrowed(name)
            }
        } else {
            let folded: String = name.to_lowercase().nfc().collect();
            if folded == name {
                Cow::Borrowed(name)
            } else {
                Cow::Owned(folded)
            }
        }
    }
    let pair = |a: &str, b: &str| {
        let (first, second) = if a < b { (a, b) } else { (b, a) };
        Some((first.to_owned(), second.to_owned()))
    };
    // Two names that are their own folds differ in their folds too: a collision needs a name
    // that folds to something else. Such a name (few in most trees, none in many) collides
    // with a name that is its own fold, found by a look-up, or with another such name.
    let mut changed: Vec<(String, &str)> = artifacts
        .keys()
        .filter_map(|name| match fold(name.as_str()) {
            Cow::Owned(folded) => Some((folded, name.as_str())),
            Cow::Borrowed(_) => None,
        })
        .collect();
    for (folded, name) in &changed {
        if let Some(i) = artifacts.position(folded) {
            let other = artifacts.0[i].0.as_str();
            if matches!(fold(other), Cow::Borrowed(_)) {
                return pair(name, other);
            }
        }
    }
    changed.sort_unstable();
    changed
        .windows(2)
        .find(|w| w[0].0 == w[1].0)
        .and_then(|w| pair(w[0].1, w[1].1))
}

/// Collects entries; where a name repeats, the last one counts (as in a JSON object read by
/// most parsers; Tollgate's own parsers refuse repeats before this point).
impl FromIterator<(ArtifactPath, DigestSet)> for Artifacts {
    fn from_iter<I: IntoIterator<Item = (ArtifactPath, DigestSet)>>(iter: I) -> Artifacts {
        let mut entries: Vec<(ArtifactPath, DigestSet)> = iter.into_iter().collect();
        entries.reverse();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|later, earlier| later.0 == earlier.0);
        Artifacts(entries)
    }
}

impl serde::Serialize for Artifacts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f1_non_normalised_paths_rejected() {
        for path in [
            "dir/../foo",
            "./foo",
            "foo//bar",
            "foo/",
            ".",
            "..",
            "a/./b",
            "",
        ] {
            assert!(
                matches!(ArtifactPath::new(path), Err(ArtifactError::Path { .. })),
                "{path}"
            );
        }
    }

    #[test]
    fn f2_absolute_and_drive_paths_rejected() {
        for path in ["/etc/passwd", "C:\\x", "C:/x", "\\\\server\\share", "//x"] {
            assert!(ArtifactPath::new(path).is_err(), "{path}");
        }
    }

    #[test]
    fn f3_f4_backslashes_and_control_characters_rejected() {
        for path in ["a\\b", "a\nb", "a\tb", "a\u{7f}b", "a\rb"] {
            assert!(ArtifactPath::new(path).is_err(), "{path:?}");
        }
    }

    #[test]
    fn f4_control_characters_are_exactly_those_unicode_calls_control() {
        // The byte-level check against the standard library's, for every character.
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            let path = format!("a{c}b");
            let refused = matches!(
                ArtifactPath::new(&path),
                Err(ArtifactError::Path { reason, .. }) if reason == "contains a control character"
            );
            assert_eq!(refused, c.is_control(), "U+{:04X}", u32::from(c));
        }
    }

    #[test]
    fn ordinary_names_accepted() {
        for path in [
            "foo",
            "dir/sub/file.tar.gz",
            "héllo wörld.txt",
            "quote\"name",
            ".hidden",
            "a..b",
            "dir:foo",
        ] {
            assert_eq!(ArtifactPath::new(path).expect(path).as_str(), path);
        }
    }

    #[test]
    fn f11_case_and_normalisation_collisions_are_found() {
        let set = |names: &[&str]| -> Artifacts {
            names
                .iter()
                .map(|n| {
                    (
                        ArtifactPath::new(n).expect("name"),
                        DigestSet::sha256(&[0; 32]),
                    )
                })
                .collect()
        };
        assert!(ambiguous_names(&set(&["README", "readme"])).is_some());
        assert!(ambiguous_names(&set(&["caf\u{e9}", "cafe\u{301}"])).is_some());
        assert!(ambiguous_names(&set(&["dir/A.txt", "dir/a.TXT"])).is_some());
        assert!(ambiguous_names(&set(&["a", "b", "a/b", "ab"])).is_none());
        // Two names that both fold to a third, absent one; and the pair named in order.
        assert_eq!(
            ambiguous_names(&set(&["x/Makefile", "x/MAKEFILE", "y"])),
            Some(("x/MAKEFILE".into(), "x/Makefile".into()))
        );
        assert_eq!(
            ambiguous_names(&set(&["src/Main.java", "src/main.java", "z"])),
            Some(("src/Main.java".into(), "src/main.java".into()))
        );
        // Upper case and decomposed forms alone, without a twin, are no collision.
        assert!(ambiguous_names(&set(&["README", "Caf\u{e9}", "nai\u{308}ve"])).is_none());
    }

    #[test]
    fn seek_finds_names_walking_forward() {
        let names: Vec<String> = (0..1000).map(|i| format!("dir/{i:04}")).collect();
        let artifacts: Artifacts = names
            .iter()
            .map(|n| {
                (
                    ArtifactPath::new(n).expect("name"),
                    DigestSet::sha256(&[1; 32]),
                )
            })
            .collect();
        let mut cursor = 0;
        for (i, name) in names.iter().enumerate().filter(|(i, _)| i % 7 == 3) {
            let (at, found) = artifacts.seek(cursor, name);
            assert_eq!(at, i);
            assert!(found.is_some(), "{name}");
            cursor = at;
            let (_, missing) = artifacts.seek(cursor, &format!("{name}x"));
            assert!(missing.is_none());
        }
        assert_eq!(artifacts.seek(0, "zzz"), (1000, None));
        assert_eq!(artifacts.seek(5000, "dir/0001").1, None);
    }

    #[test]
    fn sha256_hex_is_read_back_exactly_and_nothing_else_is() {
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
        for case in [[0u8; 32], [0xff; 32], bytes] {
            let hex = hex32(&case);
            let text = std::str::from_utf8(&hex).expect("ascii");
            assert_eq!(text, hex::encode(case));
            assert_eq!(unhex32(text), Some(case));
        }
        let good = hex::encode(bytes);
        // Every byte value that is not a lowercase hex digit, at every position.
        for position in 0..64 {
            for bad in (0u8..=0x7f).filter(|b| !matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                let mut text = good.clone().into_bytes();
                text[position] = bad;
                let text = String::from_utf8(text).expect("ascii");
                assert_eq!(unhex32(&text), None, "{text:?}");
            }
        }
        let non_ascii = format!("{}é", &good[..62]);
        assert_eq!(non_ascii.len(), 64);
        for text in [&good[..63], &format!("{good}0"), "", &non_ascii] {
            assert_eq!(unhex32(text), None, "{text:?}");
        }
    }

    #[test]
    fn f10_malformed_digests_rejected() {
        let one = |alg: &str, value: &str| {
            DigestSet::new("p", BTreeMap::from([(alg.to_owned(), value.to_owned())]))
        };
        let good = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert!(one("sha256", good).is_ok());
        assert!(one("sha256", &good[..62]).is_err());
        assert!(one("sha256", &good.to_uppercase()).is_err());
        assert!(one("sha256", &format!("{}zz", &good[..62])).is_err());
        assert!(one("sha256", "").is_err());
        assert!(one("sha 256", good).is_err());
        assert!(one("newhash", "abcd").is_ok());
        assert!(one("newhash", "abc").is_err());
        assert!(DigestSet::new("p", BTreeMap::new()).is_err());
    }
}
