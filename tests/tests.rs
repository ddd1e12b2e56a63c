//! Tollgate's integration tests, in one binary. Threat-row tests are named after their row in
//! the project's threat catalogue (`a2_...`, `b1_...`); interoperability tests run the Python
//! reference implementation, which `common::reference` installs on first use.

mod common;

mod attest;
mod attestations;
mod bundles;
mod chain;
mod cli;
mod compat;
mod container;
mod diagram;
mod examples;
mod gate;
mod git;
mod interop;
mod layouts;
mod migration;
mod oci;
mod paths;
mod policy;
mod predicates;
mod readme;
mod record;
#[cfg(feature = "registry")]
mod registry;
mod release;
mod scanners;
mod threats;
mod tools;
mod transcripts;
mod uris;
mod verify;
mod vsa;
