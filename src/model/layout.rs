//! The layout: the signed supply-chain policy, parsed into checked types.
//!
//! Loading a layout checks everything that can be checked without links (THREATS B8, D2, D6,
//! E6, F5): `_type`; no unknown fields anywhere; the expiry's form; every key (its keyid must
//! name it, no key twice); unique step and inspection names; thresholds from 1 to the number of
//! the step's keys, each of which the layout declares; every rule's grammar; and that every
//! `MATCH ... FROM` names a step (or, in an inspection, a step or an inspection) that exists.
//! The reference checks only some of this.
//!
//! A step may also expect signed attestations (ITE-10/11): `expected_predicates`, each a
//! predicate type, the functionaries whose attestations count, a threshold, and CEL rules over
//! the attestation (`expected_attributes`). The reference cannot read a layout that uses them;
//! a layout that does not is written exactly as before. A step that expects predicates may
//! require no link at all: its `pubkeys` are empty and its `threshold` is 0.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::base::limits::{Limit, Limits};
use crate::base::timestamp::{self, TimestampError};
use crate::model::keyring::{KeyRing, KeyRingError};
use crate::model::keys::{KeyError, KeyId, PublicKey};
use crate::model::name::{NameError, StepName};
use crate::model::rule::{ArtifactRule, RuleError, RuleKind};

/// Why a layout is rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// A field is missing, unknown, or of the wrong type.
    #[error("layout field {path}: {message}")]
    Schema {
        /// Where, e.g. `steps[1].threshold`.
        path: String,
        /// What serde found.
        message: String,
    },
    /// The expiry is not in the one accepted form.
    #[error("layout field expires: {0}")]
    Expires(#[from] TimestampError),
    /// A key object is malformed or unsupported.
    #[error("layout key {keyid}: {source}")]
    Key {
        /// The keyid the key is listed under.
        keyid: String,
        /// What is wrong.
        #[source]
        source: KeyError,
    },
    /// A keyid that does not name its key, or one key listed twice.
    #[error("layout keys: {0}")]
    KeyRing(#[from] KeyRingError),
    /// More keys than [`Limits::max_keys`].
    #[error("layout declares {count} keys, over the limit {limit} of {max}")]
    TooManyKeys {
        /// How many it declares.
        count: usize,
        /// The limit's value.
        max: usize,
        /// Which limit.
        limit: Limit,
    },
    /// A step or inspection name that may not be used.
    #[error("{location}: {source}")]
    Name {
        /// Which step or inspection.
        location: String,
        /// What is wrong.
        #[source]
        source: NameError,
    },
    /// Two steps or inspections share a name.
    #[error("duplicate step or inspection name {0:?}")]
    DuplicateName(String),
    /// A threshold out of range.
    #[error(
        "step {step:?}: threshold {threshold} must be from 1 to the step's {keys} key(s) (0 \
         with no keys only for a step that expects predicates and no link)"
    )]
    Threshold {
        /// The step.
        step: String,
        /// The threshold found.
        threshold: i64,
        /// How many keys the step authorises.
        keys: usize,
    },
    /// A step authorises a key the layout does not declare, or names one twice.
    #[error("step {step:?}: pubkeys: {reason}")]
    Pubkeys {
        /// The step.
        step: String,
        /// What is wrong.
        reason: String,
    },
    /// A step's expected predicate names functionaries that cannot be used, or a threshold
    /// out of range.
    #[error("step {step:?}: expected_predicates[{index}]: {reason}")]
    Predicate {
        /// The step.
        step: String,
        /// Which expected predicate, from 0.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// A step authorises a keyid that is not one (64 lowercase hex characters).
    #[error("step {step:?}: pubkeys: {source}")]
    PubkeyId {
        /// The step.
        step: String,
        /// Why the keyid is not one.
        #[source]
        source: KeyError,
    },
    /// A rule that does not parse.
    #[error("{location}: {source}")]
    Rule {
        /// Which list and index, e.g. `step "build" expected_products[2]`.
        location: String,
        /// What is wrong.
        #[source]
        source: RuleError,
    },
    /// A `MATCH ... FROM` naming a step that does not exist or cannot be referred to there.
    #[error("{location}: MATCH ... FROM {step:?}: {reason}")]
    MatchTarget {
        /// Which list and index.
        location: String,
        /// The step named.
        step: String,
        /// Why it cannot be used.
        reason: &'static str,
    },
}

