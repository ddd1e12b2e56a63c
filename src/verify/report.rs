//! What verification found, as data: the verdict, the one decisive reason when it failed, and
//! per step and inspection which links counted, which were ignored and why, and what each rule
//! did. It serialises to the JSON that `tollgate verify --format json` prints (field names are
//! part of the interface).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::artifact::Artifacts;

use super::rules::ListOutcome;

/// Pass or fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every check ran and passed.
    Pass,
    /// A check failed; see [`Report::failure`].
    Fail,
}

/// Which check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Check {
    /// The layout file's pinned digest.
    LayoutDigest,
    /// The layout's signatures.
    LayoutSignature,
    /// The layout's expiry.
    Expiry,
    /// A step's threshold of distinct authorised keys.
    Threshold,
    /// A step's threshold links disagree on their artifacts.
    ThresholdAgreement,
    /// A step's artifact rules.
    StepRules,
    /// An inspection's command.
    Inspection,
    /// An inspection's artifact rules.
    InspectionRules,
    /// A sublayout.
    Sublayout,
    /// The artifact verified by digest (an image) is not among the chain's products.
    Product,
    /// A step's expected attestations (ITE-10/11): too few counted, or a rule refused one.
    Predicate,
}

/// The decisive failure.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// Which check.
    pub check: Check,
    /// The step or inspection it concerns, if any.
    pub item: Option<String>,
    /// One sentence a person can act on.
    pub reason: String,
    /// For a failed expected predicate: which predicate, attestation, signer and rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicate: Option<PredicateFailure>,
}

/// Where an expected predicate failed, field by field.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PredicateFailure {
    /// The predicate type.
    pub predicate_type: String,
    /// The attestation file a rule refused, if one got that far.
    pub file: Option<String>,
    /// The keys that signed it.
    pub signers: Vec<String>,
    /// The rule's number in its list, from 1.
    pub rule: Option<usize>,
    /// The rule as written.
    pub rule_text: Option<String>,
    /// The rule's message for people, if it has one.
    pub debug: Option<String>,
}

/// Attestations considered for one expected predicate of a step.
#[derive(Debug, Clone, Serialize)]
pub struct PredicateReport {
    /// The predicate type.
    pub predicate_type: String,
    /// How many distinct functionaries' attestations must pass.
    pub threshold: usize,
    /// The keys whose attestations count.
    pub functionaries: Vec<String>,
    /// The distinct keys whose attestations passed every rule.
    pub signers: Vec<String>,
    /// Each attestation file of the predicate type found for the step.
    pub attestations: Vec<AttestationReport>,
}

/// One attestation file.
#[derive(Debug, Clone, Serialize)]
pub struct AttestationReport {
    /// The file.
    pub file: String,
    /// Whether it counted.
    pub accepted: bool,
    /// The functionaries whose signatures on it verified.
    pub signers: Vec<String>,
    /// Why it did not count.
    pub reason: Option<String>,
    /// What each rule did, in order (empty if it was refused before its rules ran).
    pub rules: Vec<RuleReport>,
}

/// What one CEL rule did to one attestation.
#[derive(Debug, Clone, Serialize)]
pub struct RuleReport {
    /// The rule's number, from 1.
    pub number: usize,
    /// The rule as written.
    pub rule: String,
    /// `true`, `false`, `no_claim` (it read a field the attestation lacks) or `error`.
    pub outcome: &'static str,
    /// Whether the outcome let the attestation count.
    pub passed: bool,
    /// The error, or the rule's debug message when it was false.
    pub message: Option<String>,
}

/// A link file considered for a step.
#[derive(Debug, Clone, Serialize)]
pub struct LinkReport {
    /// The file.
    pub file: String,
    /// Whether it counted.
    pub accepted: bool,
    /// The authorised keys whose signatures on it verified.
    pub signers: Vec<String>,
    /// Who else signed it: for each signature no authorised key made, the keyid of the
    /// layout's key that verifies it, or else the keyid the signature claims (unverified, as
    /// no key of the layout is that key). Filled in for files that did not count.
    pub unauthorised_signers: Vec<String>,
    /// Why it did not count.
    pub reason: Option<String>,
}

/// One step.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// The step.
    pub name: String,
    /// How many distinct authorised keys must agree.
    pub threshold: usize,
    /// The keys the step accepts links from (its functionaries' keyids).
    pub accepted_keys: Vec<String>,
    /// The distinct authorised keys that signed an accepted link.
    pub signers: Vec<String>,
    /// The link files considered: those named after an authorised key and, when the step
    /// falls short of its threshold, the step's other link files (reported, never counted).
    pub links: Vec<LinkReport>,
    /// What the rules did (materials, then products), once the step got that far.
    pub rules: Vec<ListOutcome>,
    /// The step's expected attestations, when it has any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub predicates: Vec<PredicateReport>,
}

/// One inspection.
#[derive(Debug, Clone, Serialize)]
pub struct InspectionReport {
    /// The inspection.
    pub name: String,
    /// Its command.
    pub run: Vec<String>,
    /// Its exit code (minus the signal number if killed), if it ran.
    pub return_value: Option<i64>,
    /// What the rules did.
    pub rules: Vec<ListOutcome>,
}

/// A finding that does not change the verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Warning {
    /// The step or inspection, if any.
    pub item: Option<String>,
    /// What was found.
    pub message: String,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Pass or fail.
    pub verdict: Verdict,
    /// The decisive failure.
    pub failure: Option<Failure>,
    /// The time the expiry was checked against (RFC 3339).
    pub verified_at: String,
    /// The layout's expiry.
    pub expires: Option<String>,
    /// The layout keys whose signatures verified.
    pub layout_signers: Vec<String>,
    /// The steps, in layout order (as far as verification got).
    pub steps: Vec<StepReport>,
    /// The inspections, in layout order (as far as verification got).
    pub inspections: Vec<InspectionReport>,
    /// Findings that do not change the verdict.
    pub warnings: Vec<Warning>,
    /// What the verdict rests on, for a verification summary (VSA): kept only when
    /// [`super::VerifyOptions::keep_evidence`] is set, and never printed.
    #[serde(skip)]
    pub evidence: Option<Evidence>,
}

/// What a verification rested on: the layout, every file that counted, and what each step of
/// the root layout produced. A signed verification summary is made from it.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// The layout file's SHA-256 (lowercase hex).
    pub layout_sha256: String,
    /// Every link and attestation file that counted (a sublayout's too), as its name relative
    /// to the link folder, with its SHA-256 (lowercase hex), in the order they were accepted.
    pub inputs: Vec<(String, String)>,
    /// Each step of the root layout and its products (the reduced link's).
    pub products: BTreeMap<String, Artifacts>,
    /// The root layout's last step, whose products a summary is about by default.
    pub last_step: Option<String>,
}

impl Report {
    /// Whether verification passed.
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Pass && self.failure.is_none()
    }
}
