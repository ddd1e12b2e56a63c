//! A bundle: a layout and every link its verification needs (sublayouts' too), in one file a
//! vendor ships to a buyer. Nothing in a bundle is trusted because it is there: the buyer's
//! trust comes only from the owner key they hold, and verifying a bundle is verifying the
//! layout and links inside it, file for file, as if they were on disk.
//!
//! The file is JSON:
//!
//! ```json
//! {
//!   "_type": "tollgate-bundle/v1",
//!   "layout": "<the layout file's text, exactly>",
//!   "links": { "build.3d95a2f0.link": "<the link file's text, exactly>",
//!              "sub.0e3128d5/inner.5a1b2c3d.link": "..." },
//!   "manifest": { "root.layout": "<sha256>", "build.3d95a2f0.link": "<sha256>", ... }
//! }
//! ```
//!
//! Link names are paths relative to the link folder, as verification looks them up
//! (`STEP.KEYID8.link`, and a sublayout's links under `STEP.KEYID8/`, named after the key that
//! signed the sublayout, as verification names it). The attestations of a step that expects
//! predicates travel the same way, under their own names (`STEP.KEYID8.TYPE.intoto.json`). The manifest's digests
//! catch a bundle damaged in transit; they authenticate nothing. A bundle holding a link its
//! layout does not use, a name twice, a digest that does not match, or text cut short is
//! refused whole.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::base::fsio::{self, FsError};
use crate::base::limits::{Limit, Limits};
use crate::model::document::{self, DocumentError};
use crate::model::files::{
    link_file_name, names_a_link_of, names_an_attestation_of, sublayout_folder,
};
use crate::model::layout::Layout;
use crate::model::metadata::MetadataError;
use crate::verify::VerifyOptions;
use crate::verify::source::LinkSource;

/// The bundle format's `_type`.
pub const BUNDLE_TYPE: &str = "tollgate-bundle/v1";

/// The layout's name in the manifest.
pub const LAYOUT_NAME: &str = "root.layout";

/// Why a bundle cannot be made or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// Not a bundle: not JSON, cut short, a field missing or unknown, a name twice.
    #[error("not a valid bundle: {0}")]
    Malformed(String),
    /// A file's text does not match the manifest's digest.
    #[error("{0}: its text does not match the bundle's manifest (damaged in transit?)")]
    Digest(String),
    /// The bundle holds links its layout does not use.
    #[error(
        "holds {} the layout does not use: {}; a bundle carries exactly the links its layout \
         needs (make it again with `tollgate bundle create`)",
        if .0.len() == 1 { "a link" } else { "links" },
        .0.join(", ")
    )]
    Extra(Vec<String>),
    /// The layout or a sublayout cannot be read to find its links.
    #[error("{name}: {source}")]
    Metadata {
        /// The file.
        name: String,
        /// What is wrong with it.
        #[source]
        source: Box<DocumentError>,
    },
    /// A file could not be read.
    #[error(transparent)]
    Fs(#[from] FsError),
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBundle {
    #[serde(rename = "_type")]
    type_: String,
    layout: String,
    #[serde(deserialize_with = "unique_map")]
    links: BTreeMap<String, String>,
    #[serde(deserialize_with = "unique_map")]
    manifest: BTreeMap<String, String>,
}

/// A map of strings in which a key given twice is an error (a bundle naming a link twice
/// would otherwise keep whichever came last).
fn unique_map<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    struct Unique;
    impl<'de> serde::de::Visitor<'de> for Unique {
        type Value = BTreeMap<String, String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object of strings")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((key, value)) = map.next_entry::<String, String>()? {
                if out.contains_key(&key) {
                    return Err(crate::base::json::violation(
                        crate::base::json::Violation::DuplicateKey(key),
                    ));
                }
                out.insert(key, value);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_map(Unique)
}

/// Just enough of a metadata file to tell a layout from a link without parsing it whole.
#[derive(Deserialize)]
struct Probe {
    signed: Option<TypeOnly>,
    payload: Option<String>,
}

#[derive(Deserialize)]
struct TypeOnly {
    #[serde(rename = "_type")]
    type_: String,
}

/// Whether `bytes` (a classic or DSSE envelope) holds a layout. A guess for collecting files
/// only: verification checks every file in full.
fn holds_layout(bytes: &[u8]) -> bool {
    let Ok(probe) = serde_json::from_slice::<Probe>(bytes) else {
        return false;
    };
    let type_ = match (probe.signed, probe.payload) {
        (Some(signed), _) => Some(signed.type_),
        (None, Some(payload)) => crate::model::envelope::decode_base64(&payload)
            .ok()
            .and_then(|p| serde_json::from_slice::<TypeOnly>(&p).ok())
            .map(|t| t.type_),
        (None, None) => None,
    };
    type_.as_deref() == Some("layout")
}

/// A layout and its links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The layout file's bytes.
    pub layout: Vec<u8>,
    /// Link files by their path relative to the link folder.
    pub links: BTreeMap<String, Vec<u8>>,
}

