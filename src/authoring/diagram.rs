//! Pictures of a supply chain, for people: a layout's steps and inspections as nodes (with who
//! may sign each step and how many must agree), and an arrow for every `MATCH ... FROM` rule,
//! from the step whose link it compares with to the step or inspection that holds the rule,
//! labelled with the rule's pattern. After verification the same picture marks what passed
//! (green), what failed and the rule that refused (red), and what verification did not reach.
//!
//! Two syntaxes: Mermaid (rendered by GitHub and GitLab in Markdown) and Graphviz DOT. Every
//! label is escaped for its syntax, so a step name or pattern holding quotes, brackets or
//! newlines cannot break the picture or add to it. Node identifiers are generated (`s1`, `i1`),
//! never taken from the layout.
//!
//! This module draws; it checks nothing. [`verified_layout`] hands back the layout a report
//! is about only when its owner's signatures verify, so that a picture never shows the content
//! of a layout that failed them.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::model::envelope::Envelope;
use crate::model::keyring::KeyRing;
use crate::model::keys::KeyId;
use crate::model::layout::Layout;
use crate::model::name::StepName;
use crate::model::rule::{ArtifactKind, ArtifactRule, RuleKind};
use crate::verify::VerifyOptions;
use crate::verify::params;
use crate::verify::report::{Check, Report};
use crate::verify::rules::{RuleFailure, Side};

/// The picture's syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Syntax {
    /// A Mermaid flowchart (GitHub and GitLab render it in a ```` ```mermaid ```` block).
    Mermaid,
    /// A Graphviz digraph (`dot -Tsvg`).
    Dot,
}

/// How far verification got with a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// A layout drawn on its own.
    Plain,
    /// Every check of it passed.
    Passed,
    /// The decisive failure is here.
    Failed,
    /// Verification stopped before finishing it.
    NotReached,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Step,
    Inspection,
    Note,
}

struct Node {
    id: String,
    shape: Shape,
    lines: Vec<String>,
    status: Status,
}

struct Edge {
    from: String,
    to: String,
    label: String,
    failed: bool,
}

/// The widest a line of a label gets before it is wrapped.
const WRAP: usize = 60;

/// Draws `layout`. `key_names` names keys for people (a source's key file names); any other
/// key is shown by the first 8 characters of its keyid.
pub fn layout(layout: &Layout, key_names: &BTreeMap<KeyId, String>, syntax: Syntax) -> String {
    let (nodes, edges) = graph(layout, key_names, None);
    render(&nodes, &edges, syntax)
}

/// Draws the outcome of a verification: `layout` is the verified layout (see
/// [`verified_layout`]), or `None` when its signatures did not verify, and then only the
/// failure is drawn.
pub fn verification(
    layout: Option<&Layout>,
    report: &Report,
    key_names: &BTreeMap<KeyId, String>,
    syntax: Syntax,
) -> String {
    let (mut nodes, edges) = match layout {
        Some(layout) => graph(layout, key_names, Some(report)),
        None => (Vec::new(), Vec::new()),
    };
    if let Some(failure) = &report.failure {
        let drawn = failure.item.as_deref().is_some_and(|item| {
            nodes
                .iter()
                .any(|n| n.lines.first().is_some_and(|l| l == item))
        });
        if !drawn {
            let mut lines = vec!["layout".to_owned(), "FAILED".to_owned()];
            lines.extend(wrap(&failure.reason));
            nodes.insert(
                0,
                Node {
                    id: "L0".into(),
                    shape: Shape::Note,
                    lines,
                    status: Status::Failed,
                },
            );
        }
    }
    render(&nodes, &edges, syntax)
}

/// The layout `layout_file` holds, when every key of `keys` signed it and the report did not
/// refuse it for its signatures or its pinned digest, with the report's parameters
/// substituted: what a picture of the verification may show.
pub fn verified_layout(
    layout_file: &[u8],
    keys: &KeyRing,
    report: &Report,
    options: &VerifyOptions,
) -> Option<Layout> {
    if report
        .failure
        .as_ref()
        .is_some_and(|f| matches!(f.check, Check::LayoutDigest | Check::LayoutSignature))
    {
        return None;
    }
    let envelope = Envelope::from_bytes(layout_file, &options.limits).ok()?;
    let mut payload = envelope.verify(keys, keys.len()).ok()?.into_payload();
    params::apply(&mut payload, &options.parameters).ok()?;
    Layout::from_value(&payload, &options.limits).ok()
}

/// One step or inspection, as the picture sees it.
struct Item<'a> {
    name: &'a StepName,
    id: String,
    lists: [&'a [ArtifactRule]; 2],
}

