//! Finding a step's links, checking who signed them, and counting them: steps 4 to 8 of the
//! workflow. Every candidate file is read and loaded ahead, on every core, each once by the
//! one way a link is loaded ([`document::load_link`]); sublayouts are then verified in layout
//! order, their links in turn.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::model::document::{self, LinkContent, LoadLinkError};
use crate::model::envelope::Envelope;
use crate::model::files;
use crate::model::keyring::KeyRing;
use crate::model::keys::KeyId;
use crate::model::layout::{Layout, Step};
use crate::model::link::Link;
use crate::model::threshold::{self, Signers};

use super::report::{Check, LinkReport, StepReport};
use super::source::LinkSource;
use super::{Halt, LayoutFile, Passed, Run, StepResult, VerifyError, VerifyOptions};

impl Run<'_> {
    /// Loads, checks and counts a step's links; returns the step's reduced link.
    pub(super) fn step_links(
        &mut self,
        step: &Step,
        layout: &Layout,
        link_dir: &Path,
        depth: usize,
        preloaded: &mut BTreeMap<PathBuf, Preloaded>,
    ) -> StepResult<Link> {
        let authorised = layout.keys.subset(&step.pubkeys);
        // The file name holds only a keyid prefix: a hint. Each name is read once, whatever the
        // number of keys sharing its prefix, and checked against every authorised key.
        let names: BTreeSet<String> = step
            .pubkeys
            .iter()
            .map(|k| files::link_file_name(&step.name, Some(k)))
            .collect();
        let mut report = StepReport {
            name: step.name.to_string(),
            threshold: step.threshold,
            accepted_keys: step.pubkeys.iter().map(KeyId::to_string).collect(),
            signers: Vec::new(),
            links: Vec::new(),
            rules: Vec::new(),
            predicates: Vec::new(),
        };
        let mut accepted: Vec<(BTreeSet<KeyId>, Link, String)> = Vec::new();
        let source = self.source();
        for name in &names {
            let path = link_dir.join(name);
            let mut entry = LinkReport {
                file: path.display().to_string(),
                accepted: false,
                signers: Vec::new(),
                unauthorised_signers: Vec::new(),
                reason: None,
            };
            let preloaded = match preloaded.remove(&path) {
                Some(found) => found,
                None => load_one(source, &path, step, &authorised, self.options),
            };
            let mut image_candidate = false;
            let mut digest = None;
            let loaded = match preloaded {
                Preloaded::Missing => Ok(None),
                Preloaded::Failed(reason) => Err(reason),
                Preloaded::Link {
                    signers,
                    link,
                    sha256,
                } => {
                    digest = sha256;
                    self.warn_unattributed(&path, step, signers.unattributed);
                    // A link of the root layout's, not a sublayout's summary: its products
                    // may be the image's.
                    image_candidate = depth == 0;
                    bind(link, step, signers.keys)
                }
                Preloaded::Sublayout {
                    signers,
                    payload,
                    sha256,
                } => {
                    digest = sha256;
                    self.warn_unattributed(&path, step, signers.unattributed);
                    self.sublayout(&path, step, depth, payload, signers.keys)
                }
            };
            match loaded {
                Ok(None) => continue,
                Ok(Some((signers, link))) => {
                    entry.accepted = true;
                    self.note_input(&path, digest);
                    if image_candidate {
                        self.note_image(&link);
                    }
                    entry.signers = signers.iter().map(KeyId::to_string).collect();
                    if !step.expected_command.is_empty() && link.command != step.expected_command {
                        self.warn(Some(&step.name), format!(
                            "{name}: ran {:?}, the layout expects {:?} (a warning, as in in-toto)",
                            link.command, step.expected_command
                        ));
                    }
                    accepted.push((signers, link, name.clone()));
                }
                Err(reason) => {
                    // Who did sign it, so that the wrong key is named, not only refused.
                    let (signed_by, _) = self.signed_by(&path, step, layout);
                    entry.unauthorised_signers =
                        signed_by.iter().map(|s| s.keyid.clone()).collect();
                    entry.reason = Some(match describe_signers(&signed_by, step) {
                        Some(who) if reason.starts_with("not signed by") => {
                            format!("{reason}; it is signed by {who}")
                        }
                        _ => reason,
                    });
                }
            }
            report.links.push(entry);
        }
        // 5. Threshold: distinct authorised keys, counted by the one threshold function.
        let signed: BTreeSet<KeyId> = accepted
            .iter()
            .flat_map(|(s, _, _)| s.iter().cloned())
            .collect();
        report.signers = signed.iter().map(KeyId::to_string).collect();
        if let Err(e) = threshold::require(&signed, step.threshold) {
            // Off-spec: the step's other link files (signed by a key it does not accept, the
            // most common real mistake) are read, never counted, so that the failure names
            // them instead of looking like a missing file.
            for (path, (signed_by, authorised)) in self.stray_links(step, layout, link_dir, &names)
            {
                let reason = match (authorised.first(), describe_signers(&signed_by, step)) {
                    // Named after another keyid (another tool's naming?): said, not counted.
                    (Some(keyid), _) => format!(
                        "signed by key {}, which step {} accepts, but links are counted only \
                         under the name {}: rename it",
                        keyid.short(),
                        step.name,
                        files::link_file_name(&step.name, Some(keyid))
                    ),
                    (None, Some(who)) => format!("signed by {who}"),
                    (None, None) => "holds no signature that could be read".to_owned(),
                };
                report.links.push(LinkReport {
                    file: path.display().to_string(),
                    accepted: false,
                    signers: authorised.iter().map(KeyId::to_string).collect(),
                    unauthorised_signers: signed_by.into_iter().map(|s| s.keyid).collect(),
                    reason: Some(reason),
                });
            }
            let ignored: Vec<String> = report
                .links
                .iter()
                .filter_map(|l| l.reason.as_ref().map(|r| format!("{}: {r}", l.file)))
                .collect();
            let mut reason = format!(
                "step {}: {} of {} required functionaries signed a link",
                step.name,
                e.signed.len(),
                e.required
            );
            if signed.is_empty() && ignored.is_empty() {
                let place = self.source().place(link_dir);
                reason.push_str(&format!(" (no link found in {place})"));
            }
            let missing: Vec<&str> = step
                .pubkeys
                .iter()
                .filter(|k| !signed.contains(*k))
                .map(KeyId::short)
                .collect();
            if signed.is_empty() {
                reason.push_str(&format!(
                    "; it accepts links signed by {}",
                    keys_phrase(&missing)
                ));
            } else {
                let by: Vec<&str> = signed.iter().map(KeyId::short).collect();
                reason.push_str(&format!(
                    "; signed by {}; no accepted link from {}",
                    keys_phrase(&by),
                    keys_phrase(&missing)
                ));
            }
            if let Some(first) = ignored.first() {
                reason.push_str(&format!("; ignored {first}"));
                if ignored.len() > 1 {
                    reason.push_str(&format!(" (and {} more)", ignored.len() - 1));
                }
            }
            self.report.steps.push(report);
            return Err(self.fail(Check::Threshold, Some(&step.name), reason));
        }
        self.report.steps.push(report);
        // 8. Threshold agreement: every counted link records the same artifacts.
        let mut links = accepted.into_iter();
        let Some((first_signers, first, first_file)) = links.next() else {
            return Err(self.fail(
                Check::Threshold,
                Some(&step.name),
                format!("step {}: no link", step.name),
            ));
        };
        for (other_signers, other, other_file) in links {
            if let Some(difference) = first_difference(&first, &other) {
                let by = |signers: &BTreeSet<KeyId>| {
                    keys_phrase(&signers.iter().map(KeyId::short).collect::<Vec<_>>())
                };
                let reason = format!(
                    "step {}: the links of its functionaries disagree on their materials or \
                     products: {} {}: {first_file} (signed by {}) records {}, {other_file} \
                     (signed by {}) records {}",
                    step.name,
                    difference.side,
                    difference.name,
                    by(&first_signers),
                    difference.ours,
                    by(&other_signers),
                    difference.theirs,
                );
                return Err(self.fail(Check::ThresholdAgreement, Some(&step.name), reason));
            }
        }
        Ok(first)
    }

    /// Who signed the link file at `path`: for each signature no authorised key made, the
    /// layout's key it names if that key verifies it, or else the keyid it claims; and the
    /// authorised keys that signed it. Empty when the file cannot be read as an envelope.
    fn signed_by(&self, path: &Path, step: &Step, layout: &Layout) -> SignedBy {
        let limits = &self.options.limits;
        let Ok(Some(bytes)) = self.source().read(path, limits.max_metadata_bytes) else {
            return (Vec::new(), Vec::new());
        };
        let Ok(envelope) = Envelope::from_bytes(&bytes, limits) else {
            return (Vec::new(), Vec::new());
        };
        let Ok(message) = envelope.signed_bytes() else {
            return (Vec::new(), Vec::new());
        };
        let mut found: Vec<Signer> = Vec::new();
        let mut authorised: Vec<KeyId> = Vec::new();
        for signature in envelope.signatures() {
            // Only the step's keys and the layout's key the signature names are tried: anyone
            // can drop such a file, and trying every key of the layout for every signature of
            // every file would be theirs to multiply.
            let hinted = signature.keyid.as_deref().and_then(|hint| {
                layout
                    .keys
                    .iter()
                    .find(|(id, _)| id.as_str() == hint)
                    .map(|(id, _)| id)
            });
            let candidates = layout.keys.subset(step.pubkeys.iter().chain(hinted));
            let verified =
                threshold::signers(&message, std::slice::from_ref(signature), &candidates);
            let signer = match verified.keys.into_iter().next() {
                Some(keyid) if step.pubkeys.contains(&keyid) => {
                    if !authorised.contains(&keyid) {
                        authorised.push(keyid);
                    }
                    continue;
                }
                Some(keyid) => Signer {
                    steps: layout
                        .steps
                        .iter()
                        .filter(|s| s.pubkeys.contains(&keyid))
                        .map(|s| s.name.to_string())
                        .collect(),
                    keyid: keyid.to_string(),
                    in_layout: true,
                },
                None => Signer {
                    keyid: signature.keyid.clone().unwrap_or_default(),
                    in_layout: false,
                    steps: Vec::new(),
                },
            };
            if !found.iter().any(|f| f.keyid == signer.keyid) {
                found.push(signer);
            }
        }
        (found, authorised)
    }

    /// The step's link files not named after one of its keys, at most
    /// [`Limits::max_stray_links`] of them, with who signed each.
    fn stray_links(
        &self,
        step: &Step,
        layout: &Layout,
        link_dir: &Path,
        considered: &BTreeSet<String>,
    ) -> Vec<(PathBuf, SignedBy)> {
        let is_stray =
            |file: &str| files::names_a_link_of(&step.name, file) && !considered.contains(file);
        let mut files: Vec<String> = self
            .source()
            .list(link_dir)
            .unwrap_or_default()
            .into_iter()
            .filter(|file| is_stray(file))
            .collect();
        files.sort();
        files.truncate(self.options.limits.max_stray_links);
        files
            .into_iter()
            .map(|file| {
                let path = link_dir.join(file);
                let signed_by = self.signed_by(&path, step, layout);
                (path, signed_by)
            })
            .collect()
    }

    /// Verifies the sublayout a functionary signed for `step` in the file at `path`, signed by
    /// the authorised keys `signers`: `Err(reason)` when it does not count, else the signers and
    /// the sublayout's summary link.
    #[allow(clippy::type_complexity)]
    fn sublayout(
        &mut self,
        path: &Path,
        step: &Step,
        depth: usize,
        payload: serde_json::Value,
        signers: BTreeSet<KeyId>,
    ) -> Result<Option<(BTreeSet<KeyId>, Link)>, String> {
        // 6. A sublayout: verified with the functionary's key as its only layout key,
        // its links in STEP.KEYID8/.
        let max_depth = self.options.limits.max_sublayout_depth;
        if depth + 1 > max_depth {
            return Err(format!("sublayouts nest deeper than {max_depth}"));
        }
        let Some((_, folder)) = files::sublayout_folder(&step.name, &signers) else {
            return Err("no signer".into());
        };
        let sub_dir = path.with_file_name(folder);
        let saved = (
            self.report.failure.take(),
            std::mem::take(&mut self.report.steps),
            std::mem::take(&mut self.report.inspections),
        );
        let outcome = self.verify_layout(
            LayoutFile::Verified(payload),
            &sub_dir,
            depth + 1,
            Some(&step.name),
        );
        let sub_failure = self.report.failure.take();
        self.report.failure = saved.0;
        self.report.steps = saved.1;
        self.report.inspections = saved.2;
        match outcome {
            Ok(Passed {
                summary: Some(summary),
            }) => Ok(Some((signers, summary))),
            Ok(Passed { summary: None }) => Err("its sublayout has no summary".into()),
            Err(Halt::Failed) => Err(format!(
                "its sublayout failed: {}",
                sub_failure.map(|f| f.reason).unwrap_or_default()
            )),
            Err(Halt::Invalid(e @ VerifyError::WorkdirTooLarge { .. })) => {
                let reason = e.to_string();
                self.input_error.get_or_insert(e);
                Err(reason)
            }
            Err(Halt::Invalid(e)) => Err(format!("its sublayout is invalid: {e}")),
        }
    }

    /// Notes whether `link`, accepted for a step of the root layout, has a product with the image's
    /// digest ([`super::VerifyOptions::image_digest`]).
    fn note_image(&mut self, link: &Link) {
        let Some(digest) = &self.options.image_digest else {
            return;
        };
        let hex = digest.trim_start_matches("sha256:");
        if link
            .products
            .iter()
            .any(|(_, digests)| digests.get("sha256").as_deref() == Some(hex))
        {
            self.image_found = true;
        }
    }

    /// Files an accepted file's digest in the evidence, named relative to the link folder.
    pub(super) fn note_input(&mut self, path: &Path, sha256: Option<String>) {
        let root = self.options.link_dir.clone();
        if let (Some(evidence), Some(sha256)) = (self.report.evidence.as_mut(), sha256) {
            let name = path.strip_prefix(&root).unwrap_or(path);
            evidence.inputs.push((name.display().to_string(), sha256));
        }
    }

    fn warn_unattributed(&mut self, path: &Path, step: &Step, unattributed: usize) {
        if unattributed > 0 {
            self.warn(Some(&step.name), format!(
                "{}: {unattributed} signature(s) by keys not authorised for this step were not counted",
                path.display()
            ));
        }
    }
}

