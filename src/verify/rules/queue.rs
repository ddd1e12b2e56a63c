//! What each artifact rule does to the queue: the reference's semantics (summed up on
//! [`super::apply`]), exactly, and nothing else. Explaining an outcome to a person (which rule
//! consumed what, why an artifact was refused) is the trace's work, in [`super`]; nothing here
//! allocates per artifact beyond the queue itself and the positions a rule consumes.
//!
//! Off-spec (stricter): a `MATCH` consumes only when the digest sets are equal *and* hold an
//! approved algorithm (THREATS F9).

use std::collections::BTreeMap;

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

/// The queue of one rule list: the artifacts of its side in name order, each flagged while no
/// rule has consumed it. An entry is known by its position.
pub(super) struct Queue<'l> {
    items: Vec<(&'l ArtifactPath, &'l DigestSet)>,
    queued: Vec<bool>,
}

impl<'l> Queue<'l> {
    /// A queue holding every artifact of `artifacts`.
    pub(super) fn new(artifacts: &'l Artifacts) -> Queue<'l> {
        let items: Vec<(&ArtifactPath, &DigestSet)> = artifacts.iter().collect();
        let queued = vec![true; items.len()];
        Queue { items, queued }
    }

    /// The entries still queued, in name order: position, name and digests.
    fn entries(&self) -> impl Iterator<Item = (usize, &'l str, &'l DigestSet)> + '_ {
        self.items
            .iter()
            .enumerate()
            .filter(|(i, _)| self.queued[*i])
            .map(|(i, (name, digests))| (i, name.as_str(), *digests))
    }

    /// The names still queued, in name order.
    pub(super) fn left(&self) -> impl Iterator<Item = &'l ArtifactPath> + Clone + '_ {
        self.items
            .iter()
            .zip(&self.queued)
            .filter(|(_, q)| **q)
            .map(|((name, _), _)| *name)
    }

    /// The name of the entry at `position`.
    pub(super) fn name(&self, position: usize) -> &'l ArtifactPath {
        self.items[position].0
    }

    /// Removes the entries at `positions` from the queue.
    pub(super) fn consume(&mut self, positions: &[usize]) {
        for &i in positions {
            self.queued[i] = false;
        }
    }

    /// Whether `name` is still queued.
    fn holds(&self, name: &ArtifactPath) -> bool {
        let position = self.items.binary_search_by(|(n, _)| (*n).cmp(name));
        position.is_ok_and(|i| self.queued[i])
    }
}

/// What one rule does to the queue.
pub(super) enum Effect<'r> {
    /// The rule consumes these entries (positions, in name order); `matched` says whether its
    /// pattern matched any queued name at all (a rule that fails never "matches nothing").
    Consume {
        /// The positions consumed.
        entries: Vec<usize>,
        /// Whether the pattern matched a queued name.
        matched: bool,
    },
    /// `DISALLOW`: these queued entries (positions, in name order) match it; the list fails.
    Disallowed(Vec<usize>),
    /// `REQUIRE`: this name is not queued; the list fails.
    NotQueued(&'r ArtifactPath),
}

/// What `rule` does to `queue`, a queue over `link`'s materials or products; `links` holds the
/// (reduced) links a `MATCH` may refer to by step name. The queue is left as it is.
pub(super) fn effect<'r>(
    rule: &'r ArtifactRule,
    queue: &Queue<'_>,
    link: &Link,
    links: &BTreeMap<StepName, &Link>,
) -> Effect<'r> {
    let mut matched = false;
    let entries = queue.entries();
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
            let mut target = String::new();
            let mut cursor = 0;
            entries
                .filter(|(_, name, digests)| {
                    let Some(relative) = strip(name, source_prefix.as_deref()) else {
                        return false;
                    };
                    if !pattern.matches(relative) {
                        return false;
                    }
                    matched = true;
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
            select(entries, pattern, &mut matched, |name| {
                matches!(sides.look_up(name), (None, Some(_)))
            })
        }
        RuleKind::Delete(pattern) => {
            let mut sides = Sides::new(link);
            select(entries, pattern, &mut matched, |name| {
                matches!(sides.look_up(name), (Some(_), None))
            })
        }
        RuleKind::Modify(pattern) => {
            let mut sides = Sides::new(link);
            select(entries, pattern, &mut matched, |name| {
                match sides.look_up(name) {
                    (Some(before), Some(after)) => before != after,
                    _ => false,
                }
            })
        }
        RuleKind::Allow(pattern) => select(entries, pattern, &mut matched, |_| true),
        RuleKind::Disallow(pattern) => {
            let hits: Vec<usize> = entries
                .filter(|(_, name, _)| pattern.matches(name))
                .map(|(i, _, _)| i)
                .collect();
            if !hits.is_empty() {
                return Effect::Disallowed(hits);
            }
            // Matching nothing is what a DISALLOW is for.
            matched = true;
            Vec::new()
        }
        RuleKind::Require(name) => {
            if !queue.holds(name) {
                return Effect::NotQueued(name);
            }
            matched = true;
            Vec::new()
        }
    };
    Effect::Consume {
        entries: consumed,
        matched,
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

/// The queued entries `pattern` matches and `keep` accepts; `matched` is set when the pattern
/// matches any of them.
fn select<'q>(
    entries: impl Iterator<Item = (usize, &'q str, &'q DigestSet)>,
    pattern: &Pattern,
    matched: &mut bool,
    mut keep: impl FnMut(&str) -> bool,
) -> Vec<usize> {
    entries
        .filter(|(_, name, _)| {
            let hit = pattern.matches(name);
            *matched |= hit;
            hit && keep(name)
        })
        .map(|(i, _, _)| i)
        .collect()
}

/// `name` without `prefix/`, or `None` when it is not under the prefix.
pub(super) fn strip<'n>(name: &'n str, prefix: Option<&str>) -> Option<&'n str> {
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

/// Equal digest sets that include an approved algorithm.
fn same_digests(ours: &DigestSet, theirs: &DigestSet) -> bool {
    ours == theirs && APPROVED.iter().any(|algorithm| ours.has(algorithm))
}
