//! Shipping bundles through OCI registries: a bundle stored as an OCI artifact whose `subject`
//! is the image it attests (OCI 1.1), found again by the Referrers API or, on registries
//! without it, by the tag `sha256-<image digest>`.
//!
//! Every blob and manifest read is checked against its digest. Credentials come from
//! `TOLLGATE_REGISTRY_USERNAME`/`TOLLGATE_REGISTRY_PASSWORD`, else from a docker-style
//! `config.json` (`$DOCKER_CONFIG`, else `~/.docker`); registries that hand out bearer tokens
//! are asked for one. TLS always, unless `insecure` is set for a loopback registry (tests).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::base::limits::Limits;

/// The bundle's media type inside the artifact.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.tollgate.bundle.v1+json";
/// The artifact type of an attestation manifest.
pub const ARTIFACT_TYPE: &str = "application/vnd.tollgate.bundle.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
    application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.docker.distribution.manifest.list.v2+json";

/// Why talking to a registry failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The image reference is not one.
    #[error("image reference {0:?}: expected REGISTRY/REPOSITORY[:TAG|@sha256:DIGEST]")]
    Reference(String),
    /// The registry could not be reached or answered with an error.
    #[error("{url}: {reason}")]
    Http {
        /// What was asked.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// Something read does not match its digest.
    #[error("{what} does not match its digest {digest}: the registry returned other content")]
    Digest {
        /// What was read.
        what: String,
        /// The digest it should have.
        digest: String,
    },
    /// No attestation is attached to the image.
    #[error("no Tollgate attestation is attached to {image}")]
    NoAttestation {
        /// The image, by digest.
        image: String,
    },
    /// Plain HTTP was asked for a registry that is not on this machine.
    #[error("plain HTTP is allowed only for a registry on this machine (localhost), not {0}")]
    InsecureRemote(String),
    /// A document the registry returned is not what it should be.
    #[error("{0}")]
    Protocol(String),
    /// The request could not be sent or its answer read (connection, TLS, a body over the
    /// size limit).
    #[error("{url}: {source}")]
    Transport {
        /// What was asked.
        url: String,
        /// The HTTP client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A JSON document the registry returned does not decode.
    #[error("{what}: {source}")]
    Json {
        /// Which document.
        what: String,
        /// The decoder's error.
        #[source]
        source: serde_json::Error,
    },
}

/// An image reference: `registry/repository` and a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The registry's host (and port).
    pub registry: String,
    /// The repository.
    pub repository: String,
    /// A tag or a `sha256:` digest.
    pub reference: String,
}

impl ImageRef {
    /// Parses `[REGISTRY/]REPOSITORY[:TAG|@sha256:DIGEST]`; no registry means Docker Hub.
    pub fn parse(text: &str) -> Result<ImageRef, RegistryError> {
        let fail = || RegistryError::Reference(text.to_owned());
        let (name, reference) = match text.split_once('@') {
            Some((name, digest)) => (name, digest.to_owned()),
            None => match text.rsplit_once(':') {
                Some((name, tag)) if !tag.contains('/') => (name, tag.to_owned()),
                _ => (text, "latest".to_owned()),
            },
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_owned(), rest.to_owned())
            }
            _ if name.contains('/') => ("registry-1.docker.io".to_owned(), name.to_owned()),
            _ => ("registry-1.docker.io".to_owned(), format!("library/{name}")),
        };
        let digest_ok = !text.contains('@')
            || reference.strip_prefix("sha256:").is_some_and(|hex| {
                hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            });
        let valid = !name.is_empty()
            && digest_ok
            && repository.split('/').all(|part| !part.is_empty())
            && !reference.is_empty()
            && repository
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b));
        if !valid {
            return Err(fail());
        }
        Ok(ImageRef {
            registry,
            repository,
            reference,
        })
    }

    fn is_loopback(&self) -> bool {
        let host = self
            .registry
            .rsplit_once(':')
            .map_or(self.registry.as_str(), |(h, _)| h);
        matches!(host, "localhost" | "127.0.0.1" | "[::1]")
    }
}

