//! A step's expected attestations (ITE-10/11), checked after its links: for each expected
//! predicate, the attestation files of the step are loaded (signed by the predicate's
//! functionaries, bound to the step in signed content, of the predicate's type), every CEL
//! rule is evaluated over each, and an attestation counts toward the predicate's threshold
//! only if every rule passed. The subjects of the attestations that counted join the step's
//! materials (or, for provenance, its products), so that the step's artifact rules tie what
//! was scanned to what was built.
//!
//! Everything fails closed: a rule that does not compile, errors, returns a non-boolean, or
//! reads a field the attestation lacks (unless `allow_if_no_claim`) refuses the attestation;
//! `warn` turns only a false result into a warning.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::model::artifact::{ArtifactPath, Artifacts, DigestSet};
use crate::model::attestation::{self, AttestationError, LoadedAttestation};
use crate::model::files;
use crate::model::keys::KeyId;
use crate::model::layout::{ExpectedAttribute, ExpectedPredicate, Layout, Step};
use crate::model::link::Link;
use crate::policy::cel::{CelInput, CelRule, Outcome};

use super::report::{
    AttestationReport, Check, Failure, PredicateFailure, PredicateReport, RuleReport,
};
use super::{Halt, Run, StepResult};

/// One attestation file of the step, loaded (or why not).
struct Candidate {
    file: String,
    path: String,
    loaded: Result<LoadedAttestation, String>,
}

/// Why an attestation did not count, for the decisive sentence.
struct Refusal {
    sentence: String,
    detail: PredicateFailure,
}

