//! Pictures of the supply chain: `layout show --format mermaid|dot` and `verify --format
//! mermaid|dot`. The DOT output is rendered by Graphviz, which must accept it and draw every
//! node and arrow; the Mermaid output is read by Mermaid's own parser (the npm package, under
//! Node with jsdom, installed under `target/` on first use), which must find exactly the nodes,
//! labels, classes and arrows drawn.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::common::{code, repo, run, stderr, stdout, tempdir, tollgate};

/// Graphviz's `dot`, installed on first use when missing (CI installs it in `.ci/run`).
fn dot() -> &'static str {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let present = |cmd: &str| {
            Command::new(cmd)
                .arg("-V")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !present("dot") {
            let out = Command::new("apt-get")
                .args(["install", "-y", "-qq", "graphviz"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .output()
                .expect("run apt-get to install graphviz");
            assert!(
                out.status.success(),
                "graphviz is needed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(present("dot"), "graphviz's dot is not on PATH");
    });
    "dot"
}

/// `text` rendered as SVG by Graphviz; fails on a syntax error or a warning about the input.
fn render_svg(text: &str) -> String {
    let mut child = Command::new(dot())
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dot");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to dot");
    let out = child.wait_with_output().expect("dot ran");
    // Font warnings depend on the machine; anything about the input does not.
    let complaints = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success()
            && !complaints.contains("syntax")
            && !complaints.contains("Error")
            && !complaints.contains("attribute"),
        "dot refused the picture: {complaints}\n{text}"
    );
    String::from_utf8(out.stdout).expect("svg is UTF-8")
}

