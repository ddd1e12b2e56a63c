//! Unit tests of CEL rules: the language on, numbers, outcomes, parameters and bounds.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;

fn statement(predicate: Value) -> Value {
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "dist/app.tar.gz", "digest": {"sha256": "ab"}}],
        "predicateType": "https://cyclonedx.org/bom",
        "predicate": predicate,
    })
}

fn eval_with(rule: &str, predicate: Value, limits: &Limits) -> Outcome {
    let rule = CelRule::compile(rule, &BTreeMap::new(), limits).expect("compiles");
    rule.evaluate(&CelInput::new(&statement(predicate)), limits)
}

fn eval(rule: &str, predicate: Value) -> Outcome {
    eval_with(rule, predicate, &Limits::default())
}

fn compile_err(rule: &str, limits: &Limits) -> CelError {
    CelRule::compile(rule, &BTreeMap::new(), limits).expect_err("refused")
}

#[test]
fn compiled_rules_and_inputs_are_send_and_sync() {
    fn is<T: Send + Sync>() {}
    is::<CelRule>();
    is::<CelInput>();
}

#[test]
fn stdlib_macros_and_extensions_are_on() {
    let p = json!({"xs": [1, 2, 3], "s": "a,b,c", "m": {"a": 1, "b": [true]}});
    for rule in [
        // Shared input containers behave as the crate's own lists and maps.
        "predicate.xs == [1, 2, 3] && [1, 2, 3] == predicate.xs",
        "predicate.m == {'a': 1, 'b': [true]} && {'b': [true], 'a': 1} == predicate.m",
        "predicate.xs + [4] == [1, 2, 3, 4] && predicate.xs[0] == 1 && 2 in predicate.xs",
        "'a' in predicate.m && predicate.m['b'][0] && size(predicate.m) == 2",
        "predicate.xs.map(x, [x]).flatten() == predicate.xs && predicate.xs.reverse()[0] == 3",
        "type(predicate.xs) == list && type(predicate.m) == map",
        "'ABC'.lowerAscii() == 'abc'",
        "math.greatest(1, 2) == 2",
        "math.least([3, 1, 2]) == 1",
        "predicate.s.split(',').join('-') == 'a-b-c'",
        "'left-pad'.matches('^left-[a-z]+$')",
        "predicate.xs.all(x, x > 0)",
        "predicate.xs.exists(x, x == 2)",
        "predicate.xs.exists_one(x, x == 3)",
        "predicate.xs.map(x, x * 2) == [2, 4, 6]",
        "predicate.xs.filter(x, x > 1).size() == 2",
        "has(predicate.xs) && !has(predicate.nope)",
        "lists.range(3) == [0, 1, 2]",
        "[3, 1, 2].sort() == [1, 2, 3]",
        "subject[0].name == 'dist/app.tar.gz'",
        "predicateType == 'https://cyclonedx.org/bom'",
    ] {
        assert_eq!(eval(rule, p.clone()), Outcome::True, "{rule}");
    }
    assert_eq!(eval("'abc'.matches('^b')", p), Outcome::False);
}

#[test]
fn realistic_nested_rules_fit_the_depth_cap() {
    let vulns = json!({"scanner": {"result": [
        {"id": "CVE-1", "vulnerabilities": [{"severity": [{"method": "CVSSv3", "score": "9.8"}]}]},
        {"id": "CVE-2", "vulnerabilities": [{"severity": [{"method": "CVSSv3", "score": 5}]}]},
    ]}});
    let rule = "predicate.scanner.result.all(r, r.vulnerabilities.all(v, v.severity.all(s, \
                s.method != 'CVSSv3' || double(s.score) < 7.0)))";
    assert_eq!(eval(rule, vulns.clone()), Outcome::False);
    let rule = "predicate.scanner.result.filter(r, r.vulnerabilities.exists(v, \
                v.severity.exists(s, double(s.score) >= 7.0))).map(r, r.id) == ['CVE-1']";
    assert_eq!(eval(rule, vulns), Outcome::True);
}

