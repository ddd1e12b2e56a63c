//! `layout check`: what is wrong, or likely wrong, with a layout before anyone relies on it.
//!
//! Everything `verify` rejects at load is an error found when the layout is loaded (see
//! [`Layout::from_value`]); this module adds what loads but is probably a mistake:
//!
//! - a rule list that does not end in `DISALLOW *`: artifacts no rule names are accepted;
//! - a `MATCH` against a step (or inspection) that comes later, whose link the author
//!   probably did not mean;
//! - a step whose products no later step or inspection matches: nothing checks them;
//! - a pattern that nothing the step records could match, when the source declares what the
//!   step records;
//! - a step whose declared materials or products all fall to a `DISALLOW` before any rule
//!   accepts them: verification fails whenever the step records anything there;
//! - an expiry already past (an error: verification fails) or more than a year away;
//! - steps that expect attestations (ITE-10/11 `expected_predicates`): a warning that the
//!   reference's `in-toto-verify` 3.1.0 cannot read the layout, and an error for a CEL rule
//!   that does not compile.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::source::Declared;
use crate::base::timestamp;
use crate::model::layout::Layout;
use crate::model::name::StepName;
use crate::model::pattern::Pattern;
use crate::model::rule::{ArtifactKind, ArtifactRule, RuleKind};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Verification would fail, or the layout does not load.
    Error,
    /// Verification may pass, but probably not as the author meant.
    Warning,
}

/// What a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// `step` or `inspection`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// `expected_materials` or `expected_products`, when about a rule list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    /// The rule's number in that list, from 1, when about one rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<usize>,
    /// The rule as written, when about one rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_text: Option<String>,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// What it concerns, if one step or inspection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// What is wrong and what to do.
    pub message: String,
}

impl Finding {
    /// An error not tied to one step, such as a layout that does not load.
    pub fn error(message: impl Into<String>) -> Finding {
        Finding {
            severity: Severity::Error,
            location: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.name)?;
        if let Some(field) = self.field {
            write!(f, ", {field}")?;
        }
        if let (Some(rule), Some(text)) = (self.rule, &self.rule_text) {
            write!(f, " rule {rule} ({text})")?;
        }
        Ok(())
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match &self.location {
            Some(location) => write!(f, "{severity}: {location}: {}", self.message),
            None => write!(f, "{severity}: {}", self.message),
        }
    }
}

/// One step or inspection, as the checks see it.
struct Item<'a> {
    kind: &'static str,
    name: &'a StepName,
    lists: [(&'static str, &'a [ArtifactRule]); 2],
}

/// Checks a loaded layout. `declared` holds what each step records, when the source says so;
/// `now` is the time the expiry is judged against.
pub fn check(
    layout: &Layout,
    declared: &BTreeMap<StepName, Declared>,
    now: DateTime<Utc>,
) -> Vec<Finding> {
    let items: Vec<Item<'_>> = layout
        .steps
        .iter()
        .map(|s| Item {
            kind: "step",
            name: &s.name,
            lists: [
                ("expected_materials", &s.expected_materials),
                ("expected_products", &s.expected_products),
            ],
        })
        .chain(layout.inspections.iter().map(|i| Item {
            kind: "inspection",
            name: &i.name,
            lists: [
                ("expected_materials", &i.expected_materials),
                ("expected_products", &i.expected_products),
            ],
        }))
        .collect();
    let mut findings = Vec::new();
    expiry(layout, now, &mut findings);
    for (position, item) in items.iter().enumerate() {
        for (field, rules) in item.lists {
            trailing_disallow(item, field, rules, &mut findings);
            for (index, rule) in rules.iter().enumerate() {
                let at = || Location {
                    kind: item.kind,
                    name: item.name.to_string(),
                    field: Some(field),
                    rule: Some(index + 1),
                    rule_text: Some(rule.tokens().join(" ")),
                };
                later_match(&items, position, rule, at, &mut findings);
                unmatchable(item, field, rule, declared, at, &mut findings);
            }
            all_refused(item, field, rules, declared, &mut findings);
        }
    }
    unconsumed_products(layout, &items, &mut findings);
    predicates(layout, &mut findings);
    findings.sort_by_key(|f| f.severity);
    findings
}