/// A descriptor: what a manifest points at.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The media type.
    pub media_type: String,
    /// `sha256:...`.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
    /// The artifact type, on a referrer.
    #[serde(default)]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    fn to_value(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A registry's answer.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn parts(self) -> (u16, Vec<(String, String)>, Vec<u8>) {
        (self.status, self.headers, self.body)
    }
}

/// How a [`Client`] talks to its registry.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Plain HTTP, for a registry on this machine only.
    pub insecure: bool,
    /// The largest manifest or blob read. Default [`Limits::max_registry_bytes`].
    pub max_bytes: u64,
    /// How long one request (and its answer) may take.
    pub timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            insecure: false,
            max_bytes: Limits::DEFAULT.max_registry_bytes,
            timeout: Duration::from_secs(120),
        }
    }
}

/// A client for one registry.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    basic: Option<String>,
    token: Option<String>,
    max_bytes: u64,
}

impl Client {
    /// A client for the registry of `image`. `options.insecure` speaks plain HTTP, and only to
    /// a registry on this machine.
    pub fn new(image: &ImageRef, options: &ClientOptions) -> Result<Client, RegistryError> {
        if options.insecure && !image.is_loopback() {
            return Err(RegistryError::InsecureRemote(image.registry.clone()));
        }
        let scheme = if options.insecure { "http" } else { "https" };
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(options.timeout))
            .timeout_connect(Some(options.timeout.min(Duration::from_secs(10))))
            .build();
        Ok(Client {
            agent: config.into(),
            base: format!("{scheme}://{}", image.registry),
            basic: credentials(&image.registry),
            token: None,
            max_bytes: options.max_bytes,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v2/{path}", self.base)
    }

    /// Sends a request, answering one bearer-token challenge if the registry asks.
    fn send(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Reply, RegistryError> {
        for attempt in 0..2 {
            let auth = match (&self.token, &self.basic) {
                (Some(token), _) => Some(format!("Bearer {token}")),
                (None, Some(basic)) => Some(format!("Basic {basic}")),
                (None, None) => None,
            };
            let mut request = ureq::http::Request::builder().method(method).uri(url);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            if let Some(auth) = &auth {
                request = request.header("Authorization", auth);
            }
            let request = request
                .body(body.map(<[u8]>::to_vec).unwrap_or_default())
                .map_err(|e| transport(url, e))?;
            let mut response = self.agent.run(request).map_err(|e| transport(url, e))?;
            let status = response.status().as_u16();
            let headers: Vec<(String, String)> = response
                .headers()
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect();
            if status == 401 && attempt == 0 {
                let challenge = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("www-authenticate"))
                    .map(|(_, v)| v.clone());
                if let Some(params) = challenge
                    .as_deref()
                    .map(bearer_params)
                    .transpose()?
                    .flatten()
                {
                    self.token = Some(self.bearer(&params)?);
                    continue;
                }
            }
            let bytes = if method == "HEAD" {
                Vec::new()
            } else {
                response
                    .body_mut()
                    .with_config()
                    .limit(self.max_bytes)
                    .read_to_vec()
                    .map_err(|e| transport(url, e))?
            };
            return Ok(Reply {
                status,
                headers,
                body: bytes,
            });
        }
        Err(http(url, "the registry refused the credentials".into()))
    }

    /// Asks the challenge's realm for a token, for the challenge's service and scope.
    fn bearer(&mut self, params: &BTreeMap<String, String>) -> Result<String, RegistryError> {
        let realm = params
            .get("realm")
            .ok_or_else(|| RegistryError::Protocol("a bearer challenge without a realm".into()))?;
        let mut url = realm.clone();
        let mut query = Vec::new();
        if let Some(service) = params.get("service") {
            query.push(format!("service={service}"));
        }
        if let Some(scope) = params.get("scope") {
            query.push(format!("scope={scope}"));
        }
        if !query.is_empty() {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&query.join("&"));
        }
        let mut request = self.agent.get(&url);
        if let Some(basic) = &self.basic {
            request = request.header("Authorization", &format!("Basic {basic}"));
        }
        let mut response = request.call().map_err(|e| transport(&url, e))?;
        if !response.status().is_success() {
            return Err(http(
                &url,
                format!("token request: HTTP {}", response.status()),
            ));
        }
        let bytes = response
            .body_mut()
            .read_to_vec()
            .map_err(|e| transport(&url, e))?;
        let body: Value = serde_json::from_slice(&bytes).map_err(|source| RegistryError::Json {
            what: "the token response".into(),
            source,
        })?;
        body.get("token")
            .or_else(|| body.get("access_token"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| RegistryError::Protocol("the token response holds no token".into()))
    }

    /// The manifest `reference` names, checked against its digest: (bytes, media type, digest).
    pub fn manifest(
        &mut self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<(Vec<u8>, String, String)>, RegistryError> {
        let url = self.url(&format!("{repository}/manifests/{reference}"));
        let (status, headers, bytes) = self.send("GET", &url, &[("Accept", ACCEPT)], None)?.parts();
        if status == 404 {
            return Ok(None);
        }
        if status != 200 {
            return Err(http(&url, format!("HTTP {status}")));
        }
        let digest = sha256_digest(&bytes);
        if reference.starts_with("sha256:") && reference != digest {
            return Err(RegistryError::Digest {
                what: format!("manifest {repository}@{reference}"),
                digest: reference.to_owned(),
            });
        }
        let media_type = header(&headers, "content-type").unwrap_or_default();
        Ok(Some((bytes, media_type, digest)))
    }

    /// The blob `descriptor` names, checked against its digest and size.
    pub fn blob(
        &mut self,
        repository: &str,
        descriptor: &Descriptor,
    ) -> Result<Vec<u8>, RegistryError> {
        let url = self.url(&format!("{repository}/blobs/{}", descriptor.digest));
        let (status, _, bytes) = self.send("GET", &url, &[], None)?.parts();
        if status != 200 {
            return Err(http(&url, format!("HTTP {status}")));
        }
        if sha256_digest(&bytes) != descriptor.digest || bytes.len() as u64 != descriptor.size {
            return Err(RegistryError::Digest {
                what: format!("blob {repository}@{}", descriptor.digest),
                digest: descriptor.digest.clone(),
            });
        }
        Ok(bytes)
    }

    /// Uploads a blob (monolithically) unless the registry has it; returns its descriptor.
    pub fn push_blob(
        &mut self,
        repository: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Descriptor, RegistryError> {
        let digest = sha256_digest(bytes);
        let descriptor = Descriptor {
            media_type: media_type.to_owned(),
            digest: digest.clone(),
            size: bytes.len() as u64,
            artifact_type: None,
        };
        let url = self.url(&format!("{repository}/blobs/{digest}"));
        if self.send("HEAD", &url, &[], None)?.parts().0 == 200 {
            return Ok(descriptor);
        }
        let start = self.url(&format!("{repository}/blobs/uploads/"));
        let (status, headers, _) = self.send("POST", &start, &[], Some(&[]))?.parts();
        if status != 202 {
            return Err(http(&start, format!("starting an upload: HTTP {status}")));
        }
        let location = header(&headers, "location")
            .ok_or_else(|| RegistryError::Protocol("an upload without a Location".into()))?;
        let location = if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            location
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{separator}digest={digest}");
        let (status, _, _) = self
            .send(
                "PUT",
                &put,
                &[("Content-Type", "application/octet-stream")],
                Some(bytes),
            )?
            .parts();
        if status != 201 {
            return Err(http(&put, format!("uploading a blob: HTTP {status}")));
        }
        Ok(descriptor)
    }

    /// Stores a manifest under `reference` (a tag or its digest).
    pub fn push_manifest(
        &mut self,
        repository: &str,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<(), RegistryError> {
        let url = self.url(&format!("{repository}/manifests/{reference}"));
        let (status, _, body) = self
            .send("PUT", &url, &[("Content-Type", media_type)], Some(bytes))?
            .parts();
        if status != 201 {
            return Err(http(
                &url,
                format!(
                    "storing a manifest: HTTP {status}: {}",
                    String::from_utf8_lossy(&body).trim()
                ),
            ));
        }
        Ok(())
    }

    /// The referrers of `digest` with the bundle's artifact type, or `None` if the registry
    /// has no Referrers API.
    fn referrers(
        &mut self,
        repository: &str,
        digest: &str,
    ) -> Result<Option<Vec<Descriptor>>, RegistryError> {
        let url = self.url(&format!("{repository}/referrers/{digest}"));
        let (status, _, bytes) = self
            .send("GET", &url, &[("Accept", OCI_INDEX)], None)?
            .parts();
        if status != 200 {
            return Ok(None);
        }
        #[derive(Deserialize)]
        struct Index {
            #[serde(default)]
            manifests: Vec<Descriptor>,
        }
        let index: Index =
            serde_json::from_slice(&bytes).map_err(|source| RegistryError::Json {
                what: format!("referrers of {digest}"),
                source,
            })?;
        Ok(Some(
            index
                .manifests
                .into_iter()
                .filter(|d| d.artifact_type.as_deref() == Some(ARTIFACT_TYPE))
                .collect(),
        ))
    }
}

/// The auth-params of a `WWW-Authenticate` value whose first challenge is `Bearer`, names in
/// lower case; `None` if the first challenge has another scheme.
///
/// Parsed as RFC 7235 section 2.1 writes them: `name=token` or `name="quoted string"` (a
/// backslash escapes the next character), separated by commas outside quotes, with optional
/// white space around the commas and the `=`. The list ends at the end of the value or at a
/// token not followed by `=` (the next challenge's scheme). A name given twice, an
/// unterminated quote or stray text is a protocol error, never a guess.
fn bearer_params(header: &str) -> Result<Option<BTreeMap<String, String>>, RegistryError> {
    const WHITE_SPACE: [char; 2] = [' ', '\t'];
    let malformed =
        || RegistryError::Protocol("a malformed bearer challenge in WWW-Authenticate".into());
    let token_end = |text: &str| text.find(|c: char| !is_tchar(c)).unwrap_or(text.len());
    let header = header.trim_start_matches(WHITE_SPACE);
    let (scheme, mut rest) = header.split_at(token_end(header));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    let mut params = BTreeMap::new();
    if !(rest.is_empty() || rest.starts_with(WHITE_SPACE) || rest.starts_with(',')) {
        return Err(malformed());
    }
    loop {
        // Empty list elements are allowed (RFC 7230 section 7).
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            break;
        }
        let (name, after) = rest.split_at(token_end(rest));
        if name.is_empty() {
            return Err(malformed());
        }
        let Some(after) = after.trim_start_matches(WHITE_SPACE).strip_prefix('=') else {
            // A token alone starts the next challenge (or is a token68, which a bearer
            // challenge does not use).
            if after.is_empty() || after.starts_with(WHITE_SPACE) || after.starts_with(',') {
                break;
            }
            return Err(malformed());
        };
        let after = after.trim_start_matches(WHITE_SPACE);
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut end = None;
            let mut chars = quoted.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    '\\' => match chars.next() {
                        Some((_, escaped)) if !escaped.is_control() || escaped == '\t' => {
                            value.push(escaped);
                        }
                        _ => return Err(malformed()),
                    },
                    c if c.is_control() && c != '\t' => return Err(malformed()),
                    c => value.push(c),
                }
            }
            let end = end.ok_or_else(malformed)?;
            (value, &quoted[end..])
        } else {
            let (value, tail) = after.split_at(token_end(after));
            if value.is_empty() {
                return Err(malformed());
            }
            (value.to_owned(), tail)
        };
        if params.insert(name.to_ascii_lowercase(), value).is_some() {
            return Err(malformed());
        }
        rest = tail.trim_start_matches(WHITE_SPACE);
        if rest.is_empty() {
            break;
        }
        rest = rest.strip_prefix(',').ok_or_else(malformed)?;
    }
    Ok(Some(params))
}

