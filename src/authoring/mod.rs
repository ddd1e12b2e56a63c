//! Writing layouts: the TOML source a person writes ([`source`]), the findings of
//! `layout check` ([`check`]), the plain-text description of `layout show` ([`show`]), the
//! pictures of `layout show --format mermaid|dot` ([`diagram`]) and the starting points of
//! `layout new` ([`template`]).

pub mod check;
pub mod diagram;
pub mod show;
pub mod source;
pub mod template;
