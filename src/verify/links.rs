//! Finding a step's links, checking who signed them, and counting them: steps 4 to 8 of the
//! workflow. Plain links are read ahead on every core; sublayouts, and files with an error to
//! report, on the general path, in layout order.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::bundle::Bundle;
use crate::envelope::{Envelope, EnvelopeError};
use crate::fsio;
use crate::keyring::KeyRing;
use crate::keys::KeyId;
use crate::layout::{Layout, Step};
use crate::limits::{Limit, Limits};
use crate::link::{Link, RawLink};
use crate::metadata::Kind;
use crate::record::{self};
use crate::threshold::{self, Signers};

use super::report::{Check, LinkReport, StepReport};
use super::{MAX_SUBLAYOUT_DEPTH, Passed, Run, VerifyError};

impl Run<'_> {
    /// Loads, checks and counts a step's links; returns the step's reduced link, or `None` on
    /// failure.
    pub(super) fn step_links(
        &mut self,
        step: &Step,
        layout: &Layout,
        link_dir: &Path,
        depth: usize,
        preloaded: &mut BTreeMap<PathBuf, Preloaded>,
    ) -> Result<Option<Link>, VerifyError> {
        let authorised = layout.keys.subset(&step.pubkeys);
        // The file name holds only a keyid prefix: a hint. Each name is read once, whatever the
        // number of keys sharing its prefix, and checked against every authorised key.
        let names: BTreeSet<String> = step
            .pubkeys
            .iter()
            .map(|k| record::link_file_name(&step.name, Some(k)))
            .collect();
        let mut report = StepReport {
            name: step.name.to_string(),
            threshold: step.threshold,
            signers: Vec::new(),
            links: Vec::new(),
            rules: Vec::new(),
        };
        let mut accepted: Vec<(BTreeSet<KeyId>, Link)> = Vec::new();
        for name in names {
            let path = link_dir.join(&name);
            let mut entry = LinkReport {
                file: path.display().to_string(),
                accepted: false,
                signers: Vec::new(),
                reason: None,
            };
            let loaded = match preloaded.remove(&path) {
                Some(Preloaded::Missing) => Ok(None),
                Some(Preloaded::Failed(reason)) => Err(reason),
                Some(Preloaded::Link { signers, link }) => {
                    self.warn_unattributed(&path, step, signers.unattributed);
                    bind(link, step, signers.keys)
                }
                Some(Preloaded::Deferred) | None => self.load_link(&path, step, &authorised, depth),
            };
            match loaded {
                Ok(None) => continue,
                Ok(Some((signers, link))) => {
                    entry.accepted = true;
                    entry.signers = signers.iter().map(KeyId::to_string).collect();
                    if !step.expected_command.is_empty() && link.command != step.expected_command {
                        self.warn(Some(&step.name), format!(
                            "{name}: ran {:?}, the layout expects {:?} (a warning, as in in-toto)",
                            link.command, step.expected_command
                        ));
                    }
                    accepted.push((signers, link));
                }
                Err(reason) => entry.reason = Some(reason),
            }
            report.links.push(entry);
        }
        // 5. Threshold: distinct authorised keys, counted by the one threshold function.
        let signed: BTreeSet<KeyId> = accepted
            .iter()
            .flat_map(|(s, _)| s.iter().cloned())
            .collect();
        report.signers = signed.iter().map(KeyId::to_string).collect();
        self.report.steps.push(report);
        if let Err(e) = threshold::require(&signed, step.threshold) {
            let ignored = self
                .report
                .steps
                .last()
                .map(|s| {
                    s.links
                        .iter()
                        .filter_map(|l| l.reason.as_ref().map(|r| format!("{}: {r}", l.file)))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            let mut reason = format!(
                "step {}: {} of {} required distinct authorised keys signed a link",
                step.name,
                e.signed.len(),
                step.threshold
            );
            if signed.is_empty() && ignored.is_empty() {
                let place = match &self.options.bundle {
                    Some(_) => "the bundle".to_owned(),
                    None => link_dir.display().to_string(),
                };
                reason.push_str(&format!(" (no link found in {place})"));
            }
            if let Some(first) = ignored.first() {
                reason.push_str(&format!("; ignored {first}"));
            }
            let _ = self.fail(Check::Threshold, Some(&step.name), reason);
            return Ok(None);
        }
        // 8. Threshold agreement: every counted link records the same artifacts.
        let mut links = accepted.into_iter().map(|(_, l)| l);
        let Some(first) = links.next() else {
            let _ = self.fail(
                Check::Threshold,
                Some(&step.name),
                format!("step {}: no link", step.name),
            );
            return Ok(None);
        };
        for other in links {
            if other.materials != first.materials || other.products != first.products {
                let _ = self.fail(
                    Check::ThresholdAgreement,
                    Some(&step.name),
                    format!("step {}: the links of its functionaries disagree on their materials or products", step.name),
                );
                return Ok(None);
            }
        }
        Ok(Some(first))
    }

    /// Reads one link file: `Ok(None)` when it does not exist, `Err(reason)` when it does not
    /// count, else the authorised keys that signed it and the link (a sublayout's summary).
    #[allow(clippy::type_complexity)]
    fn load_link(
        &mut self,
        path: &Path,
        step: &Step,
        authorised: &KeyRing,
        depth: usize,
    ) -> Result<Option<(BTreeSet<KeyId>, Link)>, String> {
        let limits = &self.options.limits;
        let Some(bytes) = read_link(path, self.options.bundle.as_deref(), limits)? else {
            return Ok(None);
        };
        let envelope = Envelope::from_bytes(&bytes, limits).map_err(|e| e.to_string())?;
        let not_authorised = |e: EnvelopeError| {
            format!("not signed by a key authorised for step {}: {e}", step.name)
        };
        // A link is read straight into its typed form; anything else (a sublayout, or a link
        // with an error to report) takes the general path.
        let typed = envelope.verify_as::<RawLink>(authorised, 1);
        let verified = match typed {
            Ok(verified) => {
                self.warn_unattributed(path, step, verified.signers.unattributed);
                let link = Link::from_raw(verified.payload, limits).map_err(|e| e.to_string())?;
                return bind(link, step, verified.signers.keys);
            }
            Err(EnvelopeError::Payload(_)) => {
                envelope.verify(authorised, 1).map_err(not_authorised)?
            }
            Err(e) => return Err(not_authorised(e)),
        };
        self.warn_unattributed(path, step, verified.signers.unattributed);
        let signers = verified.signers.keys.clone();
        if crate::statement::is_statement(&verified.payload) {
            // An in-toto Statement with the link predicate: read as the link it stands for.
            let link = crate::statement::to_link(&verified.payload, limits)
                .map_err(|e| format!("an in-toto Statement that is not a valid link: {e}"))?;
            return bind(link, step, signers);
        }
        match Kind::of(&verified.payload) {
            Ok(Kind::Link) => {
                let link =
                    Link::from_value(&verified.payload, limits).map_err(|e| e.to_string())?;
                bind(link, step, signers)
            }
            Ok(Kind::Layout) => {
                // 6. A sublayout: verified with the functionary's key as its only layout key,
                // its links in STEP.KEYID8/.
                if depth + 1 > MAX_SUBLAYOUT_DEPTH {
                    return Err(format!("sublayouts nest deeper than {MAX_SUBLAYOUT_DEPTH}"));
                }
                let Some(keyid) = signers.iter().next() else {
                    return Err("no signer".into());
                };
                let ring = authorised.subset([keyid]);
                let sub_dir = path.with_file_name(format!("{}.{}", step.name, keyid.short()));
                let saved = (
                    self.report.failure.take(),
                    std::mem::take(&mut self.report.steps),
                    std::mem::take(&mut self.report.inspections),
                );
                let outcome =
                    self.verify_layout(&envelope, &ring, &sub_dir, depth + 1, Some(&step.name));
                let sub_failure = self.report.failure.take();
                self.report.failure = saved.0;
                self.report.steps = saved.1;
                self.report.inspections = saved.2;
                match outcome {
                    Ok(Some(Passed {
                        summary: Some(summary),
                    })) => Ok(Some((signers, summary))),
                    Ok(Some(Passed { summary: None })) => {
                        Err("its sublayout has no summary".into())
                    }
                    Ok(None) => Err(format!(
                        "its sublayout failed: {}",
                        sub_failure.map(|f| f.reason).unwrap_or_default()
                    )),
                    Err(e @ VerifyError::WorkdirTooLarge { .. }) => {
                        let reason = e.to_string();
                        self.input_error.get_or_insert(e);
                        Err(reason)
                    }
                    Err(e) => Err(format!("its sublayout is invalid: {e}")),
                }
            }
            Err(e) => Err(e.to_string()),
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
    /// A link, signed by authorised keys.
    Link { signers: Signers, link: Link },
    /// Not a plain link (a sublayout, or a payload with an error to report): read it again,
    /// in order, on the general path.
    Deferred,
}

/// Reads a link file, from the bundle when verifying one: `Ok(None)` when there is none.
fn read_link<'b>(
    path: &Path,
    bundle: Option<&'b Bundle>,
    limits: &Limits,
) -> Result<Option<Cow<'b, [u8]>>, String> {
    if let Some(bundle) = bundle {
        let name = path.to_string_lossy();
        return Ok(bundle
            .links
            .get(name.as_ref())
            .map(|bytes| Cow::Borrowed(bytes.as_slice())));
    }
    match fsio::read_capped(path, limits.max_metadata_bytes, Limit::MetadataBytes) {
        Ok(bytes) => Ok(Some(Cow::Owned(bytes))),
        Err(fsio::FsError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(None)
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Reads and checks every step's candidate link files on every core.
pub(super) fn preload(
    layout: &Layout,
    link_dir: &Path,
    bundle: Option<&Bundle>,
    limits: &Limits,
) -> BTreeMap<PathBuf, Preloaded> {
    let jobs: Vec<(PathBuf, &Step)> = layout
        .steps
        .iter()
        .flat_map(|step| {
            step.pubkeys
                .iter()
                .map(|k| record::link_file_name(&step.name, Some(k)))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .map(move |name| (link_dir.join(name), step))
        })
        .collect();
    crate::parallel::map(&jobs, |(path, step)| {
        let authorised = layout.keys.subset(&step.pubkeys);
        (
            path.clone(),
            preload_one(path, step, &authorised, bundle, limits),
        )
    })
    .into_iter()
    .collect()
}

fn preload_one(
    path: &Path,
    step: &Step,
    authorised: &KeyRing,
    bundle: Option<&Bundle>,
    limits: &Limits,
) -> Preloaded {
    let bytes = match read_link(path, bundle, limits) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Preloaded::Missing,
        Err(reason) => return Preloaded::Failed(reason),
    };
    // The link is checked and converted while its signature is still being hashed.
    let verified = Envelope::verify_bytes_into(bytes, authorised, 1, limits, |raw: RawLink| {
        Link::from_raw(raw, limits)
    });
    match verified {
        Ok(verified) => match verified.payload {
            Ok(link) => Preloaded::Link {
                signers: verified.signers,
                link,
            },
            Err(e) => Preloaded::Failed(e.to_string()),
        },
        // Not a plain link, or one whose error the general path reports precisely.
        Err(EnvelopeError::Payload(_) | EnvelopeError::Json(_) | EnvelopeError::Field { .. }) => {
            Preloaded::Deferred
        }
        Err(
            e @ (EnvelopeError::Threshold { .. }
            | EnvelopeError::NoSignatures
            | EnvelopeError::WrongPayloadType(_)),
        ) => Preloaded::Failed(format!(
            "not signed by a key authorised for step {}: {e}",
            step.name
        )),
        Err(e) => Preloaded::Failed(e.to_string()),
    }
}
