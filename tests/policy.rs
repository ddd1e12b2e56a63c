//! CEL rules over attestations through the public API: the rules a layout would carry, over a
//! 100,000-component SBOM, and the hostile ones that must end quickly with a clear error.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tollgate::limits::Limits;
use tollgate::policy::cel::{CelError, CelInput, CelRule, Outcome, check_syntax};

fn statement(predicate: Value) -> Value {
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "dist/app.tar.gz", "digest": {"sha256": "ab"},
                     "annotations": {"tollgate.dev/step": "scan"}}],
        "predicateType": "https://cyclonedx.org/bom",
        "predicate": predicate,
    })
}

/// A CycloneDX-like SBOM with `n` components; component `n / 2` is `left-pad`, licensed
/// GPL-3.0.
fn sbom(n: usize) -> Value {
    let components: Vec<Value> = (0..n)
        .map(|i| {
            let (name, license) = if i == n / 2 {
                ("left-pad".to_owned(), "GPL-3.0-only")
            } else {
                (
                    format!("pkg-{i}"),
                    if i % 2 == 0 { "MIT" } else { "Apache-2.0" },
                )
            };
            json!({
                "type": "library",
                "bom-ref": format!("pkg:npm/{name}@1.{i}.0"),
                "name": name,
                "version": format!("1.{i}.0"),
                "purl": format!("pkg:npm/{name}@1.{i}.0"),
                "licenses": [{"license": {"id": license}}],
            })
        })
        .collect();
    json!({"bomFormat": "CycloneDX", "specVersion": "1.6",
           "metadata": {"component": {"name": "app", "version": "2.0.0"}},
           "components": components})
}

fn compile(rule: &str) -> CelRule {
    CelRule::compile(rule, &BTreeMap::new(), &Limits::default()).expect("compiles")
}

#[test]
fn five_rules_over_a_100k_component_sbom() {
    let limits = Limits::default();
    let input = CelInput::new(&statement(sbom(100_000)));
    let cases = [
        // deny-list: left-pad is in
        (
            "predicate.components.all(c, !(c.name in ['left-pad', 'event-stream']))",
            Outcome::False,
        ),
        (
            "predicate.components.all(c, !(c.name in ['event-stream']))",
            Outcome::True,
        ),
        // license allow-list through each component's licenses
        (
            "predicate.components.all(c, c.licenses.all(l, l.license.id in ['MIT', 'Apache-2.0']))",
            Outcome::False,
        ),
        (
            "predicate.components.all(c, c.licenses.all(l, l.license.id in ['MIT', 'Apache-2.0', 'GPL-3.0-only']))",
            Outcome::True,
        ),
        // name regex
        (
            "predicate.components.all(c, c.name.matches('^[a-z0-9-]+$'))",
            Outcome::True,
        ),
        // size
        ("size(predicate.components) <= 100000", Outcome::True),
        // version string check
        (
            "predicate.metadata.component.version.startsWith('2.')",
            Outcome::True,
        ),
        (
            "predicate.components.map(c, c.name).size() == 100000",
            Outcome::True,
        ),
    ];
    for (rule, expected) in cases {
        assert_eq!(compile(rule).evaluate(&input, &limits), expected, "{rule}");
    }
}

#[test]
fn quadratic_exists_over_100k_components_is_refused_naming_the_cap() {
    let limits = Limits::default();
    let input = CelInput::new(&statement(sbom(100_000)));
    let rule =
        compile("predicate.components.all(c, predicate.components.exists(d, d.name == c.name))");
    let Outcome::Error { message } = rule.evaluate(&input, &limits) else {
        panic!("not refused")
    };
    assert!(message.contains("max_cel_cost"), "{message}");
}

#[test]
fn hostile_rule_text_is_a_compile_error() {
    let limits = Limits::default();
    let deep = format!("{}true{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(matches!(
        CelRule::compile(&deep, &BTreeMap::new(), &limits),
        Err(CelError::TooLong { .. })
    ));
    let roomy = Limits {
        max_cel_rule_bytes: 1 << 21,
        ..Limits::default()
    };
    assert!(matches!(
        CelRule::compile(&deep, &BTreeMap::new(), &roomy),
        Err(CelError::TooDeep { .. })
    ));
    let huge = "true && ".repeat(131_072) + "true";
    let err = CelRule::compile(&huge, &BTreeMap::new(), &limits).expect_err("1 MB");
    assert!(err.to_string().contains("max_cel_rule_bytes"), "{err}");
    assert!(matches!(
        check_syntax("predicate.a ==", &limits),
        Err(CelError::Parse { line: 1, .. })
    ));
}

#[test]
fn outcomes_and_parameters() {
    let limits = Limits::default();
    let input = CelInput::new(&statement(json!({"cvss": 7.5, "score": 7, "x": 7.0})));
    assert_eq!(
        compile("predicate.cvss > 7 && predicate.score >= 7.0 && predicate.x == 7")
            .evaluate(&input, &limits),
        Outcome::True
    );
    assert_eq!(
        compile("predicate.nope").evaluate(&input, &limits),
        Outcome::NoClaim {
            field: "nope".into()
        }
    );
    assert_eq!(
        compile("'1'").evaluate(&input, &limits),
        Outcome::Error {
            message: "the rule returned string, not a boolean".into()
        }
    );
    let params = BTreeMap::from([("step".to_owned(), "scan".to_owned())]);
    let rule = CelRule::compile(
        "subject.all(s, s.annotations['tollgate.dev/step'] == {step})",
        &params,
        &limits,
    )
    .expect("compiles");
    assert_eq!(rule.evaluate(&input, &limits), Outcome::True);
}