fn graph(
    layout: &Layout,
    key_names: &BTreeMap<KeyId, String>,
    report: Option<&Report>,
) -> (Vec<Node>, Vec<Edge>) {
    let items: Vec<Item<'_>> = layout
        .steps
        .iter()
        .enumerate()
        .map(|(n, s)| Item {
            name: &s.name,
            id: format!("s{}", n + 1),
            lists: [&s.expected_materials, &s.expected_products],
        })
        .chain(layout.inspections.iter().enumerate().map(|(n, i)| Item {
            name: &i.name,
            id: format!("i{}", n + 1),
            lists: [&i.expected_materials, &i.expected_products],
        }))
        .collect();
    let ids: BTreeMap<&StepName, &str> = items.iter().map(|i| (i.name, i.id.as_str())).collect();
    let failure = report.and_then(|r| r.failure.as_ref());
    let failed_item = failure.and_then(|f| f.item.as_deref());
    let refusal = report.and_then(|r| refusing_rule(r, failed_item?));

    let mut nodes = Vec::new();
    for (n, step) in layout.steps.iter().enumerate() {
        let keys: Vec<String> = step
            .pubkeys
            .iter()
            .map(|k| {
                key_names
                    .get(k)
                    .map_or_else(|| k.short().to_owned(), |p| file_name(p))
            })
            .collect();
        let mut lines = vec![
            step.name.to_string(),
            format!(
                "step: {} of {} key(s) must sign",
                step.threshold,
                step.pubkeys.len()
            ),
        ];
        lines.extend(wrap(&keys.join(", ")));
        let status = match report {
            None => Status::Plain,
            Some(report) => {
                let seen = report.steps.iter().find(|s| s.name == step.name.as_str());
                let signed_by = seen.map(|s| {
                    let signers: Vec<&str> =
                        s.signers.iter().map(|k| &k[..k.len().min(8)]).collect();
                    signers.join(", ")
                });
                let reached = seen
                    .filter(|s| s.rules.len() == 2 && s.rules.iter().all(|o| o.failure.is_none()));
                if failed_item == Some(step.name.as_str()) {
                    Status::Failed
                } else if report.passed() || reached.is_some() {
                    if let Some(signers) = signed_by {
                        lines.push(format!("passed: signed by {signers}"));
                    }
                    Status::Passed
                } else {
                    if let Some(signers) = signed_by.filter(|s| !s.is_empty()) {
                        lines.push(format!("signed by {signers}; rules not checked"));
                    }
                    Status::NotReached
                }
            }
        };
        nodes.push(Node {
            id: format!("s{}", n + 1),
            shape: Shape::Step,
            lines,
            status,
        });
    }
    for (n, inspection) in layout.inspections.iter().enumerate() {
        let mut lines = vec![inspection.name.to_string()];
        lines.extend(wrap(&format!(
            "inspection: runs {}",
            inspection.run.join(" ")
        )));
        let status = match report {
            None => Status::Plain,
            Some(report) => {
                let reached = report
                    .inspections
                    .iter()
                    .find(|i| i.name == inspection.name.as_str())
                    .filter(|i| i.rules.len() == 2 && i.rules.iter().all(|o| o.failure.is_none()));
                if failed_item == Some(inspection.name.as_str()) {
                    Status::Failed
                } else if report.passed() || reached.is_some() {
                    if let Some(code) = reached.and_then(|i| i.return_value) {
                        lines.push(format!("passed: exited {code}"));
                    }
                    Status::Passed
                } else {
                    Status::NotReached
                }
            }
        };
        nodes.push(Node {
            id: format!("i{}", n + 1),
            shape: Shape::Inspection,
            lines,
            status,
        });
    }
    if let (Some(failure), Some(node)) = (
        failure,
        nodes.iter_mut().find(|n| n.status == Status::Failed),
    ) {
        node.lines.push("FAILED".into());
        if let Some(refusal) = &refusal {
            node.lines.push(format!(
                "refused by {} rule {}: {}",
                refusal.side.name(),
                refusal.number,
                refusal.rule
            ));
        }
        node.lines.extend(wrap(&failure.reason));
    }
    for node in &mut nodes {
        if node.status == Status::NotReached {
            node.lines
                .push("not fully checked: verification stopped first".into());
        }
    }

    let mut edges = Vec::new();
    for item in &items {
        for (side, rules) in [Side::ExpectedMaterials, Side::ExpectedProducts]
            .into_iter()
            .zip(item.lists)
        {
            for (index, rule) in rules.iter().enumerate() {
                let RuleKind::Match {
                    pattern,
                    source_prefix,
                    kind,
                    from,
                    ..
                } = rule.kind()
                else {
                    continue;
                };
                let Some(from_id) = ids.get(from) else {
                    continue; // the layout would not have loaded
                };
                let theirs = match kind {
                    ArtifactKind::Materials => "materials",
                    ArtifactKind::Products => "products",
                };
                let ours = match side {
                    Side::ExpectedMaterials => "materials",
                    Side::ExpectedProducts => "products",
                };
                let shown = match source_prefix {
                    Some(prefix) => format!("{} IN {prefix}", pattern.as_str()),
                    None => pattern.as_str().to_owned(),
                };
                // A MATCH that should have accepted an artifact the failing rule refused.
                let failed = failed_item == Some(item.name.as_str())
                    && refusal.as_ref().is_some_and(|r| {
                        r.side == side
                            && index + 1 < r.number
                            && r.artifacts.iter().any(|a| {
                                let relative = match source_prefix {
                                    Some(prefix) => a
                                        .strip_prefix(prefix.as_str())
                                        .and_then(|rest| rest.strip_prefix('/')),
                                    None => Some(a.as_str()),
                                };
                                relative.is_some_and(|name| pattern.matches(name))
                            })
                    });
                edges.push(Edge {
                    from: (*from_id).to_owned(),
                    to: item.id.clone(),
                    label: format!("{shown} ({theirs} → {ours})"),
                    failed,
                });
            }
        }
    }
    (nodes, edges)
}

