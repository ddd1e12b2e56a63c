//! The ground floor: what knows nothing of in-toto. Every cap on untrusted input ([`limits`]),
//! the strict JSON parser and the one canonical encoder ([`json`]), files read under a cap and
//! written so that a crash never leaves half a file ([`fsio`]), the one place that starts
//! threads (`parallel`), the one timestamp form ([`timestamp`]), and durations as typed on a
//! command line ([`duration`]).

pub mod duration;
pub mod fsio;
pub mod json;
pub mod limits;
pub mod parallel;
pub mod timestamp;
