//! Verifying a supply chain against its layout, in the reference's order (numbered below as
//! the in-toto workflow numbers them), with Tollgate's stricter checks where marked Off-spec.
//!
//! Input errors (an unreadable or malformed layout, bad parameters) are [`VerifyError`]s;
//! everything a supply chain can get wrong is a [`Report`] whose verdict is `Fail`, with the one
//! decisive reason first. Nothing returns `Pass` unless every check ran and passed, and no
//! inspection runs before every other check has passed (THREATS I3).
//!
//! Links are read through a [`source::LinkSource`] (the link folder on disk unless another is
//! given, such as a bundle), each loaded once by [`crate::model::document::load_link`]. When
//! an image digest is given, the verdict also requires it among the products of the chain:
//! the library is the verdict's only writer.
//!
//! A step that expects attestations (ITE-10/11) has them checked right after its links
//! (`predicates.rs`): signed by the predicate's functionaries, bound to the step in signed
//! content, and passing every CEL rule; their subjects then join the step's materials (or
//! products) before the step rules of step 9 run over them.

mod inspect;
mod links;
mod lint;
pub mod params;
mod predicates;
pub mod products;
pub mod report;
pub mod rules;
pub mod source;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::base::limits::Limits;
use crate::base::timestamp;
use crate::model::artifact::Artifacts;
use crate::model::envelope::{Envelope, EnvelopeError};
use crate::model::keyring::KeyRing;
use crate::model::keys::KeyId;
use crate::model::layout::{Layout, LayoutError};
use crate::model::link::Link;
use crate::model::metadata::Kind;
use crate::model::name::StepName;

use params::ParamError;
use report::{Check, Evidence, Failure, Report, Verdict, Warning};
use rules::{Found, ListOutcome, Refused, Side};
use source::{Folder, LinkSource};

/// A step's or inspection's two rule lists (`expected_materials`, `expected_products`) and
/// the link they apply to.
type RuleLists<'a> = ([&'a [crate::model::rule::ArtifactRule]; 2], &'a Link);

/// Applies every item's two rule lists to its link, all lists at once on every core; the
/// outcomes come two per item (materials, then products), in the items' order.
fn evaluate_rules<'a>(
    items: impl Iterator<Item = RuleLists<'a>>,
    links: &BTreeMap<StepName, &Link>,
) -> Vec<ListOutcome> {
    let lists: Vec<(Side, &[crate::model::rule::ArtifactRule], &Link)> = items
        .flat_map(|([materials, products], link)| {
            [
                (Side::ExpectedMaterials, materials, link),
                (Side::ExpectedProducts, products, link),
            ]
        })
        .collect();
    crate::base::parallel::map(&lists, |(side, list, link)| {
        rules::apply(*side, list, link, links)
    })
}

impl Run<'_> {
    /// What a failed rule list found, in plain words: "dist/app.tar.gz is not the file key
    /// 077f9619 signed at step sign".
    fn summary(
        &self,
        refused: &Refused,
        side: Side,
        rule: &str,
        explanation: &str,
        kind: &str,
        item: &StepName,
    ) -> Option<String> {
        let artifact = &refused.artifact;
        let noun = match side {
            Side::ExpectedMaterials => "materials",
            Side::ExpectedProducts => "products",
        };
        let Some(compared) = &refused.compared else {
            return match rule.split(' ').next() {
                Some("DISALLOW") => Some(format!(
                    "{artifact} is not expected among the {noun} of {kind} {item}"
                )),
                Some("REQUIRE") if explanation.contains("is not among") => Some(format!(
                    "{artifact} is missing from the {noun} of {kind} {item}"
                )),
                _ => None,
            };
        };
        let signers = self
            .report
            .steps
            .iter()
            .rev()
            .find(|s| s.name == compared.step)
            .map(|s| {
                s.signers
                    .iter()
                    .map(|k| k.chars().take(8).collect::<String>())
                    .collect::<Vec<_>>()
            });
        let (verb, place) = match &signers {
            Some(keys) => {
                let who = match &keys[..] {
                    [] => "no key".to_owned(),
                    [one] => format!("key {one}"),
                    [rest @ .., last] => format!("keys {} and {last}", rest.join(", ")),
                };
                (format!("{who} signed"), format!("step {}", compared.step))
            }
            None => (
                "was recorded".to_owned(),
                format!("inspection {}", compared.step),
            ),
        };
        let other = if compared.artifact == *artifact {
            "the file".to_owned()
        } else {
            compared.artifact.clone()
        };
        Some(match (compared.found, &signers) {
            (Found::Differs, Some(_)) => format!("{artifact} is not {other} {verb} at {place}"),
            (Found::Differs, None) => format!("{artifact} is not {other} that {verb} at {place}"),
            (Found::Missing, Some(_)) => format!(
                "{artifact} is not among the {} {verb} at {place}",
                compared.kind
            ),
            (Found::Missing, None) => format!(
                "{artifact} is not among the {} that {verb} at {place}",
                compared.kind
            ),
            (Found::Weak, _) => format!(
                "{artifact} matches {} of {place} only by a weak digest",
                compared.artifact
            ),
            (Found::NoLink, _) => format!("{place} has no link to compare {artifact} with"),
        })
    }
}