/// The rule that refused, when the decisive failure is a rule of `item`.
fn refusing_rule(report: &Report, item: &str) -> Option<RuleFailure> {
    let failure = report.failure.as_ref()?;
    let outcomes = match failure.check {
        Check::StepRules => &report.steps.iter().rev().find(|s| s.name == item)?.rules,
        Check::InspectionRules => {
            &report
                .inspections
                .iter()
                .rev()
                .find(|i| i.name == item)?
                .rules
        }
        _ => return None,
    };
    outcomes.iter().find_map(|o| o.failure.clone())
}

/// The last component of a key file's path, as written in a source.
fn file_name(path: &str) -> String {
    path.rsplit(['/', '\\']).next().unwrap_or(path).to_owned()
}

/// `text` in lines of at most [`WRAP`] characters, broken at spaces where it can be.
fn wrap(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        for word in paragraph.split(' ') {
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > WRAP {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
    }
    lines
}

/// Control characters (other than the line breaks the labels are split at) written as
/// `\u{...}`, so that nothing invisible reaches the picture.
fn visible(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                format!("\\u{{{:x}}}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Text inside a Mermaid `"..."` label: entity codes for what Mermaid or its HTML labels
/// would read as syntax.
fn mermaid_text(text: &str) -> String {
    visible(text)
        .chars()
        .map(|c| match c {
            '#' => "#35;".to_owned(),
            '"' => "#quot;".to_owned(),
            '&' => "#amp;".to_owned(),
            '<' => "#lt;".to_owned(),
            '>' => "#gt;".to_owned(),
            '|' => "#124;".to_owned(),
            '`' => "#96;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// Text inside a DOT `"..."` string.
fn dot_text(text: &str) -> String {
    let mut out = String::new();
    for c in visible(text).chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out
}

/// Lines of a label, each escaped, joined with the syntax's line break.
fn label(lines: &[String], syntax: Syntax) -> String {
    let lines: Vec<String> = lines
        .iter()
        .flat_map(|l| l.split('\n'))
        .map(|l| match syntax {
            Syntax::Mermaid => mermaid_text(l),
            Syntax::Dot => dot_text(l),
        })
        .collect();
    match syntax {
        Syntax::Mermaid => lines.join("<br/>"),
        Syntax::Dot => lines.join("\\n"),
    }
}

fn render(nodes: &[Node], edges: &[Edge], syntax: Syntax) -> String {
    match syntax {
        Syntax::Mermaid => mermaid(nodes, edges),
        Syntax::Dot => dot(nodes, edges),
    }
}

const PASSED: (&str, &str, &str) = ("#e6f4ea", "#1e8e3e", "#0d652d");
const FAILED: (&str, &str, &str) = ("#fce8e6", "#d93025", "#a50e0e");
const NOT_REACHED: (&str, &str, &str) = ("#f1f3f4", "#9aa0a6", "#5f6368");

fn mermaid(nodes: &[Node], edges: &[Edge]) -> String {
    let mut out = String::from("flowchart TD\n");
    for node in nodes {
        let text = label(&node.lines, Syntax::Mermaid);
        let _ = match node.shape {
            Shape::Step => writeln!(out, "  {}[\"{text}\"]", node.id),
            Shape::Inspection => writeln!(out, "  {}([\"{text}\"])", node.id),
            Shape::Note => writeln!(out, "  {}{{{{\"{text}\"}}}}", node.id),
        };
    }
    for edge in edges {
        let _ = writeln!(
            out,
            "  {} -->|\"{}\"| {}",
            edge.from,
            mermaid_text(&edge.label),
            edge.to
        );
    }
    let classes = [
        ("passed", Status::Passed, PASSED, ""),
        ("failed", Status::Failed, FAILED, ",stroke-width:3px"),
        (
            "notreached",
            Status::NotReached,
            NOT_REACHED,
            ",stroke-dasharray:4 3",
        ),
    ];
    for (class, status, (fill, stroke, color), extra) in classes {
        let ids: Vec<&str> = nodes
            .iter()
            .filter(|n| n.status == status)
            .map(|n| n.id.as_str())
            .collect();
        if ids.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "  classDef {class} fill:{fill},stroke:{stroke},color:{color}{extra}"
        );
        let _ = writeln!(out, "  class {} {class}", ids.join(","));
    }
    for (index, edge) in edges.iter().enumerate() {
        if edge.failed {
            let _ = writeln!(
                out,
                "  linkStyle {index} stroke:{},stroke-width:3px,color:{}",
                FAILED.1, FAILED.2
            );
        }
    }
    out
}

fn dot(nodes: &[Node], edges: &[Edge]) -> String {
    let mut out = String::from(
        "digraph supply_chain {\n  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\"];\n  \
         edge [fontname=\"Helvetica\", fontsize=10];\n",
    );
    for node in nodes {
        let mut styles = Vec::new();
        match node.shape {
            Shape::Step => {}
            Shape::Inspection => styles.push("rounded"),
            Shape::Note => {}
        }
        let mut attributes = vec![format!("label=\"{}\"", label(&node.lines, Syntax::Dot))];
        if node.shape == Shape::Note {
            attributes.push("shape=hexagon".into());
        }
        let colours = match node.status {
            Status::Plain => None,
            Status::Passed => Some(PASSED),
            Status::Failed => {
                attributes.push("penwidth=3".into());
                Some(FAILED)
            }
            Status::NotReached => {
                styles.push("dashed");
                Some(NOT_REACHED)
            }
        };
        if let Some((fill, stroke, color)) = colours {
            styles.push("filled");
            attributes.push(format!(
                "fillcolor=\"{fill}\", color=\"{stroke}\", fontcolor=\"{color}\""
            ));
        }
        if !styles.is_empty() {
            attributes.push(format!("style=\"{}\"", styles.join(",")));
        }
        let _ = writeln!(out, "  {} [{}];", node.id, attributes.join(", "));
    }
    for edge in edges {
        let mut attributes = vec![format!("label=\"{}\"", dot_text(&edge.label))];
        if edge.failed {
            attributes.push(format!(
                "color=\"{}\", fontcolor=\"{}\", penwidth=3",
                FAILED.1, FAILED.2
            ));
        }
        let _ = writeln!(
            out,
            "  {} -> {} [{}];",
            edge.from,
            edge.to,
            attributes.join(", ")
        );
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_for_each_syntax() {
        let nasty = "a\"b]c[d|e<f>g&h#i`j\\k\u{7}l";
        assert_eq!(
            mermaid_text(nasty),
            "a#quot;b]c[d#124;e#lt;f#gt;g#amp;h#35;i#96;j\\k\\u{7}l"
        );
        assert_eq!(dot_text(nasty), "a\\\"b]c[d|e<f>g&h#i`j\\\\k\\\\u{7}l");
        let lines = vec!["one\ntwo".to_owned(), "three".to_owned()];
        assert_eq!(label(&lines, Syntax::Mermaid), "one<br/>two<br/>three");
        assert_eq!(label(&lines, Syntax::Dot), "one\\ntwo\\nthree");
    }

    #[test]
    fn long_lines_wrap_at_spaces() {
        let text = "word ".repeat(30);
        let lines = wrap(text.trim());
        assert!(lines.len() > 1, "{lines:?}");
        assert!(lines.iter().all(|l| l.chars().count() <= WRAP), "{lines:?}");
        assert_eq!(lines.join(" "), text.trim());
        assert_eq!(
            file_name("../keys-example/test-only-alice.pub"),
            "test-only-alice.pub"
        );
    }
}
