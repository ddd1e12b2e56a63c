//! Applying artifact rules to a link, and explaining the outcome.
//!
//! What each rule does to the queue of artifact names (the reference's semantics, exactly,
//! summed up in [`apply`]) lives in the submodule `queue`; this module runs a rule list through
//! it and keeps the trace that explains the outcome to a person: which rule consumed what,
//! what was left, and for a failing rule which artifacts it refused and what an earlier
//! `MATCH` found for them.

mod queue;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::artifact::{Artifacts, DigestSet};
use crate::model::link::Link;
use crate::model::name::StepName;
use crate::model::rule::{ArtifactKind, ArtifactRule, RuleKind};

use queue::{Effect, Queue, strip};

/// Which rule list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// `expected_materials`, over the link's materials.
    ExpectedMaterials,
    /// `expected_products`, over the link's products.
    ExpectedProducts,
}

impl Side {
    /// The field name.
    pub fn name(self) -> &'static str {
        match self {
            Side::ExpectedMaterials => "expected_materials",
            Side::ExpectedProducts => "expected_products",
        }
    }
}

/// The most consumed names a trace lists; `consumed_count` has them all.
pub const TRACE_NAMES: usize = 100;

/// What one rule did.
#[derive(Debug, Clone, Serialize)]
pub struct RuleTrace {
    /// The rule as written.
    pub rule: String,
    /// How many names it consumed.
    pub consumed_count: usize,
    /// The first names it consumed, in name order (at most [`TRACE_NAMES`]).
    pub consumed: Vec<String>,
    /// Whether a rule meant to consume (`MATCH`, `CREATE`, `DELETE`, `MODIFY`, `ALLOW`) matched
    /// no queued name at all, which is usually a typo (THREATS F7).
    pub matched_nothing: bool,
}

/// A rule that failed.
#[derive(Debug, Clone, Serialize)]
pub struct RuleFailure {
    /// Which list.
    pub side: Side,
    /// The rule's position in the list, from 1.
    pub number: usize,
    /// The rule as written.
    pub rule: String,
    /// The artifacts at fault (the disallowed ones, or the required one).
    pub artifacts: Vec<String>,
    /// Why, in words: what happened to the first artifact at fault.
    pub explanation: String,
    /// The first artifacts at fault (at most [`REFUSED_DETAILS`]), each with what happened to
    /// it.
    pub refused: Vec<Refused>,
}

/// The most refused artifacts a [`RuleFailure`] details.
pub const REFUSED_DETAILS: usize = 8;

/// One refused artifact, and what happened to it.
#[derive(Debug, Clone, Serialize)]
pub struct Refused {
    /// The artifact.
    pub artifact: String,
    /// What an earlier `MATCH` rule compared it with, if one could have consumed it.
    pub compared: Option<Comparison>,
    /// What happened, in plain words, naming who signed what it was compared with (filled in
    /// by the verifier, which knows the signers); the first artifact's leads the decisive
    /// reason.
    pub summary: Option<String>,
}

/// What a `MATCH` rule compared an artifact with, and what it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Comparison {
    /// The step or inspection named by `FROM`.
    pub step: String,
    /// `materials` or `products`, of that step.
    pub kind: &'static str,
    /// The name looked up there (after the prefixes).
    pub artifact: String,
    /// What was found.
    pub found: Found,
}

/// What a `MATCH` rule found in the other step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Found {
    /// The step has no link to compare with.
    NoLink,
    /// No artifact of that name.
    Missing,
    /// An artifact of that name, with other digests.
    Differs,
    /// Equal digests, none of them of an approved algorithm.
    Weak,
}

/// The outcome of one rule list.
#[derive(Debug, Clone, Serialize)]
pub struct ListOutcome {
    /// Which list.
    pub side: Side,
    /// Each rule's trace, in order (up to the failing one).
    pub rules: Vec<RuleTrace>,
    /// How many names no rule consumed (accepted by the implicit `ALLOW *`).
    pub unconsumed_count: usize,
    /// The first of them, in name order (at most [`TRACE_NAMES`]).
    pub unconsumed: Vec<String>,
    /// The failure, if a rule failed.
    pub failure: Option<RuleFailure>,
}

