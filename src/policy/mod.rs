//! Policy over what the steps found: the signed verification summary a passing verification
//! states ([`vsa`]).

pub mod vsa;