/// A `tchar` of RFC 7230 section 3.2.6: a character of a token.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn transport(
    url: &str,
    source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
) -> RegistryError {
    RegistryError::Transport {
        url: url.to_owned(),
        source: source.into(),
    }
}

fn http(url: &str, reason: String) -> RegistryError {
    RegistryError::Http {
        url: url.to_owned(),
        reason,
    }
}

fn header(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

/// `user:password` in base64, from the environment or a docker-style config file.
fn credentials(registry: &str) -> Option<String> {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    if let (Ok(user), Ok(password)) = (
        std::env::var("TOLLGATE_REGISTRY_USERNAME"),
        std::env::var("TOLLGATE_REGISTRY_PASSWORD"),
    ) {
        return Some(engine.encode(format!("{user}:{password}")));
    }
    let folder = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".docker"))
        })?;
    let text = std::fs::read(folder.join("config.json")).ok()?;
    let config: Value = serde_json::from_slice(&text).ok()?;
    let auths = config.get("auths")?.as_object()?;
    let host = if registry == "registry-1.docker.io" {
        "https://index.docker.io/v1/"
    } else {
        registry
    };
    auths
        .iter()
        .find(|(key, _)| {
            key.as_str() == host
                || key.trim_start_matches("https://").trim_end_matches('/') == registry
        })
        .and_then(|(_, entry)| entry.get("auth")?.as_str().map(str::to_owned))
}