/// Applies `rules` of list `side` to `link`; `links` holds the (reduced) links rules may refer to
/// by step name.
///
/// For each rule list (`expected_materials` over the link's materials, `expected_products`
/// over its products) a queue starts as every artifact name of that side. Rules run in order;
/// each may consume names from the queue; only `DISALLOW` and `REQUIRE` can fail. What is left
/// at the end is accepted (the implicit `ALLOW *`), which is why a rule list should end in
/// `DISALLOW *`.
///
/// - `MATCH`: queue names (under the source prefix, which is stripped before matching) whose
///   digests equal those of the same name (under the destination prefix) in the other step's
///   materials or products.
/// - `CREATE`: queue names that are products and not materials; `DELETE`: materials and not
///   products; `MODIFY`: both, with different digests; `ALLOW`: any queue name.
/// - `DISALLOW`: fails if any queue name matches; `REQUIRE`: fails unless the name is queued.
///
/// Off-spec (stricter): a `MATCH` consumes only when the digest sets are equal *and* hold an
/// approved algorithm (SHA-2 or SHA-3, 256 bits or more), so that two links agreeing on an MD5
/// or SHA-1 alone prove nothing (THREATS F9).
pub fn apply(
    side: Side,
    rules: &[ArtifactRule],
    link: &Link,
    links: &BTreeMap<StepName, &Link>,
) -> ListOutcome {
    let artifacts = side_artifacts(side, link);
    let mut queue = Queue::new(artifacts);
    let mut traces = Vec::with_capacity(rules.len());
    for (index, rule) in rules.iter().enumerate() {
        let text = rule.tokens().join(" ");
        let (artifacts, (explanation, refused)) = match queue::effect(rule, &queue, link, links) {
            Effect::Consume { entries, matched } => {
                traces.push(RuleTrace {
                    rule: text,
                    consumed_count: entries.len(),
                    consumed: entries
                        .iter()
                        .take(TRACE_NAMES)
                        .map(|&i| queue.name(i).to_string())
                        .collect(),
                    matched_nothing: !matched,
                });
                queue.consume(&entries);
                continue;
            }
            Effect::Disallowed(hits) => {
                let hits: Vec<String> = hits.iter().map(|&i| queue.name(i).to_string()).collect();
                let earlier = &rules[..index];
                let (explanation, _) = explain(&hits[0], earlier, link, links, side);
                let refused = hits
                    .iter()
                    .take(REFUSED_DETAILS)
                    .map(|artifact| Refused {
                        artifact: artifact.clone(),
                        compared: explain(artifact, earlier, link, links, side).1,
                        summary: None,
                    })
                    .collect();
                (hits, (explanation, refused))
            }
            Effect::NotQueued(name) => {
                let explanation = if artifacts.contains_key(name.as_str()) {
                    format!("{name} was consumed by an earlier rule; put REQUIRE first")
                } else {
                    format!("{name} is not among the step's {}", side_noun(side))
                };
                let refused = vec![Refused {
                    artifact: name.to_string(),
                    compared: None,
                    summary: None,
                }];
                (vec![name.to_string()], (explanation, refused))
            }
        };
        // The list ends at the failing rule, with what the queue still held.
        traces.push(RuleTrace {
            rule: text.clone(),
            consumed_count: 0,
            consumed: Vec::new(),
            matched_nothing: false,
        });
        let (unconsumed_count, unconsumed) = remaining(&queue);
        return ListOutcome {
            side,
            rules: traces,
            unconsumed_count,
            unconsumed,
            failure: Some(RuleFailure {
                side,
                number: index + 1,
                rule: text,
                artifacts,
                explanation,
                refused,
            }),
        };
    }
    let (unconsumed_count, unconsumed) = remaining(&queue);
    ListOutcome {
        side,
        rules: traces,
        unconsumed_count,
        unconsumed,
        failure: None,
    }
}

