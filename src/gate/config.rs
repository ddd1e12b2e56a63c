//! The decision service's configuration (`gate.toml`): the security team's file, refused at
//! start with its file, field and reason when anything in it is wrong, so that a service never
//! runs on a policy nobody meant.
//!
//! ```toml
//! listen = "127.0.0.1:8443"
//! tls_cert = "gate.crt"
//! tls_key = "gate.key"
//! store = "decisions.sqlite"
//! signing_key = "gate.pem"              # signs the service's VSAs
//! verifier_id = "https://gate.example.com"
//! deadline = "8s"
//! insecure_registries = ["127.0.0.1:5000"]   # plain HTTP, loopback only
//!
//! [[policy]]
//! name = "app"
//! images = ["registry.example.com/app/*"]
//! layout_keys = ["owner.pub"]
//! resource_uri = "pkg:oci/app"
//! vsa_keys = ["ci-verifier.pub"]        # VSAs from these verifiers give the fast path
//! vsa_max_age = "24h"
//! ```
//!
//! Paths are relative to the config file's folder. Plain HTTP (no `tls_cert`/`tls_key`) is
//! allowed only on a loopback address and only with `insecure_http = true`. An image is
//! decided by the first policy, in file order, one of whose `images` patterns matches its
//! reference without tag or digest (`*` matches within one path segment, `**` across
//! segments); an image no policy matches is refused.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::base::fsio;
use crate::base::limits::{Limit, Limits};
use crate::model::keyring::KeyRing;
use crate::model::keys::PublicKey;

/// The longest decision deadline a config may set: an admission webhook times out at 30 s.
pub const MAX_DEADLINE: chrono::Duration = chrono::Duration::seconds(30);

/// Why a config is refused: the file, the field (`policy[1].layout_keys[0]`) and the reason.
#[derive(Debug, thiserror::Error)]
#[error("{}: {field}: {reason}", file.display())]
pub struct ConfigError {
    /// The config file.
    pub file: PathBuf,
    /// The field, as a path into the file (`listen`, `policy[0].images[2]`), or `(file)`.
    pub field: String,
    /// What is wrong and what to do.
    pub reason: String,
}

/// A checked configuration.
#[derive(Debug, Clone)]
pub struct GateConfig {
    /// The config file it was read from.
    pub file: PathBuf,
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The certificate and key files for HTTPS; `None` only for plain HTTP on loopback.
    pub tls: Option<Tls>,
    /// The decision store's file.
    pub store: PathBuf,
    /// The private key file that signs the service's VSAs.
    pub signing_key: PathBuf,
    /// The service's verifier id, written into its VSAs.
    pub verifier_id: String,
    /// How long a decision may take before the answer is a deny that says so.
    pub deadline: chrono::Duration,
    /// Registries reached over plain HTTP (loopback only), as `host:port`.
    pub insecure_registries: Vec<String>,
    /// Whether the service attaches its VSAs to the images it admitted.
    pub publish_vsa: bool,
    /// The policies, in file order: the first that matches an image decides it.
    pub policies: Vec<Policy>,
}

/// HTTPS certificate and key files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// The certificate chain (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
}

/// One policy: which images it decides and what it trusts.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Its name, unique in the file.
    pub name: String,
    /// The image patterns it decides (`registry.example.com/app/*`).
    pub images: Vec<ImagePattern>,
    /// The keys that must all have signed the layout.
    pub layout_keys: KeyRing,
    /// The layout file's SHA-256 (lowercase hex), when one layout is pinned.
    pub layout_digest: Option<String>,
    /// The resource URI its VSAs state and trusted VSAs must state.
    pub resource_uri: String,
    /// The verifiers whose VSAs give the fast path.
    pub vsa_keys: KeyRing,
    /// How old a trusted VSA may be.
    pub vsa_max_age: Option<chrono::Duration>,
}

/// An image pattern: a repository reference without tag or digest, where `*` matches within
/// one `/`-separated segment and `**` across segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePattern(String);

impl ImagePattern {
    /// The pattern, checked: a registry host and a repository path, no tag or digest, no
    /// space, and `*` only as a segment or part of one.
    pub fn new(text: &str) -> Result<ImagePattern, String> {
        if text.is_empty() || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{text:?} is not an image pattern"));
        }
        if text.contains('@') {
            return Err(format!(
                "{text:?} holds a digest: a pattern names repositories (app/*), and every digest \
                 of them is decided"
            ));
        }
        let last = text.rsplit('/').next().unwrap_or(text);
        if last.contains(':') {
            return Err(format!(
                "{text:?} holds a tag: tags move, so a pattern names repositories only"
            ));
        }
        if !text.contains('/') {
            return Err(format!(
                "{text:?} names no registry: write it in full (registry.example.com/app/*), as \
                 images are decided by their full reference"
            ));
        }
        if text.split('/').any(str::is_empty) {
            return Err(format!("{text:?} has an empty path segment"));
        }
        if text.contains("***") {
            return Err(format!("{text:?}: `***` means nothing; use `*` or `**`"));
        }
        Ok(ImagePattern(text.to_owned()))
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the pattern matches `repository` (a reference without tag or digest).
    pub fn matches(&self, repository: &str) -> bool {
        glob(self.0.as_bytes(), repository.as_bytes())
    }
}

