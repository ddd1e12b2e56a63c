//! Tollgate: in-toto supply-chain metadata (layouts and links), keys and signatures,
//! wire-compatible with the in-toto reference implementation 3.1.0 and stricter where it is lax.
//!
//! Data flows one way: bytes → [`envelope`] (signatures checked over the exact bytes) →
//! checked [`layout`] and [`link`] types → verification. The library never prints and never
//! exits; the `tollgate` binary renders its results and owns the exit codes.

#![forbid(unsafe_code)]

pub mod artifact;
pub mod document;
pub mod envelope;
pub mod fsio;
pub mod json;
pub mod keyring;
pub mod keys;
pub mod layout;
pub mod limits;
pub mod link;
pub mod metadata;
pub mod name;
pub mod pattern;
pub mod rule;
pub mod threshold;
pub mod timestamp;