/// Steps that expect attestations: the reference cannot read such a layout (a warning, once),
/// and each CEL rule must compile.
fn predicates(layout: &Layout, findings: &mut Vec<Finding>) {
    let limits = crate::base::limits::Limits::default();
    for step in &layout.steps {
        for (p_index, predicate) in step.expected_predicates.iter().enumerate() {
            for (index, attribute) in predicate.expected_attributes.iter().enumerate() {
                if let Err(e) = crate::policy::cel::check_syntax(&attribute.rule, &limits) {
                    findings.push(Finding {
                        severity: Severity::Error,
                        location: Some(Location {
                            kind: "step",
                            name: step.name.to_string(),
                            field: Some("predicate rules"),
                            rule: Some(index + 1),
                            rule_text: Some(attribute.rule.clone()),
                        }),
                        message: format!(
                            "the rule of predicate {} ({}) does not compile: {e}",
                            p_index + 1,
                            predicate.predicate_type
                        ),
                    });
                }
            }
        }
    }
    let steps: Vec<&str> = layout
        .steps
        .iter()
        .filter(|s| !s.expected_predicates.is_empty())
        .map(|s| s.name.as_str())
        .collect();
    if steps.is_empty() {
        return;
    }
    findings.push(Finding {
        severity: Severity::Warning,
        location: None,
        message: format!(
            "step{} {} expect{} attestations (expected_predicates, ITE-10/11): the reference's \
             in-toto-verify 3.1.0 cannot read this layout; verify it with tollgate",
            if steps.len() == 1 { "" } else { "s" },
            steps.join(", "),
            if steps.len() == 1 { "s" } else { "" },
        ),
    });
}

fn expiry(layout: &Layout, now: DateTime<Utc>, findings: &mut Vec<Finding>) {
    let expires = timestamp::format(&layout.expires);
    if layout.expires <= now {
        findings.push(Finding::error(format!(
            "the layout expired at {expires}: verification fails; set a later expires and \
             build it again"
        )));
    } else if layout.expires - now > Duration::days(366) {
        findings.push(Finding {
            severity: Severity::Warning,
            location: None,
            message: format!(
                "the layout expires at {expires}, more than a year away: a layout that leaks \
                 or whose keys are compromised stays valid that long; prefer a shorter expiry \
                 and rebuild it regularly"
            ),
        });
    }
}

fn trailing_disallow(
    item: &Item<'_>,
    field: &'static str,
    rules: &[ArtifactRule],
    findings: &mut Vec<Finding>,
) {
    let ends_in_disallow = rules
        .last()
        .is_some_and(|r| matches!(r.kind(), RuleKind::Disallow(p) if p.as_str() == "*"));
    if ends_in_disallow {
        return;
    }
    let message = if rules.is_empty() {
        "no rules: any artifact is accepted; write [\"DISALLOW *\"] if the step has none"
    } else {
        "does not end in DISALLOW *: artifacts that no rule names are accepted; add \
         \"DISALLOW *\" last"
    };
    findings.push(Finding {
        severity: Severity::Warning,
        location: Some(Location {
            kind: item.kind,
            name: item.name.to_string(),
            field: Some(field),
            rule: None,
            rule_text: None,
        }),
        message: message.into(),
    });
}

