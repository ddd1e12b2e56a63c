//! DSSE: the file written on one line, the pre-authentication encoding its signatures cover,
//! and the strict base64 its fields are read with.

use base64::Engine as _;

use super::Signature;
use crate::base::json::{self, PythonStyle};

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

pub(super) fn dsse_file(payload_type: &str, payload: &[u8], signatures: &[Signature]) -> Vec<u8> {
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