#[test]
fn numbers_compare_whatever_their_json_form() {
    let p: Value = serde_json::from_str(
        r#"{"x": 7.0, "score": 7, "cvss": 7.5, "e": 7e0, "big": 18446744073709551615, "neg": -3}"#,
    )
    .expect("json");
    for rule in [
        "predicate.x == 7",
        "predicate.x == 7.0",
        "7 == predicate.x",
        "predicate.score >= 7.0",
        "predicate.score == 7.0",
        "7.0 <= predicate.score",
        "predicate.cvss > 7",
        "7 < predicate.cvss",
        "predicate.e == 7",
        "type(predicate.e) == int",
        "type(predicate.cvss) == double",
        "type(predicate.big) == double",
        "predicate.big > 9223372036854775807",
        "predicate.neg == -3",
    ] {
        assert_eq!(eval(rule, p.clone()), Outcome::True, "{rule}");
    }
    assert_eq!(eval("predicate.cvss < 7", p), Outcome::False);
}

#[test]
fn outcomes_name_what_happened() {
    let p = json!({"a": {"b": 1}, "n": 3});
    assert_eq!(
        eval("predicate.nope == 1", p.clone()),
        Outcome::NoClaim {
            field: "nope".into()
        }
    );
    assert_eq!(
        eval("predicate.missing.b == 1", p.clone()),
        Outcome::NoClaim {
            field: "missing".into()
        }
    );
    assert_eq!(eval("has(predicate.nope)", p.clone()), Outcome::False);
    let Outcome::Error { message } = eval("predicate.n + 1", p.clone()) else {
        panic!("not an error")
    };
    assert_eq!(message, "the rule returned int, not a boolean");
    let Outcome::Error { message } = eval("predicate.a", p.clone()) else {
        panic!("not an error")
    };
    assert_eq!(message, "the rule returned map, not a boolean");
    let Outcome::Error { message } = eval("predicate.n == 'x' + 1", p.clone()) else {
        panic!("not an error")
    };
    assert!(message.contains("add"), "{message}");
    let Outcome::Error { message } = eval("predicate.n / 0 == 1", p) else {
        panic!("not an error")
    };
    assert!(message.contains("zero"), "{message}");
}

#[test]
fn parameters_are_quoted_literals() {
    let limits = Limits::default();
    let params = BTreeMap::from([
        ("version".to_owned(), "1.2.3".to_owned()),
        (
            "evil".to_owned(),
            "x' || true || '\" || true || \"\\".to_owned(),
        ),
    ]);
    let input = CelInput::new(&statement(json!({"version": "1.2.3"})));
    let rule =
        CelRule::compile("predicate.version == {version}", &params, &limits).expect("compiles");
    assert_eq!(rule.text(), "predicate.version == {version}");
    assert_eq!(rule.evaluate(&input, &limits), Outcome::True);
    // A value cannot inject CEL: it stays one string.
    let rule = CelRule::compile("predicate.version == {evil}", &params, &limits).expect("compiles");
    assert_eq!(rule.evaluate(&input, &limits), Outcome::False);
    let size = format!("{{evil}}.size() == {}", params["evil"].chars().count());
    let rule = CelRule::compile(&size, &params, &limits).expect("compiles");
    assert_eq!(rule.evaluate(&input, &limits), Outcome::True);
    // Braces in strings and map literals are not parameters.
    let rule = CelRule::compile(
        "'aaa'.matches('^a{3}$') && {'k': 1}.k == 1 && '{version}' != {version}",
        &params,
        &limits,
    )
    .expect("compiles");
    assert_eq!(rule.evaluate(&input, &limits), Outcome::True);
    assert_eq!(
        CelRule::compile("predicate.v == {nope}", &params, &limits).expect_err("unknown"),
        CelError::UnknownParam("nope".into())
    );
    assert_eq!(quote("é\n"), "\"\\u00e9\\u000a\"");
    check_syntax("predicate.version == {version}", &limits).expect("placeholders");
}

