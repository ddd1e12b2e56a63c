//! Verifying a supply chain against its layout, in the reference's order (numbered below as
//! the in-toto workflow numbers them), with Tollgate's stricter checks where marked Off-spec.
//!
//! Input errors (an unreadable or malformed layout, bad parameters) are [`VerifyError`]s;
//! everything a supply chain can get wrong is a [`Report`] whose verdict is `Fail`, with the one
//! decisive reason first. Nothing returns `Pass` unless every check ran and passed, and no
//! inspection runs before every other check has passed (THREATS I3).

pub mod params;
pub mod products;
pub mod report;
pub mod rules;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::envelope::{Envelope, EnvelopeError};
use crate::fsio;
use crate::keyring::KeyRing;
use crate::keys::KeyId;
use crate::layout::{Inspection, Layout, LayoutError, Step};
use crate::limits::{Limit, Limits};
use crate::link::{Link, RawLink};
use crate::metadata::Kind;
use crate::name::StepName;
use crate::record::{self, CommandOptions, RecordOptions};
use crate::threshold::{self, Signers};
use crate::timestamp;

use params::ParamError;
use report::{Check, Failure, InspectionReport, LinkReport, Report, StepReport, Verdict, Warning};
use rules::Side;

/// How deep sublayouts may nest.
const MAX_SUBLAYOUT_DEPTH: usize = 4;

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
    /// Where inspections run (default: the working directory).
    pub workdir: Option<PathBuf>,
    /// The SHA-256 (lowercase hex) the layout file must have: pins one layout, so that an
    /// older one the owner also signed cannot be replayed (THREATS D5).
    pub layout_digest: Option<String>,
    /// Fail when a rule meant to consume artifacts matches none (THREATS F7); by default
    /// that is a warning.
    pub strict_rules: bool,
    /// Caps.
    pub limits: Limits,
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
        },
    };
    if let Some(pinned) = &options.layout_digest {
        use sha2::Digest;
        let actual = hex::encode(sha2::Sha256::digest(layout_file));
        if !actual.eq_ignore_ascii_case(pinned.trim_start_matches("sha256:")) {
            let _ = run.fail(
                Check::LayoutDigest,
                None,
                format!("the layout's SHA-256 is {actual}, not the pinned {pinned}"),
            );
            return Ok(run.report);
        }
    }
    let envelope = Envelope::from_bytes(layout_file, &options.limits)?;
    if run
        .verify_layout(&envelope, layout_keys, &options.link_dir, 0, None)?
        .is_some()
    {
        run.report.verdict = Verdict::Pass;
    }
    Ok(run.report)
}

struct Run<'o> {
    options: &'o VerifyOptions,
    report: Report,
}

/// Stop verifying: the failure is recorded in the report.
struct Stop;

/// A layout that verified, with the summary link a parent layout sees (sublayouts only).
struct Passed {
    summary: Option<Link>,
}

