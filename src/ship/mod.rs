//! How evidence travels: a layout and every link its verification needs in one file
//! ([`bundle`]), and bundles stored in and fetched from OCI registries ([`registry`]).

pub mod bundle;
#[cfg(feature = "registry")]
pub mod registry;
