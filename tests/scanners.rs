//! Issue 15 with real generators: Syft's CycloneDX 1.6 and SPDX 2.3 SBOMs of a sample project
//! with a real lock file, and cargo-audit's report over a RustSec advisory subset, each signed
//! with `tollgate attest` and gated by CEL rules in the layout: rules that pass, and the same
//! kinds of rules failing on the same reports.

use serde_json::Value;

use crate::predicates::Chain;
use crate::tools::{CYCLONEDX, SPDX, cargo_audit, sample_project, syft};

/// cargo-audit's JSON report has no predicate type of its own: this one names it.
const CARGO_AUDIT_TYPE: &str = "https://rustsec.org/cargo-audit/report/v1";

/// A chain whose scan step (attestations only) expects the three reports with `rules`, each a
/// `(predicate short name or URI, TOML rules list)`.
fn layout(predicates: &[(&str, &str)]) -> String {
    let mut source = String::from(
        r#"
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
"#,
    );
    for (kind, rules) in predicates {
        source.push_str(&format!(
            "[[step.predicate]]\ntype = \"{kind}\"\nrules = {rules}\n"
        ));
    }
    source
}

/// Attests the three real reports for the scan step.
fn attest_reports(chain: &Chain, kinds: &[&str]) {
    for kind in kinds {
        let (bytes, predicate_type) = match *kind {
            "cyclonedx" => (syft(&sample_project(), CYCLONEDX), "cyclonedx"),
            "spdx" => (syft(&sample_project(), SPDX), "spdx"),
            _ => (cargo_audit(&sample_project()), CARGO_AUDIT_TYPE),
        };
        chain.attest_as(
            "scan",
            &chain.layout.alice,
            predicate_type,
            &bytes,
            "dist/app.tar.gz",
        );
    }
}