/// The image's manifest descriptor (its digest is the one `docker pull IMAGE@sha256:` uses).
pub fn resolve(client: &mut Client, image: &ImageRef) -> Result<Descriptor, RegistryError> {
    let (bytes, media_type, digest) = client
        .manifest(&image.repository, &image.reference)?
        .ok_or_else(|| {
            http(
                &client.url(&format!(
                    "{}/manifests/{}",
                    image.repository, image.reference
                )),
                "no such image".into(),
            )
        })?;
    Ok(Descriptor {
        media_type: if media_type.is_empty() {
            OCI_MANIFEST.to_owned()
        } else {
            media_type
        },
        digest,
        size: bytes.len() as u64,
        artifact_type: None,
    })
}

/// The fallback tag of an attestation for an image digest: `sha256-<hex>`.
pub fn fallback_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

/// Stores `bundle` as an artifact whose subject is `image`, by digest and by the fallback
/// tag. Returns the image's and the artifact manifest's digests.
pub fn push(
    client: &mut Client,
    image: &ImageRef,
    bundle: &[u8],
) -> Result<(String, String), RegistryError> {
    let subject = resolve(client, image)?;
    let repository = &image.repository;
    let config = client.push_blob(repository, EMPTY_MEDIA_TYPE, b"{}")?;
    let layer = client.push_blob(repository, BUNDLE_MEDIA_TYPE, bundle)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": config.to_value(),
        "layers": [layer.to_value()],
        "subject": subject.to_value(),
        "annotations": {"org.opencontainers.image.title": "release.bundle.json"},
    });
    let bytes =
        serde_json::to_vec(&manifest).map_err(|e| RegistryError::Protocol(e.to_string()))?;
    let digest = sha256_digest(&bytes);
    client.push_manifest(repository, &digest, &bytes, OCI_MANIFEST)?;
    client.push_manifest(
        repository,
        &fallback_tag(&subject.digest),
        &bytes,
        OCI_MANIFEST,
    )?;
    Ok((subject.digest, digest))
}

