//! The helpers the layout and link parsers share, below both of them: the `_type` check that
//! comes before any other field, and serde with the path of the first problem.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Says what is wrong when `payload`'s `_type` is not `expected`, so that a link given as a
/// layout (or the reverse) is reported as such before any other field is looked at (B8).
pub(crate) fn type_mismatch(payload: &Value, expected: &str) -> Option<String> {
    match payload.get("_type").and_then(Value::as_str) {
        Some(found) if found == expected => None,
        Some(found) => Some(format!("expected {expected:?}, got {found:?}")),
        None => Some(format!("expected {expected:?}, got no _type")),
    }
}

/// Deserialises a raw schema struct from a strict JSON value, reporting the path of the first
/// problem (`steps[1].threshold`) and serde's message.
pub(crate) fn deserialize<T: DeserializeOwned>(value: &Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        (path, e.into_inner().to_string())
    })
}
