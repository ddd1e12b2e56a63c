//! The two signature envelopes in-toto metadata travels in, detected per file.
//!
//! - **Classic** (`{"signed": {...}, "signatures": [{"keyid", "sig"}]}`): `sig` is hex over the
//!   securesystemslib canonical JSON of `signed`, recomputed from the parsed value.
//! - **DSSE** (`{"payload", "payloadType", "signatures": [{"keyid", "sig"}]}`): `sig` is base64
//!   over `PAE(payloadType, payload)`, the payload bytes exactly as stored. They are verified
//!   first; the payload type is checked next; only then is the payload parsed (THREATS C1, C5).
//!
//! A signature entry may also carry `"cert": ""`, as in-toto-golang wrote for years: the empty
//! field holds nothing and is accepted (a classic signature covers `signed` only, so it changes
//! no signed byte); a certificate in it is refused, because Tollgate does not support
//! in-toto-golang's X.509 functionaries. Any other field in a signature is an error.
//!
//! Every envelope is decoded under [`Limits`]: its size before parsing and its number of
//! signatures before any cryptography.
//!
//! [`Envelope::verify`] is the one public way to verify; what it hands on, [`Verified`], can
//! only be made here. The files: `decode` reads either form under the limits, `classic` and
//! `dsse` write them, and `stream` holds the crate's fast path for large links (decoded and
//! verified in one pass, the canonical bytes hashed on another core).

mod classic;
mod decode;
mod dsse;
pub(crate) mod stream;

use serde_json::Value;
use serde_json::value::RawValue;

use crate::base::json::{self, JsonError, PythonStyle};
use crate::base::limits::{Limit, Limits};
use crate::base::parallel;
use crate::model::keyring::KeyRing;
use crate::model::keys::{KeyError, KeyId, PrivateKey};
use crate::model::threshold::{self, Signature, Signers, ThresholdError};
use classic::{classic_file, classic_file_around};
use decode::{Decoded, decode};
use dsse::dsse_file;
pub use dsse::{decode_base64, pae};

/// The DSSE payload type of in-toto metadata.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// Which envelope a document uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `signed` + `signatures`, hex signatures over canonical JSON.
    Classic,
    /// DSSE, base64 signatures over the pre-authentication encoding of the payload.
    Dsse,
}

impl Format {
    /// The format's name as users see it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Classic => "classic",
            Format::Dsse => "DSSE",
        }
    }
}

/// Why an envelope is malformed or does not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The file is larger than a limit allows.
    #[error("metadata too large: {size} bytes, over the limit {limit} of {max} bytes")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit's value.
        max: u64,
        /// Which limit.
        limit: Limit,
    },
    /// The file is not strict JSON.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// Neither envelope form.
    #[error(
        "not in-toto metadata: expected a classic envelope ({{\"signed\", \"signatures\"}}) \
         or a DSSE envelope ({{\"payload\", \"payloadType\", \"signatures\"}})"
    )]
    UnknownFormat,
    /// A field of the envelope is missing, of the wrong type, or unknown.
    #[error("{format} envelope: {reason}")]
    Field {
        /// The envelope form.
        format: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// More signatures than [`Limits::max_signatures`].
    #[error("{count} signatures, over the limit {limit} of {max}")]
    TooManySignatures {
        /// How many the document carries.
        count: usize,
        /// The limit's value.
        max: usize,
        /// Which limit.
        limit: Limit,
    },
    /// A signature value is not valid hex or base64 (THREATS A9, C3).
    #[error("signature {index}: invalid signature encoding: {reason}")]
    SignatureEncoding {
        /// The signature's position in the list.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// A signature carries an X.509 certificate, as in-toto-golang's X.509 functionaries
    /// write; Tollgate does not verify certificate chains.
    #[error(
        "signature {index} carries an X.509 certificate (\"cert\"): in-toto-golang's X.509 \
         functionaries are not supported by Tollgate yet; have the functionary sign with a key \
         the layout lists under \"keys\""
    )]
    Certificate {
        /// The signature's position in the list.
        index: usize,
    },
    /// The payload is not valid base64 (THREATS C3).
    #[error("DSSE payload: invalid base64: {0}")]
    PayloadEncoding(String),
    /// The envelope carries no signature (THREATS C4).
    #[error("the metadata is not signed (its signature list is empty)")]
    NoSignatures,
    /// Not enough distinct trusted keys signed.
    #[error("signature check failed: {source}")]
    Threshold {
        /// The count.
        #[source]
        source: ThresholdError,
        /// Who signed.
        signers: Signers,
    },
    /// A DSSE payload type other than in-toto's (THREATS C1).
    #[error("DSSE payloadType is {0:?}, expected {PAYLOAD_TYPE:?}")]
    WrongPayloadType(String),
    /// The payload is not strict JSON, or not of the expected form.
    #[error("payload: {0}")]
    Payload(#[source] JsonError),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(#[from] KeyError),
}