/// Binds a link to a step by its signed name. Off-spec: the reference never compares them, so
/// a link signed for `test` passes as `build` there.
#[allow(clippy::type_complexity)]
fn bind(
    link: Link,
    step: &Step,
    signers: BTreeSet<KeyId>,
) -> Result<Option<(BTreeSet<KeyId>, Link)>, String> {
    if link.name != step.name {
        return Err(format!("it records step {}, not {}", link.name, step.name));
    }
    Ok(Some((signers, link)))
}

/// A link file read ahead of the steps that use it.
pub(super) enum Preloaded {
    /// No such file.
    Missing,
    /// It does not count, and why.
    Failed(String),
    /// A link (classic, DSSE or a Statement), signed by authorised keys.
    Link {
        signers: Signers,
        link: Link,
        sha256: Option<String>,
    },
    /// A sublayout (its payload), signed by authorised keys: verified in layout order, its
    /// links in turn.
    Sublayout {
        signers: Signers,
        payload: serde_json::Value,
        sha256: Option<String>,
    },
}

/// Reads and checks every step's candidate link files on every core.
pub(super) fn preload(
    layout: &Layout,
    link_dir: &Path,
    source: &dyn LinkSource,
    options: &VerifyOptions,
) -> BTreeMap<PathBuf, Preloaded> {
    let jobs: Vec<(PathBuf, &Step)> = layout
        .steps
        .iter()
        .flat_map(|step| {
            step.pubkeys
                .iter()
                .map(|k| files::link_file_name(&step.name, Some(k)))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .map(move |name| (link_dir.join(name), step))
        })
        .collect();
    crate::base::parallel::map(&jobs, |(path, step)| {
        let authorised = layout.keys.subset(&step.pubkeys);
        (
            path.clone(),
            load_one(source, path, step, &authorised, options),
        )
    })
    .into_iter()
    .collect()
}

