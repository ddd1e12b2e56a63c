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

use base64::Engine as _;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::base::json::{self, JsonError, PythonStyle};
use crate::base::limits::{Limit, Limits};
use crate::base::parallel;
use crate::model::keyring::KeyRing;
use crate::model::keys::{KeyError, KeyId, PrivateKey};
use crate::model::threshold::{self, Signature, Signers, StreamedSigners, ThresholdError};

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
#[derive(Debug, Clone)]
pub struct Verified<T = Value> {
    /// The payload: `signed` of a classic envelope, or the DSSE payload parsed strictly from
    /// the exact bytes that were verified.
    pub payload: T,
    /// The envelope form.
    pub format: Format,
    /// Which trusted keys signed.
    pub signers: Signers,
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

    /// Decodes and verifies a file in one pass, a classic payload parsed straight into `T`
    /// from the file's bytes (no copy of its text is made, and the bytes are freed once
    /// parsed): the fast path for large links.
    /// See [`Envelope::verify_as`] for what `T` must do. Errors in the payload and in the
    /// envelope around it are not told apart here; [`Envelope::from_bytes`] and
    /// [`Envelope::verify`] do that.
    pub fn verify_bytes_as<T>(
        bytes: impl AsRef<[u8]>,
        ring: &KeyRing,
        threshold: usize,
        limits: &Limits,
    ) -> Result<Verified<T>, EnvelopeError>
    where
        T: serde::de::DeserializeOwned + serde::Serialize + json::Canonical,
    {
        Envelope::verify_bytes_into(bytes, ring, threshold, limits, |payload: T| payload)
    }

    /// [`Envelope::verify_bytes_as`], then `convert` applied to the payload. For a classic
    /// file signed by ed25519 keys, `convert` runs while the last of the canonical bytes are
    /// still being hashed on another core; its result is returned only if the signatures
    /// verify.
    pub fn verify_bytes_into<T, U>(
        bytes: impl AsRef<[u8]>,
        ring: &KeyRing,
        threshold: usize,
        limits: &Limits,
        convert: impl FnOnce(T) -> U,
    ) -> Result<Verified<U>, EnvelopeError>
    where
        T: serde::de::DeserializeOwned + serde::Serialize + json::Canonical,
    {
        let size = bytes.as_ref().len();
        let decoded = decode::<T>(bytes.as_ref(), limits)?;
        drop(bytes);
        match decoded {
            Decoded::Classic { signed, signatures } => {
                if signatures.is_empty() {
                    return Err(EnvelopeError::NoSignatures);
                }
                // The canonical bytes of a large file go straight into the signature checks
                // (on a thread of their own) where the keys allow it, and are never held
                // whole; a small file's are simply made and checked here.
                let streamed = (size >= STREAM_FROM_BYTES)
                    .then(|| StreamedSigners::start(&signatures, ring))
                    .flatten();
                let (payload, signers) = match streamed {
                    Some(mut stream) => {
                        signed.write_canonical(&mut stream)?;
                        let payload = convert(signed);
                        (payload, stream.finish())
                    }
                    None => {
                        let message = signed.canonical_bytes()?;
                        let signers = threshold::signers(&message, &signatures, ring);
                        (convert(signed), signers)
                    }
                };
                if let Err(source) = threshold::require(&signers.keys, threshold) {
                    return Err(EnvelopeError::Threshold { source, signers });
                }
                Ok(Verified {
                    payload,
                    format: Format::Classic,
                    signers,
                })
            }
            Decoded::Dsse {
                payload_type,
                payload,
                signatures,
            } => {
                let verified: Verified<T> = Envelope {
                    body: Body::Dsse {
                        payload_type,
                        payload,
                    },
                    signatures,
                }
                .into_verified(ring, threshold)?;
                Ok(Verified {
                    payload: convert(verified.payload),
                    format: verified.format,
                    signers: verified.signers,
                })
            }
        }
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
        Ok(Verified {
            payload: verified.payload.0,
            format: verified.format,
            signers: verified.signers,
        })
    }

