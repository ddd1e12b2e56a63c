//! Issue 15: steps that expect signed attestations (ITE-10/11) with CEL rules over them, in the
//! layout source, the signed layout, `layout check`, and verification.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::common::{code, run, stderr, stdout, tempdir, test_layout, tollgate};

const SBOM_LAYOUT: &str = r#"
expires = "30d"
[[step]]
name = "build"
functionaries = ["keys/alice.pub"]
expected_materials = ["DISALLOW *"]
expected_products = ["CREATE dist/app.tar.gz", "DISALLOW *"]
[[step]]
name = "scan"
functionaries = ["keys/alice.pub"]
link = false
expected_materials = ["MATCH dist/app.tar.gz WITH PRODUCTS FROM build", "DISALLOW *"]
expected_products = ["DISALLOW *"]
[[step.predicate]]
type = "https://cyclonedx.org/bom"
rules = [
  "predicate.components.all(c, c.name != 'left-pad')",
  { rule = "size(predicate.components) > 0", debug = "the SBOM lists no component", warn = true, allow_if_no_claim = true },
]
"#;

/// The signed layout's payload.
fn payload(layout: &Path) -> Value {
    let envelope: Value = serde_json::from_slice(&fs::read(layout).expect("read")).expect("json");
    envelope["signed"].clone()
}

#[test]
fn issue15_a_step_expecting_predicates_compiles_to_the_ite_field_names() {
    let dir = tempdir();
    let t = test_layout(dir.path(), SBOM_LAYOUT);
    let signed = payload(&t.layout);
    let build = &signed["steps"][0];
    assert!(
        build.get("expected_predicates").is_none(),
        "a step without predicates is written as the reference writes it: {build}"
    );
    let scan = &signed["steps"][1];
    assert_eq!(
        scan["pubkeys"],
        serde_json::json!([]),
        "link = false: no keys of its own"
    );
    assert_eq!(scan["threshold"], 0);
    let predicate = &scan["expected_predicates"][0];
    assert_eq!(predicate["predicate_type"], "https://cyclonedx.org/bom");
    assert_eq!(predicate["threshold"], 1);
    // The functionaries default to the step's: alice's keyid, as in the build step.
    assert_eq!(predicate["functionaries"], build["pubkeys"]);
    let rules = predicate["expected_attributes"].as_array().expect("rules");
    assert_eq!(rules.len(), 2);
    assert_eq!(
        rules[0]["rule"],
        "predicate.components.all(c, c.name != 'left-pad')"
    );
    assert_eq!(rules[0]["warn"], false);
    assert!(rules[0].get("debug").is_none());
    assert_eq!(rules[1]["debug"], "the SBOM lists no component");
    assert_eq!(rules[1]["warn"], true);
    assert_eq!(rules[1]["allow_if_no_claim"], true);
}

#[test]
fn issue15_layout_check_warns_that_the_reference_cannot_read_predicates() {
    let dir = tempdir();
    test_layout(dir.path(), SBOM_LAYOUT);
    let out = run(tollgate()
        .args(["layout", "check"])
        .arg(dir.path().join("layout.toml")));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        text.contains("step scan expects attestations")
            && text.contains("in-toto-verify 3.1.0 cannot read this layout"),
        "{text}"
    );
    // Without predicates, no such warning.
    let plain = tempdir();
    let source = SBOM_LAYOUT
        .split("[[step]]\nname = \"scan\"")
        .next()
        .expect("first part");
    test_layout(plain.path(), source);
    let out = run(tollgate()
        .args(["layout", "check"])
        .arg(plain.path().join("layout.toml")));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!text.contains("expected_predicates"), "{text}");
}

#[test]
fn issue15_bad_predicate_tables_are_refused_with_their_place() {
    let dir = tempdir();
    let keys = dir.path().join("keys");
    fs::create_dir_all(&keys).expect("mkdir");
    let out = run(tollgate().args(["keygen", "-o"]).arg(keys.join("alice")));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let cases = [
        (
            SBOM_LAYOUT.replace("type = \"https://cyclonedx.org/bom\"\n", "type = \"https://cyclonedx.org/bom\"\nthreshold = 2\n"),
            "threshold 2 must be from 1 to its 1 functionaries",
        ),
        (
            SBOM_LAYOUT.replace("[[step.predicate]]\ntype = \"https://cyclonedx.org/bom\"\nrules = [\n  \"predicate.components.all(c, c.name != 'left-pad')\",\n  { rule = \"size(predicate.components) > 0\", debug = \"the SBOM lists no component\", warn = true, allow_if_no_claim = true },\n]\n", ""),
            "link = false needs at least one [[step.predicate]]",
        ),
        (
            SBOM_LAYOUT.replace("[[step.predicate]]", "[step.predicate]"),
            "[[step.predicate]]",
        ),
        (
            SBOM_LAYOUT.replace("warn = true,", "warn = true, severity = 3,"),
            "severity",
        ),
    ];
    for (source, expected) in cases {
        assert_ne!(source, SBOM_LAYOUT, "the case changes the source");
        let path = dir.path().join("layout.toml");
        fs::write(&path, &source).expect("write");
        let out = run(tollgate()
            .args(["layout", "build"])
            .arg(&path)
            .arg("--key")
            .arg(keys.join("alice"))
            .arg("-o")
            .arg(dir.path().join("out.layout")));
        assert_eq!(code(&out), 2, "{source}\n{}", stderr(&out));
        assert!(
            stderr(&out).contains(expected),
            "{expected}: {}",
            stderr(&out)
        );
        assert!(!dir.path().join("out.layout").exists(), "nothing written");
    }
}
