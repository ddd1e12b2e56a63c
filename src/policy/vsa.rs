//! The SLSA Verification Summary Attestation v1 (`https://slsa.dev/verification_summary/v1`):
//! a signed statement that a verifier checked some artifacts against a policy and they
//! passed, so that a later decision point can trust the verifier instead of verifying again.
//!
//! [`statement`] and [`sign`] make one from a [`Summary`] of a verification that passed: an
//! in-toto Statement v1 in a DSSE envelope whose subjects are the verified artifacts, whose
//! `policy` is the layout (by its SHA-256), whose `inputAttestations` are the link and
//! attestation files that verification used, and whose `verifiedLevels` name what Tollgate
//! checked ([`LEVEL_LAYOUT_PASSED`]). Tollgate claims no `SLSA_BUILD_LEVEL_n`: no layout proves
//! the build platform properties those levels are about.
//!
//! [`check`] makes the consumer's checks of the spec ("How to verify"), in this order, each
//! refusal its own [`VsaError`] variant:
//!
//! 1. the DSSE envelope is signed by one of the trusted keys (the key *is* the trust in the
//!    verifier; a classic envelope is refused);
//! 2. the payload is an in-toto Statement v1,
//! 3. of the predicate type [`VSA_PREDICATE`];
//! 4. a subject carries the expected digest;
//! 5. `verifier.id` is the expected one, when one is expected;
//! 6. `resourceUri` is the expected one;
//! 7. `verificationResult` is `PASSED`;
//! 8. `timeVerified` (RFC 3339) is not in the future, strictly (no allowance for clock skew:
//!    a verifier whose clock runs ahead makes summaries that are refused until their time
//!    comes), and not older than the maximum age, when one is given.
//!
//! Not checked: `verifiedLevels` against an expected level (Tollgate states one level only),
//! `dependencyLevels`, and the input attestations themselves (the point of a summary is not
//! to need them).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::base::limits::Limits;
use crate::base::timestamp;
use crate::model::artifact::DigestSet;
use crate::model::envelope::{Envelope, EnvelopeError, Format};
use crate::model::keyring::KeyRing;
use crate::model::keys::PrivateKey;
use crate::model::statement::STATEMENT_V1;

/// The VSA's predicate type.
pub const VSA_PREDICATE: &str = "https://slsa.dev/verification_summary/v1";

/// The level Tollgate states in `verifiedLevels`: the artifacts are the products of a supply
/// chain that verified against a signed in-toto layout.
pub const LEVEL_LAYOUT_PASSED: &str = "TOLLGATE_LAYOUT_PASSED";

/// The result a summary must state to be accepted.
pub const PASSED: &str = "PASSED";

/// The component name under which `verifier.version` gives Tollgate's version.
pub const VERIFIER_COMPONENT: &str = "tollgate";

/// What a verification that passed found, to be stated in a VSA.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Who verified: a URI naming the verifier (`verifier.id`).
    pub verifier_id: String,
    /// The resource the verification was asked about (`resourceUri`), e.g. the URI the
    /// release is published at.
    pub resource_uri: String,
    /// When the verification ran.
    pub time_verified: DateTime<Utc>,
    /// Where the policy (the layout) came from: its file name, or the bundle or image that
    /// carried it.
    pub policy_uri: Option<String>,
    /// The layout file's SHA-256, lowercase hex.
    pub policy_sha256: String,
    /// Every link and attestation file used: (its file name, its SHA-256 in lowercase hex).
    pub inputs: Vec<(String, String)>,
    /// The levels verified, normally `[LEVEL_LAYOUT_PASSED]`.
    pub verified_levels: Vec<String>,
    /// The verified artifacts: (name, digests).
    pub subjects: Vec<(String, DigestSet)>,
}

/// What the consumer of a VSA expects of it.
#[derive(Debug, Clone)]
pub struct Expect {
    /// The artifact's digest: (algorithm, lowercase hex), e.g. `("sha256", "ab12...")`.
    pub subject_digest: (String, String),
    /// The resource the consumer is deciding about.
    pub resource_uri: String,
    /// The verifier the consumer trusts, when it pins one beyond the key.
    pub verifier_id: Option<String>,
    /// The oldest summary accepted, as an age.
    pub max_age: Option<Duration>,
    /// The time the checks run at (the injectable clock).
    pub now: DateTime<Utc>,
}

