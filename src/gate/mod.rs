//! The decision service (issue 16), over [`crate::verify`]: its configuration ([`config`]) so
//! far; the HTTP service, the decision store and Kubernetes admission build on it.

pub mod config;
