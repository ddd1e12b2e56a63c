//! The in-toto Attestation Framework (ITE-6): a step as an in-toto Statement v1 with the link
//! predicate v0.3, converted both ways, and SLSA provenance v1 for a build step's products.
//!
//! A link Statement carries the link's products as `subject` and the rest as the predicate:
//!
//! ```json
//! { "_type": "https://in-toto.io/Statement/v1",
//!   "subject": [{"name": "dist/app", "digest": {"sha256": "..."}}],
//!   "predicateType": "https://in-toto.io/attestation/link/v0.3",
//!   "predicate": {"name": "build", "command": ["make"],
//!                 "materials": [{"name": "src/main.c", "digest": {"sha256": "..."}}],
//!                 "byproducts": {...}, "environment": {...}} }
//! ```
//!
//! Reading one back follows the predicate's conversion rules. Unknown fields are ignored, as
//! the framework requires; what the conversion uses is checked as strictly as a classic link
//! (names are artifact paths and unique, digests well formed), and a Statement of any other
//! predicate type is not a link.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::base::limits::Limits;
use crate::model::artifact::Artifacts;
use crate::model::link::{Link, LinkError};

/// The Statement `_type`.
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
/// The link predicate's type.
pub const LINK_PREDICATE: &str = "https://in-toto.io/attestation/link/v0.3";
/// SLSA provenance v1's predicate type.
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
/// The build type Tollgate's provenance declares: a step recorded by Tollgate, its command as
/// the external parameters.
pub const BUILD_TYPE: &str = "https://tollgate.dev/provenance/step/v1";

/// Why a Statement cannot be made or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatementError {
    /// A Statement needs a subject: a link with no products has none.
    #[error(
        "a Statement needs at least one subject, and a link's subjects are its products: this \
         step recorded none (record products, or write a classic link)"
    )]
    NoSubject,
    /// Not a Statement, or not one this conversion reads.
    #[error("{0}")]
    Form(String),
    /// The converted link is not a valid link.
    #[error(transparent)]
    Link(#[from] LinkError),
}

fn descriptors(artifacts: &Artifacts) -> Vec<Value> {
    artifacts
        .iter()
        .map(|(name, digests)| {
            let digest: Map<String, Value> = digests
                .iter()
                .map(|(algorithm, hex)| (algorithm.to_owned(), Value::from(hex.into_owned())))
                .collect();
            json!({"name": name.as_str(), "digest": digest})
        })
        .collect()
}

/// The link as a Statement with the link predicate v0.3.
pub fn from_link(link: &Link) -> Result<Value, StatementError> {
    if link.products.is_empty() {
        return Err(StatementError::NoSubject);
    }
    Ok(json!({
        "_type": STATEMENT_V1,
        "subject": descriptors(&link.products),
        "predicateType": LINK_PREDICATE,
        "predicate": {
            "name": link.name.as_str(),
            "command": link.command,
            "materials": descriptors(&link.materials),
            "byproducts": link.byproducts,
            "environment": link.environment,
        },
    }))
}

/// Whether `payload` is an in-toto Statement (of any predicate type).
pub fn is_statement(payload: &Value) -> bool {
    payload.get("_type").and_then(Value::as_str) == Some(STATEMENT_V1)
}

fn form(message: impl Into<String>) -> StatementError {
    StatementError::Form(message.into())
}

/// `name -> digest` from a list of ResourceDescriptors, each with a unique `name` and a
/// `digest`.
fn digest_map(list: Option<&Value>, field: &str) -> Result<Map<String, Value>, StatementError> {
    let Some(list) = list else {
        return Ok(Map::new());
    };
    let list = list
        .as_array()
        .ok_or_else(|| form(format!("{field}: expected a list of resource descriptors")))?;
    let mut map = Map::new();
    let mut seen = BTreeSet::new();
    for (i, descriptor) in list.iter().enumerate() {
        let name = descriptor
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| form(format!("{field}[{i}]: a name is required")))?;
        let digest = descriptor
            .get("digest")
            .filter(|d| d.as_object().is_some_and(|o| !o.is_empty()))
            .ok_or_else(|| form(format!("{field}[{i}] {name:?}: a digest is required")))?;
        if !seen.insert(name.to_owned()) {
            return Err(form(format!(
                "{field}: the name {name:?} is given twice; names must be unique"
            )));
        }
        map.insert(name.to_owned(), digest.clone());
    }
    Ok(map)
}

/// Reads a link Statement back into a link, by the predicate's conversion rules.
pub fn to_link(statement: &Value, limits: &Limits) -> Result<Link, StatementError> {
    if !is_statement(statement) {
        return Err(form(format!("_type is not {STATEMENT_V1:?}")));
    }
    let predicate_type = statement
        .get("predicateType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if predicate_type != LINK_PREDICATE {
        return Err(form(format!(
            "a Statement of predicate type {predicate_type:?} is not a link (expected \
             {LINK_PREDICATE:?})"
        )));
    }
    let predicate = statement
        .get("predicate")
        .and_then(Value::as_object)
        .ok_or_else(|| form("predicate: an object is required"))?;
    let products = digest_map(statement.get("subject"), "subject")?;
    if products.is_empty() {
        return Err(form("subject: at least one is required"));
    }
    let materials = digest_map(predicate.get("materials"), "predicate.materials")?;
    let object = |field: &str| match predicate.get(field) {
        None => Ok(Value::Object(Map::new())),
        Some(value @ Value::Object(_)) => Ok(value.clone()),
        Some(_) => Err(form(format!("predicate.{field}: expected an object"))),
    };
    let link = json!({
        "_type": "link",
        "name": predicate.get("name").cloned().unwrap_or(Value::Null),
        "command": predicate.get("command").cloned().unwrap_or_else(|| json!([])),
        "materials": materials,
        "products": products,
        "byproducts": object("byproducts")?,
        "environment": object("environment")?,
    });
    Ok(Link::from_value(&link, limits)?)
}

/// SLSA provenance v1 for the products of a build step's link: the products as subjects,
/// the command as the external parameters, the materials as resolved dependencies, and
/// `builder_id` as the builder.
pub fn provenance(link: &Link, builder_id: &str) -> Result<Value, StatementError> {
    if link.products.is_empty() {
        return Err(StatementError::NoSubject);
    }
    Ok(json!({
        "_type": STATEMENT_V1,
        "subject": descriptors(&link.products),
        "predicateType": SLSA_PROVENANCE_V1,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "step": link.name.as_str(),
                    "command": link.command,
                },
                "internalParameters": {
                    "environment": link.environment,
                },
                "resolvedDependencies": descriptors(&link.materials),
            },
            "runDetails": {
                "builder": {"id": builder_id},
                "metadata": {},
            },
        },
    }))
}
