//! Attestations: a tool's JSON output (an SBOM, a scan report, test results, provenance) as an
//! in-toto Statement v1 in a DSSE envelope, bound to one step of a layout in signed content.
//!
//! ```json
//! {"_type": "https://in-toto.io/Statement/v1",
//!  "subject": [{"name": "dist/app.tar.gz", "digest": {"sha256": "..."},
//!               "annotations": {"tollgate.dev/step": "scan"}}],
//!  "predicateType": "https://cyclonedx.org/bom",
//!  "predicate": { ... }}
//! ```
//!
//! Every subject carries the annotation [`STEP_ANNOTATION`] naming the step; a Statement whose
//! subjects lack it, or disagree on it, is refused here, so an attestation signed for one step
//! can never be read as another's (the file name is only a hint). Subject names are artifact
//! names as recording writes them and are checked as strictly as a link's; the predicate is any
//! JSON object, parsed with [`crate::base::json::parse_data`] (floats allowed, every other
//! strictness rule kept). Signatures are checked over the DSSE pre-authentication encoding of
//! the payload bytes as stored, before the payload is parsed.
//!
//! What this module does not check: whether the step, the predicate type and the signers are
//! the ones a layout expects, and what the predicate says; verification decides that.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use crate::base::json::{self, JsonError};
use crate::base::limits::{Limit, Limits};
use crate::model::artifact::{ArtifactError, ArtifactPath, Artifacts, DigestSet};
use crate::model::envelope::{Envelope, EnvelopeError, PAYLOAD_TYPE};
use crate::model::keyring::KeyRing;
use crate::model::keys::KeyId;
use crate::model::name::{NameError, StepName};
use crate::model::statement::{LINK_PREDICATE, STATEMENT_V1};

/// The subject annotation that binds an attestation to a step, in signed content.
pub const STEP_ANNOTATION: &str = "tollgate.dev/step";

/// The short names of common predicate types, and the URIs they stand for.
pub const SHORT_NAMES: &[(&str, &str)] = &[
    ("cyclonedx", "https://cyclonedx.org/bom"),
    ("spdx", "https://spdx.dev/Document"),
    ("vulns", "https://in-toto.io/attestation/vulns/v0.2"),
    (
        "test-result",
        "https://in-toto.io/attestation/test-result/v0.1",
    ),
    ("provenance", "https://slsa.dev/provenance/v1"),
    ("vsa", "https://slsa.dev/verification_summary/v1"),
    ("link", LINK_PREDICATE),
];

/// Why an attestation cannot be made or does not count.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestationError {
    /// A predicate type that is neither a URI nor a known short name.
    #[error(
        "predicate type {given:?} is neither a URI (it has no ':') nor a short name; use a URI \
         or one of: {}",
        short_name_list()
    )]
    UnknownPredicateType {
        /// The value given.
        given: String,
    },
    /// A predicate type URI that is empty or holds whitespace or control characters.
    #[error(
        "predicate type {0:?}: a URI is not empty and holds no whitespace or control characters"
    )]
    BadPredicateType(String),
    /// A Statement needs at least one subject.
    #[error("an attestation needs at least one subject (the artifacts the predicate is about)")]
    NoSubject,
    /// The predicate is not a JSON object.
    #[error("the predicate must be a JSON object, not {0}")]
    PredicateNotObject(&'static str),
    /// The file is not a well-formed envelope (or is too large).
    #[error(transparent)]
    Envelope(EnvelopeError),
    /// A classic envelope: attestations are DSSE only.
    #[error(
        "a classic envelope ({{\"signed\", \"signatures\"}}), not an attestation: attestations \
         are DSSE envelopes holding an in-toto Statement; make one with tollgate attest"
    )]
    Classic,
    /// A DSSE payload type other than in-toto's.
    #[error("DSSE payloadType is {0:?}, expected {PAYLOAD_TYPE:?}")]
    WrongPayloadType(String),
    /// The envelope carries no signature.
    #[error("the attestation is not signed (its signature list is empty)")]
    NoSignatures,
    /// No trusted key signed it.
    #[error(
        "no trusted key signed this attestation: its signatures claim keyid(s) {}, none of them \
         a trusted key whose signature verifies", claimed_list(.claimed)
    )]
    NotSigned {
        /// The keyids the signatures claim (hints, as written; `None` for a signature without
        /// one).
        claimed: Vec<Option<String>>,
    },
    /// The payload is not strict JSON (floats allowed).
    #[error("payload: {0}")]
    Payload(#[source] JsonError),
    /// The payload is not a Statement of the expected form.
    #[error("Statement {field}: {reason}")]
    Form {
        /// The field (`_type`, `subject[2].digest`, ...).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A subject's name or digest is not valid.
    #[error("Statement subject[{index}]: {source}")]
    Subject {
        /// The subject's position.
        index: usize,
        /// What is wrong.
        #[source]
        source: ArtifactError,
    },
    /// Two subjects share a name.
    #[error("Statement subject: the name {0:?} is given twice; names must be unique")]
    DuplicateSubject(String),
    /// More subjects than [`Limits::max_artifacts`].
    #[error("{count} subjects, over the limit {limit} of {max}")]
    TooManySubjects {
        /// How many.
        count: usize,
        /// The limit's value.
        max: usize,
        /// Which limit.
        limit: Limit,
    },
    /// A subject without the step annotation.
    #[error(
        "subject {subject:?} is not bound to a step (no {STEP_ANNOTATION:?} annotation): made by \
         another tool? re-attest with tollgate attest"
    )]
    Unbound {
        /// The subject's name.
        subject: String,
    },
    /// Subjects annotated with different steps.
    #[error(
        "subjects are bound to two steps, {first:?} and {second:?} (annotation \
         {STEP_ANNOTATION:?}): an attestation is about one step; attest once per step"
    )]
    TwoSteps {
        /// The step the first subject names.
        first: String,
        /// Another step a later subject names.
        second: String,
    },
    /// The step annotation is not a valid step name.
    #[error("subject {subject:?}: annotation {STEP_ANNOTATION:?}: {source}")]
    StepName {
        /// The subject's name.
        subject: String,
        /// Why the value is not a step name.
        #[source]
        source: NameError,
    },
}