    /// [`Envelope::verify`], with the payload parsed strictly into `T`. `T`'s serialisation
    /// must reproduce what was parsed, in canonical key order (as [`json::Strict`] and
    /// [`crate::model::link::RawLink`] do): a classic signature covers the canonical form of what
    /// was parsed. A classic payload is parsed before its signatures are checked (there is no
    /// other way to canonicalise it); a DSSE payload only after.
    pub fn verify_as<T>(
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
    pub fn into_verified<T>(
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

/// From this file size on, a classic payload's signatures are checked as its canonical bytes
/// are made, on another thread; below it, starting that thread costs more than it saves.
const STREAM_FROM_BYTES: usize = 1024 * 1024;

/// A classic file: `{"signatures": [...], "signed": ...}`, fields in sorted order.
#[derive(serde::Serialize)]
struct ClassicFile<'a, T: serde::Serialize> {
    signatures: Vec<ClassicSignature<'a>>,
    signed: &'a T,
}

#[derive(serde::Serialize)]
struct ClassicSignature<'a> {
    keyid: Option<&'a str>,
    sig: String,
}

/// A DSSE file: `{"payload", "payloadType", "signatures"}`, fields in sorted order.
#[derive(serde::Serialize)]
struct DsseFile<'a> {
    payload: String,
    #[serde(rename = "payloadType")]
    payload_type: &'a str,
    signatures: Vec<DsseSignature<'a>>,
}

#[derive(serde::Serialize)]
struct DsseSignature<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    keyid: Option<&'a str>,
    sig: String,
}

fn classic_file<T: serde::Serialize>(signed: &T, signatures: &[Signature]) -> Vec<u8> {
    let file = ClassicFile {
        signatures: signatures
            .iter()
            .map(|s| ClassicSignature {
                keyid: s.keyid.as_deref(),
                sig: hex::encode(&s.sig),
            })
            .collect(),
        signed,
    };
    json::to_python_json(&file, PythonStyle::Indented)
}

/// The classic file for a `signed` part already rendered at depth 1: byte for byte what
/// [`classic_file`] writes.
fn classic_file_around(signed: &[u8], signatures: &[Signature]) -> Vec<u8> {
    let list: Vec<ClassicSignature<'_>> = signatures
        .iter()
        .map(|s| ClassicSignature {
            keyid: s.keyid.as_deref(),
            sig: hex::encode(&s.sig),
        })
        .collect();
    let list = json::to_python_json_at(&list, PythonStyle::Indented, 1);
    let mut out = Vec::with_capacity(signed.len() + list.len() + 40);
    out.extend_from_slice(b"{\n \"signatures\": ");
    out.extend_from_slice(&list);
    out.extend_from_slice(b",\n \"signed\": ");
    out.extend_from_slice(signed);
    out.extend_from_slice(b"\n}");
    out
}

fn dsse_file(payload_type: &str, payload: &[u8], signatures: &[Signature]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let file = DsseFile {
        payload: b64.encode(payload),
        payload_type,
        signatures: signatures
            .iter()
            .map(|s| DsseSignature {
                keyid: s.keyid.as_deref(),
                sig: b64.encode(&s.sig),
            })
            .collect(),
    };
    json::to_python_json(&file, PythonStyle::OneLine)
}

/// The DSSE v1 pre-authentication encoding: `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP
/// body`, lengths in bytes as decimal ASCII.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// Decodes base64 in the standard or the URL-safe alphabet (DSSE requires both), padded or
/// not, but never a mixture of alphabets, whitespace, wrong padding or non-zero trailing bits,
/// so that one text decodes to at most one byte string (THREATS C3).
pub fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    use base64::alphabet;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

    let standard = text.contains(['+', '/']);
    let url_safe = text.contains(['-', '_']);
    if standard && url_safe {
        return Err("mixes the standard and URL-safe alphabets".into());
    }
    let padding = if text.ends_with('=') {
        DecodePaddingMode::RequireCanonical
    } else {
        DecodePaddingMode::RequireNone
    };
    let config = GeneralPurposeConfig::new()
        .with_decode_padding_mode(padding)
        .with_decode_allow_trailing_bits(false);
    let alphabet = if url_safe {
        &alphabet::URL_SAFE
    } else {
        &alphabet::STANDARD
    };
    GeneralPurpose::new(alphabet, config)
        .decode(text)
        .map_err(|e| e.to_string())
}

fn check_size(size: usize, limits: &Limits) -> Result<(), EnvelopeError> {
    if size as u64 > limits.max_metadata_bytes {
        return Err(EnvelopeError::TooLarge {
            size: size as u64,
            max: limits.max_metadata_bytes,
            limit: Limit::MetadataBytes,
        });
    }
    Ok(())
}

