//! The link: a functionary's signed record of one step, parsed into checked types.
//!
//! Loading a link checks `_type`, unknown fields, the step name (THREATS E6), every artifact
//! path (F1-F4) and digest (F10), and the number of artifacts (H3). Byproducts and environment
//! are opaque objects, kept as they are.

use serde_json::{Map, Value};

use crate::base::json::{Canonical, JsonError, Strict, write_canonical_str};
use crate::base::limits::{Limit, Limits};
use crate::model::artifact::{ArtifactError, ArtifactPath, Artifacts, DigestSet};
use crate::model::name::{NameError, StepName};

/// Why a link is rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// A field is missing, unknown, or of the wrong type.
    #[error("link field {path}: {message}")]
    Schema {
        /// Where, e.g. `materials`.
        path: String,
        /// What serde found.
        message: String,
    },
    /// The link's step name may not be used.
    #[error("link field name: {0}")]
    Name(#[from] NameError),
    /// An artifact path or digest is malformed.
    #[error("link field {field}: {source}")]
    Artifact {
        /// `materials` or `products`.
        field: &'static str,
        /// What is wrong.
        #[source]
        source: ArtifactError,
    },
    /// Two artifact names a case-insensitive or normalising file system would take for one.
    #[error(
        "link field {field}: {a:?} and {b:?} name one file on case-insensitive or normalising file systems; the link is ambiguous"
    )]
    Ambiguous {
        /// `materials` or `products`.
        field: &'static str,
        /// One name.
        a: String,
        /// The other.
        b: String,
    },
    /// More artifacts than [`Limits::max_artifacts`].
    #[error("link field {field}: too many artifacts: {count}, over the limit {limit} of {max}")]
    TooManyArtifacts {
        /// `materials` or `products`.
        field: &'static str,
        /// How many.
        count: usize,
        /// The limit's value.
        max: usize,
        /// Which limit.
        limit: Limit,
    },
}

/// A checked link.
#[derive(Debug, Clone)]
pub struct Link {
    /// The step the link claims to record; binding a link to a step uses this signed name.
    pub name: StepName,
    /// The command that ran.
    pub command: Vec<String>,
    /// The artifacts before the command ran.
    pub materials: Artifacts,
    /// The artifacts after it ran.
    pub products: Artifacts,
    /// What the command left besides products (`stdout`, `stderr`, `return-value`).
    pub byproducts: Map<String, Value>,
    /// Facts about where it ran.
    pub environment: Map<String, Value>,
}

/// A link as signed, before its contents are checked: what a file holds, field for field,
/// with absent fields absent. Its `Serialize` writes the canonical form of exactly what was
/// parsed (fields in code-point order, absent ones left out), so that a classic signature can
/// be checked without building a `serde_json::Value` of a link that may hold a million
/// artifacts.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawLink {
    #[serde(rename = "_type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    byproducts: Option<Strict>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    environment: Option<Strict>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    materials: Option<RawArtifacts>,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    products: Option<RawArtifacts>,
}

/// An artifact map as parsed: names to digest sets, sorted, each name once. An entry has the
/// size and layout of a checked one, so that checking turns the list into an [`Artifacts`] in
/// place, with no second list.
#[derive(Debug, Clone, Default)]
pub struct RawArtifacts(Vec<(Box<str>, RawDigests)>);

impl<'de> serde::Deserialize<'de> for RawArtifacts {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = RawArtifacts;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of artifact names to digest sets")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RawArtifacts, A::Error> {
                let mut entries: Vec<(Box<str>, RawDigests)> =
                    Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(name) = map.next_key::<Text<'de>>()? {
                    let digests = map.next_value::<RawDigests>()?;
                    entries.push((name.into_boxed_str(), digests));
                }
                sorted_unique(&mut entries)?;
                Ok(RawArtifacts(entries))
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

impl serde::Serialize for RawArtifacts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(name, digests)| (name, digests)))
    }
}