/// Why the layout's signatures did not verify, naming the keys: which keyids its signatures
/// claim, which given keys did not sign, and whether a given key's signature is there but
/// does not verify (the layout changed after signing).
fn layout_signature_failure(envelope: &Envelope, keys: &KeyRing, error: &EnvelopeError) -> String {
    let EnvelopeError::Threshold { signers, .. } = error else {
        return format!("layout signature: {error}");
    };
    let claimed: Vec<String> = envelope
        .signatures()
        .iter()
        .filter_map(|s| s.keyid.as_deref())
        .map(|k| k.chars().take(8).collect())
        .collect();
    let short = |k: &KeyId| k.short().to_owned();
    let unsigned: Vec<&KeyId> = keys
        .keyids()
        .filter(|k| !signers.keys.contains(*k))
        .collect();
    let (broken, absent): (Vec<&KeyId>, Vec<&KeyId>) = unsigned.into_iter().partition(|k| {
        envelope
            .signatures()
            .iter()
            .any(|s| s.keyid.as_deref() == Some(k.as_str()))
    });
    let list = |ids: &[String]| match ids {
        [] => "none".to_owned(),
        ids => ids.join(", "),
    };
    let mut parts = Vec::new();
    if !absent.is_empty() {
        let absent: Vec<String> = absent.into_iter().map(short).collect();
        parts.push(format!(
            "the given layout key(s) {} did not sign it (its signatures name key(s) {}): pass \
             the public key of the owner who signed it",
            list(&absent),
            list(&claimed)
        ));
    }
    if !broken.is_empty() {
        let broken: Vec<String> = broken.into_iter().map(short).collect();
        parts.push(format!(
            "the signature by the given layout key(s) {} does not verify: the layout was \
             changed after it was signed",
            list(&broken)
        ));
    }
    if parts.is_empty() {
        return format!("layout signature: {error}");
    }
    format!("layout signature: {}", parts.join("; "))
}

/// How to verify.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Where the links are.
    pub link_dir: PathBuf,
    /// Values for `{name}` parameters in the layout.
    pub parameters: BTreeMap<String, String>,
    /// The time the expiry is checked against (the injectable clock).
    pub now: DateTime<Utc>,
    /// How long an inspection may run.
    pub inspection_timeout: Duration,
    /// The folder the inspections run on, in a scratch copy (default: the working directory).
    pub workdir: Option<PathBuf>,
    /// The SHA-256 (lowercase hex) the layout file must have: pins one layout, so that an
    /// older one the owner also signed cannot be replayed (THREATS D5).
    pub layout_digest: Option<String>,
    /// Fail when a rule meant to consume artifacts matches none (THREATS F7); by default
    /// that is a warning.
    pub strict_rules: bool,
    /// Caps.
    pub limits: Limits,
    /// Where the links are read from: `None` for the folder `link_dir` on disk; a source
    /// (such as a bundle) otherwise, in which `link_dir` names the folder, normally empty.
    pub links: Option<Arc<dyn LinkSource>>,
    /// The SHA-256 (lowercase hex, optionally `sha256:`-prefixed) of an image the chain must
    /// have produced: verification fails unless an accepted link of the layout's steps has a
    /// product with that digest. A chain that verifies says nothing about an image it did not
    /// produce.
    pub image_digest: Option<String>,
    /// Keep what the verdict rests on in [`Report::evidence`] (the files that counted, with
    /// their digests, and every step's products), for a verification summary. Off by default:
    /// it hashes every file that counted and holds every step's products.
    pub keep_evidence: bool,
}

