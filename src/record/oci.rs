//! `oci:PATH`: a container image, from an OCI image layout folder or an archive of one (`docker
//! save` from Docker 25 on, `skopeo copy ... oci-archive:`, `podman save --format oci-archive`).
//!
//! The image is recorded by the digests a registry uses, each blob checked against its digest
//! (and size) while it is read:
//!
//! | name | digest |
//! |---|---|
//! | `oci:PATH` | `sha256` of the image manifest: the digest of `docker pull IMAGE@sha256:...` |
//! | `oci:PATH#config` | `sha256` of the image configuration (the image id) |
//! | `oci:PATH#layer/N` | `sha256` of the N-th layer, from 0, as stored (compressed or not) |
//!
//! An index that lists several images is resolved by `--platform os/arch[/variant]`; without
//! one it is an error that lists them (attestation manifests, whose platform is
//! `unknown/unknown`, are not images and are passed over).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{RecordError, RecordOptions, Recorded};
use crate::base::limits::Limits;
use crate::model::artifact::{ArtifactPath, Artifacts, DigestSet};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    platform: Option<Platform>,
    #[serde(default)]
    annotations: HashMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Platform {
    os: String,
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

impl Platform {
    fn name(&self) -> String {
        match &self.variant {
            Some(variant) => format!("{}/{}/{variant}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayoutFile {
    image_layout_version: String,
}

/// Where the image's files are.
enum Store {
    /// A layout folder: files read when needed.
    Folder(PathBuf),
    /// An archive, read once: small files kept, every blob hashed on the way.
    Archive {
        files: HashMap<String, Vec<u8>>,
        blobs: HashMap<String, (u64, bool)>,
    },
}

struct Image<'a> {
    uri: &'a str,
    store: Store,
    /// The caps on what is read of it.
    limits: Limits,
}

/// A read or decode failure of the image at `uri` (of `what` in it, if given), keeping its cause.
fn broken(
    uri: &str,
    what: Option<String>,
    source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
) -> RecordError {
    RecordError::Oci {
        uri: uri.to_owned(),
        what,
        source: source.into(),
    }
}

fn fail(uri: &str, reason: impl Into<String>) -> RecordError {
    RecordError::Uri {
        uri: uri.to_owned(),
        reason: reason.into(),
    }
}

/// Reads everything from `reader`, hashing it; the bytes are kept if `keep`.
fn hash_reader(
    mut reader: impl Read,
    keep: bool,
) -> std::io::Result<(u64, [u8; 32], Option<Vec<u8>>)> {
    let mut hasher = Sha256::new();
    let mut kept = keep.then(Vec::new);
    let mut buffer = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buffer[..n]);
        if let Some(kept) = &mut kept {
            kept.extend_from_slice(&buffer[..n]);
        }
        total += n as u64;
    }
    Ok((total, hasher.finalize().into(), kept))
}

/// The hex of a `sha256:` digest, checked.
fn sha256_hex<'d>(uri: &str, digest: &'d str) -> Result<&'d str, RecordError> {
    let hex = digest.strip_prefix("sha256:").ok_or_else(|| {
        fail(
            uri,
            format!("digest {digest:?}: only sha256 digests are supported"),
        )
    })?;
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(fail(uri, format!("digest {digest:?} is malformed")));
    }
    Ok(hex)
}