#[derive(Debug, Clone)]
enum Body {
    /// The exact text of `signed`, parsed only when it is needed, and then into whatever type
    /// the caller wants (a link need never become a `serde_json::Value`).
    Classic { signed: Box<RawValue> },
    Dsse {
        payload_type: String,
        payload: Vec<u8>,
    },
}

/// A decoded envelope: its body and signatures, not yet verified.
#[derive(Debug, Clone)]
pub struct Envelope {
    body: Body,
    signatures: Vec<Signature>,
}

/// What verification hands on: the payload of an envelope enough trusted keys signed.
///
/// Its fields are private: only verification makes one, so holding a `Verified` is proof that
/// the signatures were checked.
#[derive(Debug, Clone)]
pub struct Verified<T = Value> {
    /// `signed` of a classic envelope, or the DSSE payload parsed strictly from the exact bytes
    /// that were verified.
    payload: T,
    format: Format,
    signers: Signers,
}

impl<T> Verified<T> {
    /// The payload: `signed` of a classic envelope, or the DSSE payload parsed strictly from
    /// the exact bytes that were verified.
    pub fn payload(&self) -> &T {
        &self.payload
    }

    /// The payload, the rest dropped.
    pub fn into_payload(self) -> T {
        self.payload
    }

    /// The envelope form.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Which trusted keys signed.
    pub fn signers(&self) -> &Signers {
        &self.signers
    }

    /// The payload and who signed it.
    pub fn into_parts(self) -> (T, Signers) {
        (self.payload, self.signers)
    }

    /// The same proof over `convert(payload)`: for the crate's checked forms of a payload (a
    /// raw link made a [`crate::model::link::Link`]).
    pub(crate) fn map<U>(self, convert: impl FnOnce(T) -> U) -> Verified<U> {
        Verified {
            payload: convert(self.payload),
            format: self.format,
            signers: self.signers,
        }
    }
}

impl Envelope {
    /// Decodes an envelope of either form. The signature list may be empty here (an unsigned
    /// file to be signed); [`Envelope::verify`] rejects that. The payload is not parsed yet.
    pub fn from_bytes(bytes: &[u8], limits: &Limits) -> Result<Envelope, EnvelopeError> {
        let (body, signatures) = match decode::<Box<RawValue>>(bytes, limits)? {
            Decoded::Classic { signed, signatures } => {
                if !signed.get().trim_start().starts_with('{') {
                    return Err(EnvelopeError::Field {
                        format: "classic",
                        reason: "\"signed\" must be an object".into(),
                    });
                }
                (Body::Classic { signed }, signatures)
            }
            Decoded::Dsse {
                payload_type,
                payload,
                signatures,
            } => (
                Body::Dsse {
                    payload_type,
                    payload,
                },
                signatures,
            ),
        };
        Ok(Envelope { body, signatures })
    }

    /// An unsigned envelope around `payload`. A DSSE payload is serialised as the reference
    /// serialises it (`json.dumps(sort_keys=True)`).
    pub fn unsigned(payload: Value, format: Format) -> Envelope {
        let body = match format {
            Format::Classic => Body::Classic {
                // A `Value` always serialises.
                signed: serde_json::value::to_raw_value(&payload)
                    .unwrap_or_else(|_| RawValue::NULL.to_owned()),
            },
            Format::Dsse => Body::Dsse {
                payload_type: PAYLOAD_TYPE.to_owned(),
                payload: json::to_python_json(&payload, PythonStyle::OneLine),
            },
        };
        Envelope {
            body,
            signatures: Vec::new(),
        }
    }