impl VerifyOptions {
    /// Options with the defaults: links in `link_dir`, now, 600 s per inspection.
    pub fn new(link_dir: impl Into<PathBuf>) -> VerifyOptions {
        VerifyOptions {
            link_dir: link_dir.into(),
            parameters: BTreeMap::new(),
            now: Utc::now(),
            inspection_timeout: Duration::from_secs(600),
            workdir: None,
            layout_digest: None,
            strict_rules: false,
            limits: Limits::default(),
            links: None,
            image_digest: None,
            keep_evidence: false,
        }
    }

    /// Where the links are read from.
    fn source(&self) -> &dyn LinkSource {
        match &self.links {
            Some(source) => source.as_ref(),
            None => &Folder,
        }
    }

    /// Options with the defaults, the links read from `source` (a bundle, say) rather than
    /// from a folder on disk.
    pub fn with_source(source: Arc<dyn LinkSource>) -> VerifyOptions {
        VerifyOptions {
            links: Some(source),
            ..VerifyOptions::new(PathBuf::new())
        }
    }
}

/// Input that cannot be verified at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The layout file is not a well-formed envelope.
    #[error("layout: {0}")]
    Envelope(#[from] EnvelopeError),
    /// The layout is malformed or inconsistent (THREATS D6, F5).
    #[error("layout: {0}")]
    Layout(#[from] LayoutError),
    /// The layout file holds a link.
    #[error("layout: expected a layout, got a {0}")]
    NotALayout(&'static str),
    /// Bad parameters (THREATS I1, I2).
    #[error("parameters: {0}")]
    Params(#[from] ParamError),
    /// No layout key was given.
    #[error("no layout key given: pass the owner's public key")]
    NoLayoutKeys,
    /// The folder of the links, or the working folder of the inspections, is missing or is
    /// not a folder: a typo in a path, not a supply chain that failed.
    #[error("the folder {} ({role}) {problem}", path.display())]
    Folder {
        /// What the folder holds.
        role: FolderRole,
        /// The path given.
        path: PathBuf,
        /// What is wrong with it: "does not exist", "is a file, not a folder", ...
        problem: String,
    },
    /// The working folder the inspections run on is larger than a limit allows: it is copied
    /// for them, and copying a whole shared folder is almost always a mistake.
    #[error(
        "the working folder {} holds {found}, over the limit {limit}; the inspections run on \
         a copy of it", path.display()
    )]
    WorkdirTooLarge {
        /// The folder.
        path: PathBuf,
        /// What was found before counting stopped ("more than 100000 entries").
        found: String,
        /// The limit's value, in words.
        max: String,
        /// Which limit.
        limit: crate::base::limits::Limit,
    },
}

/// Which folder a [`VerifyError::Folder`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FolderRole {
    /// The folder holding the links.
    Links,
    /// The folder the inspections run on.
    Workdir,
}

impl std::fmt::Display for FolderRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FolderRole::Links => "the links",
            FolderRole::Workdir => "the working folder of the inspections",
        })
    }
}

/// Checks that `path` is a folder that exists (following symlinks).
fn check_folder(path: &Path, role: FolderRole) -> Result<(), VerifyError> {
    let problem = match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => "is a file, not a folder".to_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "does not exist".to_owned(),
        Err(e) => format!("cannot be read: {e}"),
    };
    Err(VerifyError::Folder {
        role,
        path: path.to_owned(),
        problem,
    })
}