/// Fetches the bundle attached to `image`: by the Referrers API, else by the fallback tag.
/// Returns the image's digest and the bundle's bytes.
pub fn pull(client: &mut Client, image: &ImageRef) -> Result<(String, Vec<u8>), RegistryError> {
    let subject = resolve(client, image)?;
    let repository = &image.repository;
    let candidates = match client.referrers(repository, &subject.digest)? {
        Some(found) if !found.is_empty() => found.into_iter().map(|d| d.digest).collect(),
        _ => vec![fallback_tag(&subject.digest)],
    };
    for reference in candidates {
        let Some((bytes, _, _)) = client.manifest(repository, &reference)? else {
            continue;
        };
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Manifest {
            #[serde(default)]
            artifact_type: Option<String>,
            #[serde(default)]
            layers: Vec<Descriptor>,
            #[serde(default)]
            subject: Option<Descriptor>,
        }
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|source| RegistryError::Json {
                what: "attestation manifest".into(),
                source,
            })?;
        // The artifact must say it attests this very image.
        if manifest.subject.as_ref().map(|s| s.digest.as_str()) != Some(subject.digest.as_str())
            || manifest.artifact_type.as_deref() != Some(ARTIFACT_TYPE)
        {
            continue;
        }
        let Some(layer) = manifest
            .layers
            .iter()
            .find(|l| l.media_type == BUNDLE_MEDIA_TYPE)
        else {
            continue;
        };
        let bundle = client.blob(repository, layer)?;
        return Ok((subject.digest, bundle));
    }
    Err(RegistryError::NoAttestation {
        image: format!("{}/{}@{}", image.registry, repository, subject.digest),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_parse_as_docker_reads_them() {
        let parse = |text: &str| ImageRef::parse(text).expect(text);
        assert_eq!(
            parse("127.0.0.1:5000/app:1.0"),
            ImageRef {
                registry: "127.0.0.1:5000".into(),
                repository: "app".into(),
                reference: "1.0".into()
            }
        );
        assert_eq!(parse("ghcr.io/org/app").reference, "latest");
        assert_eq!(parse("alpine").repository, "library/alpine");
        assert_eq!(parse("org/app:2").registry, "registry-1.docker.io");
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(parse(&format!("localhost/app@{digest}")).reference, digest);
        assert!(ImageRef::parse("Registry.io/UPPER:1").is_err());
        assert!(ImageRef::parse("").is_err());
        assert!(ImageRef::parse("host.io//app").is_err());
        assert!(ImageRef::parse("host.io/app@sha256:abc").is_err());
    }

    fn params(header: &str) -> BTreeMap<String, String> {
        bearer_params(header)
            .expect(header)
            .expect("a bearer challenge")
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_quoted_comma_stays_inside_the_bearer_scope() {
        assert_eq!(
            params(
                r#"Bearer realm="https://auth.io/token",service="reg",scope="repository:app:pull,push""#
            ),
            map(&[
                ("realm", "https://auth.io/token"),
                ("service", "reg"),
                ("scope", "repository:app:pull,push"),
            ])
        );
    }

    #[test]
    fn bearer_params_in_another_order_with_spaces_and_tokens_parse_alike() {
        let expected = map(&[
            ("realm", "https://auth.io/token"),
            ("service", "reg"),
            ("scope", "repository:app:pull,push"),
        ]);
        for header in [
            r#"Bearer scope="repository:app:pull,push", service=reg, realm="https://auth.io/token""#,
            "bearer  service = \"reg\" ,\tscope=\"repository:app:pull,push\",,realm=\"https://auth.io/token\"  ",
            r#"BEARER Realm="https://auth.io/token",SCOPE="repository:app:pull,push",Service=reg"#,
        ] {
            assert_eq!(params(header), expected, "{header}");
        }
    }

    #[test]
    fn backslash_escapes_in_a_quoted_bearer_param_are_undone() {
        assert_eq!(
            params(r#"Bearer realm="https://auth.io/token",scope="a \"quoted\", b\\c \d""#),
            map(&[
                ("realm", "https://auth.io/token"),
                ("scope", r#"a "quoted", b\c d"#),
            ])
        );
    }

    #[test]
    fn the_bearer_params_end_at_the_next_challenge() {
        assert_eq!(
            params(r#"Bearer realm="https://auth.io/token", scope="a,b", Basic realm="x""#),
            map(&[("realm", "https://auth.io/token"), ("scope", "a,b")])
        );
        assert!(
            bearer_params(r#"Basic realm="x", Bearer realm="y""#)
                .expect("well formed")
                .is_none()
        );
        assert!(
            bearer_params("Bearerish realm=x")
                .expect("well formed")
                .is_none()
        );
    }

    #[test]
    fn a_malformed_bearer_challenge_is_refused_not_guessed() {
        for header in [
            r#"Bearer realm="https://auth.io/token"#,
            r#"Bearer realm="a" scope="b""#,
            r#"Bearer realm="a", realm="b""#,
            "Bearer realm=, scope=b",
            "Bearer realm=a\"b\"",
            "Bearer realm=\"a\\\"",
            "Bearer realm=\"a\nb\"",
            "Bearer, =a",
        ] {
            assert!(
                matches!(bearer_params(header), Err(RegistryError::Protocol(_))),
                "{header}"
            );
        }
    }
}