/// The layout inside `bytes`, read without checking signatures (verification does that).
fn unverified_layout(name: &str, bytes: &[u8], limits: &Limits) -> Result<Layout, BundleError> {
    let fail = |source: DocumentError| BundleError::Metadata {
        name: name.to_owned(),
        source: Box::new(source),
    };
    let envelope = document::read_for_signing(bytes, limits).map_err(fail)?;
    let payload = envelope.unverified_payload().map_err(|e| fail(e.into()))?;
    Layout::from_value(&payload, limits).map_err(|e| fail(MetadataError::from(e).into()))
}

/// Hands `keep` the links of `layout` that `source` holds under `folder` (relative to
/// `root`), and those of any sublayout among them, by name relative to `root`: the files
/// verification reads, found as it finds them.
fn collect(
    layout: &Layout,
    folder: &str,
    (source, root): (&dyn LinkSource, &Path),
    limits: &Limits,
    depth: usize,
    keep: &mut dyn FnMut(String, Cow<'_, [u8]>),
) -> Result<(), BundleError> {
    for step in &layout.steps {
        let names: BTreeSet<String> = step
            .pubkeys
            .iter()
            .map(|k| link_file_name(&step.name, Some(k)))
            .collect();
        for name in names {
            let path = format!("{folder}{name}");
            let Some(bytes) = source.read(&root.join(&path), limits.max_metadata_bytes)? else {
                continue;
            };
            if depth < limits.max_sublayout_depth && holds_layout(&bytes) {
                let sublayout = unverified_layout(&path, &bytes, limits)?;
                // The folder verification reads: named after the step's key that signed the
                // sublayout, not the keyid in its file name. If no key of the step verifies
                // it, verification refuses it without reading a folder, so none is packed.
                let signers = sublayout_signers(&bytes, layout, step, limits);
                if let Some((_, sub)) = sublayout_folder(&step.name, &signers) {
                    collect(
                        &sublayout,
                        &format!("{folder}{sub}/"),
                        (source, root),
                        limits,
                        depth + 1,
                        keep,
                    )?;
                }
            }
            keep(path, bytes);
        }
        // A step's attestations (ITE-10/11), found as verification finds them.
        if !step.expected_predicates.is_empty() {
            let mut names: Vec<String> = source
                .list(&root.join(folder))
                .unwrap_or_default()
                .into_iter()
                .filter(|file| names_an_attestation_of(&step.name, file))
                .collect();
            names.sort();
            names.truncate(limits.max_attestations);
            for name in names {
                let path = format!("{folder}{name}");
                if let Some(bytes) = source.read(&root.join(&path), limits.max_metadata_bytes)? {
                    keep(path, bytes);
                }
            }
        }
    }
    Ok(())
}

/// The keys of `step` (as `layout` names them) whose signatures on the sublayout `bytes`
/// verify; empty if none does or the bytes are not an envelope.
fn sublayout_signers(
    bytes: &[u8],
    layout: &Layout,
    step: &crate::model::layout::Step,
    limits: &Limits,
) -> BTreeSet<crate::model::keys::KeyId> {
    let authorised = layout.keys.subset(&step.pubkeys);
    crate::model::envelope::Envelope::from_bytes(bytes, limits)
        .ok()
        .and_then(|envelope| envelope.verify(&authorised, 1).ok())
        .map(|verified| verified.into_parts().1.keys)
        .unwrap_or_default()
}

impl Bundle {
    /// Packs `layout` (the layout file's bytes) with every link in `link_dir` its verification
    /// would read: `STEP.KEYID8.link` for each step's keys, and a sublayout's links under
    /// `STEP.KEYID8/`. Links are not verified here.
    pub fn create(
        layout: Vec<u8>,
        link_dir: &Path,
        limits: &Limits,
    ) -> Result<Bundle, BundleError> {
        let parsed = unverified_layout(LAYOUT_NAME, &layout, limits)?;
        let mut links = BTreeMap::new();
        let folder = crate::verify::source::Folder;
        collect(
            &parsed,
            "",
            (&folder, link_dir),
            limits,
            0,
            &mut |name, bytes| {
                links.insert(name, bytes.into_owned());
            },
        )?;
        Ok(Bundle { layout, links })
    }

    /// The bundle file: JSON with each file's exact text and its digest.
    pub fn to_bytes(&self) -> Result<Vec<u8>, BundleError> {
        let text = |name: &str, bytes: &[u8]| {
            String::from_utf8(bytes.to_vec())
                .map_err(|_| BundleError::Malformed(format!("{name} is not UTF-8 text")))
        };
        let mut manifest = BTreeMap::new();
        manifest.insert(
            LAYOUT_NAME.to_owned(),
            hex::encode(Sha256::digest(&self.layout)),
        );
        let mut links = BTreeMap::new();
        for (name, bytes) in &self.links {
            manifest.insert(name.clone(), hex::encode(Sha256::digest(bytes)));
            links.insert(name.clone(), text(name, bytes)?);
        }
        let raw = RawBundle {
            type_: BUNDLE_TYPE.to_owned(),
            layout: text(LAYOUT_NAME, &self.layout)?,
            links,
            manifest,
        };
        let mut bytes =
            serde_json::to_vec_pretty(&raw).map_err(|e| BundleError::Malformed(e.to_string()))?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Reads a bundle file, checking its form, names and manifest, and that it holds no link
    /// its layout does not use.
    pub fn from_bytes(bytes: &[u8], limits: &Limits) -> Result<Bundle, BundleError> {
        let raw: RawBundle = crate::base::json::parse_typed(bytes)
            .map_err(|e| BundleError::Malformed(e.to_string()))?;
        if raw.type_ != BUNDLE_TYPE {
            return Err(BundleError::Malformed(format!(
                "_type is {:?}, expected {BUNDLE_TYPE:?}",
                raw.type_
            )));
        }
        let expected: BTreeSet<&str> = std::iter::once(LAYOUT_NAME)
            .chain(raw.links.keys().map(String::as_str))
            .collect();
        let listed: BTreeSet<&str> = raw.manifest.keys().map(String::as_str).collect();
        if expected != listed {
            return Err(BundleError::Malformed(
                "the manifest does not list exactly the bundle's files".into(),
            ));
        }
        let check = |name: &str, text: &str| -> Result<(), BundleError> {
            let digest = hex::encode(Sha256::digest(text.as_bytes()));
            if raw.manifest.get(name).map(String::as_str) != Some(digest.as_str()) {
                return Err(BundleError::Digest(name.to_owned()));
            }
            Ok(())
        };
        check(LAYOUT_NAME, &raw.layout)?;
        for (name, text) in &raw.links {
            let valid = crate::model::artifact::ArtifactPath::new(name).is_ok()
                && (name.ends_with(".link")
                    || name.ends_with(crate::model::files::ATTESTATION_SUFFIX));
            if !valid {
                return Err(BundleError::Malformed(format!(
                    "link name {name:?}: expected a relative path ending in .link (a link) or \
                     {} (an attestation)",
                    crate::model::files::ATTESTATION_SUFFIX
                )));
            }
            check(name, text)?;
        }
        let bundle = Bundle {
            layout: raw.layout.into_bytes(),
            links: raw
                .links
                .into_iter()
                .map(|(name, text)| (name, text.into_bytes()))
                .collect(),
        };
        // Exactly what the layout needs: a link it does not use is refused, not ignored.
        let layout = unverified_layout(LAYOUT_NAME, &bundle.layout, limits)?;
        let mut used = BTreeSet::new();
        collect(
            &layout,
            "",
            (&bundle, Path::new("")),
            limits,
            0,
            &mut |name, _| {
                used.insert(name);
            },
        )?;
        let extra: Vec<String> = bundle
            .links
            .keys()
            .filter(|name| !used.contains(*name))
            .cloned()
            .collect();
        if !extra.is_empty() {
            return Err(BundleError::Extra(extra));
        }
        Ok(bundle)
    }
}

/// A step for which the bundle holds fewer links, by distinct keys the step accepts, than its
/// threshold: the buyer's verification will fail at that step. Found by `bundle create`, so
/// that the vendor hears it before the buyer does.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Shortfall {
    /// The step, behind its sublayout's folder if it is a sublayout's (`build.3d95a2f0/compile`).
    pub step: String,
    /// The distinct keys the step accepts whose signatures on its links verified.
    pub signed: usize,
    /// The step's threshold.
    pub threshold: usize,
    /// The keyids (first 8 digits) of the keys the step accepts.
    pub accepted: Vec<String>,
    /// The link files found for the step that do not count (left out of the bundle, or in it
    /// but not counting), each with why.
    pub ignored: Vec<(String, String)>,
}

impl Bundle {
    /// The steps (the sublayouts' too) whose links in this bundle fall short of their
    /// threshold, and the files in `link_dir` named for those steps that do not count and
    /// why: a link signed by a key the step does not accept (the wrong CI secret), a signature
    /// that does not verify, a link recording another step. Signatures are checked against the
    /// keys the layout names, without checking the layout's own signature: this helps the
    /// vendor, it decides nothing.
    pub fn shortfalls(&self, link_dir: &Path, limits: &Limits) -> Vec<Shortfall> {
        let mut found = Vec::new();
        if let Ok(layout) = unverified_layout(LAYOUT_NAME, &self.layout, limits) {
            self.shortfalls_of(&layout, "", link_dir, limits, 0, &mut found);
        }
        found
    }

    fn shortfalls_of(
        &self,
        layout: &Layout,
        folder: &str,
        link_dir: &Path,
        limits: &Limits,
        depth: usize,
        found: &mut Vec<Shortfall>,
    ) {
        // The link files in the folder, by name, to find those named for a key the step does
        // not accept.
        // A BTreeSet: the same files are named on every run, whatever the folder's order.
        let on_disk: BTreeSet<String> = std::fs::read_dir(link_dir.join(folder))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|name| name.ends_with(".link"))
                    .collect()
            })
            .unwrap_or_default();
        for step in &layout.steps {
            let authorised = layout.keys.subset(&step.pubkeys);
            let names: BTreeSet<String> = step
                .pubkeys
                .iter()
                .map(|k| link_file_name(&step.name, Some(k)))
                .collect();
            let mut signed = BTreeSet::new();
            let mut ignored = Vec::new();
            for name in &names {
                let path = format!("{folder}{name}");
                let Some(bytes) = self.links.get(&path) else {
                    continue;
                };
                match counted_signers(bytes, &step.name, &authorised, limits) {
                    Ok((keys, sublayout)) => {
                        signed.extend(keys.iter().cloned());
                        let sub = sublayout_folder(&step.name, &keys);
                        if let (Some(sublayout), Some((_, sub)), true) =
                            (sublayout, sub, depth < limits.max_sublayout_depth)
                        {
                            self.shortfalls_of(
                                &sublayout,
                                &format!("{folder}{sub}/"),
                                link_dir,
                                limits,
                                depth + 1,
                                found,
                            );
                        }
                    }
                    Err(reason) => ignored.push((path, reason)),
                }
            }
            if signed.len() >= step.threshold {
                continue;
            }
            // Only for a step that falls short, and at most `max_stray_links` of them: other
            // files named for the step, read to say who signed them (never to count them).
            let strays = on_disk
                .iter()
                .filter(|name| names_a_link_of(&step.name, name) && !names.contains(*name))
                .take(limits.max_stray_links);
            for name in strays {
                let claimed = claimed_signers(&link_dir.join(folder).join(name), limits);
                ignored.push((
                    format!("{folder}{name}"),
                    format!(
                        "signed by {claimed}, a key step {} does not accept (left out)",
                        step.name
                    ),
                ));
            }
            found.push(Shortfall {
                step: format!("{folder}{}", step.name),
                signed: signed.len(),
                threshold: step.threshold,
                accepted: step.pubkeys.iter().map(|k| k.short().to_owned()).collect(),
                ignored,
            });
        }
    }
}