/// Verifies the supply chain whose layout is `layout_file`, signed by every key in
/// `layout_keys`.
pub fn verify(
    layout_file: &[u8],
    layout_keys: &KeyRing,
    options: &VerifyOptions,
) -> Result<Report, VerifyError> {
    if layout_keys.is_empty() {
        return Err(VerifyError::NoLayoutKeys);
    }
    params::check(&options.parameters)?;
    // Off-spec: a folder that is not there is bad input, not a chain without links; the
    // reference reports it as a missing link.
    if options.links.as_ref().is_none_or(|source| source.on_disk()) {
        check_folder(&options.link_dir, FolderRole::Links)?;
    }
    if let Some(workdir) = &options.workdir {
        check_folder(workdir, FolderRole::Workdir)?;
    }
    let mut run = Run {
        options,
        report: Report {
            verdict: Verdict::Fail,
            failure: None,
            verified_at: timestamp::format(&options.now),
            expires: None,
            layout_signers: Vec::new(),
            steps: Vec::new(),
            inspections: Vec::new(),
            warnings: Vec::new(),
            evidence: options.keep_evidence.then(|| Evidence {
                layout_sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(layout_file)),
                ..Evidence::default()
            }),
        },
        input_error: None,
        image_found: false,
    };
    // Off-spec: a layout pinned by its digest is checked before anything is read from it.
    let outcome = run.check_layout_digest(layout_file).and_then(|()| {
        let envelope = Envelope::from_bytes(layout_file, &options.limits)?;
        let file = LayoutFile::Signed(&envelope, layout_keys);
        run.verify_layout(file, &options.link_dir, 0, None)?;
        // Off-spec: the image the chain is said to be about must be one of its products.
        run.check_image()
    });
    match outcome {
        Ok(_) => run.report.verdict = Verdict::Pass,
        Err(Halt::Failed) => {}
        Err(Halt::Invalid(error)) => return Err(error),
    }
    if let Some(error) = run.input_error {
        return Err(error);
    }
    Ok(run.report)
}

struct Run<'o> {
    options: &'o VerifyOptions,
    report: Report,
    /// Bad input found while verifying a sublayout (its working folder too large to copy),
    /// which must stop verification as an error rather than count as the link's failure.
    input_error: Option<VerifyError>,
    /// Whether an accepted link of the root layout's steps has a product with
    /// [`VerifyOptions::image_digest`].
    image_found: bool,
}

/// A layout to verify.
enum LayoutFile<'a> {
    /// The root layout's envelope, and the keys that must all have signed it.
    Signed(&'a Envelope, &'a KeyRing),
    /// A sublayout's payload, whose signature by the functionary's key (its only layout key)
    /// verified when its file was loaded as the functionary's link.
    Verified(Value),
}

/// Why a step of the workflow stopped verification.
enum Halt {
    /// The supply chain failed a check; the decisive reason is already filed in the report.
    Failed,
    /// The input cannot be verified at all.
    Invalid(VerifyError),
}

impl From<VerifyError> for Halt {
    fn from(error: VerifyError) -> Halt {
        Halt::Invalid(error)
    }
}

impl From<EnvelopeError> for Halt {
    fn from(error: EnvelopeError) -> Halt {
        Halt::Invalid(error.into())
    }
}

impl From<LayoutError> for Halt {
    fn from(error: LayoutError) -> Halt {
        Halt::Invalid(error.into())
    }
}

impl From<ParamError> for Halt {
    fn from(error: ParamError) -> Halt {
        Halt::Invalid(error.into())
    }
}

/// What each step of the workflow returns: its result, or why verification stops there.
type StepResult<T> = Result<T, Halt>;

/// A layout that verified, with the summary link a parent layout sees (sublayouts only).
struct Passed {
    summary: Option<Link>,
}