/// A checked layout.
#[derive(Debug, Clone)]
pub struct Layout {
    /// When the layout stops being valid.
    pub expires: DateTime<Utc>,
    /// Free text for people.
    pub readme: String,
    /// The functionaries' keys, each once.
    pub keys: KeyRing,
    /// The steps, in layout order.
    pub steps: Vec<Step>,
    /// The inspections, in layout order.
    pub inspections: Vec<Inspection>,
}

/// A checked step.
#[derive(Debug, Clone)]
pub struct Step {
    /// The step's name.
    pub name: StepName,
    /// How many distinct authorised keys must agree.
    pub threshold: usize,
    /// The keys authorised to perform the step, in layout order.
    pub pubkeys: Vec<KeyId>,
    /// The command the step is expected to run (advisory, as in-toto defines it).
    pub expected_command: Vec<String>,
    /// Rules over the step's materials.
    pub expected_materials: Vec<ArtifactRule>,
    /// Rules over the step's products.
    pub expected_products: Vec<ArtifactRule>,
    /// The attestations the step expects (ITE-10/11), in layout order.
    pub expected_predicates: Vec<ExpectedPredicate>,
}

/// Attestations of one predicate type a step expects (ITE-10/11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedPredicate {
    /// The predicate type URI (`https://cyclonedx.org/bom`, ...).
    pub predicate_type: String,
    /// The keys whose attestations count, in layout order.
    pub functionaries: Vec<KeyId>,
    /// How many distinct keys' attestations must pass every rule.
    pub threshold: usize,
    /// The CEL rules every counted attestation must pass, in layout order.
    pub expected_attributes: Vec<ExpectedAttribute>,
}

/// One CEL rule over an attestation (ITE-11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedAttribute {
    /// The CEL expression: it sees `subject`, `predicateType` and `predicate`.
    pub rule: String,
    /// What a person reads when the rule is false.
    pub debug: Option<String>,
    /// A false result is a warning, not a failure (an error still fails).
    pub warn: bool,
    /// A rule that reads a field the attestation does not have passes instead of failing.
    pub allow_if_no_claim: bool,
}

impl Step {
    /// Whether the step needs links: every step does, but one that expects predicates and
    /// lists no keys of its own.
    pub fn needs_links(&self) -> bool {
        !self.pubkeys.is_empty() || self.expected_predicates.is_empty()
    }
}

