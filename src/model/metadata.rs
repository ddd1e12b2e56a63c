//! A verified or unverified payload, told apart by its `_type`.

use serde_json::Value;

use crate::base::limits::Limits;
use crate::model::layout::{Layout, LayoutError};
use crate::model::link::{Link, LinkError};

/// Why a payload is neither a valid layout nor a valid link.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// `_type` is missing or names something else (THREATS B8).
    #[error("expected {expected}, got {found}")]
    WrongType {
        /// What the caller wanted.
        expected: &'static str,
        /// What `_type` says, or "no _type".
        found: String,
    },
    /// An invalid layout.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// An invalid link.
    #[error(transparent)]
    Link(#[from] LinkError),
}

/// A checked layout or link.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum Metadata {
    /// A layout.
    Layout(Layout),
    /// A link.
    Link(Link),
}

/// What a payload's `_type` says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `"_type": "layout"`.
    Layout,
    /// `"_type": "link"`.
    Link,
}

impl Kind {
    /// The `_type` value.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Layout => "layout",
            Kind::Link => "link",
        }
    }

    /// Reads `_type` from a payload.
    pub fn of(payload: &Value) -> Result<Kind, MetadataError> {
        match payload.get("_type").and_then(Value::as_str) {
            Some("layout") => Ok(Kind::Layout),
            Some("link") => Ok(Kind::Link),
            Some(other) => Err(MetadataError::WrongType {
                expected: "a layout or a link",
                found: format!("_type {other:?}"),
            }),
            None => Err(MetadataError::WrongType {
                expected: "a layout or a link",
                found: "no _type".into(),
            }),
        }
    }

    /// Fails unless the payload is of this kind ("expected layout, got link").
    pub fn expect(self, payload: &Value) -> Result<(), MetadataError> {
        match Kind::of(payload) {
            Ok(kind) if kind == self => Ok(()),
            Ok(kind) => Err(MetadataError::WrongType {
                expected: self.name(),
                found: kind.name().into(),
            }),
            Err(MetadataError::WrongType { found, .. }) => Err(MetadataError::WrongType {
                expected: self.name(),
                found,
            }),
            Err(other) => Err(other),
        }
    }
}

impl Metadata {
    /// Checks a payload as whatever its `_type` says it is.
    pub fn from_value(payload: &Value, limits: &Limits) -> Result<Metadata, MetadataError> {
        Ok(match Kind::of(payload)? {
            Kind::Layout => Metadata::Layout(Layout::from_value(payload, limits)?),
            Kind::Link => Metadata::Link(Link::from_value(payload, limits)?),
        })
    }

    /// The kind.
    pub fn kind(&self) -> Kind {
        match self {
            Metadata::Layout(_) => Kind::Layout,
            Metadata::Link(_) => Kind::Link,
        }
    }

    /// The full form the reference signs (see [`Layout::to_value`], [`Link::to_value`]).
    pub fn to_value(&self) -> Value {
        match self {
            Metadata::Layout(layout) => layout.to_value(),
            Metadata::Link(link) => link.to_value(),
        }
    }
}