/// What an accepted VSA says.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Checked {
    /// The subject that carried the expected digest.
    pub subject: String,
    /// Its digests, as the summary states them.
    pub subject_digest: BTreeMap<String, String>,
    /// `verifier.id`.
    pub verifier_id: String,
    /// `resourceUri`.
    pub resource_uri: String,
    /// `timeVerified`.
    pub time_verified: String,
    /// How long before the check the verification ran, in seconds.
    pub age_seconds: i64,
    /// `verifiedLevels`.
    pub verified_levels: Vec<String>,
    /// `policy.uri`, when given.
    pub policy_uri: Option<String>,
    /// The trusted keys that signed (keyids).
    pub signers: Vec<String>,
}

/// Why a VSA cannot be made, or is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VsaError {
    /// A summary with no subject states nothing about any artifact.
    #[error("a verification summary needs at least one subject: nothing was verified to name")]
    NoSubject,
    /// Signing failed.
    #[error("signing the verification summary failed: {0}")]
    Sign(#[source] EnvelopeError),
    /// The file is not a readable envelope.
    #[error("not a DSSE envelope: {0}")]
    Envelope(#[source] EnvelopeError),
    /// A classic envelope: a VSA is a Statement, which travels in DSSE only.
    #[error(
        "expected a DSSE envelope, found a classic one (a VSA is an in-toto Statement in DSSE)"
    )]
    NotDsse,
    /// No trusted key signed (or the payload type is not in-toto's).
    #[error("signature: {0} (expected a signature by one of the given --key public keys)")]
    Signature(#[source] EnvelopeError),
    /// The payload is not an in-toto Statement v1.
    #[error("_type: expected {STATEMENT_V1:?}, found {found}")]
    StatementType {
        /// What `_type` holds.
        found: String,
    },
    /// The Statement is not a VSA.
    #[error("predicateType: expected {VSA_PREDICATE:?}, found {found}")]
    PredicateType {
        /// What `predicateType` holds.
        found: String,
    },
    /// No subject carries the expected digest.
    #[error("subject: expected one with the digest {expected}, found {found}")]
    Subject {
        /// `algorithm:hex`.
        expected: String,
        /// The subjects' names and digests, or what is there instead.
        found: String,
    },
    /// Another verifier made it.
    #[error("verifier.id: expected {expected:?}, found {found}")]
    Verifier {
        /// The expected id.
        expected: String,
        /// What the summary says.
        found: String,
    },
    /// It is about another resource.
    #[error("resourceUri: expected {expected:?}, found {found}")]
    ResourceUri {
        /// The expected URI.
        expected: String,
        /// What the summary says.
        found: String,
    },
    /// The verification did not pass.
    #[error("verificationResult: expected \"PASSED\", found {found}")]
    Result {
        /// What the summary says.
        found: String,
    },
    /// `timeVerified` is missing or not RFC 3339.
    #[error("timeVerified: expected an RFC 3339 time, found {found}")]
    Time {
        /// What the summary says.
        found: String,
    },
    /// `timeVerified` is after the time of the check.
    #[error(
        "timeVerified: expected a time not after now ({now}), found {found} (no clock skew is \
         allowed: check the verifier's clock)"
    )]
    Future {
        /// The time of the check.
        now: String,
        /// `timeVerified`.
        found: String,
    },
    /// The summary is older than the consumer accepts.
    #[error(
        "timeVerified: expected at most {max_age_seconds} s old, found {found}, {age_seconds} s \
         old (verify again for a fresh summary)"
    )]
    TooOld {
        /// `timeVerified`.
        found: String,
        /// Its age at the time of the check, in seconds.
        age_seconds: i64,
        /// The oldest accepted, in seconds.
        max_age_seconds: i64,
    },
}

fn digest_object(digests: &DigestSet) -> Map<String, Value> {
    digests
        .iter()
        .map(|(algorithm, hex)| (algorithm.to_owned(), Value::from(hex.into_owned())))
        .collect()
}

/// The in-toto Statement v1 stating `summary` with the VSA predicate; `verifier.version` gives
/// Tollgate's version.
pub fn statement(summary: &Summary) -> Value {
    let subject: Vec<Value> = summary
        .subjects
        .iter()
        .map(|(name, digests)| json!({"name": name, "digest": digest_object(digests)}))
        .collect();
    let mut policy = Map::new();
    if let Some(uri) = &summary.policy_uri {
        policy.insert("uri".into(), Value::from(uri.as_str()));
    }
    policy.insert(
        "digest".into(),
        json!({"sha256": summary.policy_sha256.as_str()}),
    );
    let inputs: Vec<Value> = summary
        .inputs
        .iter()
        .map(|(uri, sha256)| json!({"uri": uri, "digest": {"sha256": sha256}}))
        .collect();
    json!({
        "_type": STATEMENT_V1,
        "subject": subject,
        "predicateType": VSA_PREDICATE,
        "predicate": {
            "verifier": {
                "id": summary.verifier_id,
                "version": {VERIFIER_COMPONENT: env!("CARGO_PKG_VERSION")},
            },
            "timeVerified": timestamp::format(&summary.time_verified),
            "resourceUri": summary.resource_uri,
            "policy": policy,
            "inputAttestations": inputs,
            "verificationResult": PASSED,
            "verifiedLevels": summary.verified_levels,
        },
    })
}