/// A checked inspection.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// The inspection's name.
    pub name: StepName,
    /// The command the verifier runs.
    pub run: Vec<String>,
    /// Rules over the inspection's materials.
    pub expected_materials: Vec<ArtifactRule>,
    /// Rules over the inspection's products.
    pub expected_products: Vec<ArtifactRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayout {
    #[serde(rename = "_type")]
    _type: String,
    expires: String,
    #[serde(default)]
    readme: String,
    #[serde(default)]
    keys: Map<String, Value>,
    #[serde(default)]
    steps: Vec<RawStep>,
    #[serde(default)]
    inspect: Vec<RawInspection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    #[serde(rename = "_type")]
    type_: String,
    name: String,
    #[serde(default = "one")]
    threshold: i64,
    #[serde(default)]
    pubkeys: Vec<String>,
    #[serde(default)]
    expected_command: Vec<String>,
    #[serde(default)]
    expected_materials: Vec<Vec<String>>,
    #[serde(default)]
    expected_products: Vec<Vec<String>>,
    #[serde(default)]
    expected_predicates: Vec<RawPredicate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPredicate {
    predicate_type: String,
    #[serde(default)]
    functionaries: Vec<String>,
    #[serde(default = "one")]
    threshold: i64,
    #[serde(default)]
    expected_attributes: Vec<RawAttribute>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAttribute {
    rule: String,
    #[serde(default)]
    debug: Option<String>,
    #[serde(default)]
    warn: bool,
    #[serde(default)]
    allow_if_no_claim: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInspection {
    #[serde(rename = "_type")]
    type_: String,
    name: String,
    #[serde(default)]
    run: Vec<String>,
    #[serde(default)]
    expected_materials: Vec<Vec<String>>,
    #[serde(default)]
    expected_products: Vec<Vec<String>>,
}

fn one() -> i64 {
    1
}

impl Layout {
    /// Checks a layout's payload (the `signed` part, or the parsed DSSE payload).
    pub fn from_value(value: &Value, limits: &Limits) -> Result<Layout, LayoutError> {
        if let Some(message) = crate::model::schema::type_mismatch(value, "layout") {
            return Err(LayoutError::Schema {
                path: "_type".into(),
                message,
            });
        }
        let raw: RawLayout = crate::model::schema::deserialize(value)
            .map_err(|(path, message)| LayoutError::Schema { path, message })?;
        let expires = timestamp::parse(&raw.expires)?;
        let keys = parse_keys(raw.keys, limits)?;

        let mut names = BTreeSet::new();
        let mut steps = Vec::with_capacity(raw.steps.len());
        for (index, step) in raw.steps.into_iter().enumerate() {
            expect_type(&format!("steps[{index}]._type"), &step.type_, "step")?;
            let name = checked_name(&step.name, &format!("steps[{index}].name"))?;
            if !names.insert(name.clone()) {
                return Err(LayoutError::DuplicateName(step.name));
            }
            steps.push(parse_step(step, name, &keys)?);
        }
        let step_names = names.clone();
        let mut inspections = Vec::with_capacity(raw.inspect.len());
        for (index, inspection) in raw.inspect.into_iter().enumerate() {
            expect_type(
                &format!("inspect[{index}]._type"),
                &inspection.type_,
                "inspection",
            )?;
            let name = checked_name(&inspection.name, &format!("inspect[{index}].name"))?;
            if !names.insert(name.clone()) {
                return Err(LayoutError::DuplicateName(inspection.name));
            }
            let location = format!("inspection {:?}", name.as_str());
            inspections.push(Inspection {
                expected_materials: parse_rules(
                    &inspection.expected_materials,
                    &location,
                    "expected_materials",
                )?,
                expected_products: parse_rules(
                    &inspection.expected_products,
                    &location,
                    "expected_products",
                )?,
                name,
                run: inspection.run,
            });
        }

        // Every MATCH must name a step that can have a link when the rule is applied: step
        // rules are applied before any inspection runs, so they may name steps only.
        let inspection_names: BTreeSet<StepName> =
            inspections.iter().map(|i| i.name.clone()).collect();
        for step in &steps {
            let location = format!("step {:?}", step.name.as_str());
            check_targets(&step_names, &inspection_names, &location, step.rules())?;
        }
        for inspection in &inspections {
            let location = format!("inspection {:?}", inspection.name.as_str());
            check_targets(&names, &inspection_names, &location, inspection.rules())?;
        }

        Ok(Layout {
            expires,
            readme: raw.readme,
            keys,
            steps,
            inspections,
        })
    }

    /// The layout in the full form the reference reads and signs: every field present, keys
    /// with their `keyid`. A classic signature the reference can check must cover this form,
    /// because the reference recomputes the signed bytes from its own model.
    pub fn to_value(&self) -> Value {
        let keys: Map<String, Value> = self
            .keys
            .iter()
            .map(|(keyid, key)| (keyid.to_string(), key.to_layout_entry(keyid)))
            .collect();
        let rules = |rules: &[ArtifactRule]| -> Vec<Vec<String>> {
            rules.iter().map(|r| r.tokens().to_vec()).collect()
        };
        let steps: Vec<Value> = self
            .steps
            .iter()
            .map(|s| {
                let mut step = json!({
                    "_type": "step",
                    "name": s.name.as_str(),
                    "threshold": s.threshold,
                    "pubkeys": s.pubkeys.iter().map(KeyId::as_str).collect::<Vec<_>>(),
                    "expected_command": s.expected_command,
                    "expected_materials": rules(&s.expected_materials),
                    "expected_products": rules(&s.expected_products),
                });
                // Only when used: a layout without them stays byte-compatible.
                if !s.expected_predicates.is_empty()
                    && let Some(object) = step.as_object_mut()
                {
                    let predicates: Vec<Value> =
                        s.expected_predicates.iter().map(predicate_value).collect();
                    object.insert("expected_predicates".into(), Value::Array(predicates));
                }
                step
            })
            .collect();
        let inspections: Vec<Value> = self
            .inspections
            .iter()
            .map(|i| {
                json!({
                    "_type": "inspection",
                    "name": i.name.as_str(),
                    "run": i.run,
                    "expected_materials": rules(&i.expected_materials),
                    "expected_products": rules(&i.expected_products),
                })
            })
            .collect();
        json!({
            "_type": "layout",
            "expires": timestamp::format(&self.expires),
            "readme": self.readme,
            "keys": keys,
            "steps": steps,
            "inspect": inspections,
        })
    }
}

impl Step {
    fn rules(&self) -> impl Iterator<Item = (&'static str, usize, &ArtifactRule)> {
        indexed(&self.expected_materials, &self.expected_products)
    }
}

impl Inspection {
    fn rules(&self) -> impl Iterator<Item = (&'static str, usize, &ArtifactRule)> {
        indexed(&self.expected_materials, &self.expected_products)
    }
}

fn indexed<'a>(
    materials: &'a [ArtifactRule],
    products: &'a [ArtifactRule],
) -> impl Iterator<Item = (&'static str, usize, &'a ArtifactRule)> {
    let m = materials
        .iter()
        .enumerate()
        .map(|(i, r)| ("expected_materials", i, r));
    let p = products
        .iter()
        .enumerate()
        .map(|(i, r)| ("expected_products", i, r));
    m.chain(p)
}

fn expect_type(field: &str, found: &str, expected: &str) -> Result<(), LayoutError> {
    if found == expected {
        Ok(())
    } else {
        Err(LayoutError::Schema {
            path: field.to_owned(),
            message: format!("expected {expected:?}, got {found:?}"),
        })
    }
}

fn checked_name(name: &str, location: &str) -> Result<StepName, LayoutError> {
    StepName::new(name).map_err(|source| LayoutError::Name {
        location: location.to_owned(),
        source,
    })
}

fn parse_keys(keys: Map<String, Value>, limits: &Limits) -> Result<KeyRing, LayoutError> {
    if keys.len() > limits.max_keys {
        return Err(LayoutError::TooManyKeys {
            count: keys.len(),
            max: limits.max_keys,
            limit: Limit::Keys,
        });
    }
    let mut ring = KeyRing::new();
    for (declared, mut object) in keys {
        let key_error = |source| LayoutError::Key {
            keyid: declared.clone(),
            source,
        };
        let keyid: KeyId = declared.parse().map_err(key_error)?;
        // The reference writes the keyid inside the key object too; it must agree.
        let inner = object.as_object_mut().and_then(|o| o.remove("keyid"));
        if let Some(inner) = inner
            && inner.as_str() != Some(keyid.as_str())
        {
            return Err(key_error(KeyError::KeyObject(format!(
                "its \"keyid\" field {inner} differs from the keyid it is listed under"
            ))));
        }
        let key = PublicKey::from_key_object(&object).map_err(key_error)?;
        ring.insert(keyid, key)?;
    }
    Ok(ring)
}

fn predicate_value(p: &ExpectedPredicate) -> Value {
    let attributes: Vec<Value> = p
        .expected_attributes
        .iter()
        .map(|a| {
            let mut attribute = json!({
                "rule": a.rule,
                "warn": a.warn,
                "allow_if_no_claim": a.allow_if_no_claim,
            });
            if let (Some(debug), Some(object)) = (&a.debug, attribute.as_object_mut()) {
                object.insert("debug".into(), Value::from(debug.as_str()));
            }
            attribute
        })
        .collect();
    json!({
        "predicate_type": p.predicate_type,
        "functionaries": p.functionaries.iter().map(KeyId::as_str).collect::<Vec<_>>(),
        "threshold": p.threshold,
        "expected_attributes": attributes,
    })
}

/// The keyids `declared` for `step` (its pubkeys, or a predicate's functionaries), each a key
/// of the layout, none twice.
fn checked_keyids(
    declared: &[String],
    step: &str,
    keys: &KeyRing,
) -> Result<Vec<KeyId>, LayoutError> {
    let mut keyids = Vec::with_capacity(declared.len());
    let mut seen = BTreeSet::new();
    for declared in declared {
        let keyid: KeyId = declared
            .parse()
            .map_err(|source: KeyError| LayoutError::PubkeyId {
                step: step.to_owned(),
                source,
            })?;
        if !keys.contains(&keyid) {
            return Err(LayoutError::Pubkeys {
                step: step.to_owned(),
                reason: format!("{keyid} is not among the layout's keys"),
            });
        }
        if !seen.insert(keyid.clone()) {
            return Err(LayoutError::Pubkeys {
                step: step.to_owned(),
                reason: format!("{keyid} is listed twice"),
            });
        }
        keyids.push(keyid);
    }
    Ok(keyids)
}

fn parse_predicates(
    raw: Vec<RawPredicate>,
    step: &str,
    keys: &KeyRing,
) -> Result<Vec<ExpectedPredicate>, LayoutError> {
    let mut seen = BTreeSet::new();
    let mut predicates = Vec::with_capacity(raw.len());
    for (index, p) in raw.into_iter().enumerate() {
        let schema = |reason: String| LayoutError::Predicate {
            step: step.to_owned(),
            index,
            reason,
        };
        if p.predicate_type.trim().is_empty() || p.predicate_type.chars().any(char::is_whitespace) {
            return Err(schema(format!(
                "predicate_type {:?} is not a predicate type URI",
                p.predicate_type
            )));
        }
        if !seen.insert(p.predicate_type.clone()) {
            return Err(schema(format!(
                "predicate_type {:?} is expected twice: merge the two into one",
                p.predicate_type
            )));
        }
        let functionaries = checked_keyids(&p.functionaries, step, keys).map_err(|e| match e {
            LayoutError::Pubkeys { reason, .. } => schema(format!("functionaries: {reason}")),
            LayoutError::PubkeyId { source, .. } => schema(format!("functionaries: {source}")),
            other => other,
        })?;
        let threshold = usize::try_from(p.threshold)
            .ok()
            .filter(|t| (1..=functionaries.len()).contains(t))
            .ok_or_else(|| {
                schema(format!(
                    "threshold {} must be from 1 to its {} functionaries",
                    p.threshold,
                    functionaries.len()
                ))
            })?;
        let mut expected_attributes = Vec::with_capacity(p.expected_attributes.len());
        for (rule_index, a) in p.expected_attributes.into_iter().enumerate() {
            if a.rule.trim().is_empty() {
                return Err(schema(format!(
                    "expected_attributes[{rule_index}].rule is empty: write a CEL expression"
                )));
            }
            expected_attributes.push(ExpectedAttribute {
                rule: a.rule,
                debug: a.debug,
                warn: a.warn,
                allow_if_no_claim: a.allow_if_no_claim,
            });
        }
        predicates.push(ExpectedPredicate {
            predicate_type: p.predicate_type,
            functionaries,
            threshold,
            expected_attributes,
        });
    }
    Ok(predicates)
}

fn parse_step(raw: RawStep, name: StepName, keys: &KeyRing) -> Result<Step, LayoutError> {
    let step = name.as_str().to_owned();
    let pubkeys = checked_keyids(&raw.pubkeys, &step, keys)?;
    let expected_predicates = parse_predicates(raw.expected_predicates, &step, keys)?;
    // A step that expects predicates may need no link: no keys of its own, threshold 0.
    let linkless = pubkeys.is_empty() && !expected_predicates.is_empty() && raw.threshold == 0;
    let threshold = usize::try_from(raw.threshold)
        .ok()
        .filter(|t| linkless || (1..=pubkeys.len()).contains(t))
        .ok_or(LayoutError::Threshold {
            step: step.clone(),
            threshold: raw.threshold,
            keys: pubkeys.len(),
        })?;
    let location = format!("step {step:?}");
    Ok(Step {
        expected_predicates,
        expected_materials: parse_rules(&raw.expected_materials, &location, "expected_materials")?,
        expected_products: parse_rules(&raw.expected_products, &location, "expected_products")?,
        name,
        threshold,
        pubkeys,
        expected_command: raw.expected_command,
    })
}

fn parse_rules(
    rules: &[Vec<String>],
    location: &str,
    list: &str,
) -> Result<Vec<ArtifactRule>, LayoutError> {
    rules
        .iter()
        .enumerate()
        .map(|(index, tokens)| {
            ArtifactRule::parse(tokens).map_err(|source| LayoutError::Rule {
                location: format!("{location} {list}[{index}]"),
                source,
            })
        })
        .collect()
}

fn check_targets<'a>(
    allowed: &BTreeSet<StepName>,
    inspections: &BTreeSet<StepName>,
    location: &str,
    rules: impl Iterator<Item = (&'static str, usize, &'a ArtifactRule)>,
) -> Result<(), LayoutError> {
    for (list, index, rule) in rules {
        if let RuleKind::Match { from, .. } = rule.kind()
            && !allowed.contains(from)
        {
            let reason = if inspections.contains(from) {
                "step rules are applied before inspections run, so they cannot refer to one"
            } else {
                "no step or inspection of that name in the layout"
            };
            return Err(LayoutError::MatchTarget {
                location: format!("{location} {list}[{index}]"),
                step: from.to_string(),
                reason,
            });
        }
    }
    Ok(())
}
