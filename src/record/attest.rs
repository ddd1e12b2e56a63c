//! Attesting: a tool's JSON output (the predicate) wrapped as an in-toto Statement v1 about
//! some artifacts (the subjects), bound to a step and signed in a DSSE envelope (the work of
//! `tollgate attest`).
//!
//! Subjects are hashed exactly as recording hashes a step's products ([`record_artifacts`]:
//! the same base folder, prefix stripping, excludes and `dir:`, `oci:`, `git:` URIs), so that a
//! layout's rules can tie an attested file to the one a step built. The predicate file is read
//! under a cap and must be one JSON object; floats are kept. Nothing is written here: the
//! caller writes [`Attested::bytes`] under [`Attested::file_name`], atomically.

use std::path::PathBuf;

use serde_json::Value;

use super::{RecordError, RecordOptions, record_artifacts};
use crate::base::fsio::{self, FsError};
use crate::base::json::{self, JsonError};
use crate::base::limits::Limit;
use crate::model::artifact::Artifacts;
use crate::model::attestation::{self, AttestationError, kind_of};
use crate::model::envelope::{Envelope, EnvelopeError, Format};
use crate::model::files::attestation_file_name;
use crate::model::keys::{KeyId, PrivateKey};
use crate::model::name::StepName;

/// Why an attestation could not be made. Nothing is written after any of these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestError {
    /// The predicate type is neither a URI nor a known short name.
    #[error(transparent)]
    PredicateType(AttestationError),
    /// The predicate file cannot be read, or is over the size cap.
    #[error("predicate file {}", .0)]
    ReadPredicate(#[source] FsError),
    /// The predicate file is not strict JSON.
    #[error(
        "predicate file {}: {source}; pass the JSON document the tool wrote",
        .path.display()
    )]
    PredicateJson {
        /// The file.
        path: PathBuf,
        /// Why it is not JSON.
        #[source]
        source: JsonError,
    },
    /// The predicate file holds JSON that is not an object.
    #[error(
        "predicate file {}: holds {found}, but a predicate is a JSON object; pass the tool's \
         JSON report itself",
        .path.display()
    )]
    PredicateNotObject {
        /// The file.
        path: PathBuf,
        /// What it holds instead.
        found: &'static str,
    },
    /// No subject given.
    #[error("no subject given: an attestation is about at least one artifact")]
    NoSubject,
    /// Hashing the subjects failed.
    #[error("recording the subjects: {0}")]
    Record(#[source] RecordError),
    /// The subjects given recorded no artifact (all missing and skipped, or all excluded).
    #[error("the subjects {0:?} recorded no artifact (all excluded or missing)")]
    NothingRecorded(Vec<String>),
    /// The Statement cannot be made.
    #[error(transparent)]
    Statement(AttestationError),
    /// Signing failed.
    #[error("signing the attestation: {0}")]
    Sign(#[source] EnvelopeError),
    /// The signed file would be over the cap every reader applies.
    #[error(
        "the attestation would be {size} bytes, over the limit {limit} of {max} bytes that \
         verifiers apply; attest a smaller predicate"
    )]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit's value.
        max: u64,
        /// Which limit.
        limit: Limit,
    },
}

/// What to attest.
#[derive(Debug, Clone)]
pub struct AttestOptions {
    /// The step the attestation is bound to.
    pub step: StepName,
    /// The predicate type: a URI, or a short name ([`attestation::SHORT_NAMES`]).
    pub predicate_type: String,
    /// The file holding the predicate (one JSON object).
    pub predicate: PathBuf,
    /// The subjects, as `tollgate run -p` takes products: paths relative to the base folder,
    /// or `dir:`, `oci:`, `git:` URIs.
    pub subjects: Vec<String>,
    /// How subjects are hashed (base folder, excludes, prefix stripping, limits).
    pub record: RecordOptions,
}

/// A signed attestation, ready to write.
#[derive(Debug, Clone)]
pub struct Attested {
    /// Its file name: `STEP.KEYID8.SLUG.intoto.json`.
    pub file_name: String,
    /// The DSSE file.
    pub bytes: Vec<u8>,
    /// The signer's keyid.
    pub keyid: KeyId,
    /// The predicate type URI.
    pub predicate_type: String,
    /// The subjects as recorded.
    pub subjects: Artifacts,
}

