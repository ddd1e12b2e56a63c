//! The decision service (issue 16), over [`crate::verify`]: its configuration ([`config`]) and
//! its decision store ([`store`]) so far; the HTTP service and Kubernetes admission build on
//! them.

pub mod config;
pub mod store;
