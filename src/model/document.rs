//! A metadata file as a whole: its envelope and the checked layout or link inside, for the
//! operations that treat a file as one thing: signing it (the work of `in-toto-sign`) and
//! checking who signed it.

use crate::base::json;
use crate::base::limits::Limits;
use crate::model::envelope::{Envelope, EnvelopeError, Format, Verified};
use crate::model::keyring::KeyRing;
use crate::model::keys::{KeyId, PrivateKey};
use crate::model::metadata::{Kind, Metadata, MetadataError};

/// Why a file cannot be signed or checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    /// The envelope is malformed, or its signatures do not verify.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The payload is not a valid layout or link.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// The request does not fit the file.
    #[error("{0}")]
    Request(String),
}

/// What to do when signing.
#[derive(Debug, Clone, Copy, Default)]
pub struct SignOptions {
    /// The envelope to write; `None` keeps the file's own (classic for a bare payload).
    pub format: Option<Format>,
    /// Keep the existing signatures and add the new ones (layouts only, as in-toto-sign).
    pub append: bool,
}

/// A signed file, ready to write.
#[derive(Debug)]
pub struct Signed {
    /// The envelope with its signatures.
    pub envelope: Envelope,
    /// The checked payload.
    pub metadata: Metadata,
    /// The keyids that signed now.
    pub signed_by: Vec<KeyId>,
    /// How many earlier signatures were dropped (replaced, or invalid after a format change).
    pub dropped: usize,
}

/// Reads a file to be signed: a classic or DSSE envelope, or a bare payload (an object with
/// `_type`), which is treated as an unsigned classic envelope.
pub fn read_for_signing(bytes: &[u8], limits: &Limits) -> Result<Envelope, DocumentError> {
    match Envelope::from_bytes(bytes, limits) {
        Err(EnvelopeError::UnknownFormat) => {
            let value = json::parse(bytes).map_err(EnvelopeError::from)?;
            if value.get("_type").is_some() {
                Ok(Envelope::unsigned(value, Format::Classic))
            } else {
                Err(EnvelopeError::UnknownFormat.into())
            }
        }
        other => Ok(other?),
    }
}

/// Signs the file held in `bytes` with every key in `keys`.
///
/// The payload is checked as a layout or link first: signing vouches for it. Unless appending,
/// the payload is rewritten in the full form the reference reads (every field present), which
/// the reference needs in order to check a classic signature, and earlier signatures are
/// replaced. Appending keeps the payload exactly as it is and so requires it to be in that form
/// already for a classic file.
pub fn sign(
    bytes: &[u8],
    keys: &[PrivateKey],
    options: SignOptions,
    limits: &Limits,
) -> Result<Signed, DocumentError> {
    if keys.is_empty() {
        return Err(DocumentError::Request("no signing key given".into()));
    }
    let original = read_for_signing(bytes, limits)?;
    let payload = original.unverified_payload()?;
    let metadata = Metadata::from_value(&payload, limits)?;
    if metadata.kind() == Kind::Link {
        if options.append {
            return Err(DocumentError::Request(
                "--append is for layouts: a link records one functionary's work and carries \
                 one signature"
                    .into(),
            ));
        }
        if keys.len() > 1 {
            return Err(DocumentError::Request(
                "a link is signed by one key: give exactly one --key".into(),
            ));
        }
    }
    let format = options.format.unwrap_or(original.format());
    let keep = options.append && format == original.format();
    let (mut envelope, dropped) = if keep {
        if format == Format::Classic && metadata.to_value() != payload {
            return Err(DocumentError::Request(
                "cannot append to this classic file: its payload lacks fields the reference \
                 adds when it checks a signature, so the signatures could not verify there; \
                 sign without --append to re-sign it in the full form"
                    .into(),
            ));
        }
        (original, 0)
    } else {
        let dropped = original.signatures().len();
        (Envelope::unsigned(metadata.to_value(), format), dropped)
    };
    let mut signed_by = Vec::new();
    for key in keys {
        let keyid = key.public_key().keyid();
        if envelope.has_signature_from(&keyid) || signed_by.contains(&keyid) {
            return Err(DocumentError::Request(format!(
                "key {keyid} has already signed this file"
            )));
        }
        signed_by.push(envelope.sign(key)?);
    }
    Ok(Signed {
        envelope,
        metadata,
        signed_by,
        dropped,
    })
}

/// A file whose signatures verified, with its checked payload.
#[derive(Debug)]
pub struct Checked {
    /// What verification handed on.
    pub verified: Verified,
    /// The checked payload.
    pub metadata: Metadata,
}

/// Checks that every key in `ring` signed the file held in `bytes` (the rule in-toto applies
/// to layout keys), then checks the payload as a layout or link.
pub fn verify_all(bytes: &[u8], ring: &KeyRing, limits: &Limits) -> Result<Checked, DocumentError> {
    if ring.is_empty() {
        return Err(DocumentError::Request("no verification key given".into()));
    }
    let envelope = Envelope::from_bytes(bytes, limits)?;
    let verified = envelope.verify(ring, ring.len())?;
    let metadata = Metadata::from_value(verified.payload(), limits)?;
    Ok(Checked { verified, metadata })
}