/// Reads one link file and loads it, once, by the one way a link is loaded.
fn load_one(
    source: &dyn LinkSource,
    path: &Path,
    step: &Step,
    authorised: &KeyRing,
    options: &VerifyOptions,
) -> Preloaded {
    let limits = &options.limits;
    let bytes: Cow<'_, [u8]> = match source.read(path, limits.max_metadata_bytes) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Preloaded::Missing,
        Err(e) => return Preloaded::Failed(e.to_string()),
    };
    // Only a verification summary needs the file's digest.
    let sha256 = options.keep_evidence.then(|| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&bytes))
    });
    // The file's bytes are freed as soon as they are parsed, before the link is built.
    let loaded = document::load_link(bytes, authorised, 1, limits);
    match loaded {
        Ok(loaded) => {
            let signers = loaded.signers().clone();
            match loaded.into_content() {
                LinkContent::Link(link) | LinkContent::Statement(link) => Preloaded::Link {
                    signers,
                    link,
                    sha256,
                },
                LinkContent::Layout(payload) => Preloaded::Sublayout {
                    signers,
                    payload,
                    sha256,
                },
            }
        }
        Err(e) => Preloaded::Failed(match e {
            LoadLinkError::Verify(e) => {
                format!("not signed by a key authorised for step {}: {e}", step.name)
            }
            LoadLinkError::Statement(e) => {
                format!("an in-toto Statement that is not a valid link: {e}")
            }
            e => e.to_string(),
        }),
    }
}

