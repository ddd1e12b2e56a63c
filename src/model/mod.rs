//! The in-toto nouns, each parsed once from its raw form into a checked type: step names
//! ([`name`]), artifacts and digests ([`artifact`]), patterns and artifact rules ([`pattern`],
//! [`rule`]), keys and key rings ([`keys`], [`keyring`]), the two signature envelopes with the one
//! threshold function ([`envelope`], [`threshold`]), layouts, links and Statements ([`layout`],
//! [`link`], [`statement`], [`metadata`]), attestations (a tool's output as a signed Statement
//! bound to a step: [`attestation`]), a metadata file as a whole ([`document`]), and the
//! names of the files they travel in ([`files`]).

pub mod artifact;
pub mod attestation;
pub mod document;
pub mod envelope;
pub mod files;
pub mod keyring;
pub mod keys;
pub mod layout;
pub mod link;
pub mod metadata;
pub mod name;
pub mod pattern;
pub mod rule;
mod schema;
pub mod statement;
pub mod threshold;
