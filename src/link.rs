//! The link: a functionary's signed record of one step, parsed into checked types.
//!
//! Loading a link checks `_type`, unknown fields, the step name (THREATS E6), every artifact
//! path (F1-F4) and digest (F10), and the number of artifacts (H3). Byproducts and environment
//! are opaque objects, kept as they are.

use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

use crate::artifact::{ArtifactError, ArtifactPath, Artifacts, DigestSet};
use crate::limits::{Limit, Limits};
use crate::name::{NameError, StepName};

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    #[serde(rename = "_type")]
    _type: String,
    name: String,
    #[serde(default)]
    command: Vec<String>,
    #[serde(default)]
    materials: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    products: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    byproducts: Map<String, Value>,
    #[serde(default)]
    environment: Map<String, Value>,
}

impl Link {
    /// Checks a link's payload (the `signed` part, or the parsed DSSE payload).
    pub fn from_value(value: &Value, limits: &Limits) -> Result<Link, LinkError> {
        if let Some(message) = crate::metadata::type_mismatch(value, "link") {
            return Err(LinkError::Schema {
                path: "_type".into(),
                message,
            });
        }
        let raw: RawLink = crate::metadata::deserialize(value)
            .map_err(|(path, message)| LinkError::Schema { path, message })?;
        Ok(Link {
            name: StepName::new(&raw.name)?,
            command: raw.command,
            materials: artifacts(raw.materials, "materials", limits)?,
            products: artifacts(raw.products, "products", limits)?,
            byproducts: raw.byproducts,
            environment: raw.environment,
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
    raw: BTreeMap<String, BTreeMap<String, String>>,
    field: &'static str,
    limits: &Limits,
) -> Result<Artifacts, LinkError> {
    if raw.len() > limits.max_artifacts {
        return Err(LinkError::TooManyArtifacts {
            field,
            count: raw.len(),
            max: limits.max_artifacts,
            limit: Limit::Artifacts,
        });
    }
    raw.into_iter()
        .map(|(path, digests)| {
            let checked_path = ArtifactPath::new(&path);
            let digests = DigestSet::new(&path, digests);
            match (checked_path, digests) {
                (Ok(p), Ok(d)) => Ok((p, d)),
                (Err(source), _) | (_, Err(source)) => Err(LinkError::Artifact { field, source }),
            }
        })
        .collect()
}
