//! A metadata file as a whole: its envelope and the checked layout or link inside, for the
//! operations that treat a file as one thing: signing it (the work of `in-toto-sign`),
//! checking who signed it, and loading a link file ([`load_link`], the one way a link is read,
//! whatever its envelope and whether it is a classic link or an in-toto Statement).

use serde_json::Value;

use crate::base::json;
use crate::base::limits::Limits;
use crate::model::envelope::stream::StreamError;
use crate::model::envelope::{Envelope, EnvelopeError, Format, Verified};
use crate::model::keyring::KeyRing;
use crate::model::keys::{KeyId, PrivateKey};
use crate::model::link::{Link, LinkError, RawLink};
use crate::model::metadata::{Kind, Metadata, MetadataError};
use crate::model::statement::{self, StatementError};
use crate::model::threshold::Signers;

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
    /// Signatures are appended to layouts only.
    #[error(
        "a link records one functionary's work and carries one signature: only a layout's \
         signatures are appended to"
    )]
    AppendToLink,
    /// A link is signed by exactly one key.
    #[error("a link is signed by one key, not {0}")]
    LinkSignedByOne(usize),
    /// The classic file's payload lacks fields the reference adds when it checks a
    /// signature: signatures appended to it could not verify there, so it must be signed anew
    /// (in the full form) instead.
    #[error(
        "cannot append to this classic file: its payload lacks fields the reference adds when it \
         checks a signature, so the signatures could not verify there"
    )]
    AppendWouldNotVerify,
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
            return Err(DocumentError::AppendToLink);
        }
        if keys.len() > 1 {
            return Err(DocumentError::LinkSignedByOne(keys.len()));
        }
    }
    let format = options.format.unwrap_or(original.format());
    let keep = options.append && format == original.format();
    let (mut envelope, dropped) = if keep {
        if format == Format::Classic && metadata.to_value() != payload {
            return Err(DocumentError::AppendWouldNotVerify);
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

/// Why a link file does not count.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadLinkError {
    /// The file is not a well-formed envelope (or is too large, or carries malformed
    /// signatures).
    #[error(transparent)]
    Envelope(EnvelopeError),
    /// The envelope does not verify: not enough of the trusted keys signed it, or (once they
    /// did) its payload type or payload is wrong.
    #[error(transparent)]
    Verify(EnvelopeError),
    /// The payload says it is a link but is not a valid one.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The payload is an in-toto Statement that is not a valid link.
    #[error(transparent)]
    Statement(#[from] StatementError),
    /// The payload is neither a link, a layout nor a Statement.
    #[error(transparent)]
    Kind(MetadataError),
}

/// What a link file held, once its signatures verified.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
#[non_exhaustive]
pub enum LinkContent {
    /// A link (`"_type": "link"`).
    Link(Link),
    /// An in-toto Statement with the link predicate, read as the link it stands for.
    Statement(Link),
    /// A layout signed by a functionary in place of a link: a sublayout, as its verified
    /// payload, to be checked as a layout and verified in its turn.
    Layout(Value),
}

/// A link file whose signatures verified: what it held, in which envelope, and who signed.
/// Only [`load_link`] makes one.
#[derive(Debug, Clone)]
pub struct LoadedLink {
    content: LinkContent,
    format: Format,
    signers: Signers,
}

impl LoadedLink {
    /// What the file held.
    pub fn content(&self) -> &LinkContent {
        &self.content
    }

    /// What the file held, consumed.
    pub fn into_content(self) -> LinkContent {
        self.content
    }

    /// The envelope form.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The trusted keys that signed, and the signatures no trusted key made.
    pub fn signers(&self) -> &Signers {
        &self.signers
    }

    /// The link, classic or from a Statement; a sublayout is not one, and says so as a link
    /// would (`_type`).
    pub fn into_link(self, limits: &Limits) -> Result<Link, LoadLinkError> {
        match self.content {
            LinkContent::Link(link) | LinkContent::Statement(link) => Ok(link),
            LinkContent::Layout(payload) => link_of(&payload, limits),
        }
    }
}

/// Loads the link file held in `bytes`: at least `threshold` distinct keys of `trusted` must
/// have signed it (classic or DSSE), and its payload must be a link, an in-toto Statement with
/// the link predicate, or a layout (a sublayout). Each file is decoded once and its signatures
/// checked once; a plain classic link takes the streaming path, checked and converted while
/// its signatures are still being hashed.
///
/// Pass the bytes by value (a `Vec<u8>`, a `Cow`) to have them freed as soon as they are
/// parsed, before the link is built: for a link of a million artifacts that is the size of
/// the file off the peak memory of verification.
pub fn load_link(
    bytes: impl AsRef<[u8]>,
    trusted: &KeyRing,
    threshold: usize,
    limits: &Limits,
) -> Result<LoadedLink, LoadLinkError> {
    let bytes = if looks_like_dsse(bytes.as_ref()) {
        bytes
    } else {
        let fast =
            Envelope::verify_owned_into(bytes, trusted, threshold, limits, |raw: RawLink| {
                Link::from_raw(raw, limits)
            });
        match fast {
            Ok(verified) => {
                let format = verified.format();
                let (link, signers) = verified.into_parts();
                return Ok(LoadedLink {
                    content: LinkContent::Link(link?),
                    format,
                    signers,
                });
            }
            // Not a plain link (a sublayout, a Statement), or one whose error the general path
            // reports precisely: read on.
            Err(StreamError::Undecoded(
                EnvelopeError::Payload(_) | EnvelopeError::Json(_) | EnvelopeError::Field { .. },
                bytes,
            )) => bytes,
            Err(StreamError::Undecoded(e, _) | StreamError::Unverified(e)) => {
                return Err(classify_error(e));
            }
        }
    };
    let envelope = Envelope::from_bytes(bytes.as_ref(), limits).map_err(LoadLinkError::Envelope)?;
    drop(bytes);
    let verified = envelope
        .verify(trusted, threshold)
        .map_err(LoadLinkError::Verify)?;
    let format = verified.format();
    let (payload, signers) = verified.into_parts();
    let content = match payload_kind(&payload) {
        PayloadKind::Statement => LinkContent::Statement(statement::to_link(&payload, limits)?),
        PayloadKind::Link => LinkContent::Link(Link::from_value(&payload, limits)?),
        PayloadKind::Layout => LinkContent::Layout(payload),
        PayloadKind::Other(e) => return Err(LoadLinkError::Kind(e)),
    };
    Ok(LoadedLink {
        content,
        format,
        signers,
    })
}

/// Reads the link in `envelope` (classic or DSSE, a link or a link Statement) without
/// checking any signature: for the tools that are told to, and say so. Never use it to decide
/// trust.
pub fn unverified_link(envelope: &Envelope, limits: &Limits) -> Result<Link, LoadLinkError> {
    let payload = envelope
        .unverified_payload()
        .map_err(LoadLinkError::Envelope)?;
    link_of(&payload, limits)
}

/// The link a payload stands for: a Statement's, or the payload read as a link.
fn link_of(payload: &Value, limits: &Limits) -> Result<Link, LoadLinkError> {
    match payload_kind(payload) {
        PayloadKind::Statement => Ok(statement::to_link(payload, limits)?),
        _ => Ok(Link::from_value(payload, limits)?),
    }
}

/// What a payload is: the one place that tells a Statement from a link.
enum PayloadKind {
    Statement,
    Link,
    Layout,
    Other(MetadataError),
}

fn payload_kind(payload: &Value) -> PayloadKind {
    if statement::is_statement(payload) {
        return PayloadKind::Statement;
    }
    match Kind::of(payload) {
        Ok(Kind::Link) => PayloadKind::Link,
        Ok(Kind::Layout) => PayloadKind::Layout,
        Err(e) => PayloadKind::Other(e),
    }
}

/// A signature that does not count is a [`LoadLinkError::Verify`]; anything else wrong with
/// the envelope a [`LoadLinkError::Envelope`].
fn classify_error(e: EnvelopeError) -> LoadLinkError {
    match e {
        EnvelopeError::Threshold { .. }
        | EnvelopeError::NoSignatures
        | EnvelopeError::WrongPayloadType(_) => LoadLinkError::Verify(e),
        e => LoadLinkError::Envelope(e),
    }
}

/// Whether `bytes` open like a DSSE envelope (`{"payload...`, the order Tollgate and the
/// reference write). A hint that picks the path only: a DSSE file gains nothing from the
/// classic streaming path, which would check its signatures before finding a Statement in
/// it, so that the general path would check them again. A wrong guess costs time, never
/// correctness: both paths verify in full.
fn looks_like_dsse(bytes: &[u8]) -> bool {
    let rest = bytes.trim_ascii_start();
    let Some(rest) = rest.strip_prefix(b"{") else {
        return false;
    };
    rest.trim_ascii_start().starts_with(b"\"payload")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::keys::KeyKind;

    /// A library caller has no command-line flags: the reasons signing refuses say what is
    /// wrong, and the command line adds which flag to change.
    #[test]
    fn signing_refusals_name_no_flag() {
        let owner = key();
        let link = Envelope::seal(
            &Link {
                name: crate::model::name::StepName::new("build").expect("name"),
                command: Vec::new(),
                materials: Default::default(),
                products: Default::default(),
                byproducts: Default::default(),
                environment: Default::default(),
            }
            .to_value(),
            Format::Classic,
            &[&owner],
        )
        .expect("seal");
        let limits = Limits::default();
        let append = SignOptions {
            append: true,
            ..SignOptions::default()
        };
        match sign(&link, &[key()], append, &limits) {
            Err(e @ DocumentError::AppendToLink) => assert!(!e.to_string().contains("--"), "{e}"),
            other => panic!("{:?}", other.map(|_| ())),
        }
        match sign(&link, &[key(), key()], SignOptions::default(), &limits) {
            Err(e @ DocumentError::LinkSignedByOne(2)) => {
                assert!(!e.to_string().contains("--"), "{e}")
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
    }

    fn key() -> PrivateKey {
        PrivateKey::generate(KeyKind::Ed25519).expect("a key")
    }

    fn ring(key: &PrivateKey) -> KeyRing {
        let mut ring = KeyRing::new();
        let public = key.public_key().clone();
        ring.insert(public.keyid(), public).expect("one key");
        ring
    }

    fn link_payload(name: &str) -> Value {
        serde_json::json!({
            "_type": "link",
            "name": name,
            "command": ["make"],
            "materials": {},
            "products": {"app.tar.gz": {"sha256": "ab".repeat(32)}},
            "byproducts": {},
            "environment": {},
        })
    }

    fn file(payload: &Value, format: Format, key: &PrivateKey) -> Vec<u8> {
        Envelope::seal(payload, format, &[key]).expect("sealed")
    }

    #[test]
    fn classic_dsse_and_statement_links_load_as_one_link() {
        let (functionary, limits) = (key(), Limits::default());
        let trusted = ring(&functionary);
        let link = Link::from_value(&link_payload("build"), &limits).expect("a link");
        let statement = statement::from_link(&link).expect("a Statement");
        for (payload, format, statement_expected) in [
            (link_payload("build"), Format::Classic, false),
            (link_payload("build"), Format::Dsse, false),
            (statement.clone(), Format::Dsse, true),
            (statement, Format::Classic, true),
        ] {
            let bytes = file(&payload, format, &functionary);
            let loaded = load_link(&bytes, &trusted, 1, &limits).expect("it loads");
            assert_eq!(loaded.format(), format);
            assert_eq!(
                loaded.signers().keys.iter().collect::<Vec<_>>(),
                vec![&functionary.public_key().keyid()]
            );
            let got = match loaded.content() {
                LinkContent::Link(link) if !statement_expected => link,
                LinkContent::Statement(link) if statement_expected => link,
                other => panic!("{format:?}: unexpected content {other:?}"),
            };
            assert_eq!(got.name.as_str(), "build");
            assert_eq!(got.products, link.products);
        }
    }

    #[test]
    fn a_layout_signed_as_a_link_loads_as_a_sublayout_payload() {
        let (functionary, limits) = (key(), Limits::default());
        let layout = serde_json::json!({"_type": "layout", "expires": "2099-01-01T00:00:00Z",
            "keys": {}, "steps": [], "inspect": [], "readme": ""});
        for format in [Format::Classic, Format::Dsse] {
            let bytes = file(&layout, format, &functionary);
            let loaded = load_link(&bytes, &ring(&functionary), 1, &limits).expect("it loads");
            match loaded.into_content() {
                LinkContent::Layout(payload) => assert_eq!(payload, layout),
                other => panic!("{format:?}: unexpected content {other:?}"),
            }
        }
    }

    #[test]
    fn a_link_by_another_key_or_not_an_envelope_does_not_load() {
        let (functionary, stranger, limits) = (key(), key(), Limits::default());
        let trusted = ring(&functionary);
        for format in [Format::Classic, Format::Dsse] {
            let bytes = file(&link_payload("build"), format, &stranger);
            match load_link(&bytes, &trusted, 1, &limits) {
                Err(LoadLinkError::Verify(EnvelopeError::Threshold { .. })) => {}
                other => panic!("{format:?}: expected a threshold failure, got {other:?}"),
            }
        }
        match load_link(b"{\"payload\": 1}", &trusted, 1, &limits) {
            Err(LoadLinkError::Envelope(_)) => {}
            other => panic!("expected an envelope error, got {other:?}"),
        }
        // A link whose fields are wrong, once its signature verified: the link's own error.
        let mut bad = link_payload("build");
        bad["products"] = serde_json::json!({"../escape": {"sha256": "ab".repeat(32)}});
        for format in [Format::Classic, Format::Dsse] {
            let bytes = file(&bad, format, &functionary);
            match load_link(&bytes, &trusted, 1, &limits) {
                Err(LoadLinkError::Link(_)) => {}
                other => panic!("{format:?}: expected a link error, got {other:?}"),
            }
        }
    }

    /// The DSSE hint picks a path, never the outcome: a DSSE file whose fields come in
    /// another order loads the same.
    #[test]
    fn a_dsse_file_in_any_field_order_loads_the_same() {
        let (functionary, limits) = (key(), Limits::default());
        let bytes = file(&link_payload("build"), Format::Dsse, &functionary);
        assert!(looks_like_dsse(&bytes));
        let value: Value = serde_json::from_slice(&bytes).expect("json");
        let reordered = format!(
            "{{\"signatures\": {}, \"payloadType\": {}, \"payload\": {}}}",
            value["signatures"], value["payloadType"], value["payload"]
        );
        assert!(!looks_like_dsse(reordered.as_bytes()));
        let loaded =
            load_link(reordered.as_bytes(), &ring(&functionary), 1, &limits).expect("it loads");
        assert_eq!(loaded.format(), Format::Dsse);
        assert!(matches!(loaded.content(), LinkContent::Link(l) if l.name.as_str() == "build"));
    }
}