fn refused_rule(report: &Value) -> (Option<u64>, String) {
    (
        report["failure"]["predicate"]["rule"].as_u64(),
        report["failure"]["predicate"]["predicate_type"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[test]
fn issue15_syft_sboms_pass_a_deny_list_and_fail_when_a_locked_crate_is_denied() {
    let passing = layout(&[
        (
            "cyclonedx",
            r#"[
  "predicate.specVersion == '1.6'",
  { rule = "predicate.components.all(c, !(c.name in ['openssl', 'left-pad']))", debug = "a denied crate is locked" },
  { rule = "predicate.components.filter(c, c.purl.startsWith('pkg:cargo/')).size() >= 10", debug = "the SBOM lists too few crates" },
  { rule = "predicate.components.exists(c, c.name == 'regex' && c.version.matches('^1[.][0-9]+[.][0-9]+$'))" },
]"#,
        ),
        (
            "spdx",
            r#"[
  "predicate.spdxVersion == 'SPDX-2.3'",
  { rule = "predicate.packages.all(p, p.licenseConcluded in ['MIT', 'Apache-2.0', 'MIT OR Apache-2.0', 'NOASSERTION'])", debug = "a license is not allowed" },
]"#,
        ),
    ]);
    let chain = Chain::new(&passing);
    attest_reports(&chain, &["cyclonedx", "spdx"]);
    let (code, report, err) = chain.verify(&[]);
    assert_eq!(code, 0, "{report}\n{err}");
    let predicates = report["steps"][1]["predicates"]
        .as_array()
        .expect("predicates");
    assert_eq!(predicates.len(), 2);

    // The same SBOMs, a deny list naming a crate the lock file holds (time 0.1.43).
    let denying = passing.replace("['openssl', 'left-pad']", "['openssl', 'time']");
    let chain = Chain::new(&denying);
    attest_reports(&chain, &["cyclonedx", "spdx"]);
    let (code, report, _) = chain.verify(&[]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(
        refused_rule(&report),
        (Some(2), "https://cyclonedx.org/bom".to_owned())
    );
    assert_eq!(
        report["failure"]["predicate"]["debug"],
        "a denied crate is locked"
    );
}

#[test]
fn issue15_a_license_allow_list_fails_closed_on_an_sbom_without_licenses() {
    // Syft offline finds no license for a crate: CycloneDX components carry no `licenses`. A
    // rule reading them fails closed, unless it says a missing claim is acceptable.
    let rule =
        "predicate.components.all(c, c.licenses.all(l, l.license.id in ['MIT', 'Apache-2.0']))";
    for (options, expected, outcome) in [
        ("", 1, "no_claim"),
        (", allow_if_no_claim = true", 0, "no_claim"),
    ] {
        let source = layout(&[(
            "cyclonedx",
            &format!("[{{ rule = \"{rule}\", debug = \"a license is not allowed\"{options} }}]"),
        )]);
        let chain = Chain::new(&source);
        attest_reports(&chain, &["cyclonedx"]);
        let (code, report, err) = chain.verify(&[]);
        assert_eq!(code, expected, "{options}: {report}\n{err}");
        let rules = &report["steps"][1]["predicates"][0]["attestations"][0]["rules"];
        assert_eq!(rules[0]["outcome"], outcome, "{report}");
    }
}

#[test]
fn issue15_cargo_audit_gates_vulnerabilities_by_id_and_by_cvss_impact() {
    // The sample lock file has three advisories: regex (A:H), smallvec (C:H/I:H/A:H), time
    // (local, A:H). cargo-audit gives CVSS vectors, not scores: severity is read from them.
    let gate = |ignored: &str, severity: &str| {
        layout(&[(
            CARGO_AUDIT_TYPE,
            &format!(
                r#"[
  {{ rule = "predicate.vulnerabilities.list.all(v, v.advisory.id in [{ignored}])", debug = "an advisory nobody accepted" }},
  {{ rule = "predicate.vulnerabilities.list.all(v, !(v.advisory.cvss.contains('AV:N') && v.advisory.cvss.contains('{severity}')))", debug = "a network-exploitable vulnerability of high impact" }},
]"#
            ),
        )])
    };
    let all = "'RUSTSEC-2022-0013', 'RUSTSEC-2021-0003', 'RUSTSEC-2020-0071'";
    // Every advisory accepted, and no network-exploitable one with high confidentiality
    // impact... except smallvec's: the severity rule refuses it.
    let chain = Chain::new(&gate(all, "/C:H"));
    attest_reports(&chain, &["audit"]);
    let (code, report, _) = chain.verify(&[]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(
        refused_rule(&report),
        (Some(2), CARGO_AUDIT_TYPE.to_owned())
    );
    let reason = report["failure"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("a network-exploitable vulnerability of high impact"),
        "{reason}"
    );
    // A severity no advisory reaches passes (no network attack with a scope change).
    let chain = Chain::new(&gate(all, "/S:C"));
    attest_reports(&chain, &["audit"]);
    let (code, report, err) = chain.verify(&[]);
    assert_eq!(code, 0, "{report}\n{err}");
    // One advisory not accepted: the first rule refuses it.
    let chain = Chain::new(&gate("'RUSTSEC-2022-0013', 'RUSTSEC-2021-0003'", "/S:C"));
    attest_reports(&chain, &["audit"]);
    let (code, report, _) = chain.verify(&[]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(
        refused_rule(&report),
        (Some(1), CARGO_AUDIT_TYPE.to_owned())
    );
}

#[test]
fn issue15_attestations_of_real_reports_validate_with_in_toto_attestation() {
    let chain = Chain::new(&layout(&[("cyclonedx", "[]")]));
    for (bytes, kind) in [
        (syft(&sample_project(), CYCLONEDX), "cyclonedx"),
        (syft(&sample_project(), SPDX), "spdx"),
        (cargo_audit(&sample_project()), CARGO_AUDIT_TYPE),
    ] {
        let file = chain.attest_as("scan", &chain.layout.alice, kind, &bytes, "dist/app.tar.gz");
        let out = crate::common::run(
            crate::common::Reference::get()
                .attestation(&file)
                .arg("--any-predicate"),
        );
        assert_eq!(
            crate::common::code(&out),
            0,
            "{kind}: {}{}",
            crate::common::stdout(&out),
            crate::common::stderr(&out)
        );
    }
}

#[test]
fn issue15_the_readme_policy_example_runs_as_written() {
    let readme = std::fs::read_to_string(crate::common::repo().join("README.md")).expect("README");
    let section = readme
        .split("## Policy over attestations")
        .nth(1)
        .expect("the section");
    let toml = section
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("its layout");
    let source = format!(
        "{}{}",
        layout(&[])
            .split("[[step]]\nname = \"scan\"")
            .next()
            .expect("the build step"),
        toml.replace("keys/scanner.pub", "keys/alice.pub")
    );
    let chain = Chain::new(&source);
    // As the section's commands make them, Syft naming the release's version.
    let sbom =
        crate::tools::syft_with(&sample_project(), CYCLONEDX, &["--source-version", "2.0.1"]);
    chain.attest_as(
        "scan",
        &chain.layout.alice,
        "cyclonedx",
        &sbom,
        "dist/app.tar.gz",
    );
    let audit = cargo_audit(&sample_project());
    chain.attest_as(
        "scan",
        &chain.layout.alice,
        CARGO_AUDIT_TYPE,
        &audit,
        "dist/app.tar.gz",
    );
    let (code, text) = chain.verify_text(&["version=2.0.1"]);
    assert_eq!(code, 1, "{text}");
    // The README's sentence, but for the file names and keyids.
    for needed in [
        "verification FAILED: step scan: the https://rustsec.org/cargo-audit/report/v1 attestation",
        "rule 1 (predicate.vulnerabilities.list.all(v, v.advisory.id in ['RUSTSEC-2020-0071'])) is false: an advisory nobody accepted; 0 of 1 required https://rustsec.org/cargo-audit/report/v1 attestations counted",
        "https://cyclonedx.org/bom: 1 of 1 required attestation(s) passed every rule",
        "FAILED step scan: attestations only, no link",
    ] {
        assert!(text.contains(needed), "{needed:?} in {text}");
    }
    for needed in [
        "(signed by key ",
        "1 of 1 required attestation(s) passed every rule (",
    ] {
        assert!(section.contains(needed), "the README shows {needed:?}");
    }
    // Every advisory accepted: the severity rule still refuses smallvec's network-exploitable,
    // high-confidentiality-impact advisory.
    let widened = source.replace(
        "['RUSTSEC-2020-0071']",
        "['RUSTSEC-2020-0071', 'RUSTSEC-2022-0013', 'RUSTSEC-2021-0003']",
    );
    let chain = Chain::new(&widened);
    chain.attest_as(
        "scan",
        &chain.layout.alice,
        "cyclonedx",
        &sbom,
        "dist/app.tar.gz",
    );
    chain.attest_as(
        "scan",
        &chain.layout.alice,
        CARGO_AUDIT_TYPE,
        &audit,
        "dist/app.tar.gz",
    );
    let (code, report, _) = chain.verify(&["version=2.0.1"]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(
        refused_rule(&report),
        (Some(2), CARGO_AUDIT_TYPE.to_owned())
    );
    // With the release's other version, the SBOM's rule 3 refuses it first.
    let (code, report, _) = chain.verify(&["version=2.0.2"]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(
        refused_rule(&report),
        (Some(3), "https://cyclonedx.org/bom".to_owned())
    );
}