/// The artifacts a rule list of `side` runs over.
fn side_artifacts(side: Side, link: &Link) -> &Artifacts {
    match side {
        Side::ExpectedMaterials => &link.materials,
        Side::ExpectedProducts => &link.products,
    }
}

/// How many names the queue still holds, and the first of them (at most [`TRACE_NAMES`]).
fn remaining(queue: &Queue<'_>) -> (usize, Vec<String>) {
    let left = queue.left();
    let names = left
        .clone()
        .take(TRACE_NAMES)
        .map(|name| name.to_string())
        .collect();
    (left.count(), names)
}

fn side_noun(side: Side) -> &'static str {
    match side {
        Side::ExpectedMaterials => "materials",
        Side::ExpectedProducts => "products",
    }
}

fn join(prefix: Option<&str>, relative: &str) -> String {
    match prefix {
        None => relative.to_owned(),
        Some(prefix) => format!("{prefix}/{relative}"),
    }
}

fn lookup<'a>(artifacts: &'a Artifacts, name: &str) -> Option<&'a DigestSet> {
    artifacts.get(name)
}

/// Why `artifact` reached a `DISALLOW`: what the earlier `MATCH` rules that could have consumed
/// it found, in words and as data.
fn explain(
    artifact: &str,
    earlier: &[ArtifactRule],
    link: &Link,
    links: &BTreeMap<StepName, &Link>,
    side: Side,
) -> (String, Option<Comparison>) {
    let artifacts = side_artifacts(side, link);
    for rule in earlier {
        let RuleKind::Match {
            pattern,
            source_prefix,
            kind,
            destination_prefix,
            from,
        } = rule.kind()
        else {
            continue;
        };
        let Some(relative) = strip(artifact, source_prefix.as_deref()) else {
            continue;
        };
        if !pattern.matches(relative) {
            continue;
        }
        let noun = match kind {
            ArtifactKind::Materials => "materials",
            ArtifactKind::Products => "products",
        };
        let target = join(destination_prefix.as_deref(), relative);
        let compared = |found| {
            Some(Comparison {
                step: from.to_string(),
                kind: noun,
                artifact: target.clone(),
                found,
            })
        };
        let Some(other) = links.get(from) else {
            return (
                format!("{artifact} was not consumed: step {from} has no link to match it with"),
                compared(Found::NoLink),
            );
        };
        let destination = match kind {
            ArtifactKind::Materials => &other.materials,
            ArtifactKind::Products => &other.products,
        };
        let ours = lookup(artifacts, artifact);
        return match (lookup(destination, &target), ours) {
            (None, _) => (
                format!(
                    "{artifact} was not consumed by any earlier rule; it is not among the {noun} of step {from}"
                ),
                compared(Found::Missing),
            ),
            (Some(theirs), Some(ours)) if ours != theirs => (
                format!(
                    "{artifact} was not consumed by any earlier rule; it differs from {target} among the {noun} of step {from}"
                ),
                compared(Found::Differs),
            ),
            _ => (
                format!(
                    "{artifact} was not consumed by any earlier rule; its digests match {target} of step {from} but hold no approved algorithm (sha256 or stronger)"
                ),
                compared(Found::Weak),
            ),
        };
    }
    (
        format!("{artifact} was not consumed by any earlier rule"),
        None,
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::artifact::ArtifactPath;

    fn digest(c: char) -> DigestSet {
        let mut map = BTreeMap::new();
        map.insert("sha256".to_owned(), format!("{:02x}", c as u8).repeat(32));
        DigestSet::new("x", map).expect("valid")
    }

    fn artifacts(entries: &[(&str, char)]) -> Artifacts {
        entries
            .iter()
            .map(|(n, c)| (ArtifactPath::new(n).expect("name"), digest(*c)))
            .collect()
    }

    fn link(name: &str, materials: &[(&str, char)], products: &[(&str, char)]) -> Link {
        Link {
            name: StepName::new(name).expect("name"),
            command: Vec::new(),
            materials: artifacts(materials),
            products: artifacts(products),
            byproducts: Default::default(),
            environment: Default::default(),
        }
    }

    fn rules(list: &[&str]) -> Vec<ArtifactRule> {
        list.iter()
            .map(|r| {
                let tokens: Vec<String> = r.split(' ').map(str::to_owned).collect();
                ArtifactRule::parse(&tokens).expect("rule")
            })
            .collect()
    }

    proptest::proptest! {
        /// CREATE, DELETE and MODIFY walk both sides forward as the queue goes; they must
        /// consume exactly what their definitions say, whatever names the two sides share.
        #[test]
        fn create_delete_modify_consume_exactly_their_definitions(
            materials in proptest::collection::btree_map("[abc]{1,3}", 0u8..3, 0..12),
            products in proptest::collection::btree_map("[abc]{1,3}", 0u8..3, 0..12),
            pattern in proptest::sample::select(vec!["*", "a*", "*b", "?"]),
        ) {
            let as_entries = |map: &std::collections::BTreeMap<String, u8>| -> Vec<(String, char)> {
                map.iter().map(|(n, d)| (n.clone(), char::from(b'x' + d))).collect()
            };
            let (m, p) = (as_entries(&materials), as_entries(&products));
            let m: Vec<(&str, char)> = m.iter().map(|(n, c)| (n.as_str(), *c)).collect();
            let p: Vec<(&str, char)> = p.iter().map(|(n, c)| (n.as_str(), *c)).collect();
            let step = link("step", &m, &p);
            let glob = crate::model::pattern::Pattern::new(pattern).expect("pattern");
            for (kind, side) in [
                ("CREATE", Side::ExpectedProducts),
                ("DELETE", Side::ExpectedMaterials),
                ("MODIFY", Side::ExpectedMaterials),
                ("MODIFY", Side::ExpectedProducts),
            ] {
                let outcome = apply(side, &rules(&[&format!("{kind} {pattern}")]), &step, &BTreeMap::new());
                let queue = match side {
                    Side::ExpectedMaterials => &materials,
                    Side::ExpectedProducts => &products,
                };
                let expected: Vec<String> = queue
                    .keys()
                    .filter(|name| glob.matches(name))
                    .filter(|name| match kind {
                        "CREATE" => products.contains_key(*name) && !materials.contains_key(*name),
                        "DELETE" => materials.contains_key(*name) && !products.contains_key(*name),
                        _ => matches!(
                            (materials.get(*name), products.get(*name)),
                            (Some(a), Some(b)) if a != b
                        ),
                    })
                    .cloned()
                    .collect();
                proptest::prop_assert_eq!(&outcome.rules[0].consumed, &expected, "{} {:?}", kind, side);
            }
        }
    }

    #[test]
    fn match_consumes_equal_artifacts_under_prefixes() {
        let source = link("source", &[], &[("src/a.c", 'a'), ("src/b.c", 'b')]);
        let build = link(
            "build",
            &[("code/a.c", 'a'), ("code/b.c", 'c'), ("x", 'x')],
            &[],
        );
        let links = BTreeMap::from([(source.name.clone(), &source)]);
        let outcome = apply(
            Side::ExpectedMaterials,
            &rules(&[
                "MATCH * IN code WITH PRODUCTS IN src FROM source",
                "DISALLOW code/*",
            ]),
            &build,
            &links,
        );
        assert_eq!(outcome.rules[0].consumed, ["code/a.c"]);
        let failure = outcome.failure.expect("b.c differs");
        assert_eq!(failure.artifacts, ["code/b.c"]);
        assert_eq!(failure.number, 2);
        assert_eq!(
            failure.explanation,
            "code/b.c was not consumed by any earlier rule; it differs from src/b.c among the products of step source"
        );
        assert_eq!(outcome.unconsumed, ["code/b.c", "x"]);
    }

    #[test]
    fn create_delete_modify_allow_consume_by_their_definitions() {
        let step = link(
            "s",
            &[("kept", 'a'), ("changed", 'a'), ("gone", 'a')],
            &[("kept", 'a'), ("changed", 'b'), ("new", 'n')],
        );
        let links = BTreeMap::new();
        let products = apply(
            Side::ExpectedProducts,
            &rules(&[
                "CREATE *",
                "MODIFY *",
                "DELETE *",
                "ALLOW kept",
                "DISALLOW *",
            ]),
            &step,
            &links,
        );
        assert!(products.failure.is_none(), "{products:?}");
        assert_eq!(products.rules[0].consumed, ["new"]);
        assert_eq!(products.rules[1].consumed, ["changed"]);
        assert!(products.rules[2].consumed.is_empty());
        let materials = apply(
            Side::ExpectedMaterials,
            &rules(&["CREATE *", "DELETE *", "DISALLOW gone"]),
            &step,
            &links,
        );
        assert!(
            materials.rules[0].consumed.is_empty(),
            "CREATE never consumes materials"
        );
        assert_eq!(materials.rules[1].consumed, ["gone"]);
        assert!(materials.failure.is_none());
    }

    #[test]
    fn require_needs_the_name_still_queued() {
        let step = link("s", &[], &[("out", 'o')]);
        let links = BTreeMap::new();
        let ok = apply(
            Side::ExpectedProducts,
            &rules(&["REQUIRE out", "ALLOW out"]),
            &step,
            &links,
        );
        assert!(ok.failure.is_none());
        let late = apply(
            Side::ExpectedProducts,
            &rules(&["ALLOW out", "REQUIRE out"]),
            &step,
            &links,
        );
        assert!(
            late.failure
                .expect("consumed first")
                .explanation
                .contains("put REQUIRE first")
        );
        let missing = apply(
            Side::ExpectedProducts,
            &rules(&["REQUIRE other"]),
            &step,
            &links,
        );
        assert_eq!(missing.failure.expect("missing").artifacts, ["other"]);
    }

    #[test]
    fn patterns_matching_nothing_are_flagged() {
        let step = link("s", &[], &[("out", 'o')]);
        let outcome = apply(
            Side::ExpectedProducts,
            &rules(&["ALLOW otu", "DISALLOW *.exe", "ALLOW out"]),
            &step,
            &BTreeMap::new(),
        );
        let flags: Vec<bool> = outcome.rules.iter().map(|r| r.matched_nothing).collect();
        assert_eq!(
            flags,
            [true, false, false],
            "a DISALLOW that matches nothing is fine"
        );
    }

    #[test]
    fn f9_match_needs_an_approved_algorithm() {
        let weak = |c: char| {
            DigestSet::new(
                "x",
                BTreeMap::from([("md5".to_owned(), format!("{:02x}", c as u8).repeat(16))]),
            )
            .expect("valid")
        };
        let mut source = link("source", &[], &[]);
        source.products = [(ArtifactPath::new("a").expect("name"), weak('a'))]
            .into_iter()
            .collect();
        let mut build = link("build", &[], &[]);
        build.materials = [(ArtifactPath::new("a").expect("name"), weak('a'))]
            .into_iter()
            .collect();
        let links = BTreeMap::from([(source.name.clone(), &source)]);
        let outcome = apply(
            Side::ExpectedMaterials,
            &rules(&["MATCH * WITH PRODUCTS FROM source", "DISALLOW *"]),
            &build,
            &links,
        );
        assert!(
            outcome
                .failure
                .expect("md5 alone")
                .explanation
                .contains("no approved algorithm")
        );
    }
}