impl Image<'_> {
    fn open<'a>(uri: &'a str, path: &Path, limits: &Limits) -> Result<Image<'a>, RecordError> {
        let meta = std::fs::symlink_metadata(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                RecordError::Missing(uri.to_owned())
            } else {
                broken(uri, None, e)
            }
        })?;
        let store = if meta.is_dir() {
            Store::Folder(path.to_owned())
        } else if meta.is_file() {
            read_archive(uri, path, limits)?
        } else {
            return Err(fail(
                uri,
                "is neither an OCI layout folder nor an archive file",
            ));
        };
        Ok(Image {
            uri,
            store,
            limits: *limits,
        })
    }

    /// A small file of the layout (`oci-layout`, `index.json`).
    fn file(&self, name: &str) -> Result<Vec<u8>, RecordError> {
        let missing = || {
            fail(
                self.uri,
                format!(
                    "no {name}: not an OCI image layout (an archive from an older `docker save` \
                     has none; save with Docker 25 or later, or convert it with `skopeo copy \
                     docker-archive:X oci-archive:Y`)"
                ),
            )
        };
        match &self.store {
            Store::Folder(root) => {
                let path = root.join(name);
                let file = File::open(&path).map_err(|_| missing())?;
                let mut bytes = Vec::new();
                file.take(self.limits.max_oci_json_bytes + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|e| broken(self.uri, Some(name.to_owned()), e))?;
                if bytes.len() as u64 > self.limits.max_oci_json_bytes {
                    return Err(fail(self.uri, format!("{name} is too large")));
                }
                Ok(bytes)
            }
            Store::Archive { files, .. } => files.get(name).cloned().ok_or_else(missing),
        }
    }

    /// Checks that the blob `descriptor` names is there, of its size and digest; returns its
    /// bytes if `json` (a small document to parse).
    fn blob(&self, descriptor: &Descriptor, json: bool) -> Result<Vec<u8>, RecordError> {
        let hex = sha256_hex(self.uri, &descriptor.digest)?;
        let name = format!("blobs/sha256/{hex}");
        if json && descriptor.size > self.limits.max_oci_json_bytes {
            return Err(fail(
                self.uri,
                format!("{} is too large for a manifest", descriptor.digest),
            ));
        }
        let missing = || {
            fail(
                self.uri,
                format!(
                    "blob {} is missing: the image is incomplete",
                    descriptor.digest
                ),
            )
        };
        let (size, matches, bytes) = match &self.store {
            Store::Folder(root) => {
                let file = File::open(root.join(&name)).map_err(|_| missing())?;
                let (size, digest, bytes) = hash_reader(BufReader::new(file), json)
                    .map_err(|e| broken(self.uri, Some(name.clone()), e))?;
                (size, hex::encode(digest) == hex, bytes)
            }
            Store::Archive { files, blobs } => {
                let (size, matches) = *blobs.get(hex).ok_or_else(missing)?;
                (size, matches, files.get(&name).cloned())
            }
        };
        if !matches {
            return Err(fail(
                self.uri,
                format!(
                    "blob {} does not match its digest: the image is corrupt or was tampered \
                     with",
                    descriptor.digest
                ),
            ));
        }
        if size != descriptor.size {
            return Err(fail(
                self.uri,
                format!(
                    "blob {} holds {size} bytes, its descriptor says {}",
                    descriptor.digest, descriptor.size
                ),
            ));
        }
        if json {
            bytes.ok_or_else(|| fail(self.uri, format!("{name} could not be kept")))
        } else {
            Ok(Vec::new())
        }
    }

    fn parse<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        bytes: &[u8],
    ) -> Result<T, RecordError> {
        let value = crate::base::json::parse(bytes)
            .map_err(|e| broken(self.uri, Some(format!("{what} is not valid JSON")), e))?;
        serde_json::from_value(value).map_err(|e| broken(self.uri, Some(what.to_owned()), e))
    }
}

/// Reads an archive once: keeps the small files, hashes every blob.
fn read_archive(uri: &str, path: &Path, limits: &Limits) -> Result<Store, RecordError> {
    let file = File::open(path).map_err(|e| broken(uri, None, e))?;
    let corrupt = |e: std::io::Error| {
        broken(
            uri,
            Some("not a readable tar archive (truncated or corrupt?)".to_owned()),
            e,
        )
    };
    let mut archive = tar::Archive::new(BufReader::new(file));
    let mut files = HashMap::new();
    let mut blobs = HashMap::new();
    let mut kept: u64 = 0;
    for entry in archive.entries().map_err(corrupt)? {
        let entry = entry.map_err(corrupt)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = {
            let path = entry.path().map_err(corrupt)?;
            let text = path.to_string_lossy();
            text.strip_prefix("./").unwrap_or(&text).to_owned()
        };
        let size = entry.header().size().map_err(corrupt)?;
        let keep = size <= limits.max_oci_json_bytes && kept + size <= limits.max_oci_kept_bytes;
        let (read, digest, bytes) = hash_reader(entry, keep).map_err(corrupt)?;
        // Only what can be one of the image's JSON documents is kept, within a bound: an
        // archive of many small files cannot fill the memory.
        let bytes = bytes.filter(|b| b.iter().find(|c| !c.is_ascii_whitespace()) == Some(&b'{'));
        kept += bytes.as_ref().map_or(0, |b| b.len() as u64);
        if read != size {
            return Err(fail(uri, format!("{name}: truncated archive")));
        }
        if let Some(hex) = name.strip_prefix("blobs/sha256/") {
            blobs.insert(hex.to_owned(), (read, hex::encode(digest) == hex));
        }
        if let Some(bytes) = bytes {
            files.insert(name, bytes);
        }
    }
    Ok(Store::Archive { files, blobs })
}

fn is_index(descriptor: &Descriptor) -> bool {
    descriptor.media_type == OCI_INDEX || descriptor.media_type == DOCKER_LIST
}