impl Run<'_> {
    /// Checks `step`'s expected predicates and returns its link with the subjects of the
    /// attestations that counted added to its materials (or products).
    pub(super) fn step_predicates(
        &mut self,
        step: &Step,
        layout: &Layout,
        link_dir: &Path,
        mut link: Link,
    ) -> StepResult<Link> {
        let rules = self.compile_rules(step)?;
        let mut candidates = self.attestation_files(step, layout, link_dir);
        let mut used = vec![false; candidates.len()];
        let mut materials: Vec<(ArtifactPath, DigestSet, String)> = Vec::new();
        let mut products: Vec<(ArtifactPath, DigestSet, String)> = Vec::new();
        for (expected, rules) in step.expected_predicates.iter().zip(&rules) {
            let slug = attestation::slug(&expected.predicate_type);
            let mut report = PredicateReport {
                predicate_type: expected.predicate_type.clone(),
                threshold: expected.threshold,
                functionaries: expected
                    .functionaries
                    .iter()
                    .map(KeyId::to_string)
                    .collect(),
                signers: Vec::new(),
                attestations: Vec::new(),
            };
            let mut counted: BTreeSet<KeyId> = BTreeSet::new();
            let mut refusals: Vec<Refusal> = Vec::new();
            for (index, candidate) in candidates.iter_mut().enumerate() {
                // Loaded: its signed type decides. Not loaded: the file name's hint.
                let ours = match &candidate.loaded {
                    Ok(loaded) => loaded.attestation.predicate_type == expected.predicate_type,
                    Err(_) => candidate.file.ends_with(&format!(".{slug}.intoto.json")),
                };
                if !ours {
                    continue;
                }
                used[index] = true;
                let entry = self.judge(step, expected, rules, candidate, &mut refusals);
                if entry.accepted {
                    let Ok(loaded) = &candidate.loaded else {
                        continue;
                    };
                    counted.extend(
                        loaded
                            .signers
                            .iter()
                            .filter(|k| expected.functionaries.contains(k))
                            .cloned(),
                    );
                    let side = if attestation::subjects_are_products(&expected.predicate_type) {
                        &mut products
                    } else {
                        &mut materials
                    };
                    for (name, digests) in loaded.attestation.subjects.iter() {
                        side.push((name.clone(), digests.clone(), candidate.path.clone()));
                    }
                    self.note_input(Path::new(&candidate.path), Some(loaded.sha256.clone()));
                }
                report.attestations.push(entry);
            }
            report.signers = counted.iter().map(KeyId::to_string).collect();
            let short = counted.len() < expected.threshold;
            self.step_report(step).predicates.push(report);
            if short {
                return Err(self.predicate_short(step, expected, link_dir, &counted, refusals));
            }
        }
        for (index, candidate) in candidates.iter().enumerate() {
            if let (false, Ok(loaded)) = (used[index], &candidate.loaded) {
                self.warn(
                    Some(&step.name),
                    format!(
                        "{}: an attestation of type {}, which step {} does not expect: ignored",
                        candidate.path, loaded.attestation.predicate_type, step.name
                    ),
                );
            }
        }
        crate::base::parallel::drop_in_background(candidates);
        link.materials = self.merged(step, &link.materials, materials, "materials")?;
        link.products = self.merged(step, &link.products, products, "products")?;
        Ok(link)
    }

    /// Compiles every rule of every expected predicate of `step` once, with the layout's
    /// parameters; a rule that does not compile fails the step.
    fn compile_rules(&mut self, step: &Step) -> StepResult<Vec<Vec<CelRule>>> {
        let mut compiled = Vec::with_capacity(step.expected_predicates.len());
        for expected in &step.expected_predicates {
            let mut rules = Vec::with_capacity(expected.expected_attributes.len());
            for (index, attribute) in expected.expected_attributes.iter().enumerate() {
                match CelRule::compile(
                    &attribute.rule,
                    &self.options.parameters,
                    &self.options.limits,
                ) {
                    Ok(rule) => rules.push(rule),
                    Err(e) => {
                        let sentence = format!(
                            "step {}: rule {} of its {} predicate ({}) cannot be evaluated: {e}; \
                             fix the layout",
                            step.name,
                            index + 1,
                            type_name(&expected.predicate_type),
                            attribute.rule
                        );
                        let detail = PredicateFailure {
                            predicate_type: expected.predicate_type.clone(),
                            rule: Some(index + 1),
                            rule_text: Some(attribute.rule.clone()),
                            debug: attribute.debug.clone(),
                            ..PredicateFailure::default()
                        };
                        return Err(self.fail_predicate(step, sentence, detail));
                    }
                }
            }
            compiled.push(rules);
        }
        Ok(compiled)
    }

    /// The step's attestation files (a hint by name), read and loaded on every core, checked
    /// against every key any of its predicates accepts.
    fn attestation_files(
        &mut self,
        step: &Step,
        layout: &Layout,
        link_dir: &Path,
    ) -> Vec<Candidate> {
        let limits = self.options.limits;
        let source = self.source();
        let mut names: Vec<String> = source
            .list(link_dir)
            .unwrap_or_default()
            .into_iter()
            .filter(|file| files::names_an_attestation_of(&step.name, file))
            .collect();
        names.sort();
        if names.len() > limits.max_attestations {
            let skipped = names.split_off(limits.max_attestations);
            self.warn(
                Some(&step.name),
                format!(
                    "step {} has {} more attestation files than max_attestations ({}) allows: \
                     {} and the rest were not read",
                    step.name,
                    skipped.len(),
                    limits.max_attestations,
                    skipped.first().map(String::as_str).unwrap_or_default()
                ),
            );
        }
        let keyids: BTreeSet<&KeyId> = step
            .expected_predicates
            .iter()
            .flat_map(|p| p.functionaries.iter())
            .collect();
        let trusted = layout.keys.subset(keyids);
        crate::base::parallel::map(&names, |file| {
            let path = link_dir.join(file);
            let loaded = match source.read(&path, limits.max_metadata_bytes) {
                Ok(Some(bytes)) => {
                    attestation::load_attestation(bytes.into_owned(), &trusted, &limits).map_err(
                        |e| match e {
                            AttestationError::NotSigned { claimed } => {
                                let claimed: Vec<String> = claimed
                                    .iter()
                                    .flatten()
                                    .map(|k| k.chars().take(8).collect())
                                    .collect();
                                format!(
                                    "signed by {}, which step {} does not accept for its \
                                     attestations",
                                    match claimed.len() {
                                        0 => "a key that names no keyid".to_owned(),
                                        1 => format!("key {}", claimed[0]),
                                        _ => format!("keys {}", claimed.join(", ")),
                                    },
                                    step.name
                                )
                            }
                            e => e.to_string(),
                        },
                    )
                }
                Ok(None) => Err("the file disappeared while it was read".to_owned()),
                Err(e) => Err(e.to_string()),
            };
            Candidate {
                file: file.clone(),
                path: path.display().to_string(),
                loaded,
            }
        })
    }

    /// Whether one attestation counts for `expected`, with what each rule did; files a
    /// warning for each false rule with `warn`, and the refusal when it does not count.
    fn judge(
        &mut self,
        step: &Step,
        expected: &ExpectedPredicate,
        rules: &[CelRule],
        candidate: &mut Candidate,
        refusals: &mut Vec<Refusal>,
    ) -> AttestationReport {
        // Judged once: the Statement is handed to CEL (which consumes it) or freed.
        let statement = candidate
            .loaded
            .as_mut()
            .ok()
            .map(|l| std::mem::take(&mut l.attestation.statement));
        let candidate = &*candidate;
        let mut entry = AttestationReport {
            file: candidate.path.clone(),
            accepted: false,
            signers: Vec::new(),
            reason: None,
            rules: Vec::new(),
        };
        let kind = type_name(&expected.predicate_type);
        let loaded = match &candidate.loaded {
            Ok(loaded) => loaded,
            Err(reason) => {
                let reason = if reason.contains("does not accept") {
                    format!(
                        "{reason}: its {kind} predicate accepts {}",
                        keys_phrase(expected.functionaries.iter())
                    )
                } else {
                    reason.clone()
                };
                entry.reason = Some(reason.clone());
                refusals.push(Refusal {
                    sentence: format!("{}: {reason}", candidate.path),
                    detail: PredicateFailure {
                        predicate_type: expected.predicate_type.clone(),
                        file: Some(candidate.path.clone()),
                        ..PredicateFailure::default()
                    },
                });
                return entry;
            }
        };
        let authorised: Vec<&KeyId> = loaded
            .signers
            .iter()
            .filter(|k| expected.functionaries.contains(k))
            .collect();
        entry.signers = authorised.iter().map(|k| k.to_string()).collect();
        let signed_by = keys_phrase(loaded.signers.iter());
        let detail = |rule: Option<(usize, &ExpectedAttribute)>| PredicateFailure {
            predicate_type: expected.predicate_type.clone(),
            file: Some(candidate.path.clone()),
            signers: loaded.signers.iter().map(KeyId::to_string).collect(),
            rule: rule.map(|(i, _)| i + 1),
            rule_text: rule.map(|(_, a)| a.rule.clone()),
            debug: rule.and_then(|(_, a)| a.debug.clone()),
        };
        let refuse = |entry: &mut AttestationReport,
                      refusals: &mut Vec<Refusal>,
                      reason: String,
                      detail: PredicateFailure| {
            entry.reason = Some(reason.clone());
            refusals.push(Refusal {
                sentence: format!("{} (signed by {signed_by}): {reason}", candidate.path),
                detail,
            });
        };
        if authorised.is_empty() {
            let accepted = keys_phrase(expected.functionaries.iter());
            let reason = format!(
                "signed by {signed_by}, which the {kind} predicate of step {} does not accept: \
                 it accepts {accepted}",
                step.name
            );
            refuse(&mut entry, refusals, reason, detail(None));
            return entry;
        }
        if loaded.attestation.step != step.name {
            let reason = format!(
                "it was attested for step {} (its subjects' {} annotation), not {}",
                loaded.attestation.step,
                attestation::STEP_ANNOTATION,
                step.name
            );
            refuse(&mut entry, refusals, reason, detail(None));
            return entry;
        }
        // Converted once for all the rules, and only if there are any.
        let input = match statement {
            Some(statement) if !rules.is_empty() => Some(CelInput::from_statement(statement)),
            other => {
                crate::base::parallel::drop_in_background(other);
                None
            }
        };
        let mut refused = None;
        for (index, (rule, attribute)) in
            rules.iter().zip(&expected.expected_attributes).enumerate()
        {
            let Some(input) = &input else { break };
            let outcome = rule.evaluate(input, &self.options.limits);
            let (name, passed, message) = match outcome {
                Outcome::True => ("true", true, None),
                Outcome::False if attribute.warn => {
                    self.warn(
                        Some(&step.name),
                        format!(
                            "{}: rule {} of the {kind} predicate ({}) is false{} (a warning: the \
                             rule has warn = true)",
                            candidate.path,
                            index + 1,
                            attribute.rule,
                            attribute
                                .debug
                                .as_ref()
                                .map(|d| format!(": {d}"))
                                .unwrap_or_default()
                        ),
                    );
                    ("false", true, attribute.debug.clone())
                }
                Outcome::False => ("false", false, attribute.debug.clone()),
                Outcome::NoClaim { field } => (
                    "no_claim",
                    attribute.allow_if_no_claim,
                    Some(format!(
                        "the attestation has no field {field:?}{}",
                        if attribute.allow_if_no_claim {
                            " (allowed: allow_if_no_claim)"
                        } else {
                            ""
                        }
                    )),
                ),
                Outcome::Error { message } => ("error", false, Some(message)),
            };
            if !passed && refused.is_none() {
                let what = match name {
                    "false" => "is false".to_owned(),
                    "no_claim" => format!(
                        "reads a field the attestation does not have ({})",
                        message.as_deref().unwrap_or_default()
                    ),
                    _ => format!("failed: {}", message.as_deref().unwrap_or_default()),
                };
                let debug = match (name, &attribute.debug) {
                    ("false", Some(debug)) => format!(": {debug}"),
                    _ => String::new(),
                };
                refused = Some((
                    format!("rule {} ({}) {what}{debug}", index + 1, attribute.rule),
                    detail(Some((index, attribute))),
                ));
            }
            entry.rules.push(RuleReport {
                number: index + 1,
                rule: attribute.rule.clone(),
                outcome: name,
                passed,
                message,
            });
        }
        // A large SBOM's converted form takes a while to free: the verdict need not wait.
        crate::base::parallel::drop_in_background(input);
        match refused {
            Some((reason, detail)) => refuse(&mut entry, refusals, reason, detail),
            None => entry.accepted = true,
        }
        entry
    }

    /// The decisive failure of a predicate short of its threshold.
    fn predicate_short(
        &mut self,
        step: &Step,
        expected: &ExpectedPredicate,
        link_dir: &Path,
        counted: &BTreeSet<KeyId>,
        mut refusals: Vec<Refusal>,
    ) -> Halt {
        let kind = type_name(&expected.predicate_type);
        let tally = format!(
            "{} of {} required {kind} attestations counted",
            counted.len(),
            expected.threshold
        );
        if refusals.is_empty() {
            let place = self.source().place(link_dir);
            let sentence = format!(
                "step {}: no {kind} attestation ({}) found in {place}; it accepts attestations \
                 signed by {} (made with `tollgate attest --step {} --predicate-type {}`); {tally}",
                step.name,
                expected.predicate_type,
                keys_phrase(expected.functionaries.iter()),
                step.name,
                attestation::short_name(&expected.predicate_type)
                    .unwrap_or(&expected.predicate_type),
            );
            let detail = PredicateFailure {
                predicate_type: expected.predicate_type.clone(),
                ..PredicateFailure::default()
            };
            return self.fail_predicate(step, sentence, detail);
        }
        // A rule's refusal is the most telling; else the first file's.
        let at = refusals
            .iter()
            .position(|r| r.detail.rule.is_some())
            .unwrap_or(0);
        let first = refusals.swap_remove(at);
        let more = if refusals.is_empty() {
            String::new()
        } else {
            format!(" (and {} more refused)", refusals.len())
        };
        let sentence = format!(
            "step {}: the {kind} attestation {}; {tally}{more}",
            step.name, first.sentence
        );
        self.fail_predicate(step, sentence, first.detail)
    }

    /// The subjects of the attestations that counted, added to one side of the step's link;
    /// a name recorded with another digest (by the link or another attestation) fails.
    fn merged(
        &mut self,
        step: &Step,
        recorded: &Artifacts,
        added: Vec<(ArtifactPath, DigestSet, String)>,
        side: &str,
    ) -> StepResult<Artifacts> {
        if added.is_empty() {
            return Ok(recorded.clone());
        }
        let mut new: BTreeMap<ArtifactPath, (DigestSet, String)> = BTreeMap::new();
        for (name, digests, file) in added {
            let earlier = recorded
                .get(name.as_str())
                .map(|d| (d, "the step's link".to_owned()))
                .or_else(|| new.get(&name).map(|(d, f)| (d, f.clone())));
            match earlier {
                Some((known, _)) if *known == digests => {}
                Some((known, from)) => {
                    let sentence = format!(
                        "step {}: {file} attests {name} with {}, but {from} records it with {} \
                         (among its {side}): they are not about the same file",
                        step.name,
                        digest_text(&digests),
                        digest_text(known)
                    );
                    let detail = PredicateFailure {
                        file: Some(file),
                        ..PredicateFailure::default()
                    };
                    return Err(self.fail_predicate(step, sentence, detail));
                }
                None => {
                    new.insert(name, (digests, file));
                }
            }
        }
        let entries = recorded
            .iter()
            .map(|(n, d)| (n.clone(), d.clone()))
            .chain(new.into_iter().map(|(n, (d, _))| (n, d)))
            .collect();
        // Names already recorded were left out of `new` above, so none repeats; should one,
        // the step fails rather than losing its artifacts (an empty side would pass its rules).
        Artifacts::from_entries(entries).map_err(|name| {
            let sentence = format!(
                "step {}: {name} is among its {side} twice once its attestations' subjects are \
                 added",
                step.name
            );
            self.fail_predicate(step, sentence, PredicateFailure::default())
        })
    }

    /// The report of `step`, filed by its links (or for a step that needs none).
    fn step_report(&mut self, step: &Step) -> &mut super::report::StepReport {
        let at = self
            .report
            .steps
            .iter()
            .rposition(|s| s.name == step.name.as_str());
        match at {
            Some(at) => &mut self.report.steps[at],
            None => {
                self.report.steps.push(super::report::StepReport {
                    name: step.name.to_string(),
                    threshold: step.threshold,
                    accepted_keys: step.pubkeys.iter().map(KeyId::to_string).collect(),
                    signers: Vec::new(),
                    links: Vec::new(),
                    rules: Vec::new(),
                    predicates: Vec::new(),
                });
                let last = self.report.steps.len() - 1;
                &mut self.report.steps[last]
            }
        }
    }

    fn fail_predicate(&mut self, step: &Step, sentence: String, detail: PredicateFailure) -> Halt {
        if self.report.failure.is_none() {
            self.report.failure = Some(Failure {
                check: Check::Predicate,
                item: Some(step.name.to_string()),
                reason: sentence,
                predicate: Some(detail),
            });
        }
        Halt::Failed
    }
}

/// The short name of a predicate type if it has one, else the type itself.
fn type_name(predicate_type: &str) -> &str {
    attestation::short_name(predicate_type).unwrap_or(predicate_type)
}

fn keys_phrase<'a>(keys: impl Iterator<Item = &'a KeyId>) -> String {
    let short: Vec<&str> = keys.map(KeyId::short).collect();
    match short.len() {
        0 => "no key".to_owned(),
        1 => format!("key {}", short[0]),
        _ => format!("keys {}", short.join(", ")),
    }
}

fn digest_text(digests: &DigestSet) -> String {
    digests
        .iter()
        .map(|(algorithm, hex)| format!("{algorithm}:{hex}"))
        .collect::<Vec<_>>()
        .join(", ")
}