/// The top level of either envelope, read in one pass: which fields are there, and the
/// first unknown one.
struct Outer<S> {
    signed: Option<S>,
    signatures: Option<Vec<RawSignature>>,
    payload: Option<String>,
    payload_type: Option<String>,
    unknown: Option<String>,
}

impl<'de, S: serde::Deserialize<'de>> serde::Deserialize<'de> for Outer<S> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields<S>(std::marker::PhantomData<S>);
        impl<'de, S: serde::Deserialize<'de>> serde::de::Visitor<'de> for Fields<S> {
            type Value = Outer<S>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an in-toto envelope (a JSON object)")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Outer<S>, A::Error> {
                let mut outer = Outer {
                    signed: None,
                    signatures: None,
                    payload: None,
                    payload_type: None,
                    unknown: None,
                };
                let mut seen = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if seen.contains(&key) {
                        return Err(json::violation(json::Violation::DuplicateKey(key)));
                    }
                    match key.as_str() {
                        "signed" => outer.signed = Some(map.next_value()?),
                        "signatures" => outer.signatures = Some(map.next_value()?),
                        "payload" => outer.payload = Some(map.next_value()?),
                        "payloadType" => outer.payload_type = Some(map.next_value()?),
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                            if outer.unknown.is_none() {
                                outer.unknown = Some(key.clone());
                            }
                        }
                    }
                    seen.push(key);
                }
                Ok(outer)
            }
        }
        deserializer.deserialize_map(Fields(std::marker::PhantomData))
    }
}

/// An envelope's parts, with a classic payload parsed as `S`.
enum Decoded<S> {
    Classic {
        signed: S,
        signatures: Vec<Signature>,
    },
    Dsse {
        payload_type: String,
        payload: Vec<u8>,
        signatures: Vec<Signature>,
    },
}

/// Decodes an envelope of either form (see [`Envelope::from_bytes`]).
fn decode<S: serde::de::DeserializeOwned>(
    bytes: &[u8],
    limits: &Limits,
) -> Result<Decoded<S>, EnvelopeError> {
    check_size(bytes.len(), limits)?;
    let outer: Outer<S> = json::parse_typed(bytes)?;
    let field = |format: &'static str, reason: String| EnvelopeError::Field { format, reason };
    let signatures = |format: &'static str, list: Option<Vec<RawSignature>>| {
        let list = list.ok_or_else(|| field(format, "missing field \"signatures\"".into()))?;
        decode_signatures(list, limits, format)
    };
    match outer {
        Outer {
            signed: Some(signed),
            payload: None,
            payload_type: None,
            signatures: list,
            unknown: None,
        } => {
            let signatures = signatures("classic", list)?;
            if signatures.iter().any(|s| s.keyid.is_none()) {
                return Err(field("classic", "every signature needs a \"keyid\"".into()));
            }
            Ok(Decoded::Classic { signed, signatures })
        }
        Outer {
            signed: None,
            payload: Some(payload),
            payload_type,
            signatures: list,
            unknown: None,
        } => {
            let payload_type = payload_type
                .ok_or_else(|| field("DSSE", "missing field \"payloadType\"".into()))?;
            let payload = decode_base64(&payload).map_err(EnvelopeError::PayloadEncoding)?;
            Ok(Decoded::Dsse {
                payload_type,
                payload,
                signatures: signatures("DSSE", list)?,
            })
        }
        Outer {
            signed: Some(_),
            unknown,
            ..
        } => Err(field(
            "classic",
            format!(
                "unknown field {:?}",
                unknown.unwrap_or_else(|| "payload".into())
            ),
        )),
        Outer {
            payload: Some(_),
            unknown: Some(name),
            ..
        } => Err(field("DSSE", format!("unknown field {name:?}"))),
        _ => Err(EnvelopeError::UnknownFormat),
    }
}

/// One signature as the file holds it.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSignature {
    keyid: Option<String>,
    sig: String,
    /// in-toto-golang's certificate field: accepted when empty, refused otherwise.
    #[serde(default)]
    cert: Option<String>,
}