/// `*` within a segment, `**` across segments; iterative backtracking over the last star, so
/// linear in practice and never recursive.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // The last star seen: (pattern index after it, text index it is matched up to, crosses /).
    let mut star: Option<(usize, usize, bool)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            let double = pattern.get(p + 1) == Some(&b'*');
            p += if double { 2 } else { 1 };
            star = Some((p, t, double));
            continue;
        }
        if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
            continue;
        }
        match star {
            // The star takes one more character, if it may (a single star stops at `/`).
            Some((after, taken, crosses)) if crosses || text[taken] != b'/' => {
                star = Some((after, taken + 1, crosses));
                p = after;
                t = taken + 1;
            }
            _ => return false,
        }
    }
    while p < pattern.len() && pattern[p] == b'*' {
        p += 1;
    }
    p == pattern.len()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: String,
    tls_cert: Option<String>,
    tls_key: Option<String>,
    #[serde(default)]
    insecure_http: bool,
    store: String,
    signing_key: String,
    verifier_id: String,
    #[serde(default = "default_deadline")]
    deadline: String,
    #[serde(default)]
    insecure_registries: Vec<String>,
    #[serde(default)]
    publish_vsa: bool,
    #[serde(default, rename = "policy")]
    policies: Vec<RawPolicy>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    name: String,
    images: Vec<String>,
    layout_keys: Vec<String>,
    layout_digest: Option<String>,
    resource_uri: String,
    #[serde(default)]
    vsa_keys: Vec<String>,
    vsa_max_age: Option<String>,
}

fn default_deadline() -> String {
    "8s".to_owned()
}