fn later_match(
    items: &[Item<'_>],
    position: usize,
    rule: &ArtifactRule,
    at: impl Fn() -> Location,
    findings: &mut Vec<Finding>,
) {
    let RuleKind::Match { from, .. } = rule.kind() else {
        return;
    };
    let Some(target) = items.iter().position(|i| i.name == from) else {
        return; // the layout would not have loaded
    };
    let message = if target == position {
        format!("matches against its own {}'s link", items[position].kind)
    } else if target > position {
        format!(
            "matches against {} {from}, which comes later in the layout: a rule should \
             compare with what an earlier step produced",
            items[target].kind
        )
    } else {
        return;
    };
    findings.push(Finding {
        severity: Severity::Warning,
        location: Some(at()),
        message,
    });
}

fn unmatchable(
    item: &Item<'_>,
    field: &'static str,
    rule: &ArtifactRule,
    declared: &BTreeMap<StepName, Declared>,
    at: impl Fn() -> Location,
    findings: &mut Vec<Finding>,
) {
    let Some(paths) = declared.get(item.name).and_then(|d| match field {
        "expected_materials" => d.materials.as_ref(),
        _ => d.products.as_ref(),
    }) else {
        return;
    };
    // A DISALLOW names what must not be there: nothing for the declared paths to meet.
    let pattern = match rule.kind() {
        RuleKind::Require(name) => Pattern::new(&literal(name.as_str())).ok(),
        RuleKind::Disallow(_) => None,
        _ => consuming_pattern(rule),
    };
    let Some(pattern) = pattern else { return };
    if paths.iter().any(|p| pattern.could_match_within(p)) {
        return;
    }
    let side = if field == "expected_materials" {
        "materials"
    } else {
        "products"
    };
    let shown = if paths.is_empty() {
        "nothing".to_owned()
    } else {
        paths.join(", ")
    };
    findings.push(Finding {
        severity: Severity::Warning,
        location: Some(at()),
        message: format!(
            "no artifact the step records as {side} ({shown}) could match {}",
            pattern.as_str()
        ),
    });
}

/// A rule's pattern as it applies to full artifact names (with a `MATCH`'s `IN` prefix), or
/// `None` for `REQUIRE`, which consumes nothing.
fn consuming_pattern(rule: &ArtifactRule) -> Option<Pattern> {
    match rule.kind() {
        RuleKind::Match {
            pattern,
            source_prefix: Some(prefix),
            ..
        } => Pattern::new(&format!("{}/{}", literal(prefix), pattern.as_str())).ok(),
        RuleKind::Match { pattern, .. }
        | RuleKind::Create(pattern)
        | RuleKind::Delete(pattern)
        | RuleKind::Modify(pattern)
        | RuleKind::Allow(pattern)
        | RuleKind::Disallow(pattern) => Some(pattern.clone()),
        RuleKind::Require(_) => None,
    }
}

/// Flags a rule list under which every path the step declares meets a `DISALLOW` before any
/// rule that could accept it: whatever the step records there fails verification.
fn all_refused(
    item: &Item<'_>,
    field: &'static str,
    rules: &[ArtifactRule],
    declared: &BTreeMap<StepName, Declared>,
    findings: &mut Vec<Finding>,
) {
    let Some(paths) = declared.get(item.name).and_then(|d| match field {
        "expected_materials" => d.materials.as_ref(),
        _ => d.products.as_ref(),
    }) else {
        return;
    };
    // For each declared path, the DISALLOW rule it meets first, if it meets one before a rule
    // that could consume it.
    let mut first_refusal = None;
    for path in paths {
        let deciding = rules
            .iter()
            .enumerate()
            .find(|(_, rule)| consuming_pattern(rule).is_some_and(|p| p.could_match_within(path)));
        match deciding {
            Some((index, rule)) if matches!(rule.kind(), RuleKind::Disallow(_)) => {
                first_refusal.get_or_insert((index, rule));
            }
            _ => return,
        }
    }
    let Some((index, rule)) = first_refusal else {
        return; // nothing declared
    };
    let side = if field == "expected_materials" {
        "materials"
    } else {
        "products"
    };
    let example = match paths.first() {
        Some(path) if field == "expected_materials" => format!("ALLOW {path}/*"),
        Some(path) => format!("CREATE {path}/*"),
        None => "ALLOW ...".to_owned(),
    };
    findings.push(Finding {
        severity: Severity::Warning,
        location: Some(Location {
            kind: item.kind,
            name: item.name.to_string(),
            field: Some(field),
            rule: Some(index + 1),
            rule_text: Some(rule.tokens().join(" ")),
        }),
        message: format!(
            "every artifact the step records as {side} ({}) is disallowed before any rule \
             accepts it: verification fails whenever the step records any; add a rule that \
             accepts them (such as {example}) before this one",
            paths.join(", ")
        ),
    });
}

/// `text` as a pattern that matches only itself.
fn literal(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '*' | '?' | '[' => format!("[{c}]"),
            c => c.to_string(),
        })
        .collect()
}