/// A digest set as parsed: the common case, one well-formed SHA-256 digest, as its 32 bytes;
/// anything else as (algorithm, text) pairs, sorted, each algorithm once, checked later so
/// that the error names the artifact.
#[derive(Debug, Clone)]
enum RawDigests {
    Sha256([u8; 32]),
    Pairs(Vec<(String, String)>),
}

impl serde::Serialize for RawDigests {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            RawDigests::Sha256(bytes) => {
                let hex = crate::model::artifact::hex32(bytes);
                let text = std::str::from_utf8(&hex).unwrap_or("");
                serializer.collect_map(std::iter::once(("sha256", text)))
            }
            RawDigests::Pairs(pairs) => serializer.collect_map(pairs.iter().map(|(a, d)| (a, d))),
        }
    }
}

impl<'de> serde::Deserialize<'de> for RawDigests {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Pairs;
        impl<'de> serde::de::Visitor<'de> for Pairs {
            type Value = RawDigests;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of hash algorithms to hex digests")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RawDigests, A::Error> {
                let mut pairs: Vec<(String, String)> = Vec::new();
                let mut single: Option<[u8; 32]> = None;
                while let Some(algorithm) = map.next_key::<Text<'de>>()? {
                    let value = map.next_value::<Text<'de>>()?;
                    if pairs.is_empty()
                        && single.is_none()
                        && algorithm.as_str() == "sha256"
                        && let Some(bytes) = crate::model::artifact::unhex32(value.as_str())
                    {
                        single = Some(bytes);
                        continue;
                    }
                    if let Some(bytes) = single.take() {
                        let hex = crate::model::artifact::hex32(&bytes);
                        pairs.push(("sha256".into(), String::from_utf8_lossy(&hex).into_owned()));
                    }
                    pairs.push((algorithm.into_string(), value.into_string()));
                }
                match single {
                    Some(bytes) => Ok(RawDigests::Sha256(bytes)),
                    None => {
                        sorted_unique(&mut pairs)?;
                        Ok(RawDigests::Pairs(pairs))
                    }
                }
            }
        }
        deserializer.deserialize_map(Pairs)
    }
}

/// A string from the input, borrowed when it holds no escapes.
enum Text<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Text<'_> {
    fn as_str(&self) -> &str {
        match self {
            Text::Borrowed(s) => s,
            Text::Owned(s) => s,
        }
    }

    fn into_string(self) -> String {
        match self {
            Text::Borrowed(s) => s.to_owned(),
            Text::Owned(s) => s,
        }
    }

    fn into_boxed_str(self) -> Box<str> {
        match self {
            Text::Borrowed(s) => Box::from(s),
            Text::Owned(s) => s.into_boxed_str(),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Text<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Text<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text::Borrowed(v))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text::Owned(v.to_owned()))
            }

            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text::Owned(v))
            }
        }
        deserializer.deserialize_str(Visit)
    }
}

/// Sorts map entries by key (they usually arrive sorted) and refuses a key given twice.
fn sorted_unique<K, V, E>(entries: &mut [(K, V)]) -> Result<(), E>
where
    K: Ord + AsRef<str>,
    E: serde::de::Error,
{
    if !entries.windows(2).all(|w| w[0].0 < w[1].0) {
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = entries.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(crate::base::json::violation(
                crate::base::json::Violation::DuplicateKey(w[0].0.as_ref().to_owned()),
            ));
        }
    }
    Ok(())
}

impl Canonical for RawLink {
    /// The same bytes as the derived `Serialize` gives through [`crate::base::json::canonical`]
    /// (fields in code-point order, absent ones left out), with the artifact maps, nearly all
    /// of a large link, written directly.
    fn write_canonical<W: std::io::Write>(&self, out: &mut W) -> Result<(), JsonError> {
        let io = |e: std::io::Error| JsonError::NotCanonicalizable(serde_json::Error::io(e));
        out.write_all(b"{\"_type\":").map_err(io)?;
        write_canonical_str(out, &self.kind).map_err(io)?;
        if let Some(byproducts) = &self.byproducts {
            out.write_all(b",\"byproducts\":").map_err(io)?;
            byproducts.write_canonical(out)?;
        }
        if let Some(command) = &self.command {
            out.write_all(b",\"command\":").map_err(io)?;
            crate::base::json::canonical_to(command, &mut *out)?;
        }
        if let Some(environment) = &self.environment {
            out.write_all(b",\"environment\":").map_err(io)?;
            environment.write_canonical(out)?;
        }
        if let Some(materials) = &self.materials {
            out.write_all(b",\"materials\":").map_err(io)?;
            materials.write_canonical(out).map_err(io)?;
        }
        out.write_all(b",\"name\":").map_err(io)?;
        write_canonical_str(out, &self.name).map_err(io)?;
        if let Some(products) = &self.products {
            out.write_all(b",\"products\":").map_err(io)?;
            products.write_canonical(out).map_err(io)?;
        }
        out.write_all(b"}").map_err(io)
    }
}

