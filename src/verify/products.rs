//! Matching local files against a link's products: the check a buyer runs on what a vendor
//! shipped (the work of `in-toto-match-products`, which also reads DSSE links here and checks
//! the link's signature when given a key).

use serde::Serialize;

use crate::base::limits::Limits;
use crate::model::document::{self, LoadLinkError};
use crate::model::envelope::{Envelope, EnvelopeError};
use crate::model::keyring::KeyRing;
use crate::model::link::LinkError;
use crate::record::{self, RecordError, RecordOptions};

/// Why the match could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MatchError {
    /// The link file is malformed, or its signature does not verify.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The payload is not a valid link.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// Recording the local files failed.
    #[error("recording the local files: {0}")]
    Record(#[from] RecordError),
}

/// How the local files compare with the link's products.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProductMatch {
    /// Products with no local file.
    pub only_in_link: Vec<String>,
    /// Local files that are not products.
    pub only_here: Vec<String>,
    /// Names in both whose digests differ.
    pub differ: Vec<String>,
    /// Whether the link's signature was checked (a key was given).
    pub signature_checked: bool,
}

impl ProductMatch {
    /// Whether everything matched.
    pub fn matched(&self) -> bool {
        self.only_in_link.is_empty() && self.only_here.is_empty() && self.differ.is_empty()
    }
}

/// Compares the files at `paths` (recorded with `options`) with the products of the link in
/// `link_file`. With `keys`, one of them must have signed the link.
pub fn match_products(
    link_file: &[u8],
    keys: Option<&KeyRing>,
    paths: &[String],
    options: &RecordOptions,
    limits: &Limits,
) -> Result<ProductMatch, MatchError> {
    let link = match keys {
        Some(ring) => document::load_link(link_file, ring, 1, limits)
            .and_then(|loaded| loaded.into_link(limits)),
        None => Envelope::from_bytes(link_file, limits)
            .map_err(LoadLinkError::Envelope)
            .and_then(|envelope| document::unverified_link(&envelope, limits)),
    }
    .map_err(|e| match e {
        LoadLinkError::Envelope(e) | LoadLinkError::Verify(e) => MatchError::Envelope(e),
        LoadLinkError::Link(e) => MatchError::Link(e),
        e @ (LoadLinkError::Statement(_) | LoadLinkError::Kind(_)) => {
            MatchError::Link(LinkError::Schema {
                path: String::new(),
                message: e.to_string(),
            })
        }
    })?;
    let local = record::record_artifacts(paths, options)?.artifacts;
    let mut result = ProductMatch {
        signature_checked: keys.is_some(),
        ..ProductMatch::default()
    };
    for (name, digests) in link.products.iter() {
        match local.get(name.as_str()) {
            None => result.only_in_link.push(name.to_string()),
            Some(ours) if ours != digests => result.differ.push(name.to_string()),
            Some(_) => {}
        }
    }
    result.only_here = local
        .keys()
        .filter(|name| !link.products.contains_key(name.as_str()))
        .map(|name| name.to_string())
        .collect();
    Ok(result)
}