fn decode_signatures(
    list: Vec<RawSignature>,
    limits: &Limits,
    format: &'static str,
) -> Result<Vec<Signature>, EnvelopeError> {
    if list.len() > limits.max_signatures {
        return Err(EnvelopeError::TooManySignatures {
            count: list.len(),
            max: limits.max_signatures,
            limit: Limit::Signatures,
        });
    }
    list.into_iter()
        .enumerate()
        .map(|(index, raw)| {
            if raw.cert.as_deref().is_some_and(|cert| !cert.is_empty()) {
                return Err(EnvelopeError::Certificate { index });
            }
            if raw.sig.is_empty() {
                return Err(EnvelopeError::SignatureEncoding {
                    index,
                    reason: "empty".into(),
                });
            }
            let decoded = if format == "classic" {
                if raw.sig.bytes().any(|b| b.is_ascii_uppercase()) {
                    Err("hex must be lowercase".to_owned())
                } else {
                    hex::decode(&raw.sig).map_err(|e| e.to_string())
                }
            } else {
                decode_base64(&raw.sig)
            };
            let sig =
                decoded.map_err(|reason| EnvelopeError::SignatureEncoding { index, reason })?;
            Ok(Signature {
                keyid: raw.keyid,
                sig,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file put together around a pre-rendered payload is the file the serialiser writes.
    #[test]
    fn classic_file_around_matches_classic_file() {
        let payload = json::parse(
            "{\"_type\":\"link\",\"b\":{\"x\":[1,{\"y\":\"\\u00e9\\n\"}],\"e\":{}},\"l\":[]}"
                .as_bytes(),
        )
        .expect("json");
        for signatures in [
            Vec::new(),
            vec![
                Signature {
                    keyid: Some("ab".repeat(32)),
                    sig: vec![1, 2, 3],
                },
                Signature {
                    keyid: Some("cd".repeat(32)),
                    sig: vec![4],
                },
            ],
        ] {
            let body = json::to_python_json_at(&payload, PythonStyle::Indented, 1);
            assert_eq!(
                String::from_utf8(classic_file_around(&body, &signatures)).expect("utf8"),
                String::from_utf8(classic_file(&payload, &signatures)).expect("utf8")
            );
        }
    }

    /// A file large enough for its signature to be hashed on another thread verifies, gives
    /// the converted payload, and fails once a byte of its payload changes; so does a small
    /// one, checked in place.
    #[test]
    fn large_and_small_classic_files_verify_only_as_signed() {
        use crate::model::keys::KeyKind;
        let key = PrivateKey::generate(KeyKind::Ed25519).expect("key");
        let ring = KeyRing::from_keys([key.public_key().clone()]).expect("ring");
        let limits = Limits::default();
        for count in [10, 40_000] {
            let materials: serde_json::Map<String, Value> = (0..count)
                .map(|i| {
                    let digest = format!("{:064x}", i);
                    (
                        format!("src/file{i:06}.c"),
                        serde_json::json!({ "sha256": digest }),
                    )
                })
                .collect();
            let payload = serde_json::json!({
                "_type": "link", "byproducts": {}, "command": [], "environment": {},
                "materials": materials, "name": "build", "products": {},
            });
            let file = Envelope::seal(&payload, Format::Classic, &[&key]).expect("seal");
            assert_eq!(file.len() >= STREAM_FROM_BYTES, count > 10, "{count}");
            let verified =
                Envelope::verify_bytes_into(&file, &ring, 1, &limits, |v: json::Strict| {
                    v.0["materials"].as_object().map(|m| m.len())
                })
                .expect("verifies");
            assert_eq!(verified.payload, Some(count));
            assert!(verified.signers.keys.contains(&key.public_key().keyid()));
            // The last material's digest, changed by one digit.
            let text = String::from_utf8(file).expect("utf8");
            let last = format!("{:064x}", count - 1);
            let forged = text.replacen(&last, &format!("{:064x}", count + 7), 1);
            assert_ne!(forged, text);
            match Envelope::verify_bytes_into(
                forged.as_bytes(),
                &ring,
                1,
                &limits,
                |v: json::Strict| v,
            ) {
                Err(EnvelopeError::Threshold { signers, .. }) => {
                    assert!(signers.keys.is_empty());
                    assert_eq!(signers.unattributed, 1);
                }
                other => panic!("{count}: {:?}", other.map(|v| v.signers)),
            }
        }
    }
}