impl Run<'_> {
    fn fail(&mut self, check: Check, item: Option<&StepName>, reason: String) -> Stop {
        if self.report.failure.is_none() {
            self.report.failure = Some(Failure {
                check,
                item: item.map(|n| n.to_string()),
                reason,
            });
        }
        Stop
    }

    fn warn(&mut self, item: Option<&StepName>, message: String) {
        self.report.warnings.push(Warning {
            item: item.map(|n| n.to_string()),
            message,
        });
    }

    /// Verifies one layout (the root, or a sublayout at `depth`); `None` when it failed (the
    /// failure is in the report).
    fn verify_layout(
        &mut self,
        envelope: &Envelope,
        keys: &KeyRing,
        link_dir: &Path,
        depth: usize,
        summary_name: Option<&StepName>,
    ) -> Result<Option<Passed>, VerifyError> {
        let root = depth == 0;
        // 1. Layout signatures: every given key must have signed (the reference's rule).
        let verified = match envelope.verify(keys, keys.len()) {
            Ok(verified) => verified,
            Err(EnvelopeError::Payload(e)) => return Err(EnvelopeError::Payload(e).into()),
            Err(e) => {
                let _ = self.fail(
                    Check::LayoutSignature,
                    summary_name,
                    format!("layout signature: {e}"),
                );
                return Ok(None);
            }
        };
        if root {
            self.report.layout_signers =
                verified.signers.keys.iter().map(KeyId::to_string).collect();
        }
        let mut payload = verified.payload;
        match Kind::of(&payload) {
            Ok(Kind::Layout) => {}
            Ok(Kind::Link) => return Err(VerifyError::NotALayout("link")),
            Err(_) => return Err(VerifyError::NotALayout("document of another kind")),
        }
        let layout = Layout::from_value(&payload, &self.options.limits)?;

        // 2. Expiry: equal counts as expired.
        if root {
            self.report.expires = Some(timestamp::format(&layout.expires));
        }
        if layout.expires <= self.options.now {
            let _ = self.fail(
                Check::Expiry,
                summary_name,
                format!(
                    "the layout expired at {} (checked at {})",
                    timestamp::format(&layout.expires),
                    timestamp::format(&self.options.now)
                ),
            );
            return Ok(None);
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

        // 3. Parameter substitution; the rules are parsed again. Off-spec: the reference
        // substitutes only when parameters are given, so that a layout's `{name}` without a
        // value silently stays literal text; here it is an error.
        params::apply(&mut payload, &self.options.parameters)?;
        let layout = Layout::from_value(&payload, &self.options.limits)?;
        self.lint(&layout, link_dir);

        // 4-6. Links: found by file name (a hint), counted by verified signer and signed name.
        // Plain links are read and checked on every core at once; anything else (a sublayout,
        // or a file with an error to report) afterwards, in order.
        let mut preloaded = preload(&layout, link_dir, &self.options.limits);
        let mut chain: BTreeMap<StepName, Link> = BTreeMap::new();
        for step in &layout.steps {
            match self.step_links(step, &layout, link_dir, depth, &mut preloaded)? {
                Some(link) => {
                    chain.insert(step.name.clone(), link);
                }
                None => return Ok(None),
            }
        }

        // 10-11 after 9: step rules, before any inspection runs.
        let links: BTreeMap<StepName, &Link> = chain.iter().map(|(k, v)| (k.clone(), v)).collect();
        for step in &layout.steps {
            let passed = self.apply_rules(
                &step.name,
                [&step.expected_materials, &step.expected_products],
                &chain[&step.name],
                &links,
                Check::StepRules,
            );
            if !passed {
                return Ok(None);
            }
        }

        // 12. Inspections, then their rules.
        let mut inspected: BTreeMap<StepName, Link> = BTreeMap::new();
        for inspection in &layout.inspections {
            match self.inspect(inspection) {
                Ok(link) => {
                    inspected.insert(inspection.name.clone(), link);
                }
                Err(Stop) => return Ok(None),
            }
        }
        let mut all = links;
        for (name, link) in &inspected {
            all.insert(name.clone(), link);
        }
        for inspection in &layout.inspections {
            let passed = self.apply_rules(
                &inspection.name,
                [
                    &inspection.expected_materials,
                    &inspection.expected_products,
                ],
                &inspected[&inspection.name],
                &all,
                Check::InspectionRules,
            );
            if !passed {
                return Ok(None);
            }
        }

        // The summary link a parent layout sees: the first step's materials, the last step's
        // products, byproducts and command.
        let Some(name) = summary_name else {
            return Ok(Some(Passed { summary: None }));
        };
        let first = layout.steps.first().and_then(|s| chain.get(&s.name));
        let last = layout.steps.last().and_then(|s| chain.get(&s.name));
        Ok(Some(Passed {
            summary: Some(Link {
                name: name.clone(),
                command: last.map(|l| l.command.clone()).unwrap_or_default(),
                materials: first.map(|l| l.materials.clone()).unwrap_or_default(),
                products: last.map(|l| l.products.clone()).unwrap_or_default(),
                byproducts: last.map(|l| l.byproducts.clone()).unwrap_or_default(),
                environment: Default::default(),
            }),
        }))
    }

    /// Loads, checks and counts a step's links; returns the step's reduced link, or `None` on
    /// failure.
    fn step_links(
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
                reason.push_str(&format!(" (no link found in {})", link_dir.display()));
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
        let bytes = match fsio::read_capped(path, limits.max_metadata_bytes, Limit::MetadataBytes) {
            Ok(bytes) => bytes,
            Err(fsio::FsError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e.to_string()),
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

    /// Runs one inspection: records `.` in the working folder, runs the command, records `.`
    /// again. Its link stays in memory: nothing is written over the inputs (THREATS I5).
    fn inspect(&mut self, inspection: &Inspection) -> Result<Link, Stop> {
        let name = &inspection.name;
        let mut report = InspectionReport {
            name: name.to_string(),
            run: inspection.run.clone(),
            return_value: None,
            rules: Vec::new(),
        };
        if inspection.run.is_empty() {
            self.report.inspections.push(report);
            return Err(self.fail(
                Check::Inspection,
                Some(name),
                format!("inspection {name} has no command to run"),
            ));
        }
        let options = RecordOptions {
            base_path: self.options.workdir.clone(),
            limits: self.options.limits,
            ..RecordOptions::default()
        };
        let here = vec![".".to_owned()];
        let materials = match record::record_artifacts(&here, &options) {
            Ok(r) => r.artifacts,
            Err(e) => {
                self.report.inspections.push(report);
                return Err(self.fail(
                    Check::Inspection,
                    Some(name),
                    format!("inspection {name}: recording its materials: {e}"),
                ));
            }
        };
        let command = CommandOptions {
            record_streams: true,
            silent: true,
            timeout: Some(self.options.inspection_timeout),
            current_dir: self.options.workdir.clone(),
            ..CommandOptions::default()
        };
        let outcome = match record::run_command(&inspection.run, &command) {
            Ok(outcome) => outcome,
            Err(e) => {
                self.report.inspections.push(report);
                return Err(self.fail(
                    Check::Inspection,
                    Some(name),
                    format!("inspection {name}: {e}"),
                ));
            }
        };
        report.return_value = Some(outcome.return_value);
        if outcome.return_value != 0 {
            self.report.inspections.push(report);
            return Err(self.fail(
                Check::Inspection,
                Some(name),
                format!(
                    "inspection {name}: {:?} exited with {}",
                    inspection.run, outcome.return_value
                ),
            ));
        }
        let products = match record::record_artifacts(&here, &options) {
            Ok(r) => r.artifacts,
            Err(e) => {
                self.report.inspections.push(report);
                return Err(self.fail(
                    Check::Inspection,
                    Some(name),
                    format!("inspection {name}: recording its products: {e}"),
                ));
            }
        };
        self.report.inspections.push(report);
        Ok(Link {
            name: name.clone(),
            command: inspection.run.clone(),
            materials,
            products,
            byproducts: Default::default(),
            environment: Default::default(),
        })
    }

    /// Applies a step's or inspection's two rule lists to its link and files the outcomes in
    /// the report; on failure the decisive reason is recorded and `false` returned.
    fn apply_rules(
        &mut self,
        item: &StepName,
        lists: [&Vec<crate::rule::ArtifactRule>; 2],
        link: &Link,
        links: &BTreeMap<StepName, &Link>,
        check: Check,
    ) -> bool {
        let outcomes = vec![
            rules::apply(Side::ExpectedMaterials, lists[0], link, links),
            rules::apply(Side::ExpectedProducts, lists[1], link, links),
        ];
        self.note_rules(item, &outcomes);
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
        let kind = if check == Check::StepRules {
            "step"
        } else {
            "inspection"
        };
        let Some(failure) = failure else {
            if let (true, Some((side, number, rule))) = (self.options.strict_rules, idle) {
                let reason = format!(
                    "{kind} {item}, {} rule {number} ({rule}) matched no artifact (--strict-rules)",
                    side.name()
                );
                let _ = self.fail(check, Some(item), reason);
                return false;
            }
            return true;
        };
        let reason = format!(
            "{kind} {item}, {} rule {} ({}): {}",
            failure.side.name(),
            failure.number,
            failure.rule,
            failure.explanation
        );
        let _ = self.fail(check, Some(item), reason);
        false
    }

    fn note_rules(&mut self, item: &StepName, outcomes: &[rules::ListOutcome]) {
        for outcome in outcomes {
            for (i, rule) in outcome.rules.iter().enumerate() {
                if rule.matched_nothing {
                    self.warn(
                        Some(item),
                        format!(
                            "{} rule {} ({}) matched no artifact",
                            outcome.side.name(),
                            i + 1,
                            rule.rule
                        ),
                    );
                }
            }
        }
    }

    /// Findings about the layout itself that do not change the verdict.
    fn lint(&mut self, layout: &Layout, link_dir: &Path) {
        let lists = layout
            .steps
            .iter()
            .map(|s| {
                (
                    &s.name,
                    [
                        (&s.expected_materials, "expected_materials"),
                        (&s.expected_products, "expected_products"),
                    ],
                )
            })
            .chain(layout.inspections.iter().map(|i| {
                (
                    &i.name,
                    [
                        (&i.expected_materials, "expected_materials"),
                        (&i.expected_products, "expected_products"),
                    ],
                )
            }));
        let mut found = Vec::new();
        for (name, pair) in lists {
            for (rules, field) in pair {
                let ends_in_disallow = rules.last().is_some_and(
                    |r| matches!(r.kind(), crate::rule::RuleKind::Disallow(p) if p.as_str() == "*"),
                );
                // An empty list accepts everything and says so; a list of rules that ends
                // without DISALLOW * only looks as if it restricted anything (THREATS F8).
                if !rules.is_empty() && !ends_in_disallow {
                    found.push((name.clone(), format!("{field} does not end in DISALLOW *: artifacts no rule mentions are accepted")));
                }
            }
        }
        for (name, message) in found {
            self.warn(Some(&name), message);
        }
        // Links for steps the layout does not name (THREATS E1).
        let steps: BTreeSet<&str> = layout.steps.iter().map(|s| s.name.as_str()).collect();
        if let Ok(entries) = std::fs::read_dir(link_dir) {
            let mut strangers = BTreeSet::new();
            for entry in entries.flatten() {
                let file = entry.file_name();
                let Some(file) = file.to_str() else { continue };
                let Some(stem) = file.strip_suffix(".link") else {
                    continue;
                };
                let step = stem.rsplit_once('.').map_or(stem, |(s, _)| s);
                if !steps.contains(step)
                    && !layout.inspections.iter().any(|i| i.name.as_str() == step)
                {
                    strangers.insert(file.to_owned());
                }
            }
            for file in strangers {
                self.warn(
                    None,
                    format!("{file}: a link for a step the layout does not name; ignored"),
                );
            }
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
enum Preloaded {
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

/// Reads and checks every step's candidate link files on every core.
fn preload(layout: &Layout, link_dir: &Path, limits: &Limits) -> BTreeMap<PathBuf, Preloaded> {
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
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .min(jobs.len())
        .max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((path, step)) = jobs.get(index) else {
                            break;
                        };
                        let authorised = layout.keys.subset(&step.pubkeys);
                        done.push((path.clone(), preload_one(path, step, &authorised, limits)));
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    })
}

fn preload_one(path: &Path, step: &Step, authorised: &KeyRing, limits: &Limits) -> Preloaded {
    let bytes = match fsio::read_capped(path, limits.max_metadata_bytes, Limit::MetadataBytes) {
        Ok(bytes) => bytes,
        Err(fsio::FsError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Preloaded::Missing;
        }
        Err(e) => return Preloaded::Failed(e.to_string()),
    };
    match Envelope::verify_bytes_as::<RawLink>(bytes, authorised, 1, limits) {
        Ok(verified) => match Link::from_raw(verified.payload, limits) {
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