/// The keys of `authorised` whose signatures on a link file verify, and the layout inside it
/// if it is a sublayout; `Err` says why the file does not count. The file is loaded as
/// verification loads it ([`document::load_link`]).
fn counted_signers(
    bytes: &[u8],
    step: &crate::model::name::StepName,
    authorised: &crate::model::keyring::KeyRing,
    limits: &Limits,
) -> Result<(BTreeSet<crate::model::keys::KeyId>, Option<Layout>), String> {
    let loaded = document::load_link(bytes, authorised, 1, limits).map_err(|e| match e {
        document::LoadLinkError::Verify(e) => {
            format!("not signed by a key step {step} accepts: {e}")
        }
        e => e.to_string(),
    })?;
    let keys = loaded.signers().keys.clone();
    match loaded.into_content() {
        document::LinkContent::Layout(payload) => {
            let layout = Layout::from_value(&payload, limits).map_err(|e| e.to_string())?;
            Ok((keys, Some(layout)))
        }
        document::LinkContent::Link(link) | document::LinkContent::Statement(link) => {
            if link.name != *step {
                return Err(format!("it records step {}, not {step}", link.name));
            }
            Ok((keys, None))
        }
    }
}

/// Who a link file's signatures claim to be (keyid hints, first 8 digits), for a message.
fn claimed_signers(path: &Path, limits: &Limits) -> String {
    let claimed: Vec<String> =
        fsio::read_capped(path, limits.max_metadata_bytes, Limit::MetadataBytes)
            .ok()
            .and_then(|bytes| document::read_for_signing(&bytes, limits).ok())
            .map(|envelope| {
                envelope
                    .signatures()
                    .iter()
                    .filter_map(|s| s.keyid.as_deref())
                    .map(|k| k.chars().take(8).collect())
                    .collect()
            })
            .unwrap_or_default();
    if claimed.is_empty() {
        "an unnamed key".to_owned()
    } else {
        claimed.join(", ")
    }
}