/// Who signed a link file: the keys that do not count for the step, and the authorised keys.
type SignedBy = (Vec<Signer>, Vec<KeyId>);

/// A key that signed a link file but does not count for the step.
struct Signer {
    /// The keyid: of the layout's key that verified the signature, else as claimed.
    keyid: String,
    /// Whether a key of the layout verified the signature.
    in_layout: bool,
    /// The steps that accept the key, if it is in the layout.
    steps: Vec<String>,
}

/// "key 1234abcd, which step build does not accept (it is the key of step source)", for every
/// signer; `None` when there is none.
fn describe_signers(signers: &[Signer], step: &Step) -> Option<String> {
    let described: Vec<String> = signers
        .iter()
        .map(|s| {
            let short: String = s.keyid.chars().take(8).collect();
            let whose = if !s.in_layout {
                if short.is_empty() {
                    "a key that names no keyid and is not in the layout".to_owned()
                } else {
                    "not a key of the layout".to_owned()
                }
            } else if s.steps.is_empty() {
                "a key of the layout that no step accepts".to_owned()
            } else {
                format!("a key of step {}", s.steps.join(", step "))
            };
            if short.is_empty() {
                whose
            } else {
                format!("key {short} ({whose})")
            }
        })
        .collect();
    if described.is_empty() {
        return None;
    }
    let accepted: Vec<&str> = step.pubkeys.iter().map(KeyId::short).collect();
    Some(format!(
        "{}, which step {} does not accept: it accepts {}",
        described.join(" and "),
        step.name,
        keys_phrase(&accepted)
    ))
}