    /// The envelope form.
    pub fn format(&self) -> Format {
        match self.body {
            Body::Classic { .. } => Format::Classic,
            Body::Dsse { .. } => Format::Dsse,
        }
    }

    /// A DSSE envelope's payload type and payload bytes exactly as stored, unverified; `None`
    /// for a classic envelope. For readers that parse a payload their own way (attestations,
    /// whose predicates may hold floats); never use it to decide trust.
    pub(crate) fn dsse_parts(&self) -> Option<(&str, &[u8])> {
        match &self.body {
            Body::Dsse {
                payload_type,
                payload,
            } => Some((payload_type, payload)),
            Body::Classic { .. } => None,
        }
    }

    /// The signatures, as decoded.
    pub fn signatures(&self) -> &[Signature] {
        &self.signatures
    }

    /// The bytes the signatures cover: canonical JSON of `signed`, or the DSSE PAE.
    pub fn signed_bytes(&self) -> Result<Vec<u8>, EnvelopeError> {
        match &self.body {
            Body::Classic { signed } => {
                let value = json::parse(signed.get().as_bytes()).map_err(EnvelopeError::Payload)?;
                Ok(json::canonical(&value)?)
            }
            Body::Dsse {
                payload_type,
                payload,
            } => Ok(pae(payload_type, payload)),
        }
    }

    /// The payload without any signature check: for the tools that sign, which must read what
    /// they are about to vouch for. Never use it to decide trust.
    pub fn unverified_payload(&self) -> Result<Value, EnvelopeError> {
        let bytes = match &self.body {
            Body::Classic { signed } => signed.get().as_bytes(),
            Body::Dsse { payload, .. } => payload,
        };
        json::parse(bytes).map_err(EnvelopeError::Payload)
    }

    /// Verifies the envelope against `ring`: at least `threshold` distinct keys of the ring
    /// must have signed (at least one, always). For DSSE the payload type is checked after the
    /// signatures and before the payload is parsed.
    pub fn verify(&self, ring: &KeyRing, threshold: usize) -> Result<Verified, EnvelopeError> {
        let verified = self.verify_as::<json::Strict>(ring, threshold)?;
        Ok(verified.map(|strict| strict.0))
    }

    /// [`Envelope::verify`], with the payload parsed strictly into `T`. `T`'s serialisation
    /// must reproduce what was parsed, in canonical key order (as [`json::Strict`] and
    /// [`crate::model::link::RawLink`] do): a classic signature covers the canonical form of what
    /// was parsed. A classic payload is parsed before its signatures are checked (there is no
    /// other way to canonicalise it); a DSSE payload only after.
    pub(crate) fn verify_as<T>(
        &self,
        ring: &KeyRing,
        threshold: usize,
    ) -> Result<Verified<T>, EnvelopeError>
    where
        T: serde::de::DeserializeOwned + serde::Serialize,
    {
        self.clone().into_verified(ring, threshold)
    }

    /// [`Envelope::verify_as`], consuming the envelope so that each stage's bytes are freed
    /// as soon as the next stage has what it needs: a large link is never held as text,
    /// parsed form and canonical bytes all at once.
    pub(crate) fn into_verified<T>(
        self,
        ring: &KeyRing,
        threshold: usize,
    ) -> Result<Verified<T>, EnvelopeError>
    where
        T: serde::de::DeserializeOwned + serde::Serialize,
    {
        if self.signatures.is_empty() {
            return Err(EnvelopeError::NoSignatures);
        }
        let format = self.format();
        let signatures = self.signatures;
        let check = |message: &[u8]| {
            let signers = threshold::signers(message, &signatures, ring);
            match threshold::require(&signers.keys, threshold) {
                Ok(()) => Ok(signers),
                Err(source) => Err(EnvelopeError::Threshold { source, signers }),
            }
        };
        let (payload, signers) = match self.body {
            Body::Classic { signed } => {
                let payload: T =
                    json::parse_typed(signed.get().as_bytes()).map_err(EnvelopeError::Payload)?;
                drop(signed);
                let signers = check(&json::canonical(&payload)?)?;
                (payload, signers)
            }
            Body::Dsse {
                payload_type,
                payload,
            } => {
                let length = payload.len();
                let message = pae(&payload_type, &payload);
                drop(payload);
                let signers = check(&message)?;
                if payload_type != PAYLOAD_TYPE {
                    return Err(EnvelopeError::WrongPayloadType(payload_type));
                }
                // The payload is the tail of the verified message: parse exactly those bytes.
                let verified = &message[message.len() - length..];
                (
                    json::parse_typed(verified).map_err(EnvelopeError::Payload)?,
                    signers,
                )
            }
        };
        Ok(Verified {
            payload,
            format,
            signers,
        })
    }