impl RawArtifacts {
    /// The map in canonical form: names are sorted already, and each digest set is sorted.
    fn write_canonical<W: std::io::Write>(&self, out: &mut W) -> std::io::Result<()> {
        const SHA256_OPEN: &[u8] = b"{\"sha256\":\"";
        let mut single = [0u8; SHA256_OPEN.len() + 64 + 2];
        single[..SHA256_OPEN.len()].copy_from_slice(SHA256_OPEN);
        single[SHA256_OPEN.len() + 64..].copy_from_slice(b"\"}");
        out.write_all(b"{")?;
        for (i, (name, digests)) in self.0.iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            write_canonical_str(out, name)?;
            out.write_all(b":")?;
            match digests {
                RawDigests::Sha256(bytes) => {
                    single[SHA256_OPEN.len()..SHA256_OPEN.len() + 64]
                        .copy_from_slice(&crate::model::artifact::hex32(bytes));
                    out.write_all(&single)?;
                }
                RawDigests::Pairs(pairs) => {
                    out.write_all(b"{")?;
                    for (j, (algorithm, value)) in pairs.iter().enumerate() {
                        if j > 0 {
                            out.write_all(b",")?;
                        }
                        write_canonical_str(out, algorithm)?;
                        out.write_all(b":")?;
                        write_canonical_str(out, value)?;
                    }
                    out.write_all(b"}")?;
                }
            }
        }
        out.write_all(b"}")
    }
}

impl RawLink {
    /// Whether the payload says it is a link.
    pub fn is_link(&self) -> bool {
        self.kind == "link"
    }
}

impl Link {
    /// Checks a link's payload (the `signed` part, or the parsed DSSE payload).
    pub fn from_value(value: &Value, limits: &Limits) -> Result<Link, LinkError> {
        if let Some(message) = crate::model::schema::type_mismatch(value, "link") {
            return Err(LinkError::Schema {
                path: "_type".into(),
                message,
            });
        }
        let raw: RawLink = crate::model::schema::deserialize(value)
            .map_err(|(path, message)| LinkError::Schema { path, message })?;
        Link::from_raw(raw, limits)
    }

    /// Checks a link parsed as [`RawLink`].
    pub fn from_raw(raw: RawLink, limits: &Limits) -> Result<Link, LinkError> {
        if !raw.is_link() {
            return Err(LinkError::Schema {
                path: "_type".into(),
                message: format!("expected \"link\", got {:?}", raw.kind),
            });
        }
        let object =
            |value: Option<Strict>, field: &str| -> Result<Map<String, Value>, LinkError> {
                match value.map(|s| s.0) {
                    None => Ok(Map::new()),
                    Some(Value::Object(map)) => Ok(map),
                    Some(_) => Err(LinkError::Schema {
                        path: field.to_owned(),
                        message: "expected an object".into(),
                    }),
                }
            };
        let command = raw.command.unwrap_or_default();
        if command.iter().any(|arg| arg.contains('\0')) {
            return Err(LinkError::Schema {
                path: "command".into(),
                message: "an argument contains U+0000".into(),
            });
        }
        Ok(Link {
            name: StepName::new(&raw.name)?,
            command,
            materials: artifacts(raw.materials.unwrap_or_default(), "materials", limits)?,
            products: artifacts(raw.products.unwrap_or_default(), "products", limits)?,
            byproducts: object(raw.byproducts, "byproducts")?,
            environment: object(raw.environment, "environment")?,
        })
    }

