//! `layout show`: a layout as a person reads it, the steps in order, who may sign each and how
//! many must agree, the rules, the inspections and the expiry.

use std::fmt::Write;

use chrono::{DateTime, Utc};

use crate::base::timestamp;
use crate::model::layout::Layout;
use crate::model::rule::ArtifactRule;

/// Whether the signatures a description lists were checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Signatures<'a> {
    /// Checked against the owner's public keys.
    Verified,
    /// Not checked; `how_to_check` tells the reader how to have them checked (the caller knows
    /// its own options), and is printed after "not verified: ".
    NotVerified {
        /// How to have them checked.
        how_to_check: &'a str,
    },
}

/// Describes `layout` in plain text. `signers` are the keyids whose signatures the file
/// carries (checked or not, as the caller says in `checked`).
pub fn describe(
    layout: &Layout,
    signers: &[String],
    checked: Signatures<'_>,
    now: DateTime<Utc>,
) -> String {
    let mut out = String::new();
    let expires = timestamp::format(&layout.expires);
    let days = (layout.expires - now).num_days();
    let when = if layout.expires <= now {
        "EXPIRED".to_owned()
    } else {
        format!("in {days} day(s)")
    };
    let _ = writeln!(out, "expires: {expires} ({when})");
    if !layout.readme.is_empty() {
        let _ = writeln!(out, "readme:  {}", layout.readme);
    }
    let checked = match checked {
        Signatures::Verified => "verified".to_owned(),
        Signatures::NotVerified { how_to_check } => format!("not verified: {how_to_check}"),
    };
    let _ = writeln!(out, "signed by {} key(s) ({checked}):", signers.len());
    for keyid in signers {
        let _ = writeln!(out, "  {keyid}");
    }

    let _ = writeln!(out, "\nsteps, in order:");
    for (n, step) in layout.steps.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {}. {}: {} of {} functionary key(s) must agree",
            n + 1,
            step.name,
            step.threshold,
            step.pubkeys.len()
        );
        for keyid in &step.pubkeys {
            let kind = layout.keys.get(keyid).map_or("?", |k| k.scheme().name());
            let _ = writeln!(out, "       key {} ({kind})", keyid.short());
        }
        if !step.expected_command.is_empty() {
            let _ = writeln!(out, "       command:   {}", step.expected_command.join(" "));
        }
        rules(&mut out, "materials", &step.expected_materials);
        rules(&mut out, "products", &step.expected_products);
    }
    if !layout.inspections.is_empty() {
        let _ = writeln!(
            out,
            "\ninspections, run by the verifier after every step passed:"
        );
        for (n, inspection) in layout.inspections.iter().enumerate() {
            let _ = writeln!(
                out,
                "  {}. {}: runs {}",
                n + 1,
                inspection.name,
                inspection.run.join(" ")
            );
            rules(&mut out, "materials", &inspection.expected_materials);
            rules(&mut out, "products", &inspection.expected_products);
        }
    }
    out
}

fn rules(out: &mut String, side: &str, rules: &[ArtifactRule]) {
    if rules.is_empty() {
        let _ = writeln!(out, "       {side}: (no rules: anything accepted)");
        return;
    }
    let _ = writeln!(out, "       {side}:");
    for (i, rule) in rules.iter().enumerate() {
        let _ = writeln!(out, "         {}. {}", i + 1, rule.tokens().join(" "));
    }
}