/// The VSA of `summary`, signed by `key`: the DSSE envelope's file bytes.
pub fn sign(summary: &Summary, key: &PrivateKey) -> Result<Vec<u8>, VsaError> {
    if summary.subjects.is_empty() {
        return Err(VsaError::NoSubject);
    }
    Envelope::seal(&statement(summary), Format::Dsse, &[key]).map_err(VsaError::Sign)
}

/// A field's value as an error message shows it: JSON, or "nothing" when absent.
fn shown(value: Option<&Value>) -> String {
    match value {
        None => "nothing".to_owned(),
        Some(value) => {
            let text = value.to_string();
            if text.chars().count() > 200 {
                let cut: String = text.chars().take(200).collect();
                format!("{cut}...")
            } else {
                text
            }
        }
    }
}

/// The subjects as an error message shows them: `name (alg:hex, ...)`.
fn shown_subjects(subjects: Option<&Value>) -> String {
    let Some(list) = subjects.and_then(Value::as_array) else {
        return shown(subjects);
    };
    if list.is_empty() {
        return "no subject".to_owned();
    }
    let described: Vec<String> = list
        .iter()
        .take(8)
        .map(|s| {
            let name = s.get("name").and_then(Value::as_str).unwrap_or("(no name)");
            let digests: Vec<String> = s
                .get("digest")
                .and_then(Value::as_object)
                .map(|d| {
                    d.iter()
                        .map(|(a, h)| format!("{a}:{}", h.as_str().unwrap_or("?")))
                        .collect()
                })
                .unwrap_or_default();
            format!("{name:?} ({})", digests.join(", "))
        })
        .collect();
    let more = list.len().saturating_sub(described.len());
    if more > 0 {
        format!("{} and {more} more", described.join(", "))
    } else {
        described.join(", ")
    }
}