/// Reads the predicate, hashes the subjects, and signs the Statement with `key`.
pub fn attest(options: &AttestOptions, key: &PrivateKey) -> Result<Attested, AttestError> {
    let predicate_type =
        attestation::predicate_type(&options.predicate_type).map_err(AttestError::PredicateType)?;
    let limits = &options.record.limits;
    let predicate = read_predicate(options)?;
    if options.subjects.is_empty() {
        return Err(AttestError::NoSubject);
    }
    let recorded =
        record_artifacts(&options.subjects, &options.record).map_err(AttestError::Record)?;
    if recorded.artifacts.is_empty() {
        return Err(AttestError::NothingRecorded(options.subjects.clone()));
    }
    let statement = attestation::statement(
        &options.step,
        &recorded.artifacts,
        &predicate_type,
        predicate,
    )
    .map_err(AttestError::Statement)?;
    let bytes = Envelope::seal(&statement, Format::Dsse, &[key]).map_err(AttestError::Sign)?;
    if bytes.len() as u64 > limits.max_metadata_bytes {
        return Err(AttestError::TooLarge {
            size: bytes.len() as u64,
            max: limits.max_metadata_bytes,
            limit: Limit::MetadataBytes,
        });
    }
    let keyid = key.public_key().keyid();
    Ok(Attested {
        file_name: attestation_file_name(&options.step, &keyid, &predicate_type),
        bytes,
        keyid,
        predicate_type,
        subjects: recorded.artifacts,
    })
}

/// The predicate file's JSON object, read under [`crate::base::limits::Limits::max_metadata_bytes`].
fn read_predicate(options: &AttestOptions) -> Result<Value, AttestError> {
    let path = &options.predicate;
    let bytes = fsio::read_capped(
        path,
        options.record.limits.max_metadata_bytes,
        Limit::MetadataBytes,
    )
    .map_err(AttestError::ReadPredicate)?;
    let value = json::parse_data(&bytes).map_err(|source| AttestError::PredicateJson {
        path: path.clone(),
        source,
    })?;
    if !value.is_object() {
        return Err(AttestError::PredicateNotObject {
            path: path.clone(),
            found: kind_of(&value),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::limits::Limits;
    use crate::model::attestation::load_attestation;
    use crate::model::keyring::KeyRing;
    use crate::model::keys::KeyKind;

    fn options(dir: &std::path::Path, predicate: &str) -> AttestOptions {
        std::fs::write(dir.join("app.tar"), "packed\n").expect("write");
        std::fs::write(dir.join("report.json"), predicate).expect("write");
        AttestOptions {
            step: StepName::new("scan").expect("step"),
            predicate_type: "vulns".into(),
            predicate: dir.join("report.json"),
            subjects: vec!["app.tar".into()],
            record: RecordOptions {
                base_path: Some(dir.to_owned()),
                ..RecordOptions::default()
            },
        }
    }

    #[test]
    fn an_attestation_loads_back_with_its_predicate_and_subjects() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = PrivateKey::generate(KeyKind::Ed25519).expect("key");
        let made = attest(&options(dir.path(), r#"{"cvss": 7.5}"#), &key).expect("attested");
        assert_eq!(
            made.file_name,
            format!("scan.{}.vulns.intoto.json", made.keyid.short())
        );
        let trusted = KeyRing::from_keys([key.public_key().clone()]).expect("ring");
        let loaded = load_attestation(made.bytes, &trusted, &Limits::default()).expect("loads");
        assert_eq!(
            loaded.attestation.predicate(),
            &serde_json::json!({"cvss": 7.5})
        );
        assert_eq!(loaded.attestation.subjects, made.subjects);
        assert!(loaded.attestation.subjects.contains_key("app.tar"));
    }

    #[test]
    fn a_predicate_that_is_not_a_json_object_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = PrivateKey::generate(KeyKind::Ed25519).expect("key");
        for (text, expected) in [("[1, 2]", "a list"), ("{\"a\": ", "not valid JSON")] {
            let err = attest(&options(dir.path(), text), &key).expect_err("refused");
            let message = err.to_string();
            assert!(message.contains("report.json"), "{message}");
            assert!(message.contains(expected), "{message}");
        }
        let mut unknown = options(dir.path(), "{}");
        unknown.predicate_type = "sbom".into();
        assert!(matches!(
            attest(&unknown, &key),
            Err(AttestError::PredicateType(_))
        ));
        let mut none = options(dir.path(), "{}");
        none.subjects.clear();
        assert!(matches!(attest(&none, &key), Err(AttestError::NoSubject)));
    }
}