fn unconsumed_products(layout: &Layout, items: &[Item<'_>], findings: &mut Vec<Finding>) {
    for (position, step) in layout.steps.iter().enumerate() {
        // A step that may produce nothing has nothing to hand on.
        let produces_nothing = step
            .expected_products
            .first()
            .is_some_and(|r| matches!(r.kind(), RuleKind::Disallow(p) if p.as_str() == "*"));
        if produces_nothing {
            continue;
        }
        let consumed = items[position + 1..].iter().any(|later| {
            later.lists.iter().any(|(_, rules)| {
                rules.iter().any(|r| {
                    matches!(r.kind(), RuleKind::Match { from, kind: ArtifactKind::Products, .. }
                        if *from == step.name)
                })
            })
        });
        if !consumed {
            findings.push(Finding {
                severity: Severity::Warning,
                location: Some(Location {
                    kind: "step",
                    name: step.name.to_string(),
                    field: Some("expected_products"),
                    rule: None,
                    rule_text: None,
                }),
                message: format!(
                    "no later step or inspection matches the products of {}: nothing checks \
                     that what it made is what was used; add MATCH ... WITH PRODUCTS FROM {} \
                     where they are consumed",
                    step.name, step.name
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authoring::source::{self, SourceError};
    use crate::base::limits::Limits;
    use crate::model::keys::{KeyKind, PrivateKey};

    fn now() -> DateTime<Utc> {
        timestamp::parse("2026-11-30T12:00:00Z").expect("time")
    }

    fn compile(text: &str) -> Result<source::Compiled, SourceError> {
        let key = PrivateKey::generate(KeyKind::Ed25519).expect("key");
        let mut resolve = |_: &str| Ok(key.public_key().clone());
        source::compile(text, &mut resolve, now(), &Limits::default())
    }

    fn findings(text: &str) -> Vec<String> {
        let compiled = compile(text).expect("compiles");
        check(&compiled.layout, &compiled.declared, now())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// A two-step layout with no findings; each test changes one thing.
    const CLEAN: &str = r#"
expires = "90d"
[[step]]
name = "source"
functionaries = ["k.pub"]
products = ["src"]
expected_materials = ["DISALLOW *"]
expected_products = ["CREATE src/*", "DISALLOW *"]
[[step]]
name = "build"
functionaries = ["k.pub"]
materials = ["src"]
products = ["dist"]
expected_materials = ["MATCH src/* WITH PRODUCTS FROM source", "DISALLOW *"]
expected_products = ["CREATE dist/app", "DISALLOW *"]
[[inspection]]
name = "unpack"
run = ["true"]
expected_materials = ["MATCH dist/app WITH PRODUCTS FROM build", "DISALLOW *"]
expected_products = ["ALLOW *"]
"#;

    fn with(from: &str, to: &str) -> String {
        assert!(CLEAN.contains(from), "{from}");
        CLEAN.replacen(from, to, 1)
    }

    fn only(found: &[String], needle: &str) {
        assert_eq!(
            found.iter().filter(|f| f.contains(needle)).count(),
            1,
            "{needle:?} in {found:#?}"
        );
    }

    #[test]
    fn a_clean_layout_has_no_findings_but_the_open_inspection_products() {
        let found = findings(CLEAN);
        // The only finding: the inspection's products end in ALLOW *, not DISALLOW *.
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(
            found[0],
            "warning: inspection unpack, expected_products: does not end in DISALLOW *: \
             artifacts that no rule names are accepted; add \"DISALLOW *\" last"
        );
        let closed = with(
            "expected_products = [\"ALLOW *\"]",
            "expected_products = [\"ALLOW *\", \"DISALLOW *\"]",
        );
        assert!(findings(&closed).is_empty());
    }

    #[test]
    fn an_empty_rule_list_is_flagged() {
        let found = findings(&with("expected_materials = [\"DISALLOW *\"]", ""));
        only(
            &found,
            "warning: step source, expected_materials: no rules: any artifact is accepted",
        );
    }

    #[test]
    fn a_match_against_a_later_step_is_flagged() {
        let text = with(
            "expected_materials = [\"DISALLOW *\"]",
            "expected_materials = [\"MATCH x WITH PRODUCTS FROM build\", \"DISALLOW *\"]",
        );
        let found = findings(&text);
        only(
            &found,
            "warning: step source, expected_materials rule 1 (MATCH x WITH PRODUCTS FROM \
             build): matches against step build, which comes later",
        );
        // Against an earlier step: no such finding.
        assert!(!findings(CLEAN).iter().any(|f| f.contains("comes later")));
        // An inspection matching against a later inspection.
        let two = format!(
            "{CLEAN}\n[[inspection]]\nname = \"late\"\nrun = [\"true\"]\n\
             expected_materials = [\"DISALLOW *\"]\nexpected_products = [\"DISALLOW *\"]\n"
        )
        .replacen(
            "expected_products = [\"ALLOW *\"]",
            "expected_products = [\"MATCH * WITH PRODUCTS FROM late\", \"DISALLOW *\"]",
            1,
        );
        only(
            &findings(&two),
            "matches against inspection late, which comes later",
        );
        // A step matching against its own link.
        let own = with(
            "expected_materials = [\"DISALLOW *\"]",
            "expected_materials = [\"MATCH x WITH PRODUCTS FROM source\", \"DISALLOW *\"]",
        );
        only(
            &findings(&own),
            "step source, expected_materials rule 1 (MATCH x WITH PRODUCTS FROM source): \
             matches against its own step's link",
        );
    }

    #[test]
    fn a_match_against_a_missing_step_does_not_load() {
        let text = with("FROM source", "FROM nowhere");
        match compile(&text) {
            Err(SourceError::Layout(e)) => {
                let message = e.to_string();
                assert!(message.contains("step \"build\""), "{message}");
                assert!(message.contains("nowhere"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn products_no_later_step_matches_are_flagged() {
        // Nothing matches the products of source any more.
        let text = with("MATCH src/* WITH PRODUCTS FROM source", "ALLOW src/*");
        only(
            &findings(&text),
            "warning: step source, expected_products: no later step or inspection matches \
             the products of source",
        );
        // A step that may produce nothing is not flagged.
        let text = text.replacen(
            "expected_products = [\"CREATE src/*\", \"DISALLOW *\"]",
            "expected_products = [\"DISALLOW *\"]",
            1,
        );
        assert!(!findings(&text).iter().any(|f| f.contains("no later step")),);
    }

    #[test]
    fn a_pattern_nothing_recorded_could_match_is_flagged() {
        let text = with("CREATE dist/app", "CREATE build/app");
        only(
            &findings(&text),
            "warning: step build, expected_products rule 1 (CREATE build/app): no artifact the \
             step records as products (dist) could match build/app",
        );
        // With IN: the prefix counts.
        let text = with(
            "MATCH src/* WITH PRODUCTS FROM source",
            "MATCH *.c IN lib WITH PRODUCTS IN src FROM source",
        );
        only(&findings(&text), "could match lib/*.c");
        // REQUIRE names a literal.
        let text = with(
            "\"CREATE dist/app\", ",
            "\"CREATE dist/app\", \"REQUIRE dist/app.sig\", \"REQUIRE docs/x\", ",
        );
        let found = findings(&text);
        only(&found, "could match docs/x");
        assert!(!found.iter().any(|f| f.contains("dist/app.sig")));
        // Undeclared paths: nothing to compare with.
        let text =
            with("CREATE dist/app", "CREATE build/app").replacen("products = [\"dist\"]\n", "", 1);
        assert!(!findings(&text).iter().any(|f| f.contains("could match")));
    }

    #[test]
    fn declared_products_that_all_fall_to_disallow_are_flagged() {
        // The build step records dist, but its products list refuses everything.
        let text = with(
            "expected_products = [\"CREATE dist/app\", \"DISALLOW *\"]",
            "expected_products = [\"DISALLOW *\"]",
        );
        only(
            &findings(&text),
            "warning: step build, expected_products rule 1 (DISALLOW *): every artifact the \
             step records as products (dist) is disallowed before any rule accepts it: \
             verification fails whenever the step records any; add a rule that accepts them \
             (such as CREATE dist/*) before this one",
        );
        // A rule for another folder does not accept dist; REQUIRE consumes nothing.
        let text = with(
            "expected_products = [\"CREATE dist/app\", \"DISALLOW *\"]",
            "expected_products = [\"REQUIRE dist/app\", \"CREATE build/*\", \"DISALLOW dist/*\", \
             \"DISALLOW *\"]",
        );
        only(
            &findings(&text),
            "expected_products rule 3 (DISALLOW dist/*): every artifact",
        );
        // The same on the materials side.
        let text = with(
            "expected_materials = [\"MATCH src/* WITH PRODUCTS FROM source\", \"DISALLOW *\"]",
            "expected_materials = [\"DISALLOW *\"]",
        );
        only(
            &findings(&text),
            "step build, expected_materials rule 1 (DISALLOW *): every artifact the step \
             records as materials (src) is disallowed",
        );
        // One declared path accepted is enough; so is nothing declared, or declaring nothing.
        let text = with("products = [\"dist\"]", "products = [\"dist\", \"tmp\"]").replacen(
            "\"CREATE dist/app\", \"DISALLOW *\"",
            "\"CREATE dist/app\", \"DISALLOW tmp/*\"",
            1,
        );
        assert!(!findings(&text).iter().any(|f| f.contains("every artifact")));
        for products in ["", "products = []\n"] {
            let text = with(
                "expected_products = [\"CREATE dist/app\", \"DISALLOW *\"]",
                "expected_products = [\"DISALLOW *\"]",
            )
            .replacen("products = [\"dist\"]\n", products, 1);
            assert!(!findings(&text).iter().any(|f| f.contains("every artifact")));
        }
        assert!(!findings(CLEAN).iter().any(|f| f.contains("every artifact")));
    }

    #[test]
    fn every_unreadable_key_file_is_named() {
        let key = PrivateKey::generate(KeyKind::Ed25519).expect("key");
        let mut resolve = |path: &str| {
            if path == "k.pub" {
                Ok(key.public_key().clone())
            } else {
                Err(format!("{path}: cannot read"))
            }
        };
        let text = with("[\"k.pub\"]", "[\"keys/a.pub\", \"k.pub\"]").replacen(
            "[\"k.pub\"]",
            "[\"keys/b.pub\"]",
            1,
        );
        match source::compile(&text, &mut resolve, now(), &Limits::default()) {
            Err(SourceError::Keys { keys }) => {
                let named: Vec<(&str, &str)> = keys
                    .iter()
                    .map(|k| (k.location.as_str(), k.path.as_str()))
                    .collect();
                assert_eq!(
                    named,
                    [
                        ("step[0] \"source\"", "keys/a.pub"),
                        ("step[1] \"build\"", "keys/b.pub")
                    ]
                );
                assert_eq!(keys[1].reason, "keys/b.pub: cannot read");
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn a_single_bracket_step_says_to_write_two() {
        for (from, to, table, line) in [
            (
                "[[step]]\nname = \"build\"",
                "[step]\nname = \"build\"",
                "step",
                9,
            ),
            (
                "[[step]]\nname = \"source\"",
                "  [ step ]  # the first\nname = \"source\"",
                "step",
                3,
            ),
            ("[[inspection]]", "[inspection]", "inspection", 16),
        ] {
            match compile(&with(from, to)) {
                Err(e @ SourceError::SingleTable { .. }) => {
                    assert_eq!(
                        e.to_string(),
                        format!(
                            "line {line}: [{table}] is one table, but a layout source lists \
                             each {table} in its own [[{table}]] (two pairs of brackets): write \
                             [[{table}]]"
                        )
                    );
                }
                other => panic!("{to}: {:?}", other.map(|_| ())),
            }
        }
        // The file names of the keys are kept for people.
        let compiled = compile(CLEAN).expect("compiles");
        assert_eq!(
            compiled.key_files.values().collect::<Vec<_>>(),
            ["k.pub"],
            "{:?}",
            compiled.key_files
        );
    }

    #[test]
    fn an_expiry_in_the_past_is_an_error_and_one_far_away_a_warning() {
        let found = findings(&with("\"90d\"", "\"2026-01-01\""));
        assert!(
            found[0].starts_with("error: the layout expired at 2026-01-01T00:00:00Z"),
            "{found:#?}"
        );
        only(
            &findings(&with("\"90d\"", "\"2y\"")),
            "warning: the layout expires at 2028-11-29T12:00:00Z, more than a year away",
        );
        assert!(
            !findings(&with("\"90d\"", "\"1y\""))
                .iter()
                .any(|f| f.contains("expire"))
        );
    }

    #[test]
    fn source_errors_name_the_field() {
        let typo = CLEAN.replacen("functionaries", "functionary", 1);
        match compile(&typo) {
            Err(SourceError::Toml(e)) => {
                let message = e.to_string();
                assert!(message.contains("functionary"), "{message}")
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        let bad_rule = with("CREATE dist/app", "CREATE dist/app extra");
        match compile(&bad_rule) {
            Err(SourceError::Layout(e)) => {
                assert!(e.to_string().contains("expected_products[0]"), "{e}")
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        let threshold = with("name = \"build\"", "name = \"build\"\nthreshold = 2");
        match compile(&threshold) {
            Err(SourceError::Layout(e)) => assert!(e.to_string().contains("threshold 2"), "{e}"),
            other => panic!("{:?}", other.map(|_| ())),
        }
    }
}