    /// Adds a signature by `key` over the envelope's signed bytes.
    pub fn sign(&mut self, key: &PrivateKey) -> Result<KeyId, EnvelopeError> {
        let keyid = key.public_key().keyid();
        let sig = key.sign(&self.signed_bytes()?)?;
        self.signatures.push(Signature {
            keyid: Some(keyid.to_string()),
            sig,
        });
        Ok(keyid)
    }

    /// Removes every signature.
    pub fn clear_signatures(&mut self) {
        self.signatures.clear();
    }

    /// Whether `keyid` already has a signature here (by its claimed keyid).
    pub fn has_signature_from(&self, keyid: &KeyId) -> bool {
        self.signatures
            .iter()
            .any(|s| s.keyid.as_deref() == Some(keyid.as_str()))
    }

    /// The file bytes, as the reference writes them: classic with `indent=1`, DSSE on one
    /// line, keys sorted and non-ASCII escaped in both.
    pub fn to_bytes(&self) -> Vec<u8> {
        match &self.body {
            Body::Classic { signed } => match json::parse(signed.get().as_bytes()) {
                Ok(value) => classic_file(&value, &self.signatures),
                // Unparsable text cannot have come from a file that decoded; write it as is.
                Err(_) => classic_file(signed, &self.signatures),
            },
            Body::Dsse {
                payload_type,
                payload,
            } => dsse_file(payload_type, payload, &self.signatures),
        }
    }

    /// Signs `payload` with every key and returns the file bytes, straight from the typed
    /// payload: for the recorder, whose links can hold a million artifacts and should not be
    /// copied into a `Value` first. The result is what [`Envelope::unsigned`], [`Envelope::sign`]
    /// and [`Envelope::to_bytes`] would give.
    pub fn seal<T: serde::Serialize + Sync>(
        payload: &T,
        format: Format,
        keys: &[&PrivateKey],
    ) -> Result<Vec<u8>, EnvelopeError> {
        let sign_all = |message: &[u8]| -> Result<Vec<Signature>, EnvelopeError> {
            keys.iter()
                .map(|key| {
                    Ok(Signature {
                        keyid: Some(key.public_key().keyid().to_string()),
                        sig: key.sign(message)?,
                    })
                })
                .collect()
        };
        Ok(match format {
            Format::Classic => {
                // The file's text and the signed bytes are two renderings of one payload:
                // the text is made on one core while the other makes and signs the canonical
                // bytes; the file is then put together around the signatures.
                // Without a thread to spare, the text is made here afterwards.
                let (signatures, body) = std::thread::scope(|scope| {
                    let body = parallel::spawn_scoped(scope, "classic file text", || {
                        json::to_python_json_at(payload, PythonStyle::Indented, 1)
                    });
                    let signatures = json::canonical(payload)
                        .map_err(EnvelopeError::from)
                        .and_then(|signed| sign_all(&signed));
                    (signatures, body.ok().map(|body| body.join()))
                });
                let signatures = signatures?;
                match body {
                    Some(Ok(body)) => classic_file_around(&body, &signatures),
                    Some(Err(_)) | None => classic_file(payload, &signatures),
                }
            }
            Format::Dsse => {
                let bytes = json::to_python_json(payload, PythonStyle::OneLine);
                let signatures = sign_all(&pae(PAYLOAD_TYPE, &bytes))?;
                dsse_file(PAYLOAD_TYPE, &bytes, &signatures)
            }
        })
    }
}
