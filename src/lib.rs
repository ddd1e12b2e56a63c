//! Tollgate: in-toto supply-chain metadata (layouts and links), keys and signatures,
//! wire-compatible with the in-toto reference implementation 3.1.0 and stricter where it is lax.
//!
//! `src/` is one folder per floor of the story, each using only the floors below it: [`base`]
//! (plumbing that knows nothing of in-toto), [`model`] (the in-toto nouns), [`record`],
//! [`verify`], [`authoring`] and [`policy`], then [`ship`] (bundles and registries), then
//! [`gate`] (the decision service, being built); the command line sits on top.
//!
//! Data flows one way: bytes → [`envelope`] (signatures checked over the exact bytes) →
//! checked [`layout`] and [`link`] types → verification. The library never prints and never
//! exits; the `tollgate` binary renders its results and owns the exit codes.
//!
//! ```
//! use tollgate::envelope::{Envelope, Format};
//! use tollgate::keyring::KeyRing;
//! use tollgate::keys::{KeyKind, PrivateKey};
//! use tollgate::layout::Layout;
//! use tollgate::limits::Limits;
//!
//! // An owner signs a layout (DSSE here), ...
//! let owner = PrivateKey::generate(KeyKind::Ed25519)?;
//! let payload = serde_json::json!({
//!     "_type": "layout", "expires": "2099-01-01T00:00:00Z", "readme": "",
//!     "keys": {}, "steps": [], "inspect": [],
//! });
//! let mut envelope = Envelope::unsigned(payload, Format::Dsse);
//! envelope.sign(&owner)?;
//! let file = envelope.to_bytes();
//!
//! // ... and a verifier who trusts the owner's public key checks it, then reads the layout.
//! let limits = Limits::default();
//! let trusted = KeyRing::from_keys([owner.public_key().clone()])?;
//! let verified = Envelope::from_bytes(&file, &limits)?.verify(&trusted, 1)?;
//! let layout = Layout::from_value(verified.payload(), &limits)?;
//! assert!(layout.steps.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

// The floors of the story, from the ground up; each uses only the floors below it.
pub mod authoring;
pub mod base;
pub mod gate;
pub mod model;
pub mod policy;
pub mod record;
pub mod ship;
pub mod verify;

// The public face: every module at the `tollgate::` path it has always had.
pub use authoring::diagram;
pub use base::{duration, fsio, json, limits, timestamp};
pub use model::{
    artifact, attestation, document, envelope, files, keyring, keys, layout, link, metadata, name,
    pattern, rule, statement, threshold,
};
pub use ship::bundle;
#[cfg(feature = "registry")]
pub use ship::registry;