/// Checks a VSA's bytes as its consumer must (see the module's list), and returns what it
/// says.
pub fn check(
    bytes: &[u8],
    keys: &KeyRing,
    expect: &Expect,
    limits: &Limits,
) -> Result<Checked, VsaError> {
    // 1. The signature, by a trusted key, over the exact bytes.
    let envelope = Envelope::from_bytes(bytes, limits).map_err(VsaError::Envelope)?;
    if envelope.format() != Format::Dsse {
        return Err(VsaError::NotDsse);
    }
    let verified = envelope.verify(keys, 1).map_err(VsaError::Signature)?;
    let (payload, signers) = verified.into_parts();
    // 2. An in-toto Statement v1.
    let type_ = payload.get("_type");
    if type_.and_then(Value::as_str) != Some(STATEMENT_V1) {
        return Err(VsaError::StatementType {
            found: shown(type_),
        });
    }
    // 3. Of the VSA's predicate type.
    let predicate_type = payload.get("predicateType");
    if predicate_type.and_then(Value::as_str) != Some(VSA_PREDICATE) {
        return Err(VsaError::PredicateType {
            found: shown(predicate_type),
        });
    }
    let predicate = payload.get("predicate");
    let field = |name: &str| predicate.and_then(|p| p.get(name));
    // 4. A subject with the expected digest.
    let (algorithm, hex) = &expect.subject_digest;
    let subjects = payload.get("subject");
    let subject = subjects.and_then(Value::as_array).and_then(|list| {
        list.iter().find(|s| {
            s.get("digest")
                .and_then(|d| d.get(algorithm))
                .and_then(Value::as_str)
                .is_some_and(|found| found.eq_ignore_ascii_case(hex))
        })
    });
    let Some(subject) = subject else {
        return Err(VsaError::Subject {
            expected: format!("{algorithm}:{hex}"),
            found: shown_subjects(subjects),
        });
    };
    // 5. The verifier, when one is pinned.
    let verifier = field("verifier").and_then(|v| v.get("id"));
    let verifier_id = verifier.and_then(Value::as_str);
    if let Some(expected) = &expect.verifier_id
        && verifier_id != Some(expected.as_str())
    {
        return Err(VsaError::Verifier {
            expected: expected.clone(),
            found: shown(verifier),
        });
    }
    let Some(verifier_id) = verifier_id else {
        return Err(VsaError::Verifier {
            expected: "a verifier id (a URI)".to_owned(),
            found: shown(verifier),
        });
    };
    // 6. The resource.
    let resource = field("resourceUri");
    if resource.and_then(Value::as_str) != Some(expect.resource_uri.as_str()) {
        return Err(VsaError::ResourceUri {
            expected: expect.resource_uri.clone(),
            found: shown(resource),
        });
    }
    // 7. The verdict.
    let result = field("verificationResult");
    if result.and_then(Value::as_str) != Some(PASSED) {
        return Err(VsaError::Result {
            found: shown(result),
        });
    }
    // 8. The time: not in the future, not too old.
    let time = field("timeVerified");
    let time_verified = time
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| VsaError::Time { found: shown(time) })?;
    let found = time_verified.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    if time_verified > expect.now {
        return Err(VsaError::Future {
            now: expect.now.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            found,
        });
    }
    let age = expect.now - time_verified;
    if let Some(max_age) = expect.max_age
        && age > max_age
    {
        return Err(VsaError::TooOld {
            found,
            age_seconds: age.num_seconds(),
            max_age_seconds: max_age.num_seconds(),
        });
    }
    let subject_digest = subject
        .get("digest")
        .and_then(Value::as_object)
        .map(|d| {
            d.iter()
                .filter_map(|(a, h)| Some((a.clone(), h.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    Ok(Checked {
        subject: subject
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        subject_digest,
        verifier_id: verifier_id.to_owned(),
        resource_uri: expect.resource_uri.clone(),
        time_verified: found,
        age_seconds: age.num_seconds(),
        verified_levels: field("verifiedLevels")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        policy_uri: field("policy")
            .and_then(|p| p.get("uri"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        signers: signers.keys.iter().map(|k| k.to_string()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::keys::KeyKind;

    const DIGEST: &str = "a3f1000000000000000000000000000000000000000000000000000000000001";

    fn summary(time_verified: DateTime<Utc>) -> Summary {
        let digest = DigestSet::new(
            "dist/app.tar.gz",
            BTreeMap::from([("sha256".to_owned(), DIGEST.to_owned())]),
        )
        .expect("a valid digest");
        Summary {
            verifier_id: "https://ci.example/verifier".into(),
            resource_uri: "https://example.com/app.tar.gz".into(),
            time_verified,
            policy_uri: Some("root.layout".into()),
            policy_sha256: "b".repeat(64),
            inputs: vec![("build.0123abcd.link".into(), "c".repeat(64))],
            verified_levels: vec![LEVEL_LAYOUT_PASSED.into()],
            subjects: vec![("dist/app.tar.gz".into(), digest)],
        }
    }

    fn now() -> DateTime<Utc> {
        timestamp::parse("2030-06-01T12:00:00Z").expect("a valid time")
    }

    fn expect() -> Expect {
        Expect {
            subject_digest: ("sha256".into(), DIGEST.into()),
            resource_uri: "https://example.com/app.tar.gz".into(),
            verifier_id: Some("https://ci.example/verifier".into()),
            max_age: Some(Duration::hours(1)),
            now: now(),
        }
    }

    fn ring(key: &PrivateKey) -> KeyRing {
        KeyRing::from_keys([key.public_key().clone()]).expect("one key")
    }

    fn sealed(statement: &Value, key: &PrivateKey) -> Vec<u8> {
        Envelope::seal(statement, Format::Dsse, &[key]).expect("signs")
    }

    fn check_with(bytes: &[u8], key: &PrivateKey, expect: &Expect) -> Result<Checked, VsaError> {
        check(bytes, &ring(key), expect, &Limits::default())
    }

    #[test]
    fn a_signed_summary_is_accepted_and_says_what_it_states() {
        let key = PrivateKey::generate(KeyKind::Ed25519).expect("key");
        let made = summary(now() - Duration::minutes(5));
        let value = statement(&made);
        assert_eq!(value["predicateType"], VSA_PREDICATE);
        assert_eq!(
            value["predicate"]["policy"]["digest"]["sha256"],
            "b".repeat(64)
        );
        assert_eq!(
            value["predicate"]["verifier"]["version"]["tollgate"],
            env!("CARGO_PKG_VERSION")
        );
        let bytes = sign(&made, &key).expect("signs");
        let checked = check_with(&bytes, &key, &expect()).expect("accepted");
        assert_eq!(checked.subject, "dist/app.tar.gz");
        assert_eq!(checked.age_seconds, 300);
        assert_eq!(checked.verified_levels, [LEVEL_LAYOUT_PASSED]);
        assert_eq!(checked.time_verified, "2030-06-01T11:55:00Z");
        assert_eq!(checked.signers, [key.public_key().keyid().to_string()]);
    }

    #[test]
    fn each_consumer_check_refuses_with_its_own_reason() {
        let key = PrivateKey::generate(KeyKind::Ed25519).expect("key");
        let other = PrivateKey::generate(KeyKind::Ed25519).expect("key");
        let good = statement(&summary(now() - Duration::minutes(5)));
        let altered = |edit: &dyn Fn(&mut Value)| {
            let mut value = good.clone();
            edit(&mut value);
            sealed(&value, &key)
        };
        let refusal =
            |bytes: &[u8], expect: &Expect| check_with(bytes, &key, expect).expect_err("refused");

        let by_other = sealed(&good, &other);
        assert!(matches!(
            refusal(&by_other, &expect()),
            VsaError::Signature(_)
        ));

        let classic = Envelope::seal(&good, Format::Classic, &[&key]).expect("signs");
        assert!(matches!(refusal(&classic, &expect()), VsaError::NotDsse));

        let err = refusal(
            &altered(&|v| v["_type"] = "https://in-toto.io/Statement/v0.1".into()),
            &expect(),
        );
        assert!(matches!(err, VsaError::StatementType { .. }), "{err}");

        let err = refusal(
            &altered(&|v| v["predicateType"] = "https://slsa.dev/provenance/v1".into()),
            &expect(),
        );
        assert!(matches!(err, VsaError::PredicateType { .. }));
        assert!(
            err.to_string()
                .contains("found \"https://slsa.dev/provenance/v1\""),
            "{err}"
        );

        let mut wrong_digest = expect();
        wrong_digest.subject_digest.1 = "f".repeat(64);
        let err = refusal(&sealed(&good, &key), &wrong_digest);
        assert!(matches!(err, VsaError::Subject { .. }));
        assert!(
            err.to_string().contains(&format!("sha256:{DIGEST}")),
            "{err}"
        );
        assert!(err.to_string().contains(&"f".repeat(64)), "{err}");

        let mut wrong_verifier = expect();
        wrong_verifier.verifier_id = Some("https://other.example".into());
        let err = refusal(&sealed(&good, &key), &wrong_verifier);
        assert!(matches!(err, VsaError::Verifier { .. }), "{err}");

        let mut wrong_resource = expect();
        wrong_resource.resource_uri = "https://example.com/other".into();
        let err = refusal(&sealed(&good, &key), &wrong_resource);
        assert!(matches!(err, VsaError::ResourceUri { .. }), "{err}");
        assert!(
            err.to_string().contains("https://example.com/app.tar.gz"),
            "{err}"
        );

        let err = refusal(
            &altered(&|v| v["predicate"]["verificationResult"] = "FAILED".into()),
            &expect(),
        );
        assert!(matches!(err, VsaError::Result { .. }));
        assert!(err.to_string().contains("found \"FAILED\""), "{err}");

        let err = refusal(
            &altered(&|v| v["predicate"]["timeVerified"] = "yesterday".into()),
            &expect(),
        );
        assert!(matches!(err, VsaError::Time { .. }), "{err}");

        let future = sign(&summary(now() + Duration::seconds(1)), &key).expect("signs");
        assert!(matches!(
            refusal(&future, &expect()),
            VsaError::Future { .. }
        ));

        let old = sign(&summary(now() - Duration::hours(2)), &key).expect("signs");
        let err = refusal(&old, &expect());
        assert!(
            matches!(
                err,
                VsaError::TooOld {
                    age_seconds: 7200,
                    max_age_seconds: 3600,
                    ..
                }
            ),
            "{err}"
        );
        // Without a maximum age the same summary is accepted.
        let mut any_age = expect();
        any_age.max_age = None;
        assert_eq!(
            check_with(&old, &key, &any_age)
                .expect("accepted")
                .age_seconds,
            7200
        );
    }

    #[test]
    fn a_summary_without_subjects_is_not_signed() {
        let key = PrivateKey::generate(KeyKind::Ed25519).expect("key");
        let mut empty = summary(now());
        empty.subjects.clear();
        assert!(matches!(sign(&empty, &key), Err(VsaError::NoSubject)));
    }
}