#[test]
fn compile_errors_name_the_cap_or_position() {
    let limits = Limits::default();
    let Err(CelError::Parse { line, column, .. }) =
        CelRule::compile("predicate.a ==", &BTreeMap::new(), &limits)
    else {
        panic!("not a parse error")
    };
    assert_eq!((line, column), (1, 15));
    let err = compile_err(&"1 == 1 && ".repeat(200_000), &limits);
    assert!(
        matches!(err, CelError::TooLong { len: 2_000_000, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("max_cel_rule_bytes"));
    let nodes = format!("[{}1] == []", "1, ".repeat(600));
    let err = compile_err(&nodes, &limits);
    assert!(matches!(err, CelError::TooManyNodes { .. }), "{err:?}");
    assert!(err.to_string().contains("max_cel_nodes"));
}

#[test]
fn deep_nesting_is_refused_not_crashed() {
    let big = Limits {
        max_cel_rule_bytes: 1 << 20,
        ..Limits::default()
    };
    let parens = format!("{}true{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(matches!(
        compile_err(&parens, &Limits::default()),
        CelError::TooLong { .. }
    ));
    assert!(matches!(
        compile_err(&parens, &big),
        CelError::TooDeep { .. }
    ));
    let lists = format!("{}1{} == 1", "[".repeat(10_000), "]".repeat(10_000));
    assert!(matches!(
        compile_err(&lists, &big),
        CelError::TooDeep { .. }
    ));
    // Nesting the parser does without brackets: a long left-nested sum, a select chain,
    // and negations.
    let sum = format!("1{} == 1", " + 1".repeat(1_000));
    assert!(matches!(
        compile_err(&sum, &Limits::default()),
        CelError::TooDeep { .. }
    ));
    let select = format!("predicate{} == 1", ".a".repeat(2_000));
    assert!(matches!(
        compile_err(&select, &Limits::default()),
        CelError::TooDeep { .. }
    ));
    // Negations: refused, or folded by the parser and then answered correctly.
    let nots = format!("{}true", "!".repeat(3_001));
    match CelRule::compile(&nots, &BTreeMap::new(), &Limits::default()) {
        Ok(rule) => assert_eq!(
            rule.evaluate(&CelInput::new(&statement(Value::Null)), &Limits::default()),
            Outcome::False
        ),
        Err(err) => assert!(
            matches!(
                err,
                CelError::TooDeep { .. } | CelError::TooManyNodes { .. }
            ),
            "{err:?}"
        ),
    }
}

#[test]
fn deep_input_is_an_error_not_a_crash() {
    let mut value = Value::Null;
    for _ in 0..10_000 {
        let mut map = serde_json::Map::new();
        map.insert("a".to_owned(), value);
        value = Value::Object(map);
    }
    let input = CelInput::new(&statement(Value::Null));
    drop(input);
    let mut st = statement(Value::Null);
    st["predicate"] = value;
    let input = CelInput::new(&st);
    let rule = CelRule::compile("has(predicate.a)", &BTreeMap::new(), &Limits::default())
        .expect("compiles");
    let Outcome::Error { message } = rule.evaluate(&input, &Limits::default()) else {
        panic!("not an error")
    };
    assert!(message.contains("deeper than 128"), "{message}");
    // Take the JSON apart iteratively: serde_json drops recursively.
    let mut value = st["predicate"].take();
    while let Value::Object(mut map) = value {
        value = map.remove("a").unwrap_or(Value::Null);
    }
}

/// A CycloneDX-like predicate with `n` components, one of them `left-pad`.
pub(super) fn sbom(n: usize) -> Value {
    let components: Vec<Value> = (0..n)
        .map(|i| {
            let name = if i == n / 2 {
                "left-pad".to_owned()
            } else {
                format!("pkg-{i}")
            };
            json!({
                "type": "library",
                "bom-ref": format!("pkg:npm/{name}@1.{i}.0"),
                "name": name,
                "version": format!("1.{i}.0"),
                "purl": format!("pkg:npm/{name}@1.{i}.0"),
                "licenses": [{"license": {"id": if i % 2 == 0 { "MIT" } else { "Apache-2.0" }}}],
            })
        })
        .collect();
    json!({"bomFormat": "CycloneDX", "specVersion": "1.6",
           "metadata": {"component": {"name": "app", "version": "2.0.0"}},
           "components": components})
}

#[test]
fn quadratic_rules_are_refused_before_running() {
    let limits = Limits::default();
    let input = CelInput::new(&statement(sbom(100_000)));
    let rule = CelRule::compile(
        "predicate.components.all(c, predicate.components.exists(d, d.name == c.name))",
        &BTreeMap::new(),
        &limits,
    )
    .expect("compiles");
    let Outcome::Error { message } = rule.evaluate(&input, &limits) else {
        panic!("not refused")
    };
    assert!(message.contains("max_cel_cost"), "{message}");
    // Building huge values counts too: a list of the whole list per element, strings
    // doubled by nesting, and ranges.
    for hostile in [
        "predicate.components.map(c, predicate.components).size() > 0",
        "predicate.components.map(c, c.name + c.name + c.name).join(predicate.components.map(c, c.name).join()).size() > 0",
        "lists.range(1000000000).size() > 0",
        "lists.range(size(predicate.components)).size() > 0",
        "predicate.components.map(c, c.name).distinct().size() > 0",
    ] {
        let rule = CelRule::compile(hostile, &BTreeMap::new(), &limits).expect("compiles");
        let outcome = rule.evaluate(&input, &limits);
        assert!(
            matches!(&outcome, Outcome::Error { message } if message.contains("max_cel_cost")),
            "{hostile}: {outcome:?}"
        );
    }
    // The same quadratic rule over a small SBOM is fine.
    let small = CelInput::new(&statement(sbom(100)));
    let rule = CelRule::compile(
        "predicate.components.all(c, predicate.components.exists(d, d.name == c.name))",
        &BTreeMap::new(),
        &limits,
    )
    .expect("compiles");
    assert_eq!(rule.evaluate(&small, &limits), Outcome::True);
}

/// Five realistic rules over a 100,000-component SBOM.
pub(super) const FIVE_RULES: [(&str, bool); 5] = [
    (
        "predicate.components.all(c, !(c.name in ['left-pad', 'event-stream']))",
        false,
    ),
    (
        "predicate.components.all(c, c.licenses.all(l, l.license.id in ['MIT', 'Apache-2.0']))",
        true,
    ),
    (
        "predicate.components.all(c, c.name.matches('^[a-z0-9-]+$'))",
        true,
    ),
    (
        "size(predicate.components) >= 1000 && predicate.components.filter(c, c.type == 'library').size() == size(predicate.components)",
        true,
    ),
    (
        "predicate.metadata.component.version.startsWith('2.') && predicate.components.exists(c, c.version.split('.').size() == 3)",
        true,
    ),
];

#[test]
fn linear_rules_over_a_large_sbom_evaluate() {
    let limits = Limits::default();
    let input = CelInput::new(&statement(sbom(100_000)));
    for (rule, expected) in FIVE_RULES {
        let compiled = CelRule::compile(rule, &BTreeMap::new(), &limits).expect("compiles");
        let expected = if expected {
            Outcome::True
        } else {
            Outcome::False
        };
        assert_eq!(compiled.evaluate(&input, &limits), expected, "{rule}");
    }
    // map over every component stays linear.
    let rule = CelRule::compile(
        "predicate.components.map(c, c.name).size() == 100000",
        &BTreeMap::new(),
        &limits,
    )
    .expect("compiles");
    assert_eq!(rule.evaluate(&input, &limits), Outcome::True);
}