impl LinkSource for Bundle {
    /// The link the bundle holds under `path` (relative to the bundle's link folder). The
    /// bundle file was read under its own cap; each link's size is checked as it is decoded.
    fn read(&self, path: &Path, _max_bytes: u64) -> Result<Option<Cow<'_, [u8]>>, FsError> {
        let name = path.to_string_lossy();
        Ok(self
            .links
            .get(name.as_ref())
            .map(|bytes| Cow::Borrowed(bytes.as_slice())))
    }

    fn list(&self, dir: &Path) -> Option<Vec<String>> {
        Some(
            self.links
                .keys()
                .filter_map(|name| {
                    let path = Path::new(name);
                    (path.parent().unwrap_or(Path::new("")) == dir)
                        .then(|| path.file_name()?.to_str().map(str::to_owned))
                        .flatten()
                })
                .collect(),
        )
    }

    fn place(&self, _dir: &Path) -> String {
        "the bundle".to_owned()
    }
}

impl Bundle {
    /// Options to verify the layout and links of this bundle (see [`VerifyOptions::new`] for
    /// the defaults); the layout to verify is [`Bundle::layout`].
    pub fn verify_options(self: Arc<Self>) -> VerifyOptions {
        VerifyOptions::with_source(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bundle whose layout cannot be read says which file, and keeps why as its source.
    #[test]
    fn an_unreadable_layout_keeps_its_cause() {
        let bundle = Bundle {
            layout: b"{\"signed\": 1, \"signatures\": []}".to_vec(),
            links: BTreeMap::new(),
        };
        let bytes = bundle.to_bytes().expect("bytes");
        match Bundle::from_bytes(&bytes, &Limits::default()) {
            Err(err @ BundleError::Metadata { .. }) => {
                assert!(err.to_string().starts_with(LAYOUT_NAME), "{err}");
                let source = std::error::Error::source(&err).expect("a source");
                assert!(
                    source.downcast_ref::<Box<DocumentError>>().is_some(),
                    "{source:?}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