/// Reads and checks the config at `path`: every key file it names is read, and every field
/// checked, before anything starts.
pub fn load(path: &Path, limits: &Limits) -> Result<GateConfig, ConfigError> {
    let fail = |field: &str, reason: String| ConfigError {
        file: path.to_owned(),
        field: field.to_owned(),
        reason,
    };
    let bytes = fsio::read_capped(path, limits.max_key_file_bytes, Limit::KeyFileBytes)
        .map_err(|e| fail("(file)", e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| fail("(file)", "not UTF-8 text".into()))?;
    let raw: RawConfig = toml::from_str(&text).map_err(|e| {
        let field = e
            .span()
            .map(|span| format!("line {}", text[..span.start].lines().count().max(1)))
            .unwrap_or_else(|| "(file)".to_owned());
        fail(&field, e.message().to_owned())
    })?;
    let base = path.parent().unwrap_or(Path::new("")).to_owned();
    let relative = |file: &str| base.join(file);

    let listen: SocketAddr = raw.listen.parse().map_err(|_| {
        fail(
            "listen",
            format!(
                "{:?} is not an address and port such as \"127.0.0.1:8443\"",
                raw.listen
            ),
        )
    })?;
    let tls = match (&raw.tls_cert, &raw.tls_key) {
        (Some(cert), Some(key)) => {
            if raw.insecure_http {
                return Err(fail(
                    "insecure_http",
                    "set together with tls_cert and tls_key: choose one".into(),
                ));
            }
            for (field, file) in [("tls_cert", cert), ("tls_key", key)] {
                if !relative(file).is_file() {
                    return Err(fail(field, format!("{file:?}: no such file")));
                }
            }
            Some(Tls {
                cert: relative(cert),
                key: relative(key),
            })
        }
        (None, None) => {
            if !raw.insecure_http {
                return Err(fail(
                    "tls_cert",
                    "missing: the service speaks HTTPS (tls_cert and tls_key); plain HTTP only \
                     on loopback, with insecure_http = true"
                        .into(),
                ));
            }
            if !listen.ip().is_loopback() {
                return Err(fail(
                    "insecure_http",
                    format!(
                        "plain HTTP only on a loopback address, not {}: give tls_cert and tls_key",
                        listen.ip()
                    ),
                ));
            }
            None
        }
        (Some(_), None) => return Err(fail("tls_key", "missing: give it with tls_cert".into())),
        (None, Some(_)) => return Err(fail("tls_cert", "missing: give it with tls_key".into())),
    };
    if raw.store.trim().is_empty() {
        return Err(fail(
            "store",
            "empty: name the decision store's file".into(),
        ));
    }
    let signing_key = relative(&raw.signing_key);
    if !signing_key.is_file() {
        return Err(fail(
            "signing_key",
            format!(
                "{:?}: no such file (the private key that signs the service's VSAs)",
                raw.signing_key
            ),
        ));
    }
    if !is_uri(&raw.verifier_id) {
        return Err(fail(
            "verifier_id",
            format!(
                "{:?} is not a URI such as \"https://gate.example.com\"",
                raw.verifier_id
            ),
        ));
    }
    let deadline =
        crate::base::duration::parse(&raw.deadline).map_err(|e| fail("deadline", e.to_string()))?;
    if deadline <= chrono::Duration::zero() || deadline > MAX_DEADLINE {
        return Err(fail(
            "deadline",
            format!(
                "{:?} is out of range: from 1s to {}s (an admission webhook times out at 30 s)",
                raw.deadline,
                MAX_DEADLINE.num_seconds()
            ),
        ));
    }
    for (index, registry) in raw.insecure_registries.iter().enumerate() {
        if !is_loopback_host(registry) {
            return Err(fail(
                &format!("insecure_registries[{index}]"),
                format!(
                    "{registry:?}: plain HTTP to a registry only on loopback (127.0.0.1:PORT, \
                     localhost:PORT, [::1]:PORT)"
                ),
            ));
        }
    }
    if raw.policies.is_empty() {
        return Err(fail(
            "policy",
            "no [[policy]]: the service would refuse every image; write at least one".into(),
        ));
    }
    let mut names = BTreeSet::new();
    let mut patterns = BTreeSet::new();
    let mut policies = Vec::with_capacity(raw.policies.len());
    for (index, p) in raw.policies.into_iter().enumerate() {
        let at = |field: &str| format!("policy[{index}].{field}");
        if p.name.trim().is_empty() {
            return Err(fail(&at("name"), "empty: name the policy".into()));
        }
        if !names.insert(p.name.clone()) {
            return Err(fail(
                &at("name"),
                format!("{:?} names two policies", p.name),
            ));
        }
        if p.images.is_empty() {
            return Err(fail(
                &at("images"),
                "empty: list the image patterns it decides".into(),
            ));
        }
        let mut images = Vec::with_capacity(p.images.len());
        for (i, image) in p.images.iter().enumerate() {
            let pattern = ImagePattern::new(image)
                .map_err(|reason| fail(&at(&format!("images[{i}]")), reason))?;
            if !patterns.insert(image.clone()) {
                return Err(fail(
                    &at(&format!("images[{i}]")),
                    format!(
                        "{image:?} is listed by an earlier policy too: it would never be decided here"
                    ),
                ));
            }
            images.push(pattern);
        }
        if p.layout_keys.is_empty() {
            return Err(fail(
                &at("layout_keys"),
                "empty: list the layout owner's public key files".into(),
            ));
        }
        let layout_keys = ring(&p.layout_keys, &relative, limits)
            .map_err(|(i, reason)| fail(&at(&format!("layout_keys[{i}]")), reason))?;
        let layout_digest = match p.layout_digest {
            Some(digest) => {
                let hex = digest.strip_prefix("sha256:").unwrap_or(&digest);
                if hex.len() != 64
                    || !hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                {
                    return Err(fail(
                        &at("layout_digest"),
                        format!(
                            "{digest:?} is not a SHA-256 (64 lowercase hex digits, sha256: optional)"
                        ),
                    ));
                }
                Some(hex.to_owned())
            }
            None => None,
        };
        if !is_uri(&p.resource_uri) {
            return Err(fail(
                &at("resource_uri"),
                format!("{:?} is not a URI such as \"pkg:oci/app\"", p.resource_uri),
            ));
        }
        let vsa_keys = ring(&p.vsa_keys, &relative, limits)
            .map_err(|(i, reason)| fail(&at(&format!("vsa_keys[{i}]")), reason))?;
        let vsa_max_age = match (&p.vsa_max_age, vsa_keys.is_empty()) {
            (Some(age), false) => Some(
                crate::base::duration::parse(age)
                    .map_err(|e| fail(&at("vsa_max_age"), e.to_string()))?,
            ),
            (None, false) => {
                return Err(fail(
                    &at("vsa_max_age"),
                    "missing: a trusted VSA needs a maximum age (\"24h\", say)".into(),
                ));
            }
            (Some(_), true) => {
                return Err(fail(
                    &at("vsa_max_age"),
                    "set without vsa_keys: no VSA is trusted, so no age applies".into(),
                ));
            }
            (None, true) => None,
        };
        policies.push(Policy {
            name: p.name,
            images,
            layout_keys,
            layout_digest,
            resource_uri: p.resource_uri,
            vsa_keys,
            vsa_max_age,
        });
    }
    Ok(GateConfig {
        file: path.to_owned(),
        listen,
        tls,
        store: relative(&raw.store),
        signing_key,
        verifier_id: raw.verifier_id,
        deadline,
        insecure_registries: raw.insecure_registries,
        publish_vsa: raw.publish_vsa,
        policies,
    })
}

impl GateConfig {
    /// The policy that decides `image` (a reference: `registry/repo[:tag][@digest]`): the first
    /// whose patterns match its repository.
    pub fn policy_for(&self, image: &str) -> Option<&Policy> {
        let repository = repository_of(image);
        self.policies
            .iter()
            .find(|p| p.images.iter().any(|pattern| pattern.matches(repository)))
    }
}

/// The repository part of an image reference: without `@digest` and without `:tag` (a colon
/// in the last segment; one before a `/` is a registry's port).
pub fn repository_of(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    match without_digest[last_slash..].find(':') {
        Some(colon) => &without_digest[..last_slash + colon],
        None => without_digest,
    }
}

/// Reads public key files into a key ring; `Err` names the index and the reason.
fn ring(
    files: &[String],
    relative: &dyn Fn(&str) -> PathBuf,
    limits: &Limits,
) -> Result<KeyRing, (usize, String)> {
    let mut keys = Vec::with_capacity(files.len());
    for (index, file) in files.iter().enumerate() {
        let path = relative(file);
        let bytes = fsio::read_capped(&path, limits.max_key_file_bytes, Limit::KeyFileBytes)
            .map_err(|e| (index, format!("{file:?}: {e}")))?;
        let pem =
            String::from_utf8(bytes).map_err(|_| (index, format!("{file:?}: not a PEM file")))?;
        let key = PublicKey::from_pem(&pem)
            .map_err(|e| (index, format!("{file:?}: not a public key: {e}")))?;
        keys.push(key);
    }
    KeyRing::from_keys(keys).map_err(|e| (0, e.to_string()))
}

/// A URI: a scheme (letter, then letters, digits, `+`, `-`, `.`), a colon and more, no space.
fn is_uri(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// `host:port` on loopback: `127.x.y.z`, `localhost` or `[::1]`.
fn is_loopback_host(text: &str) -> bool {
    let Some((host, port)) = text.rsplit_once(':') else {
        return false;
    };
    if port.parse::<u16>().is_err() {
        return false;
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_within_and_across_segments() {
        let p = |t: &str| ImagePattern::new(t).expect("pattern");
        assert!(p("registry.example.com/app/*").matches("registry.example.com/app/web"));
        assert!(!p("registry.example.com/app/*").matches("registry.example.com/app/web/x"));
        assert!(!p("registry.example.com/app/*").matches("registry.example.com/apps/web"));
        assert!(p("registry.example.com/app/**").matches("registry.example.com/app/web/x"));
        assert!(p("127.0.0.1:5000/app").matches("127.0.0.1:5000/app"));
        assert!(!p("127.0.0.1:5000/app").matches("127.0.0.1:5000/app2"));
        assert!(p("*/app").matches("registry.example.com/app"));
        assert!(!p("*/app").matches("a/b/app"));
        for bad in [
            "app",
            "r.io/app:1.0",
            "r.io/app@sha256:00",
            "r.io//app",
            "r.io/a b",
            "",
            "r.io/***",
        ] {
            assert!(ImagePattern::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_reference_loses_its_tag_and_digest_but_not_its_port() {
        assert_eq!(
            repository_of("127.0.0.1:5000/app:1.0"),
            "127.0.0.1:5000/app"
        );
        assert_eq!(
            repository_of("127.0.0.1:5000/app@sha256:ab"),
            "127.0.0.1:5000/app"
        );
        assert_eq!(repository_of("r.io/team/app:1@sha256:ab"), "r.io/team/app");
        assert_eq!(repository_of("r.io/team/app"), "r.io/team/app");
    }

    #[test]
    fn hosts_and_uris() {
        assert!(is_loopback_host("127.0.0.1:5000"));
        assert!(is_loopback_host("localhost:5000"));
        assert!(is_loopback_host("[::1]:5000"));
        assert!(!is_loopback_host("10.0.0.1:5000"));
        assert!(!is_loopback_host("127.0.0.1"));
        assert!(is_uri("https://gate.example.com"));
        assert!(is_uri("pkg:oci/app"));
        assert!(!is_uri("gate.example.com"));
        assert!(!is_uri("https://a b"));
    }
}