impl<'o> Run<'o> {
    /// Where the links are read from.
    fn source(&self) -> &'o dyn LinkSource {
        self.options.source()
    }

    /// Files the decisive reason (the first one filed wins) and halts as failed.
    fn fail(&mut self, check: Check, item: Option<&StepName>, reason: String) -> Halt {
        if self.report.failure.is_none() {
            self.report.failure = Some(Failure {
                check,
                item: item.map(|n| n.to_string()),
                reason,
                predicate: None,
            });
        }
        Halt::Failed
    }

    fn warn(&mut self, item: Option<&StepName>, message: String) {
        self.report.warnings.push(Warning {
            item: item.map(|n| n.to_string()),
            message,
        });
    }

    /// Verifies one layout (the root, or a sublayout at `depth` whose summary link is named
    /// `summary_name`), one call per step of the in-toto workflow, numbered as it numbers them.
    fn verify_layout(
        &mut self,
        file: LayoutFile<'_>,
        link_dir: &Path,
        depth: usize,
        summary_name: Option<&StepName>,
    ) -> StepResult<Passed> {
        let root = depth == 0;
        // 1. Layout signatures: every given key must have signed (the reference's rule). A
        // sublayout's one key, the functionary's, was checked as its link was loaded.
        let (payload, layout) = self.check_layout_signatures(file, root, summary_name)?;
        // 2. Expiration: equal counts as expired.
        self.check_expiry(&layout, root, summary_name)?;
        // 3. Parameter substitution. Off-spec: also without parameters (see `substitute`).
        let layout = self.substitute(payload)?;
        self.lint(&layout, link_dir);
        // Off-spec: the working folder of the inspections is sized before any link is read.
        let plan = self.plan_inspections(&layout)?;
        // 4.-8. Links: loaded, their signatures and the threshold checked, sublayouts verified,
        // commands aligned (a warning), threshold links compared and reduced to one.
        let chain = self.load_links(&layout, link_dir, depth)?;
        // 9. Step rules, before any inspection runs (THREATS I3).
        self.check_step_rules(&layout, &chain)?;
        // 10. Inspections, in a scratch copy of the working folder (THREATS I5).
        let inspected = self.run_inspections(&layout, plan)?;
        // 11. Inspection rules.
        self.check_inspection_rules(&layout, &chain, &inspected)?;
        // 12. The summary link a parent layout sees.
        let summary = summary_name.map(|name| summary_link(&layout, &chain, name));
        // A chain may hold millions of artifacts: the verdict need not wait for it to be freed.
        crate::base::parallel::drop_in_background((chain, inspected));
        Ok(Passed { summary })
    }

    /// Off-spec: when an image digest is given, an accepted link of the root layout's steps
    /// must have a product with it (noted as the links were loaded).
    fn check_image(&mut self) -> StepResult<()> {
        match &self.options.image_digest {
            Some(digest) if !self.image_found => {
                let reason = format!(
                    "the image {digest} is not among the products of any step of the chain: \
                     the attestation is about another image"
                );
                Err(self.fail(Check::Product, None, reason))
            }
            _ => Ok(()),
        }
    }

    /// Off-spec: the layout file must have the pinned SHA-256, if one is given, so that an
    /// older layout the owner also signed cannot be replayed (THREATS D5).
    fn check_layout_digest(&mut self, layout_file: &[u8]) -> StepResult<()> {
        use sha2::Digest;
        let Some(pinned) = &self.options.layout_digest else {
            return Ok(());
        };
        let actual = hex::encode(sha2::Sha256::digest(layout_file));
        if actual.eq_ignore_ascii_case(pinned.trim_start_matches("sha256:")) {
            return Ok(());
        }
        let reason = format!("the layout's SHA-256 is {actual}, not the pinned {pinned}");
        Err(self.fail(Check::LayoutDigest, None, reason))
    }

    /// Step 1, layout signatures: every key in `keys` must have signed the layout (all of
    /// them, not a threshold). Returns the verified payload and the layout it holds.
    fn check_layout_signatures(
        &mut self,
        file: LayoutFile<'_>,
        root: bool,
        summary_name: Option<&StepName>,
    ) -> StepResult<(Value, Layout)> {
        let (envelope, keys) = match file {
            LayoutFile::Signed(envelope, keys) => (envelope, keys),
            LayoutFile::Verified(payload) => return self.read_layout(payload),
        };
        let verified = match envelope.verify(keys, keys.len()) {
            Ok(verified) => verified,
            Err(EnvelopeError::Payload(e)) => return Err(EnvelopeError::Payload(e).into()),
            Err(e) => {
                let reason = layout_signature_failure(envelope, keys, &e);
                return Err(self.fail(Check::LayoutSignature, summary_name, reason));
            }
        };
        if root {
            self.report.layout_signers = verified
                .signers()
                .keys
                .iter()
                .map(KeyId::to_string)
                .collect();
        }
        self.read_layout(verified.into_payload())
    }

    /// The layout a verified payload holds; a link or anything else in its place is invalid
    /// input.
    fn read_layout(&self, payload: Value) -> StepResult<(Value, Layout)> {
        match Kind::of(&payload) {
            Ok(Kind::Layout) => {}
            Ok(Kind::Link) => return Err(VerifyError::NotALayout("link").into()),
            Err(_) => return Err(VerifyError::NotALayout("document of another kind").into()),
        }
        let layout = Layout::from_value(&payload, &self.options.limits)?;
        Ok((payload, layout))
    }

    /// Step 2, expiration: the layout must not have expired at the injectable clock's now;
    /// equal counts as expired. A root layout valid for more than a year is worth a warning.
    fn check_expiry(
        &mut self,
        layout: &Layout,
        root: bool,
        summary_name: Option<&StepName>,
    ) -> StepResult<()> {
        if root {
            self.report.expires = Some(timestamp::format(&layout.expires));
        }
        if layout.expires <= self.options.now {
            let reason = format!(
                "the layout expired at {} (checked at {})",
                timestamp::format(&layout.expires),
                timestamp::format(&self.options.now)
            );
            return Err(self.fail(Check::Expiry, summary_name, reason));
        }
        if root && layout.expires > self.options.now + chrono::Duration::days(366) {
            self.warn(
                None,
                format!(
                    "the layout is valid until {}, more than a year away",
                    timestamp::format(&layout.expires)
                ),
            );
        }
        Ok(())
    }

    /// Step 3, parameter substitution into the verified payload; the layout (its rules too)
    /// is read again from the result. Off-spec: the reference substitutes only when parameters are
    /// given, so that a layout's `{name}` without a value silently stays literal text; here
    /// it is an error.
    fn substitute(&self, mut payload: Value) -> StepResult<Layout> {
        params::apply(&mut payload, &self.options.parameters)?;
        Ok(Layout::from_value(&payload, &self.options.limits)?)
    }

    /// Off-spec: the working folder the inspections will run on is listed and sized now,
    /// before any link is read, so that a folder too large to copy stops verification at
    /// once (as bad input) rather than after every link was checked. `None` when the layout
    /// has no inspection.
    fn plan_inspections(
        &self,
        layout: &Layout,
    ) -> StepResult<Option<Result<inspect::Plan, String>>> {
        if layout.inspections.is_empty() {
            return Ok(None);
        }
        Ok(Some(inspect::plan(&self.workdir(), &self.options.limits)?))
    }

    /// Steps 4 to 8, every step's links: found by file name (a hint), counted by verified
    /// signer and signed name; a sublayout verified in their place; reduced to one link per
    /// step. Every link file is read and loaded once, on every core at once; sublayouts are
    /// then verified in layout order.
    fn load_links(
        &mut self,
        layout: &Layout,
        link_dir: &Path,
        depth: usize,
    ) -> StepResult<BTreeMap<StepName, Link>> {
        let mut preloaded = links::preload(layout, link_dir, self.source(), self.options);
        let mut chain: BTreeMap<StepName, Link> = BTreeMap::new();
        for step in &layout.steps {
            let link = if step.needs_links() {
                self.step_links(step, layout, link_dir, depth, &mut preloaded)?
            } else {
                Link {
                    name: step.name.clone(),
                    command: Vec::new(),
                    materials: Artifacts::new(),
                    products: Artifacts::new(),
                    byproducts: Default::default(),
                    environment: Default::default(),
                }
            };
            // Off-spec (ITE-10/11): the step's expected attestations, their rules, and their
            // subjects added to its materials (or products) for the rules of step 9.
            let link = if step.expected_predicates.is_empty() {
                link
            } else {
                self.step_predicates(step, layout, link_dir, link)?
            };
            chain.insert(step.name.clone(), link);
        }
        if depth == 0
            && let Some(evidence) = self.report.evidence.as_mut()
        {
            evidence.products = chain
                .iter()
                .map(|(name, link)| (name.to_string(), link.products.clone()))
                .collect();
            evidence.last_step = layout.steps.last().map(|s| s.name.to_string());
        }
        Ok(chain)
    }

    /// Step 9, every step's rules, over the steps' links. Every list is evaluated at once;
    /// the outcomes are filed in layout order, so that the first failing step is reported.
    fn check_step_rules(
        &mut self,
        layout: &Layout,
        chain: &BTreeMap<StepName, Link>,
    ) -> StepResult<()> {
        let links: BTreeMap<StepName, &Link> = chain.iter().map(|(k, v)| (k.clone(), v)).collect();
        let mut outcomes = evaluate_rules(
            layout.steps.iter().map(|step| {
                (
                    [&step.expected_materials[..], &step.expected_products[..]],
                    &chain[&step.name],
                )
            }),
            &links,
        )
        .into_iter();
        for step in &layout.steps {
            let both = outcomes.by_ref().take(2).collect();
            self.file_rules(&step.name, both, Check::StepRules)?;
        }
        Ok(())
    }

    /// Step 10, the inspections, in layout order, in a scratch copy of the working folder, so
    /// that they cannot change what was verified or anything else there (THREATS I5).
    /// Returns their links, kept in memory.
    fn run_inspections(
        &mut self,
        layout: &Layout,
        plan: Option<Result<inspect::Plan, String>>,
    ) -> StepResult<BTreeMap<StepName, Link>> {
        let mut inspected: BTreeMap<StepName, Link> = BTreeMap::new();
        let Some(plan) = plan else {
            return Ok(inspected);
        };
        let scratch = self.scratch(plan)?;
        for inspection in &layout.inspections {
            let link = self.inspect(inspection, scratch.path())?;
            inspected.insert(inspection.name.clone(), link);
        }
        Ok(inspected)
    }

    /// Step 11, every inspection's rules, which may refer to the links of steps and
    /// inspections alike.
    fn check_inspection_rules(
        &mut self,
        layout: &Layout,
        chain: &BTreeMap<StepName, Link>,
        inspected: &BTreeMap<StepName, Link>,
    ) -> StepResult<()> {
        let all: BTreeMap<StepName, &Link> = chain
            .iter()
            .chain(inspected)
            .map(|(k, v)| (k.clone(), v))
            .collect();
        let mut outcomes = evaluate_rules(
            layout.inspections.iter().map(|inspection| {
                (
                    [
                        &inspection.expected_materials[..],
                        &inspection.expected_products[..],
                    ],
                    &inspected[&inspection.name],
                )
            }),
            &all,
        )
        .into_iter();
        for inspection in &layout.inspections {
            let both = outcomes.by_ref().take(2).collect();
            if let Err(halt) = self.file_rules(&inspection.name, both, Check::InspectionRules) {
                self.point_at_workdir(&inspected[&inspection.name], chain);
                return Err(halt);
            }
        }
        Ok(())
    }

    /// When an inspection's rules refused a file of the working folder that no step produced,
    /// says so in the failure: the folder is most likely not the one holding the received
    /// product (the default is the current folder).
    fn point_at_workdir(&mut self, inspected: &Link, chain: &BTreeMap<StepName, Link>) {
        let refused = self
            .report
            .inspections
            .iter()
            .rev()
            .find(|i| i.name == inspected.name.as_str())
            .and_then(|i| i.rules.iter().find_map(|o| o.failure.as_ref()))
            .map(|f| f.artifacts.clone())
            .unwrap_or_default();
        let stray = refused.iter().find(|name| {
            inspected.materials.contains_key(name)
                && !chain.values().any(|l| l.products.contains_key(name))
        });
        let Some(stray) = stray else { return };
        let workdir = self.workdir();
        if let Some(failure) = &mut self.report.failure {
            failure.reason.push_str(&format!(
                "; {stray} is in the working folder ({}) but no step produced it: the \
                 inspections run on a copy of that folder, and --workdir names the folder \
                 holding the received product",
                workdir.display()
            ));
        }
    }

    /// Files the outcomes of a step's or inspection's two rule lists in the report; on failure
    /// the decisive reason is filed too.
    fn file_rules(
        &mut self,
        item: &StepName,
        mut outcomes: Vec<ListOutcome>,
        check: Check,
    ) -> StepResult<()> {
        self.note_rules(item, &outcomes);
        let kind = if check == Check::StepRules {
            "step"
        } else {
            "inspection"
        };
        for outcome in &mut outcomes {
            if let Some(failure) = &mut outcome.failure {
                let (side, rule) = (failure.side, failure.rule.clone());
                let explanation = failure.explanation.clone();
                for refused in &mut failure.refused {
                    refused.summary = self.summary(refused, side, &rule, &explanation, kind, item);
                }
            }
        }
        let failure = outcomes.iter().find_map(|o| o.failure.clone());
        let idle = outcomes.iter().find_map(|o| {
            let (i, rule) = o
                .rules
                .iter()
                .enumerate()
                .find(|(_, r)| r.matched_nothing)?;
            Some((o.side, i + 1, rule.rule.clone()))
        });
        let filed = if check == Check::StepRules {
            self.report
                .steps
                .iter_mut()
                .rev()
                .find(|s| s.name == item.as_str())
                .map(|s| &mut s.rules)
        } else {
            self.report
                .inspections
                .iter_mut()
                .rev()
                .find(|s| s.name == item.as_str())
                .map(|s| &mut s.rules)
        };
        if let Some(rules) = filed {
            *rules = outcomes;
        }
        let Some(failure) = failure else {
            if let (true, Some((side, number, rule))) = (self.options.strict_rules, idle) {
                let reason = format!(
                    "{kind} {item}, {} rule {number} ({rule}) matched no artifact (--strict-rules)",
                    side.name()
                );
                return Err(self.fail(check, Some(item), reason));
            }
            return Ok(());
        };
        // The first artifact is explained; the others are named, so that nothing is hidden.
        let others = match failure.artifacts.len() {
            0 | 1 => String::new(),
            n if n <= 4 => format!(" (also refused: {})", failure.artifacts[1..].join(", ")),
            n => format!(
                " (also refused: {} and {} more)",
                failure.artifacts[1..4].join(", "),
                n - 4
            ),
        };
        let lead = failure
            .refused
            .first()
            .and_then(|r| r.summary.as_ref())
            .map(|s| format!("{s}: "))
            .unwrap_or_default();
        let reason = format!(
            "{lead}{kind} {item}, {} rule {} ({}): {}{others}",
            failure.side.name(),
            failure.number,
            failure.rule,
            failure.explanation
        );
        Err(self.fail(check, Some(item), reason))
    }
}

/// The summary link a parent layout sees for a sublayout named `name`: the first step's
/// materials, the last step's products, byproducts and command.
fn summary_link(layout: &Layout, chain: &BTreeMap<StepName, Link>, name: &StepName) -> Link {
    let first = layout.steps.first().and_then(|s| chain.get(&s.name));
    let last = layout.steps.last().and_then(|s| chain.get(&s.name));
    Link {
        name: name.clone(),
        command: last.map(|l| l.command.clone()).unwrap_or_default(),
        materials: first.map(|l| l.materials.clone()).unwrap_or_default(),
        products: last.map(|l| l.products.clone()).unwrap_or_default(),
        byproducts: last.map(|l| l.byproducts.clone()).unwrap_or_default(),
        environment: Default::default(),
    }
}