/// The `<title>`s of the SVG's nodes or of its edges (`from->to`), sorted.
fn svg_titles(svg: &str, class: &str) -> Vec<String> {
    let marker = format!("class=\"{class}\">");
    svg.split(&marker)
        .skip(1)
        .filter_map(|rest| {
            let start = rest.find("<title>")? + "<title>".len();
            let end = rest[start..].find("</title>")? + start;
            Some(
                rest[start..end]
                    .replace("&#45;", "-")
                    .replace("&gt;", ">")
                    .replace("&lt;", "<")
                    .replace("&amp;", "&"),
            )
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The Mermaid and jsdom versions the parser check uses.
const MERMAID_PACKAGES: [&str; 2] = ["mermaid@11.17.2", "jsdom@24.1.3"];

/// Reads a flowchart on stdin with Mermaid's parser and prints its nodes and edges as JSON,
/// the labels decoded as Mermaid renders them (entity codes resolved, `<br>` a newline).
const MERMAID_CHECK: &str = r#"
import { JSDOM } from 'jsdom';
import { readFileSync } from 'node:fs';
const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false });
const named = { quot: '"', lt: '<', gt: '>', amp: '&' };
const decode = (text) => String(text)
  .replace(/\uFB02\u00B0\u00B0(\d+)\u00B6\u00DF/g, (_, n) => String.fromCharCode(Number(n)))
  .replace(/\uFB02\u00B0(\w+)\u00B6\u00DF/g, (_, n) => named[n] ?? `&${n};`)
  .replace(/<br\s*\/?>/g, '\n');
try {
  const diagram = await mermaid.mermaidAPI.getDiagramFromText(readFileSync(0, 'utf8'));
  const db = diagram.db;
  const nodes = [...db.getVertices().values()]
    .map(v => ({ id: v.id, text: decode(v.text), classes: v.classes }));
  const edges = db.getEdges()
    .map(e => ({ from: e.start, to: e.end, text: decode(e.text), style: e.style ?? [] }));
  console.log(JSON.stringify({ type: diagram.type, nodes, edges }));
} catch (e) {
  console.error(e.message);
  process.exit(1);
}
"#;

/// The folder holding Mermaid's parser and the script that runs it, installed with npm on
/// first use (Node and npm come from .ci/run, or are installed here when missing).
fn mermaid_parser() -> &'static Path {
    static READY: OnceLock<PathBuf> = OnceLock::new();
    READY.get_or_init(|| {
        let dir = repo().join("target/mermaid-parser");
        let has = |cmd: &str| {
            Command::new(cmd)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !has("node") || !has("npm") {
            let out = Command::new("apt-get")
                .args(["install", "-y", "-qq", "nodejs", "npm"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .output()
                .expect("run apt-get to install node and npm");
            assert!(
                out.status.success(),
                "node and npm are needed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let installed = dir.join("node_modules/mermaid/package.json").is_file()
            && dir.join("node_modules/jsdom/package.json").is_file();
        if !installed {
            fs::create_dir_all(&dir).expect("mkdir target/mermaid-parser");
            fs::write(dir.join("package.json"), "{\"private\": true}\n").expect("package.json");
            let out = run(Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--silent"])
                .args(MERMAID_PACKAGES)
                .current_dir(&dir));
            assert_eq!(code(&out), 0, "npm install: {}", stderr(&out));
        }
        fs::write(dir.join("check.mjs"), MERMAID_CHECK).expect("check.mjs");
        dir
    })
}

/// What Mermaid's parser reads in `text`: `{type, nodes: [{id, text, classes}], edges:
/// [{from, to, text, style}]}`; fails if Mermaid refuses it.
fn mermaid_parse(text: &str) -> serde_json::Value {
    let dir = mermaid_parser();
    let mut child = Command::new("node")
        .arg(dir.join("check.mjs"))
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start node");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to node");
    let out = child.wait_with_output().expect("node ran");
    assert!(
        out.status.success(),
        "Mermaid refused the picture: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the parser's JSON")
}

/// The parsed nodes as (id, text, classes joined).
fn mermaid_nodes(parsed: &serde_json::Value) -> Vec<(String, String, String)> {
    parsed["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            let classes: Vec<&str> = n["classes"]
                .as_array()
                .expect("classes")
                .iter()
                .filter_map(|c| c.as_str())
                .collect();
            (
                n["id"].as_str().expect("id").to_owned(),
                n["text"].as_str().expect("text").to_owned(),
                classes.join(" "),
            )
        })
        .collect()
}

/// The parsed edges as (from, to, label, styled).
fn mermaid_edges(parsed: &serde_json::Value) -> Vec<(String, String, String, bool)> {
    parsed["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            (
                e["from"].as_str().expect("from").to_owned(),
                e["to"].as_str().expect("to").to_owned(),
                e["text"].as_str().expect("text").to_owned(),
                e["style"].as_array().is_some_and(|s| !s.is_empty()),
            )
        })
        .collect()
}

fn sorted(items: impl IntoIterator<Item = impl ToString>) -> Vec<String> {
    let mut items: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    items.sort();
    items.dedup();
    items
}

fn show(file: &Path, format: &str) -> String {
    let out = run(tollgate()
        .args(["layout", "show", "--format", format])
        .arg(file));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    stdout(&out)
}

/// The arrows of the release layout: (from, to, label) for every MATCH ... FROM.
const RELEASE_EDGES: [(&str, &str, &str); 12] = [
    ("s1", "s2", "src/* (materials → products)"),
    ("s2", "s3", "src/* (products → materials)"),
    ("s3", "s4", "dist/app.tar.gz (products → materials)"),
    ("s3", "s5", "dist/app.tar.gz (products → materials)"),
    ("s3", "s5", "dist/app.tar.gz (products → products)"),
    ("s5", "i1", "dist/* (products → materials)"),
    ("s1", "i1", "src/* (materials → products)"),
    ("s5", "i1", "dist/* (products → products)"),
    ("s5", "i2", "dist/* (products → materials)"),
    ("i1", "i2", "src/* (products → materials)"),
    ("s5", "i2", "dist/* (products → products)"),
    ("i1", "i2", "src/* (products → products)"),
];

const RELEASE_NODES: [(&str, &str); 7] = [
    ("s1", "review"),
    ("s2", "source"),
    ("s3", "build"),
    ("s4", "scan"),
    ("s5", "sign"),
    ("i1", "unpack"),
    ("i2", "checksum"),
];

#[test]
fn layout_show_draws_the_release_layout_as_dot_that_graphviz_renders() {
    let source = repo().join("layouts/release.toml");
    let text = show(&source, "dot");
    let svg = render_svg(&text);
    let nodes = svg_titles(&svg, "node");
    assert_eq!(nodes, sorted(RELEASE_NODES.map(|(id, _)| id)), "{text}");
    let edges = svg_titles(&svg, "edge");
    assert_eq!(
        edges,
        sorted(RELEASE_EDGES.map(|(from, to, _)| format!("{from}->{to}"))),
        "{text}"
    );
    // Twelve arrows, some between the same two nodes.
    assert_eq!(svg.matches("class=\"edge\"").count(), 12, "{svg}");
    for (_, _, label) in RELEASE_EDGES {
        assert!(
            svg.contains(&label.replace('>', "&gt;")),
            "{label} in {svg}"
        );
    }
    // Functionaries by key file name (a source names them), thresholds, inspection commands.
    assert!(
        text.contains(
            "s1 [label=\"review\\nstep: 2 of 2 key(s) must sign\\ntest-only-alice.pub, \
             test-only-bob.pub\"];"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "i1 [label=\"unpack\\ninspection: runs tar -xzf dist/app.tar.gz\", style=\"rounded\"];"
        ),
        "{text}"
    );
    // A built layout has no file names: its keys are shown by keyid.
    let built = show(&repo().join("layouts/release.layout"), "dot");
    assert!(!built.contains("test-only-alice.pub"), "{built}");
    assert!(
        built.contains("review\\nstep: 2 of 2 key(s) must sign\\n"),
        "{built}"
    );
    render_svg(&built);
}

#[test]
fn layout_show_draws_the_release_layout_as_mermaid_with_every_step_and_match() {
    let text = show(&repo().join("layouts/release.toml"), "mermaid");
    assert!(text.starts_with("flowchart TD\n"), "{text}");
    for (id, name) in RELEASE_NODES {
        let open = if id.starts_with('s') { "[\"" } else { "([\"" };
        assert_eq!(
            text.matches(&format!("\n  {id}{open}{name}<br/>")).count(),
            1,
            "{id} {name}: {text}"
        );
    }
    let edges: Vec<&str> = text.lines().filter(|l| l.contains("-->")).collect();
    let expected: Vec<String> = RELEASE_EDGES
        .iter()
        .map(|(from, to, label)| format!("  {from} -->|\"{label}\"| {to}"))
        .collect();
    assert_eq!(edges, expected, "{text}");
    // Nothing is coloured when nothing was verified.
    assert!(!text.contains("classDef"), "{text}");

    // Mermaid's parser reads the same nodes and arrows.
    let parsed = mermaid_parse(&text);
    assert_eq!(parsed["type"], "flowchart-v2");
    let nodes = mermaid_nodes(&parsed);
    assert_eq!(
        nodes.iter().map(|n| n.0.as_str()).collect::<Vec<_>>(),
        RELEASE_NODES.map(|(id, _)| id)
    );
    assert_eq!(
        nodes[0].1,
        "review\nstep: 2 of 2 key(s) must sign\ntest-only-alice.pub, test-only-bob.pub"
    );
    assert_eq!(
        mermaid_edges(&parsed),
        RELEASE_EDGES.map(|(from, to, label)| (from.into(), to.into(), label.into(), false))
    );
}

#[test]
fn labels_holding_quotes_brackets_and_newlines_stay_inside_their_label() {
    let dir = tempdir();
    let key = dir.path().join("k.pub");
    fs::copy(repo().join("keys-example/test-only-alice.pub"), &key).expect("copy key");
    let source = dir.path().join("layout.toml");
    fs::write(
        &source,
        r#"expires = "90d"
[[step]]
name = "make"
functionaries = ["k.pub"]
expected_materials = ["DISALLOW *"]
expected_products = [["CREATE", "a\"]; b -> x [[]label=\"y"], "DISALLOW *"]
[[inspection]]
name = "look"
run = ["sh", "-c", "echo \"}\"]\nclassDef x; s9[x] #1; |z|"]
expected_materials = [["MATCH", "a\"]|\n<b>#35;`c`", "WITH", "PRODUCTS", "FROM", "make"], "DISALLOW *"]
expected_products = ["DISALLOW *"]
"#,
    )
    .expect("write");
    // DOT: Graphviz reads it, with exactly the two nodes and the one arrow.
    let text = show(&source, "dot");
    let svg = render_svg(&text);
    assert_eq!(svg_titles(&svg, "node"), ["i1", "s1"], "{text}");
    assert_eq!(svg_titles(&svg, "edge"), ["s1->i1"], "{text}");
    assert!(
        text.contains(r#"label="a\"]|\\u{a}<b>#35;`c` (products → materials)""#),
        "{text}"
    );
    assert!(
        text.contains(r#"runs sh -c echo \"}\"]\nclassDef x; s9[x] #1; |z|""#),
        "{text}"
    );
    // Mermaid: the same text as entity codes, and nothing outside the labels.
    let text = show(&source, "mermaid");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[1].starts_with("  s1[\"make<br/>"), "{text}");
    assert_eq!(
        lines[2],
        "  i1([\"look<br/>inspection: runs sh -c echo #quot;}#quot;]<br/>classDef x; s9[x] \
         #35;1; #124;z#124;\"])",
        "{text}"
    );
    assert_eq!(
        lines[3],
        "  s1 -->|\"a#quot;]#124;\\u{a}#lt;b#gt;#35;35;#96;c#96; (products → materials)\"| i1",
        "{text}"
    );
    // Mermaid reads two nodes and one arrow, each label exactly as written.
    let parsed = mermaid_parse(&text);
    let nodes = mermaid_nodes(&parsed);
    assert_eq!(nodes.len(), 2, "{parsed}");
    assert_eq!(
        nodes[1].1,
        "look\ninspection: runs sh -c echo \"}\"]\nclassDef x; s9[x] #1; |z|"
    );
    assert_eq!(
        mermaid_edges(&parsed),
        [(
            "s1".into(),
            "i1".into(),
            "a\"]|\\u{a}<b>#35;`c` (products → materials)".into(),
            false
        )]
    );
}

/// The demo's chain, kept, and a buyer's folder whose tarball the attacker replaced (with a
/// checksum to match): verification fails at the unpack inspection's materials.
fn tampered(dir: &Path) -> (PathBuf, PathBuf) {
    let kept = dir.join("demo");
    let out = run(tollgate().args(["demo", "--keep"]).arg(&kept));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let received = dir.join("received");
    fs::create_dir_all(received.join("dist")).expect("mkdir");
    let tar = run(Command::new("tar")
        .arg("-czf")
        .arg(received.join("dist/app.tar.gz"))
        .arg("src")
        .current_dir(kept.join("attacker")));
    assert_eq!(code(&tar), 0, "{}", stderr(&tar));
    let sum = run(Command::new("sh")
        .args(["-c", "sha256sum dist/app.tar.gz > dist/app.tar.gz.sha256"])
        .current_dir(&received));
    assert_eq!(code(&sum), 0, "{}", stderr(&sum));
    (kept, received)
}

fn verify_picture(kept: &Path, workdir: &Path, format: &str) -> std::process::Output {
    run(tollgate()
        .args(["verify", "--format", format, "--layout"])
        .arg(kept.join("root.layout"))
        .arg("--layout-key")
        .arg(kept.join("owner.pub"))
        .arg("--link-dir")
        .arg(kept.join("links"))
        .arg("--workdir")
        .arg(workdir))
}

#[test]
fn verify_draws_the_failing_inspection_and_its_rule_red_and_what_passed_green() {
    let dir = tempdir();
    let (kept, received) = tampered(dir.path());

    let out = verify_picture(&kept, &received, "mermaid");
    let text = stdout(&out);
    assert_eq!(code(&out), 1, "{text}{}", stderr(&out));
    assert!(
        stderr(&out).contains("verification FAILED: dist/app.tar.gz is not the file")
            && stderr(&out).contains("inspection unpack, expected_materials rule 2"),
        "{}",
        stderr(&out)
    );
    assert!(text.contains("\n  class s1,s2,s3,s4,s5 passed\n"), "{text}");
    assert!(text.contains("\n  class i1 failed\n"), "{text}");
    assert!(text.contains("\n  class i2 notreached\n"), "{text}");
    assert!(
        text.contains("classDef failed fill:#fce8e6,stroke:#d93025"),
        "{text}"
    );
    assert!(
        text.contains("FAILED<br/>refused by expected_materials rule 2: DISALLOW *<br/>"),
        "{text}"
    );
    // The arrow of the MATCH that should have accepted the refused tarball: sign's products
    // into unpack's materials, the sixth arrow (from 0: 5).
    let edges: Vec<&str> = text.lines().filter(|l| l.contains("-->")).collect();
    assert_eq!(
        edges[5], "  s5 -->|\"dist/* (products → materials)\"| i1",
        "{text}"
    );
    let styled: Vec<&str> = text.lines().filter(|l| l.contains("linkStyle")).collect();
    assert_eq!(
        styled,
        ["  linkStyle 5 stroke:#d93025,stroke-width:3px,color:#a50e0e"],
        "{text}"
    );
    // As Mermaid reads it: the classes on the nodes, the style on that one arrow.
    let parsed = mermaid_parse(&text);
    let classes: Vec<(String, String)> = mermaid_nodes(&parsed)
        .into_iter()
        .map(|(id, _, class)| (id, class))
        .collect();
    let expected: Vec<(String, String)> = RELEASE_NODES
        .iter()
        .map(|(id, _)| {
            let class = match *id {
                "i1" => "failed",
                "i2" => "notreached",
                _ => "passed",
            };
            (id.to_string(), class.to_owned())
        })
        .collect();
    assert_eq!(classes, expected);
    let edges = mermaid_edges(&parsed);
    let red: Vec<usize> = (0..edges.len()).filter(|&i| edges[i].3).collect();
    assert_eq!(red, [5], "{parsed}");

    // The same in DOT, which Graphviz renders.
    let out = verify_picture(&kept, &received, "dot");
    let text = stdout(&out);
    assert_eq!(code(&out), 1, "{text}");
    let svg = render_svg(&text);
    assert_eq!(
        svg_titles(&svg, "node"),
        sorted(RELEASE_NODES.map(|(id, _)| id))
    );
    assert!(
        text.contains(
            "s5 -> i1 [label=\"dist/* (products → materials)\", color=\"#d93025\", \
             fontcolor=\"#a50e0e\", penwidth=3];"
        ),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("  i1 [")
            && l.contains("penwidth=3")
            && l.contains("fillcolor=\"#fce8e6\"")),
        "{text}"
    );

    // What was shipped: everything green, exit 0.
    let honest = dir.path().join("honest");
    fs::create_dir_all(honest.join("dist")).expect("mkdir");
    for file in ["app.tar.gz", "app.tar.gz.sha256"] {
        fs::copy(
            kept.join("project/dist").join(file),
            honest.join("dist").join(file),
        )
        .expect("copy");
    }
    let out = verify_picture(&kept, &honest, "mermaid");
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}{}", stderr(&out));
    assert!(
        text.contains("\n  class s1,s2,s3,s4,s5,i1,i2 passed\n"),
        "{text}"
    );
    assert!(
        !text.contains("failed") && !text.contains("linkStyle"),
        "{text}"
    );
}

