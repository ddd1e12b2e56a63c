//! Writing a classic file, `{"signatures": [...], "signed": ...}`, as the reference writes it
//! (`indent=1`, keys sorted, non-ASCII escaped).

use super::Signature;
use crate::base::json::{self, PythonStyle};

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

pub(super) fn classic_file<T: serde::Serialize>(signed: &T, signatures: &[Signature]) -> Vec<u8> {
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
pub(super) fn classic_file_around(signed: &[u8], signatures: &[Signature]) -> Vec<u8> {
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
}