/// Picks the one image of an index, by platform when there are several.
fn choose(
    uri: &str,
    manifests: Vec<Descriptor>,
    platform: Option<&str>,
) -> Result<Descriptor, RecordError> {
    let images: Vec<Descriptor> = manifests
        .into_iter()
        .filter(|d| {
            !d.platform
                .as_ref()
                .is_some_and(|p| p.os == "unknown" && p.architecture == "unknown")
        })
        .collect();
    let each = || {
        images
            .iter()
            .map(|d| {
                let platform = d
                    .platform
                    .as_ref()
                    .map_or("no platform".into(), Platform::name);
                match d.annotations.get("org.opencontainers.image.ref.name") {
                    Some(reference) => format!("{platform} ({}, {reference})", d.digest),
                    None => format!("{platform} ({})", d.digest),
                }
            })
            .collect::<Vec<_>>()
    };
    let listed = || each().join(", ");
    if let Some(wanted) = platform {
        let mut found = images.iter().filter(|d| {
            d.platform.as_ref().is_some_and(|p| {
                p.name() == wanted
                    || (p.variant.is_some() && format!("{}/{}", p.os, p.architecture) == wanted)
            })
        });
        return match (found.next(), found.next()) {
            (Some(one), None) => Ok(one.clone()),
            (None, _) => Err(fail(
                uri,
                format!(
                    "no image for platform {wanted}; the index lists {}",
                    listed()
                ),
            )),
            (Some(_), Some(_)) => Err(fail(
                uri,
                format!(
                    "several images for platform {wanted}: {}; name the variant too",
                    listed()
                ),
            )),
        };
    }
    match images.len() {
        1 => Ok(images[0].clone()),
        0 => Err(fail(uri, "the index lists no image")),
        _ => Err(RecordError::SeveralImages {
            uri: uri.to_owned(),
            images: each(),
        }),
    }
}

/// Records `oci:PATH` (see the module docs).
pub fn image(path: &str, options: &RecordOptions) -> Result<Recorded, RecordError> {
    let uri = format!("oci:{path}");
    let (folder, full) =
        super::uri::under_root(&uri, path, ("image", "oci:dist/image.tar"), options)?;
    let image = match Image::open(&uri, &full, &options.limits) {
        Err(RecordError::Missing(_)) if options.allow_missing => {
            return Ok(Recorded {
                missing: vec![uri],
                ..Recorded::default()
            });
        }
        other => other?,
    };
    let layout: LayoutFile = image.parse("oci-layout", &image.file("oci-layout")?)?;
    if layout.image_layout_version != "1.0.0" {
        return Err(fail(
            &uri,
            format!(
                "oci-layout version {:?}; only 1.0.0 is known",
                layout.image_layout_version
            ),
        ));
    }
    let index: Index = image.parse("index.json", &image.file("index.json")?)?;
    let mut descriptor = choose(&uri, index.manifests, options.platform.as_deref())?;
    // Nested indexes (a multi-platform image saved by reference) are followed down.
    for _ in 0..options.limits.max_oci_index_depth {
        if !is_index(&descriptor) {
            break;
        }
        let nested: Index = image.parse(&descriptor.digest, &image.blob(&descriptor, true)?)?;
        descriptor = choose(&uri, nested.manifests, options.platform.as_deref())?;
    }
    if descriptor.media_type != OCI_MANIFEST && descriptor.media_type != DOCKER_MANIFEST {
        return Err(fail(
            &uri,
            format!(
                "{} is a {:?}, not an image manifest",
                descriptor.digest, descriptor.media_type
            ),
        ));
    }
    let manifest: Manifest = image.parse(&descriptor.digest, &image.blob(&descriptor, true)?)?;
    image.blob(&manifest.config, false)?;
    for layer in &manifest.layers {
        image.blob(layer, false)?;
    }
    let name = |suffix: &str| {
        let base = super::strip_prefix(folder.as_str(), &options.lstrip_paths);
        ArtifactPath::from_string(format!("oci:{base}{suffix}"))
    };
    let digest = |descriptor: &Descriptor| -> Result<DigestSet, RecordError> {
        let hex = sha256_hex(&uri, &descriptor.digest)?;
        let bytes = crate::model::artifact::unhex32(hex)
            .ok_or_else(|| fail(&uri, format!("digest {} is malformed", descriptor.digest)))?;
        Ok(DigestSet::sha256(&bytes))
    };
    let mut entries = vec![
        (name("")?, digest(&descriptor)?),
        (name("#config")?, digest(&manifest.config)?),
    ];
    for (n, layer) in manifest.layers.iter().enumerate() {
        entries.push((name(&format!("#layer/{n}"))?, digest(layer)?));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Recorded {
        artifacts: Artifacts::from_entries(entries)
            .map_err(|name| fail(&uri, format!("two artifacts named {name}")))?,
        ..Recorded::default()
    })
}