    /// The link in the full form the reference reads and signs: every field present.
    pub fn to_value(&self) -> Value {
        // Serialising plain maps and strings into a `Value` cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The full form, fields in code-point order so that the canonical encoder can write it
/// straight from the link, with no intermediate `Value` (links can be large).
impl serde::Serialize for Link {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Link", 7)?;
        s.serialize_field("_type", "link")?;
        s.serialize_field("byproducts", &self.byproducts)?;
        s.serialize_field("command", &self.command)?;
        s.serialize_field("environment", &self.environment)?;
        s.serialize_field("materials", &self.materials)?;
        s.serialize_field("name", self.name.as_str())?;
        s.serialize_field("products", &self.products)?;
        s.end()
    }
}

fn artifacts(
    raw: RawArtifacts,
    field: &'static str,
    limits: &Limits,
) -> Result<Artifacts, LinkError> {
    if raw.0.len() > limits.max_artifacts {
        return Err(LinkError::TooManyArtifacts {
            field,
            count: raw.0.len(),
            max: limits.max_artifacts,
            limit: Limit::Artifacts,
        });
    }
    let entries = raw
        .0
        .into_iter()
        .map(|(path, digests)| {
            let set = match digests {
                RawDigests::Sha256(bytes) => DigestSet::sha256(&bytes),
                RawDigests::Pairs(pairs) => DigestSet::from_pairs(&path, pairs)
                    .map_err(|source| LinkError::Artifact { field, source })?,
            };
            let path = ArtifactPath::from_boxed(path)
                .map_err(|source| LinkError::Artifact { field, source })?;
            Ok((path, set))
        })
        .collect::<Result<Vec<_>, LinkError>>()?;
    // Collected in place: a raw entry has the size of a checked one. A raw map is sorted with
    // each name once: its parser made sure of it.
    let artifacts = Artifacts::from_sorted(entries);
    if let Some((a, b)) = crate::model::artifact::ambiguous_names(&artifacts) {
        return Err(LinkError::Ambiguous { field, a, b });
    }
    Ok(artifacts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct writer against the generic encoder, on links that take every branch: absent
    /// and present optional fields, escapes, raw control characters and non-ASCII in names,
    /// one SHA-256 digest and several digests, empty maps.
    #[test]
    fn direct_canonical_form_is_the_generic_one() {
        let sha = "ab".repeat(32);
        let links = [
            r#"{"_type":"link","name":"build"}"#.to_owned(),
            format!(
                r#"{{"_type":"link","name":"b\"u\\ild","command":["a b","\"q\""],
                "byproducts":{{"stdout":"x\ny","return-value":0}},
                "environment":{{"z":[1,{{"b":null,"a":true}}]}},
                "materials":{{"z":{{"sha256":"{sha}"}},"a \"q\" \\b":{{"sha256":"{sha}"}},
                              "é\u0001":{{"sha512":"{sha}{sha}","sha256":"{sha}"}}}},
                "products":{{}}}}"#
            ),
            format!(
                r#"{{"_type":"link","name":"s","products":{{"p":{{"md5":"{}"}}}}}}"#,
                "0".repeat(32)
            ),
            format!(
                r#"{{"_type":"link","name":"s","materials":{{"p":{{"sha256":"{}"}}}}}}"#,
                "A".repeat(64)
            ),
        ];
        for text in &links {
            let raw: RawLink = crate::base::json::parse_typed(text.as_bytes()).expect("a raw link");
            let generic = crate::base::json::canonical(&raw).expect("encodable");
            let direct = raw.canonical_bytes().expect("encodable");
            assert_eq!(
                String::from_utf8_lossy(&direct),
                String::from_utf8_lossy(&generic),
                "{text}"
            );
            // And both are the canonical form of the plain parsed value.
            let value = crate::base::json::parse(text.as_bytes()).expect("json");
            assert_eq!(
                direct,
                crate::base::json::canonical(&value).expect("encodable")
            );
        }
    }
}