#[test]
fn verify_draws_no_step_of_a_layout_whose_signature_fails() {
    let dir = tempdir();
    let (kept, received) = tampered(dir.path());
    let out = run(tollgate()
        .args(["verify", "--format", "mermaid", "--layout"])
        .arg(kept.join("root.layout"))
        .arg("--layout-key")
        .arg(repo().join("keys-example/test-only-alice.pub"))
        .arg("--link-dir")
        .arg(kept.join("links"))
        .arg("--workdir")
        .arg(&received));
    let text = stdout(&out);
    assert_eq!(code(&out), 1, "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[1].starts_with("  L0{{\"layout<br/>FAILED<br/>layout signature: "),
        "{text}"
    );
    assert_eq!(lines[3], "  class L0 failed", "{text}");
    let parsed = mermaid_parse(&text);
    let nodes = mermaid_nodes(&parsed);
    assert_eq!(nodes.len(), 1, "{parsed}");
    assert!(
        nodes[0].1.starts_with("layout\nFAILED\nlayout signature: "),
        "{parsed}"
    );
    assert_eq!(nodes[0].2, "failed");
}

#[test]
fn the_readme_shows_the_release_layout_as_the_command_draws_it() {
    let readme = fs::read_to_string(repo().join("README.md")).expect("read README.md");
    let start = readme
        .find("```mermaid\n")
        .expect("README.md has a ```mermaid block")
        + "```mermaid\n".len();
    let end = readme[start..].find("```").expect("the block closes") + start;
    let drawn = show(&repo().join("layouts/release.toml"), "mermaid");
    assert_eq!(
        &readme[start..end],
        drawn,
        "README.md's picture is out of date: paste `tollgate layout show \
         layouts/release.toml --format mermaid` into it"
    );
}

#[test]
fn verify_draws_a_step_short_of_its_threshold_red_and_the_rest_unfinished() {
    let dir = tempdir();
    let (kept, _) = tampered(dir.path());
    let shipped = dir.path().join("shipped");
    fs::create_dir_all(shipped.join("dist")).expect("mkdir");
    for file in ["app.tar.gz", "app.tar.gz.sha256"] {
        fs::copy(
            kept.join("project/dist").join(file),
            shipped.join("dist").join(file),
        )
        .expect("copy");
    }
    // The scan step's link is lost.
    for entry in fs::read_dir(kept.join("links")).expect("links") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if name.starts_with("scan.") {
            fs::remove_file(&path).expect("remove");
        }
    }
    let out = verify_picture(&kept, &shipped, "mermaid");
    let text = stdout(&out);
    assert_eq!(code(&out), 1, "{text}{}", stderr(&out));
    assert!(text.contains("\n  class s4 failed\n"), "{text}");
    assert!(
        text.contains("\n  class s1,s2,s3,s5,i1,i2 notreached\n"),
        "{text}"
    );
    let parsed = mermaid_parse(&text);
    let nodes = mermaid_nodes(&parsed);
    let scan = &nodes[3];
    assert_eq!((scan.0.as_str(), scan.2.as_str()), ("s4", "failed"));
    assert!(
        scan.1.contains("\nFAILED\n") && scan.1.contains("scan"),
        "{}",
        scan.1
    );
    // Steps whose links counted say so, but not that they passed.
    let review = &nodes[0];
    assert!(
        review
            .1
            .contains("; rules not checked\nnot fully checked: verification stopped first"),
        "{}",
        review.1
    );
    assert!(!text.contains("passed"), "{text}");
}
