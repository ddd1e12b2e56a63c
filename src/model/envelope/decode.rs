//! Reading either envelope under [`Limits`]: the file's size before it is parsed, the top
//! level in one pass (which form, and the first unknown field), the number of signatures
//! before any is decoded, and each signature's encoding.

use super::dsse::decode_base64;
use super::{EnvelopeError, Signature};
use crate::base::json;
use crate::base::limits::{Limit, Limits};

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
pub(super) enum Decoded<S> {
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

/// Decodes an envelope of either form (see [`super::Envelope::from_bytes`]).
pub(super) fn decode<S: serde::de::DeserializeOwned>(
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
