//! Applying artifact rules to a link: the reference's queue semantics, exactly.
//!
//! For each rule list (`expected_materials` over the link's materials, `expected_products` over
//! its products) a queue starts as every artifact name of that side. Rules run in order; each
//! may consume names from the queue; only `DISALLOW` and `REQUIRE` can fail. What is left at the
//! end is accepted (the implicit `ALLOW *`), which is why a rule list should end in `DISALLOW *`.
//!
//! - `MATCH`: queue names (under the source prefix, which is stripped before matching) whose
//!   digests equal those of the same name (under the destination prefix) in the other step's
//!   materials or products.
//! - `CREATE`: queue names that are products and not materials; `DELETE`: materials and not
//!   products; `MODIFY`: both, with different digests; `ALLOW`: any queue name.
//! - `DISALLOW`: fails if any queue name matches; `REQUIRE`: fails unless the name is queued.
//!
//! Off-spec (stricter): a `MATCH` consumes only when the digest sets are equal *and* hold an
//! approved algorithm (SHA-2 or SHA-3, 256 bits or more), so that two links agreeing on an MD5
//! or SHA-1 alone prove nothing (THREATS F9).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::artifact::{ArtifactPath, Artifacts, DigestSet};
use crate::model::link::Link;
use crate::model::name::StepName;
use crate::model::pattern::Pattern;
use crate::model::rule::{ArtifactKind, ArtifactRule, RuleKind};

/// The algorithms strong enough for a `MATCH` to rely on.
const APPROVED: [&str; 7] = [
    "sha256",
    "sha384",
    "sha512",
    "sha512_256",
    "sha3_256",
    "sha3_384",
    "sha3_512",
];

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
pub fn apply(
    side: Side,
    rules: &[ArtifactRule],
    link: &Link,
    links: &BTreeMap<StepName, &Link>,
) -> ListOutcome {
    let artifacts = match side {
        Side::ExpectedMaterials => &link.materials,
        Side::ExpectedProducts => &link.products,
    };
    // The queue: the artifacts in name order, each flagged while no rule has consumed it.
    let items: Vec<(&ArtifactPath, &DigestSet)> = artifacts.iter().collect();
    let mut queued = vec![true; items.len()];
    let remaining = |queued: &[bool]| -> (usize, Vec<String>) {
        let left = items.iter().zip(queued).filter(|(_, q)| **q);
        let names = left
            .clone()
            .take(TRACE_NAMES)
            .map(|((name, _), _)| name.to_string())
            .collect();
        (left.count(), names)
    };
    let mut traces = Vec::with_capacity(rules.len());
    // Ends the list at a failing rule, with what the queue still held.
    let failed = |mut traces: Vec<RuleTrace>,
                  text: &str,
                  index: usize,
                  artifacts: Vec<String>,
                  (explanation, refused): (String, Vec<Refused>),
                  (unconsumed_count, unconsumed): (usize, Vec<String>)| {
        traces.push(RuleTrace {
            rule: text.to_owned(),
            consumed_count: 0,
            consumed: Vec::new(),
            matched_nothing: false,
        });
        ListOutcome {
            side,
            rules: traces,
            unconsumed_count,
            unconsumed,
            failure: Some(RuleFailure {
                side,
                number: index + 1,
                rule: text.to_owned(),
                artifacts,
                explanation,
                refused,
            }),
        }
    };
    for (index, rule) in rules.iter().enumerate() {
        let text = rule.tokens().join(" ");
        let mut matched_any = false;
        let queue = items
            .iter()
            .enumerate()
            .filter(|(i, _)| queued[*i])
            .map(|(i, (name, digests))| (i, name.as_str(), *digests));
        let mut target = String::new();
        let consumed: Vec<usize> = match rule.kind() {
            RuleKind::Match {
                pattern,
                source_prefix,
                kind,
                destination_prefix,
                from,
            } => {
                let destination = links.get(from).map(|l| match kind {
                    ArtifactKind::Materials => &l.materials,
                    ArtifactKind::Products => &l.products,
                });
                let mut cursor = 0;
                queue
                    .filter(|(_, name, digests)| {
                        let Some(relative) = strip(name, source_prefix.as_deref()) else {
                            return false;
                        };
                        if !pattern.matches(relative) {
                            return false;
                        }
                        matched_any = true;
                        let Some(destination) = destination else {
                            return false;
                        };
                        // Candidates come in name order, and so do their targets (one prefix
                        // swapped for another keeps the order): walk the destination forward.
                        let target = match destination_prefix.as_deref() {
                            Some(prefix) => {
                                join_into(&mut target, Some(prefix), relative);
                                target.as_str()
                            }
                            None => relative,
                        };
                        let (at, found) = destination.seek(cursor, target);
                        cursor = at;
                        found.is_some_and(|theirs| same_digests(digests, theirs))
                    })
                    .map(|(i, _, _)| i)
                    .collect()
            }
            RuleKind::Create(pattern) => {
                let mut sides = Sides::new(link);
                select(queue, pattern, &mut matched_any, |name| {
                    matches!(sides.look_up(name), (None, Some(_)))
                })
            }
            RuleKind::Delete(pattern) => {
                let mut sides = Sides::new(link);
                select(queue, pattern, &mut matched_any, |name| {
                    matches!(sides.look_up(name), (Some(_), None))
                })
            }
            RuleKind::Modify(pattern) => {
                let mut sides = Sides::new(link);
                select(queue, pattern, &mut matched_any, |name| {
                    match sides.look_up(name) {
                        (Some(before), Some(after)) => before != after,
                        _ => false,
                    }
                })
            }
            RuleKind::Allow(pattern) => select(queue, pattern, &mut matched_any, |_| true),
            RuleKind::Disallow(pattern) => {
                let hits: Vec<String> = queue
                    .filter(|(_, name, _)| pattern.matches(name))
                    .map(|(_, name, _)| name.to_owned())
                    .collect();
                if !hits.is_empty() {
                    let (explanation, _) = explain(&hits[0], &rules[..index], link, links, side);
                    let refused = hits
                        .iter()
                        .take(REFUSED_DETAILS)
                        .map(|artifact| Refused {
                            artifact: artifact.clone(),
                            compared: explain(artifact, &rules[..index], link, links, side).1,
                            summary: None,
                        })
                        .collect();
                    let left = remaining(&queued);
                    return failed(traces, &text, index, hits, (explanation, refused), left);
                }
                // Matching nothing is what a DISALLOW is for.
                matched_any = true;
                Vec::new()
            }
            RuleKind::Require(name) => {
                let position = items.binary_search_by(|(n, _)| (*n).cmp(name));
                if !position.is_ok_and(|i| queued[i]) {
                    let explanation = if artifacts.contains_key(name.as_str()) {
                        format!("{name} was consumed by an earlier rule; put REQUIRE first")
                    } else {
                        format!("{name} is not among the step's {}", side_noun(side))
                    };
                    let left = remaining(&queued);
                    let names = vec![name.to_string()];
                    let refused = vec![Refused {
                        artifact: name.to_string(),
                        compared: None,
                        summary: None,
                    }];
                    return failed(traces, &text, index, names, (explanation, refused), left);
                }
                matched_any = true;
                Vec::new()
            }
        };
        let consumed_names = consumed
            .iter()
            .take(TRACE_NAMES)
            .map(|&i| items[i].0.to_string())
            .collect();
        let consumed_count = consumed.len();
        for i in consumed {
            queued[i] = false;
        }
        traces.push(RuleTrace {
            rule: text,
            consumed_count,
            consumed: consumed_names,
            matched_nothing: !matched_any,
        });
    }
    let (unconsumed_count, unconsumed) = remaining(&queued);
    ListOutcome {
        side,
        rules: traces,
        unconsumed_count,
        unconsumed,
        failure: None,
    }
}

