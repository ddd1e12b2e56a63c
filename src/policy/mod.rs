//! Policy over what the steps found: CEL rules over signed attestations ([`cel`]).
//!
//! Uses [`crate::model`] and [`crate::base`]; verification calls it.

pub mod cel;