fn short_name_list() -> String {
    SHORT_NAMES
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn claimed_list(claimed: &[Option<String>]) -> String {
    claimed
        .iter()
        .map(|keyid| match keyid {
            Some(keyid) => format!("{keyid:?}"),
            None => "(none)".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The predicate type URI for `name_or_uri`: a value with a ':' is a URI, taken as it is; any
/// other must be one of the [`SHORT_NAMES`].
pub fn predicate_type(name_or_uri: &str) -> Result<String, AttestationError> {
    if name_or_uri.contains(':') {
        if name_or_uri
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(AttestationError::BadPredicateType(name_or_uri.to_owned()));
        }
        return Ok(name_or_uri.to_owned());
    }
    SHORT_NAMES
        .iter()
        .find(|(name, _)| *name == name_or_uri)
        .map(|(_, uri)| (*uri).to_owned())
        .ok_or_else(|| AttestationError::UnknownPredicateType {
            given: name_or_uri.to_owned(),
        })
}

/// The short name of a predicate type URI, if it has one.
pub fn short_name(uri: &str) -> Option<&'static str> {
    SHORT_NAMES
        .iter()
        .find(|(_, known)| *known == uri)
        .map(|(name, _)| *name)
}

/// The predicate type's part of an attestation's file name: its short name, else the first
/// eight hex characters of the SHA-256 of the URI. Always `[a-z0-9-]+`.
pub fn slug(uri: &str) -> String {
    match short_name(uri) {
        Some(name) => name.to_owned(),
        None => hex::encode(&Sha256::digest(uri.as_bytes())[..4]),
    }
}

/// Whether an attestation of this type is about the step's products (SLSA provenance, the link
/// predicate) rather than its materials (every other type: an SBOM or a scan is about what the
/// step read).
pub fn subjects_are_products(uri: &str) -> bool {
    uri.starts_with("https://slsa.dev/provenance/")
        || uri.starts_with("https://in-toto.io/attestation/link/")
}

/// The Statement of an attestation: `subjects` (each annotated with `step`), the predicate
/// type and the predicate, which must be a JSON object.
pub fn statement(
    step: &StepName,
    subjects: &Artifacts,
    predicate_type: &str,
    predicate: Value,
) -> Result<Value, AttestationError> {
    if subjects.is_empty() {
        return Err(AttestationError::NoSubject);
    }
    if predicate_type.is_empty()
        || predicate_type
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(AttestationError::BadPredicateType(
            predicate_type.to_owned(),
        ));
    }
    if !predicate.is_object() {
        return Err(AttestationError::PredicateNotObject(kind_of(&predicate)));
    }
    let subject: Vec<Value> = subjects
        .iter()
        .map(|(name, digests)| {
            let digest: Map<String, Value> = digests
                .iter()
                .map(|(algorithm, hex)| (algorithm.to_owned(), Value::from(hex.into_owned())))
                .collect();
            json!({
                "name": name.as_str(),
                "digest": digest,
                "annotations": {STEP_ANNOTATION: step.as_str()},
            })
        })
        .collect();
    Ok(json!({
        "_type": STATEMENT_V1,
        "subject": subject,
        "predicateType": predicate_type,
        "predicate": predicate,
    }))
}

/// What a JSON value is, for messages.
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// An attestation's checked content.
#[derive(Debug, Clone, PartialEq)]
pub struct Attestation {
    /// The step every subject is bound to.
    pub step: StepName,
    /// The predicate type URI.
    pub predicate_type: String,
    /// The subjects, by name.
    pub subjects: Artifacts,
    /// The whole Statement as signed (what rules read); the predicate is inside it.
    pub statement: Value,
}

impl Attestation {
    /// The predicate: a JSON object.
    pub fn predicate(&self) -> &Value {
        &self.statement["predicate"]
    }
}

/// An attestation whose signature verified. Only [`load_attestation`] makes one.
#[derive(Debug, Clone)]
pub struct LoadedAttestation {
    /// The checked content.
    pub attestation: Attestation,
    /// The trusted keys whose signatures verified.
    pub signers: BTreeSet<KeyId>,
    /// The SHA-256 of the file's bytes, in lowercase hex.
    pub sha256: String,
}

/// Loads an attestation file held in `bytes`: a DSSE envelope (payload type in-toto's) that at
/// least one key of `trusted` signed, over the payload bytes as stored; only then is the
/// payload parsed and checked as an attestation's Statement (see the module docs).
pub fn load_attestation(
    bytes: Vec<u8>,
    trusted: &KeyRing,
    limits: &Limits,
) -> Result<LoadedAttestation, AttestationError> {
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let envelope = dsse_envelope(&bytes, limits)?;
    drop(bytes);
    let claimed: Vec<Option<String>> = envelope
        .signatures()
        .iter()
        .map(|s| s.keyid.clone())
        .collect();
    let verified = envelope
        .into_verified::<json::Data>(trusted, 1)
        .map_err(|e| match e {
            EnvelopeError::Threshold { .. } => AttestationError::NotSigned { claimed },
            EnvelopeError::NoSignatures => AttestationError::NoSignatures,
            EnvelopeError::WrongPayloadType(t) => AttestationError::WrongPayloadType(t),
            EnvelopeError::Payload(e) => AttestationError::Payload(e),
            e => AttestationError::Envelope(e),
        })?;
    let (payload, signers) = verified.into_parts();
    Ok(LoadedAttestation {
        attestation: check_statement(payload.0, limits)?,
        signers: signers.keys,
        sha256,
    })
}

/// Reads the attestation in `bytes` without checking any signature: for the tools that pack or
/// describe attestations. Never use it to decide trust.
pub fn unverified_attestation(
    bytes: &[u8],
    limits: &Limits,
) -> Result<Attestation, AttestationError> {
    let envelope = dsse_envelope(bytes, limits)?;
    let Some((payload_type, payload)) = envelope.dsse_parts() else {
        return Err(AttestationError::Classic);
    };
    if payload_type != PAYLOAD_TYPE {
        return Err(AttestationError::WrongPayloadType(payload_type.to_owned()));
    }
    let payload = json::parse_data(payload).map_err(AttestationError::Payload)?;
    check_statement(payload, limits)
}

/// Decodes `bytes` as an envelope and refuses a classic one.
fn dsse_envelope(bytes: &[u8], limits: &Limits) -> Result<Envelope, AttestationError> {
    let envelope = Envelope::from_bytes(bytes, limits).map_err(AttestationError::Envelope)?;
    if envelope.dsse_parts().is_none() {
        return Err(AttestationError::Classic);
    }
    Ok(envelope)
}

fn form(field: impl Into<String>, reason: impl Into<String>) -> AttestationError {
    AttestationError::Form {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Checks a parsed payload as an attestation's Statement.
fn check_statement(statement: Value, limits: &Limits) -> Result<Attestation, AttestationError> {
    let Value::Object(top) = &statement else {
        return Err(form(
            "payload",
            format!("expected an object, found {}", kind_of(&statement)),
        ));
    };
    if top.get("_type").and_then(Value::as_str) != Some(STATEMENT_V1) {
        return Err(form("_type", format!("must be {STATEMENT_V1:?}")));
    }
    let predicate_type = match top.get("predicateType") {
        Some(Value::String(t)) if !t.is_empty() => t.clone(),
        Some(Value::String(_)) => return Err(form("predicateType", "empty")),
        Some(other) => {
            return Err(form(
                "predicateType",
                format!("expected a string, found {}", kind_of(other)),
            ));
        }
        None => return Err(form("predicateType", "missing")),
    };
    match top.get("predicate") {
        Some(Value::Object(_)) => {}
        Some(other) => {
            return Err(form(
                "predicate",
                format!("expected an object, found {}", kind_of(other)),
            ));
        }
        None => return Err(form("predicate", "missing")),
    }
    let list = match top.get("subject") {
        Some(Value::Array(list)) => list,
        Some(other) => {
            return Err(form(
                "subject",
                format!("expected a list, found {}", kind_of(other)),
            ));
        }
        None => return Err(form("subject", "missing")),
    };
    if list.is_empty() {
        return Err(AttestationError::NoSubject);
    }
    if list.len() > limits.max_artifacts {
        return Err(AttestationError::TooManySubjects {
            count: list.len(),
            max: limits.max_artifacts,
            limit: Limit::Artifacts,
        });
    }
    let mut entries = Vec::with_capacity(list.len());
    let mut step: Option<&str> = None;
    for (index, descriptor) in list.iter().enumerate() {
        let field = |name: &str| format!("subject[{index}].{name}");
        let Value::Object(descriptor) = descriptor else {
            return Err(form(
                format!("subject[{index}]"),
                format!("expected an object, found {}", kind_of(descriptor)),
            ));
        };
        let name = match descriptor.get("name") {
            Some(Value::String(name)) => name,
            _ => return Err(form(field("name"), "a string is required")),
        };
        let path = ArtifactPath::new(name)
            .map_err(|source| AttestationError::Subject { index, source })?;
        let digests = match descriptor.get("digest") {
            Some(Value::Object(digests)) => digests,
            _ => return Err(form(field("digest"), "an object is required")),
        };
        let mut set = BTreeMap::new();
        for (algorithm, value) in digests {
            let Value::String(value) = value else {
                return Err(form(
                    format!("subject[{index}].digest.{algorithm}"),
                    format!("expected a string, found {}", kind_of(value)),
                ));
            };
            set.insert(algorithm.clone(), value.clone());
        }
        if set.is_empty() {
            return Err(form(field("digest"), "at least one digest is required"));
        }
        let digests = DigestSet::new(name, set)
            .map_err(|source| AttestationError::Subject { index, source })?;
        let annotation = descriptor
            .get("annotations")
            .and_then(|a| a.get(STEP_ANNOTATION));
        let bound = match annotation {
            Some(Value::String(bound)) => bound.as_str(),
            Some(other) => {
                return Err(form(
                    format!("subject[{index}].annotations.{STEP_ANNOTATION}"),
                    format!("expected a string, found {}", kind_of(other)),
                ));
            }
            None => {
                return Err(AttestationError::Unbound {
                    subject: name.clone(),
                });
            }
        };
        match step {
            None => step = Some(bound),
            Some(first) if first != bound => {
                return Err(AttestationError::TwoSteps {
                    first: first.to_owned(),
                    second: bound.to_owned(),
                });
            }
            Some(_) => {}
        }
        entries.push((path, digests));
    }
    let step = step.unwrap_or_default();
    let step = StepName::new(step).map_err(|source| AttestationError::StepName {
        subject: entries
            .first()
            .map(|(name, _)| name.as_str().to_owned())
            .unwrap_or_default(),
        source,
    })?;
    let subjects = Artifacts::from_entries(entries)
        .map_err(|name| AttestationError::DuplicateSubject(name.as_str().to_owned()))?;
    Ok(Attestation {
        step,
        predicate_type,
        subjects,
        statement,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::envelope::Format;
    use crate::model::keys::{KeyKind, PrivateKey};

    fn key() -> PrivateKey {
        PrivateKey::generate(KeyKind::Ed25519).expect("a key")
    }

    fn ring(key: &PrivateKey) -> KeyRing {
        KeyRing::from_keys([key.public_key().clone()]).expect("a ring")
    }

    fn subjects(names: &[&str]) -> Artifacts {
        Artifacts::from_entries(
            names
                .iter()
                .map(|n| {
                    (
                        ArtifactPath::new(n).expect("name"),
                        DigestSet::sha256(&[7; 32]),
                    )
                })
                .collect(),
        )
        .expect("unique")
    }

    fn step(name: &str) -> StepName {
        StepName::new(name).expect("step")
    }

    /// A DSSE file around `payload`, given as text so that floats survive as written.
    fn dsse(payload: &[u8], payload_type: &str, key: &PrivateKey) -> Vec<u8> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let sig = key
            .sign(&crate::model::envelope::pae(payload_type, payload))
            .expect("sign");
        serde_json::to_vec(&json!({
            "payload": b64.encode(payload),
            "payloadType": payload_type,
            "signatures": [{"keyid": key.public_key().keyid().to_string(), "sig": b64.encode(sig)}],
        }))
        .expect("json")
    }

    #[test]
    fn short_names_resolve_and_unknown_ones_are_refused_with_the_list() {
        assert_eq!(
            predicate_type("cyclonedx").expect("known"),
            "https://cyclonedx.org/bom"
        );
        assert_eq!(
            predicate_type("vulns").expect("known"),
            "https://in-toto.io/attestation/vulns/v0.2"
        );
        assert_eq!(
            predicate_type("https://example.com/x/v1").expect("a URI"),
            "https://example.com/x/v1"
        );
        let err = predicate_type("sbom").expect_err("unknown");
        let text = err.to_string();
        for (name, _) in SHORT_NAMES {
            assert!(text.contains(name), "{text}");
        }
        assert!(predicate_type("https://a b").is_err());
        for (name, uri) in SHORT_NAMES {
            assert_eq!(short_name(uri), Some(*name));
            assert_eq!(slug(uri), *name);
        }
        let other = slug("https://example.com/x/v1");
        assert_eq!(other.len(), 8);
        assert!(other.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(subjects_are_products("https://slsa.dev/provenance/v1"));
        assert!(subjects_are_products(LINK_PREDICATE));
        assert!(!subjects_are_products("https://cyclonedx.org/bom"));
    }

    #[test]
    fn a_statement_needs_subjects_and_an_object_predicate() {
        assert!(matches!(
            statement(&step("scan"), &Artifacts::new(), "x:y", json!({})),
            Err(AttestationError::NoSubject)
        ));
        assert!(matches!(
            statement(&step("scan"), &subjects(&["a"]), "x:y", json!([1])),
            Err(AttestationError::PredicateNotObject("a list"))
        ));
        assert!(matches!(
            statement(&step("scan"), &subjects(&["a"]), "", json!({})),
            Err(AttestationError::BadPredicateType(_))
        ));
    }

    #[test]
    fn signed_attestations_load_with_floats_and_their_step() {
        let (signer, limits) = (key(), Limits::default());
        let value = statement(
            &step("scan"),
            &subjects(&["dist/app.tar.gz", "dir:src"]),
            "https://in-toto.io/attestation/vulns/v0.2",
            json!({"score": 7.5, "n": 3, "e": 1e-3}),
        )
        .expect("a statement");
        let bytes = Envelope::seal(&value, Format::Dsse, &[&signer]).expect("sealed");
        let loaded = load_attestation(bytes.clone(), &ring(&signer), &limits).expect("loads");
        assert_eq!(loaded.attestation.step.as_str(), "scan");
        assert_eq!(loaded.attestation.subjects.len(), 2);
        assert_eq!(loaded.attestation.predicate()["score"].as_f64(), Some(7.5));
        assert_eq!(loaded.attestation.predicate()["e"].as_f64(), Some(1e-3));
        assert_eq!(loaded.attestation.statement, value);
        assert_eq!(
            loaded.signers.iter().collect::<Vec<_>>(),
            vec![&signer.public_key().keyid()]
        );
        assert_eq!(loaded.sha256, hex::encode(Sha256::digest(&bytes)));
        let unverified = unverified_attestation(&bytes, &limits).expect("reads");
        assert_eq!(unverified, loaded.attestation);
    }

    #[test]
    fn what_does_not_count_is_refused_with_its_reason() {
        let (signer, stranger, limits) = (key(), key(), Limits::default());
        let trusted = ring(&signer);
        let good = statement(&step("scan"), &subjects(&["a"]), "x:y", json!({})).expect("ok");

        let by_stranger = Envelope::seal(&good, Format::Dsse, &[&stranger]).expect("sealed");
        match load_attestation(by_stranger, &trusted, &limits) {
            Err(e @ AttestationError::NotSigned { .. }) => assert!(
                e.to_string()
                    .contains(stranger.public_key().keyid().as_str()),
                "{e}"
            ),
            other => panic!("{other:?}"),
        }

        let classic = Envelope::seal(&good, Format::Classic, &[&signer]).expect("sealed");
        assert!(matches!(
            load_attestation(classic.clone(), &trusted, &limits),
            Err(AttestationError::Classic)
        ));
        assert!(matches!(
            unverified_attestation(&classic, &limits),
            Err(AttestationError::Classic)
        ));

        let payload = serde_json::to_vec(&good).expect("json");
        let other_type = dsse(&payload, "application/json", &signer);
        assert!(matches!(
            load_attestation(other_type, &trusted, &limits),
            Err(AttestationError::WrongPayloadType(_))
        ));

        let mut unbound = good.clone();
        unbound["subject"][0]
            .as_object_mut()
            .expect("object")
            .remove("annotations");
        let file = Envelope::seal(&unbound, Format::Dsse, &[&signer]).expect("sealed");
        match load_attestation(file, &trusted, &limits) {
            Err(e @ AttestationError::Unbound { .. }) => {
                assert!(e.to_string().contains("not bound to a step"), "{e}")
            }
            other => panic!("{other:?}"),
        }

        let mut two =
            statement(&step("scan"), &subjects(&["a", "b"]), "x:y", json!({})).expect("statement");
        two["subject"][1]["annotations"][STEP_ANNOTATION] = json!("build");
        let file = Envelope::seal(&two, Format::Dsse, &[&signer]).expect("sealed");
        assert!(matches!(
            load_attestation(file, &trusted, &limits),
            Err(AttestationError::TwoSteps { .. })
        ));

        let mut bad_name = good.clone();
        bad_name["subject"][0]["name"] = json!("../etc/passwd");
        let file = Envelope::seal(&bad_name, Format::Dsse, &[&signer]).expect("sealed");
        assert!(matches!(
            load_attestation(file, &trusted, &limits),
            Err(AttestationError::Subject { index: 0, .. })
        ));

        let mut twice =
            statement(&step("scan"), &subjects(&["a", "b"]), "x:y", json!({})).expect("statement");
        twice["subject"][1]["name"] = json!("a");
        let file = Envelope::seal(&twice, Format::Dsse, &[&signer]).expect("sealed");
        assert!(matches!(
            load_attestation(file, &trusted, &limits),
            Err(AttestationError::DuplicateSubject(_))
        ));

        let mut not_object = good.clone();
        not_object["predicate"] = json!("text");
        let file = Envelope::seal(&not_object, Format::Dsse, &[&signer]).expect("sealed");
        assert!(matches!(
            load_attestation(file, &trusted, &limits),
            Err(AttestationError::Form { .. })
        ));

        // Floats are data, but duplicate keys still refuse, after the signature check.
        let duplicate = format!(
            "{{\"_type\": \"{STATEMENT_V1}\", \"predicateType\": \"x:y\", \"subject\": [], \
             \"predicate\": {{\"a\": 1.5, \"a\": 2.5}}}}"
        );
        let file = dsse(duplicate.as_bytes(), PAYLOAD_TYPE, &signer);
        assert!(matches!(
            load_attestation(file, &trusted, &limits),
            Err(AttestationError::Payload(JsonError::DuplicateKey { .. }))
        ));

        let few = Limits {
            max_artifacts: 1,
            ..Limits::default()
        };
        let many =
            statement(&step("scan"), &subjects(&["a", "b"]), "x:y", json!({})).expect("statement");
        let file = Envelope::seal(&many, Format::Dsse, &[&signer]).expect("sealed");
        assert!(matches!(
            load_attestation(file, &trusted, &few),
            Err(AttestationError::TooManySubjects { count: 2, .. })
        ));
    }

    #[test]
    fn a_tampered_payload_does_not_verify() {
        use base64::Engine as _;
        let (signer, limits) = (key(), Limits::default());
        let good =
            statement(&step("scan"), &subjects(&["a"]), "x:y", json!({"ok": true})).expect("ok");
        let bytes = Envelope::seal(&good, Format::Dsse, &[&signer]).expect("sealed");
        let mut file: Value = serde_json::from_slice(&bytes).expect("json");
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut changed = good.clone();
        changed["predicate"]["ok"] = json!(false);
        file["payload"] = json!(b64.encode(serde_json::to_vec(&changed).expect("json")));
        let tampered = serde_json::to_vec(&file).expect("json");
        assert!(matches!(
            load_attestation(tampered, &ring(&signer), &limits),
            Err(AttestationError::NotSigned { .. })
        ));
    }
}