fn side_noun(side: Side) -> &'static str {
    match side {
        Side::ExpectedMaterials => "materials",
        Side::ExpectedProducts => "products",
    }
}

/// A link's materials and products, looked up by names that come in ascending order (as the
/// queue gives them): each side is walked forward once instead of searched afresh.
struct Sides<'l> {
    link: &'l Link,
    materials: usize,
    products: usize,
}

impl<'l> Sides<'l> {
    fn new(link: &'l Link) -> Sides<'l> {
        Sides {
            link,
            materials: 0,
            products: 0,
        }
    }

    /// The digests of `name` among the materials and among the products.
    fn look_up(&mut self, name: &str) -> (Option<&'l DigestSet>, Option<&'l DigestSet>) {
        let (materials, before) = self.link.materials.seek(self.materials, name);
        let (products, after) = self.link.products.seek(self.products, name);
        self.materials = materials;
        self.products = products;
        (before, after)
    }
}

fn select<'q>(
    queue: impl Iterator<Item = (usize, &'q str, &'q DigestSet)>,
    pattern: &Pattern,
    matched_any: &mut bool,
    mut keep: impl FnMut(&str) -> bool,
) -> Vec<usize> {
    queue
        .filter(|(_, name, _)| {
            let matched = pattern.matches(name);
            *matched_any |= matched;
            matched && keep(name)
        })
        .map(|(i, _, _)| i)
        .collect()
}

/// `name` without `prefix/`, or `None` when it is not under the prefix.
fn strip<'n>(name: &'n str, prefix: Option<&str>) -> Option<&'n str> {
    match prefix {
        None => Some(name),
        Some(prefix) => name.strip_prefix(prefix)?.strip_prefix('/'),
    }
}

/// Writes `prefix/relative` (or `relative`) into `out`, reusing its allocation.
fn join_into(out: &mut String, prefix: Option<&str>, relative: &str) {
    out.clear();
    if let Some(prefix) = prefix {
        out.push_str(prefix);
        out.push('/');
    }
    out.push_str(relative);
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

/// Equal digest sets that include an approved algorithm.
fn same_digests(ours: &DigestSet, theirs: &DigestSet) -> bool {
    ours == theirs && APPROVED.iter().any(|algorithm| ours.has(algorithm))
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
    let artifacts = match side {
        Side::ExpectedMaterials => &link.materials,
        Side::ExpectedProducts => &link.products,
    };
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
