//! Policy over what the steps found: CEL rules over signed attestations ([`cel`]), and the
//! signed verification summary a passing verification states ([`vsa`]).
//!
//! Uses [`crate::model`] and [`crate::base`]; verification calls it.

pub mod cel;
pub mod vsa;