/// "key 1234abcd", "keys 1234abcd and 5678ef01", "keys a, b and c".
fn keys_phrase(keys: &[&str]) -> String {
    match keys {
        [] => "no key".to_owned(),
        [one] => format!("key {one}"),
        [rest @ .., last] => format!("keys {} and {last}", rest.join(", ")),
    }
}

/// The first artifact two links of one step disagree on.
struct Difference {
    side: &'static str,
    name: String,
    ours: String,
    theirs: String,
}

fn first_difference(a: &Link, b: &Link) -> Option<Difference> {
    for (side, ours, theirs) in [
        ("material", &a.materials, &b.materials),
        ("product", &a.products, &b.products),
    ] {
        let names: BTreeSet<&str> = ours
            .keys()
            .chain(theirs.keys())
            .map(|n| n.as_str())
            .collect();
        for name in names {
            let (x, y) = (ours.get(name), theirs.get(name));
            if x != y {
                return Some(Difference {
                    side,
                    name: name.to_owned(),
                    ours: digest_phrase(x),
                    theirs: digest_phrase(y),
                });
            }
        }
    }
    None
}

/// "sha256 1234abcd…" or "no such artifact".
fn digest_phrase(digests: Option<&crate::model::artifact::DigestSet>) -> String {
    match digests {
        None => "no such artifact".to_owned(),
        Some(set) => set
            .iter()
            .next()
            .map(|(algorithm, value)| {
                format!("{algorithm} {}", value.chars().take(16).collect::<String>())
            })
            .unwrap_or_else(|| "no digest".to_owned()),
    }
}
