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
    // A rule that does not compile is an error, and the layout is not built.
    let broken = SBOM_LAYOUT.replace("c.name != 'left-pad'", "c.name != ");
    fs::write(dir.path().join("broken.toml"), &broken).expect("write");
    let out = run(tollgate()
        .args(["layout", "check"])
        .arg(dir.path().join("broken.toml")));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_ne!(code(&out), 0, "{text}");
    assert!(
        text.contains("error: step scan, predicate rules rule 1")
            && text.contains("does not compile"),
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

/// The scan step's policy in the verification tests: a deny list, a license allow-list over
/// each component's licenses, and the release's version from a parameter.
const POLICY_LAYOUT: &str = r#"
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
type = "cyclonedx"
rules = [
  { rule = "predicate.components.all(c, !(c.name in ['left-pad', 'event-stream']))", debug = "a denied component is in the release" },
  { rule = "predicate.components.all(c, c.licenses.all(l, l.license.id in ['MIT', 'Apache-2.0']))", debug = "a component's license is not allowed" },
  { rule = "predicate.metadata.component.version == {version}", debug = "the SBOM is of another version" },
]
"#;

fn sbom(components: &[(&str, &str)]) -> Value {
    let components: Vec<Value> = components
        .iter()
        .map(|(name, license)| {
            serde_json::json!({
                "type": "library", "name": name, "version": "1.0.0",
                "licenses": [{"license": {"id": license}}],
            })
        })
        .collect();
    serde_json::json!({
        "bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
        "metadata": {"component": {"type": "application", "name": "app", "version": "2.0.1"}},
        "components": components,
    })
}

/// A two-step chain: alice builds dist/app.tar.gz (a link), and the scan step is done by
/// attestations alone.
pub(crate) struct Chain {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) layout: crate::common::TestLayout,
    pub(crate) project: std::path::PathBuf,
    pub(crate) links: std::path::PathBuf,
}

impl Chain {
    pub(crate) fn new(source: &str) -> Chain {
        let dir = tempdir();
        let layout = test_layout(dir.path(), source);
        let project = dir.path().join("project");
        let links = dir.path().join("links");
        fs::create_dir_all(project.join("dist")).expect("mkdir");
        fs::write(project.join("dist/app.tar.gz"), b"the release").expect("write");
        let out = run(tollgate()
            .args([
                "run",
                "--step",
                "build",
                "-x",
                "-p",
                "dist/app.tar.gz",
                "-k",
            ])
            .arg(&layout.alice)
            .arg("-d")
            .arg(&links)
            .arg("--base-path")
            .arg(&project));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        Chain {
            dir,
            layout,
            project,
            links,
        }
    }

    /// `tollgate attest` of a CycloneDX `predicate` for `step`, by the key at `key`, over
    /// `subject`.
    pub(crate) fn attest(
        &self,
        step: &str,
        key: &Path,
        predicate: &Value,
        subject: &str,
    ) -> std::path::PathBuf {
        let bytes = serde_json::to_vec(predicate).expect("json");
        self.attest_as(step, key, "cyclonedx", &bytes, subject)
    }

    /// `tollgate attest` of a tool's output `predicate` (bytes as the tool wrote them) of type
    /// `predicate_type` for `step`, by the key at `key`, over `subject`.
    pub(crate) fn attest_as(
        &self,
        step: &str,
        key: &Path,
        predicate_type: &str,
        predicate: &[u8],
        subject: &str,
    ) -> std::path::PathBuf {
        let file = self.dir.path().join(format!("predicate-{step}.json"));
        fs::write(&file, predicate).expect("write");
        let out = run(tollgate()
            .args([
                "attest",
                "--step",
                step,
                "--predicate-type",
                predicate_type,
                "--subject",
                subject,
            ])
            .arg("--predicate")
            .arg(&file)
            .arg("-k")
            .arg(key)
            .arg("-d")
            .arg(&self.links)
            .arg("--base-path")
            .arg(&self.project)
            .arg("--overwrite"));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        std::path::PathBuf::from(stdout(&out).trim())
    }

    /// `tollgate verify` with `--format json` and the given parameters: exit code, report.
    pub(crate) fn verify(&self, params: &[&str]) -> (i32, Value, String) {
        let mut command = tollgate();
        command
            .args(["verify", "--format", "json", "--layout"])
            .arg(&self.layout.layout)
            .arg("--layout-key")
            .arg(&self.layout.owner_pub)
            .arg("--link-dir")
            .arg(&self.links);
        for param in params {
            command.args(["--param", param]);
        }
        let out = run(&mut command);
        let report: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
        (code(&out), report, stderr(&out))
    }

    /// `tollgate verify` as text.
    pub(crate) fn verify_text(&self, params: &[&str]) -> (i32, String) {
        let mut command = tollgate();
        command
            .args(["verify", "--layout"])
            .arg(&self.layout.layout)
            .arg("--layout-key")
            .arg(&self.layout.owner_pub)
            .arg("--link-dir")
            .arg(&self.links);
        for param in params {
            command.args(["--param", param]);
        }
        let out = run(&mut command);
        (code(&out), format!("{}{}", stdout(&out), stderr(&out)))
    }
}

const VERSION: &str = "version=2.0.1";

#[test]
fn issue15_an_sbom_that_passes_every_rule_counts_and_ties_the_scanned_file_to_the_built_one() {
    let chain = Chain::new(POLICY_LAYOUT);
    let file = chain.attest(
        "scan",
        &chain.layout.alice,
        &sbom(&[("serde", "MIT"), ("tokio", "MIT")]),
        "dist/app.tar.gz",
    );
    assert!(
        file.file_name()
            .expect("name")
            .to_string_lossy()
            .starts_with("scan.")
            && file.to_string_lossy().ends_with(".cyclonedx.intoto.json"),
        "{}",
        file.display()
    );
    let (code, report, err) = chain.verify(&[VERSION]);
    assert_eq!(code, 0, "{report}\n{err}");
    assert_eq!(report["verdict"], "pass");
    let scan = &report["steps"][1];
    assert_eq!(scan["name"], "scan");
    let predicate = &scan["predicates"][0];
    assert_eq!(predicate["predicate_type"], "https://cyclonedx.org/bom");
    assert_eq!(predicate["signers"].as_array().map(Vec::len), Some(1));
    let rules = predicate["attestations"][0]["rules"]
        .as_array()
        .expect("rules");
    assert_eq!(rules.len(), 3);
    assert!(rules.iter().all(|r| r["outcome"] == "true"), "{rules:?}");
    // The SBOM's subject joined the scan step's materials, which its MATCH rule consumed.
    let materials = &scan["rules"][0];
    assert!(
        materials.to_string().contains("dist/app.tar.gz"),
        "the scanned file is among the scan step's materials: {materials}"
    );
}

#[test]
fn issue15_a_denied_component_refuses_the_release_naming_the_rule_and_signer() {
    let chain = Chain::new(POLICY_LAYOUT);
    let file = chain.attest(
        "scan",
        &chain.layout.alice,
        &sbom(&[("serde", "MIT"), ("left-pad", "MIT")]),
        "dist/app.tar.gz",
    );
    let (code, report, _) = chain.verify(&[VERSION]);
    assert_eq!(code, 1, "{report}");
    let failure = &report["failure"];
    assert_eq!(failure["check"], "predicate");
    assert_eq!(failure["item"], "scan");
    let detail = &failure["predicate"];
    assert_eq!(detail["predicate_type"], "https://cyclonedx.org/bom");
    assert_eq!(detail["rule"], 1);
    assert_eq!(
        detail["rule_text"],
        "predicate.components.all(c, !(c.name in ['left-pad', 'event-stream']))"
    );
    assert_eq!(detail["debug"], "a denied component is in the release");
    assert_eq!(detail["file"], file.display().to_string());
    assert_eq!(detail["signers"].as_array().map(Vec::len), Some(1));
    let (code, text) = chain.verify_text(&[VERSION]);
    assert_eq!(code, 1, "{text}");
    let first = text
        .lines()
        .find(|l| l.contains("verification FAILED"))
        .unwrap_or_default();
    for needed in [
        "verification FAILED: step scan: the cyclonedx attestation",
        "signed by key ",
        "rule 1 (predicate.components.all(c, !(c.name in ['left-pad', 'event-stream']))) is false: a denied component is in the release",
        "0 of 1 required cyclonedx attestations counted",
    ] {
        assert!(first.contains(needed), "{needed:?} in {first}");
    }
}

#[test]
fn issue15_a_license_outside_the_allow_list_and_a_wrong_version_are_refused() {
    let chain = Chain::new(POLICY_LAYOUT);
    chain.attest(
        "scan",
        &chain.layout.alice,
        &sbom(&[("serde", "MIT"), ("gpl-thing", "GPL-3.0-only")]),
        "dist/app.tar.gz",
    );
    let (code, report, _) = chain.verify(&[VERSION]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["failure"]["predicate"]["rule"], 2);
    assert_eq!(
        report["failure"]["predicate"]["debug"],
        "a component's license is not allowed"
    );
    // The parameter is the version the release manager verifies: another one fails rule 3.
    chain.attest(
        "scan",
        &chain.layout.alice,
        &sbom(&[("serde", "MIT")]),
        "dist/app.tar.gz",
    );
    let (code, report, _) = chain.verify(&["version=2.0.2"]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["failure"]["predicate"]["rule"], 3);
    // A parameter's value is a CEL string, never CEL: a value that would be an expression if
    // pasted in is only a version that does not match.
    let (code, report, err) = chain.verify(&["version=x"]);
    assert_eq!(code, 1, "{report} {err}");
    let (code, report, _) = chain.verify(&[VERSION]);
    assert_eq!(code, 0, "{report}");
}

#[test]
fn issue15_an_sbom_by_an_unauthorised_key_or_for_another_step_never_counts() {
    let chain = Chain::new(POLICY_LAYOUT);
    let owner = chain.dir.path().join("keys/owner");
    // Signed by the owner, whom the scan step does not accept.
    chain.attest(
        "scan",
        &owner,
        &sbom(&[("serde", "MIT")]),
        "dist/app.tar.gz",
    );
    let (code, report, _) = chain.verify(&[VERSION]);
    assert_eq!(code, 1, "{report}");
    let reason = report["failure"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(
            ", which step scan does not accept for its attestations: its cyclonedx predicate \
             accepts key "
        ),
        "{reason}"
    );
    assert_eq!(report["failure"]["check"], "predicate");
    for entry in fs::read_dir(&chain.links).expect("links").flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .ends_with(".intoto.json")
        {
            fs::remove_file(entry.path()).expect("rm");
        }
    }
    // Signed by alice, but for the build step: renamed as the scan step's, it still names
    // build in its signed content.
    let made = chain.attest(
        "build",
        &chain.layout.alice,
        &sbom(&[("serde", "MIT")]),
        "dist/app.tar.gz",
    );
    let name = made
        .file_name()
        .expect("name")
        .to_string_lossy()
        .replacen("build.", "scan.", 1);
    fs::rename(&made, chain.links.join(&name)).expect("rename");
    let (code, report, _) = chain.verify(&[VERSION]);
    assert_eq!(code, 1, "{report}");
    let reason = report["failure"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("it was attested for step build"),
        "{reason}"
    );
}

#[test]
fn issue15_an_sbom_of_another_file_or_none_at_all_fails() {
    let chain = Chain::new(POLICY_LAYOUT);
    // None at all.
    let (code, report, _) = chain.verify(&[VERSION]);
    assert_eq!(code, 1, "{report}");
    let reason = report["failure"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("no cyclonedx attestation")
            && reason.contains("tollgate attest --step scan"),
        "{reason}"
    );
    // Over a file that is not the one built: the scan step's MATCH rule refuses it.
    fs::write(chain.project.join("dist/app.tar.gz"), b"another release").expect("write");
    chain.attest(
        "scan",
        &chain.layout.alice,
        &sbom(&[("serde", "MIT")]),
        "dist/app.tar.gz",
    );
    let (code, report, _) = chain.verify(&[VERSION]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["failure"]["check"], "step_rules", "{report}");
    assert_eq!(report["failure"]["item"], "scan");
    assert!(
        report["failure"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("dist/app.tar.gz"),
        "{report}"
    );
}

/// A layout whose scan step holds one rule, with options.
fn one_rule(rule: &str) -> String {
    POLICY_LAYOUT
        .split("rules = [")
        .next()
        .map(|head| format!("{head}rules = [{rule}]\n"))
        .expect("layout head")
}

#[test]
fn issue15_rules_fail_closed_unless_they_say_otherwise() {
    let cases: [(&str, i32, Option<&str>); 7] = [
        // An error fails.
        (
            "\"predicate.components[0].name / 2 == 1\"",
            1,
            Some("error"),
        ),
        // A result that is not a boolean fails.
        ("\"size(predicate.components)\"", 1, Some("error")),
        // A field that is absent fails ...
        ("\"predicate.nothing == 1\"", 1, Some("no_claim")),
        // ... unless allow_if_no_claim says otherwise.
        (
            "{ rule = \"predicate.nothing == 1\", allow_if_no_claim = true }",
            0,
            Some("no_claim"),
        ),
        // allow_if_no_claim does not excuse a false rule.
        (
            "{ rule = \"predicate.version == 2\", allow_if_no_claim = true }",
            1,
            Some("false"),
        ),
        // warn turns a false rule into a warning ...
        (
            "{ rule = \"predicate.version == 2\", warn = true, debug = \"old BOM version\" }",
            0,
            Some("false"),
        ),
        // ... but not an error.
        (
            "{ rule = \"predicate.version / 0 == 1\", warn = true }",
            1,
            Some("error"),
        ),
    ];
    for (rule, expected, outcome) in cases {
        let chain = Chain::new(&one_rule(rule));
        chain.attest(
            "scan",
            &chain.layout.alice,
            &sbom(&[("serde", "MIT")]),
            "dist/app.tar.gz",
        );
        let (code, report, err) = chain.verify(&[]);
        assert_eq!(code, expected, "{rule}: {report} {err}");
        if let Some(outcome) = outcome {
            let rules = &report["steps"][1]["predicates"][0]["attestations"][0]["rules"];
            assert_eq!(rules[0]["outcome"], outcome, "{rule}: {report}");
        } else {
            let reason = report["failure"]["reason"].as_str().unwrap_or_default();
            assert!(reason.contains("cannot be evaluated"), "{rule}: {reason}");
        }
        if rule.contains("warn = true, debug") {
            let warnings = report["warnings"].to_string();
            assert!(
                warnings.contains("old BOM version") && warnings.contains("a warning"),
                "{warnings}"
            );
        }
    }
}

#[test]
fn issue15_a_bundle_carries_attestations_beside_links_and_a_vsa_names_them() {
    use sha2::Digest;
    let chain = Chain::new(POLICY_LAYOUT);
    let attestation = chain.attest(
        "scan",
        &chain.layout.alice,
        &sbom(&[("serde", "MIT")]),
        "dist/app.tar.gz",
    );
    let bundle = chain.dir.path().join("release.bundle.json");
    let out = run(tollgate()
        .args(["bundle", "create", "--layout"])
        .arg(&chain.layout.layout)
        .arg("--link-dir")
        .arg(&chain.links)
        .arg("-o")
        .arg(&bundle));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let packed: Value = serde_json::from_slice(&fs::read(&bundle).expect("read")).expect("json");
    let name = attestation
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(packed["links"].get(&name).is_some(), "{}", packed["links"]);
    // Verified from the bundle alone (the link folder is gone), with a summary of what passed.
    fs::remove_dir_all(&chain.links).expect("rm links");
    let vsa = chain.dir.path().join("app.vsa.json");
    let vsa_key = chain.dir.path().join("keys/owner");
    let out = run(tollgate()
        .args(["verify", "--bundle"])
        .arg(&bundle)
        .arg("--layout-key")
        .arg(&chain.layout.owner_pub)
        .args([
            "--param",
            VERSION,
            "--vsa-subject",
            "dist/app.tar.gz",
            "--vsa",
        ])
        .arg(&vsa)
        .arg("--vsa-key")
        .arg(&vsa_key)
        .args([
            "--verifier-id",
            "https://ci.example.com/verifier",
            "--resource-uri",
            "pkg:generic/app@2.0.1",
        ]));
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let envelope: Value = serde_json::from_slice(&fs::read(&vsa).expect("vsa")).expect("json");
    let payload = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        envelope["payload"].as_str().expect("payload"),
    )
    .expect("base64");
    let statement: Value = serde_json::from_slice(&payload).expect("statement");
    let inputs = statement["predicate"]["inputAttestations"].to_string();
    let digest = hex::encode(sha2::Sha256::digest(
        packed["links"][&name].as_str().expect("text").as_bytes(),
    ));
    assert!(
        inputs.contains(&name) && inputs.contains(&digest),
        "the SBOM attestation is among the VSA's inputs, by digest: {inputs}"
    );
    // A bundle without the attestation fails the predicate.
    let mut stripped = packed.clone();
    stripped["links"]
        .as_object_mut()
        .expect("links")
        .remove(&name);
    stripped["manifest"]
        .as_object_mut()
        .expect("manifest")
        .remove(&name);
    fs::write(&bundle, serde_json::to_vec(&stripped).expect("json")).expect("write");
    let out = run(tollgate()
        .args(["verify", "--bundle"])
        .arg(&bundle)
        .arg("--layout-key")
        .arg(&chain.layout.owner_pub)
        .args(["--param", VERSION]));
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("no cyclonedx attestation"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn issue15_a_signed_rule_that_does_not_compile_fails_verification() {
    // `layout build` refuses such a rule; a layout signed by other means is checked again.
    let chain = Chain::new(POLICY_LAYOUT);
    chain.attest(
        "scan",
        &chain.layout.alice,
        &sbom(&[("serde", "MIT")]),
        "dist/app.tar.gz",
    );
    let mut signed = payload(&chain.layout.layout);
    signed["steps"][1]["expected_predicates"][0]["expected_attributes"][0]["rule"] =
        Value::from("predicate.version ==");
    let unsigned = chain.dir.path().join("edited.layout");
    fs::write(
        &unsigned,
        serde_json::to_vec(&serde_json::json!({"signed": signed, "signatures": []})).expect("json"),
    )
    .expect("write");
    let out = run(tollgate()
        .args(["sign", "--classic"])
        .arg(&unsigned)
        .arg("-k")
        .arg(chain.dir.path().join("keys/owner")));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    fs::copy(&unsigned, &chain.layout.layout).expect("replace the layout");
    let (code, report, err) = chain.verify(&[VERSION]);
    assert_eq!(code, 1, "{report} {err}");
    assert_eq!(report["failure"]["check"], "predicate");
    assert_eq!(report["failure"]["predicate"]["rule"], 1);
    let reason = report["failure"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(
            "rule 1 of its cyclonedx predicate (predicate.version ==) cannot be evaluated"
        ),
        "{reason}"
    );
}

#[cfg(feature = "registry")]
#[test]
fn issue15_attestations_travel_with_links_through_a_real_registry() {
    use crate::registry::{Registry, upload};
    let registry = Registry::start();
    let dir = tempdir();
    let layout = test_layout(
        dir.path(),
        r#"
expires = "30d"
[[step]]
name = "build"
functionaries = ["keys/alice.pub"]
expected_materials = ["DISALLOW *"]
expected_products = ["CREATE oci:image*", "DISALLOW *"]
[[step]]
name = "scan"
functionaries = ["keys/alice.pub"]
link = false
expected_materials = ["MATCH oci:image* WITH PRODUCTS FROM build", "DISALLOW *"]
expected_products = ["DISALLOW *"]
[[step.predicate]]
type = "cyclonedx"
rules = [{ rule = "predicate.components.all(c, c.name != 'left-pad')", debug = "left-pad is denied" }]
"#,
    );
    let project = dir.path().join("project");
    let (image_dir, _) = crate::oci::single(&project, "image", "the real app");
    let digest = upload(&registry, &image_dir, "1.0");
    let out = run(tollgate()
        .current_dir(&project)
        .args(["run", "-q", "--step", "build", "--key"])
        .arg(&layout.alice)
        .args(["-p", "oci:image", "--no-command", "-d", "../links"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let image = format!("{}/app:1.0", registry.address);
    let verify_image = |components: &[(&str, &str)]| {
        let predicate = dir.path().join("sbom.json");
        fs::write(
            &predicate,
            serde_json::to_vec(&sbom(components)).expect("json"),
        )
        .expect("write");
        let out = run(tollgate()
            .current_dir(&project)
            .args([
                "attest",
                "-q",
                "--overwrite",
                "--step",
                "scan",
                "--predicate-type",
                "cyclonedx",
            ])
            .arg("--predicate")
            .arg(&predicate)
            .args(["--subject", "oci:image", "-d", "../links", "--key"])
            .arg(&layout.alice));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let bundle = dir.path().join("release.bundle.json");
        let out = run(tollgate()
            .args(["bundle", "create", "--overwrite", "--layout"])
            .arg(&layout.layout)
            .arg("--link-dir")
            .arg(dir.path().join("links"))
            .arg("-o")
            .arg(&bundle));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let out = run(tollgate()
            .args(["push", &image, "--insecure-registry", "--bundle"])
            .arg(&bundle));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        run(tollgate()
            .args([
                "verify",
                "--image",
                &image,
                "--insecure-registry",
                "--layout-key",
            ])
            .arg(&layout.owner_pub))
    };
    let out = verify_image(&[("serde", "MIT")]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(!digest.is_empty());
    let out = verify_image(&[("serde", "MIT"), ("left-pad", "MIT")]);
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("left-pad is denied"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn issue15_hostile_rules_and_predicates_end_with_a_clear_error() {
    // A quadratic rule over a large SBOM: refused before it runs, naming the cap.
    let quadratic = one_rule(
        "\"predicate.components.all(c, predicate.components.exists(d, d.name == c.name))\"",
    );
    let chain = Chain::new(&quadratic);
    // 20,000 components (the library test takes 100,000): 4e8 comparisons, far over the cap.
    let big = crate::tools::big_sbom(20_000);
    let bytes = serde_json::to_vec(&big).expect("json");
    chain.attest_as(
        "scan",
        &chain.layout.alice,
        "cyclonedx",
        &bytes,
        "dist/app.tar.gz",
    );
    let (exit, report, err) = chain.verify(&[]);
    assert_eq!(exit, 1, "{report} {err}");
    let reason = report["failure"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("max_cel_cost"), "{reason}");
    assert_eq!(
        report["steps"][1]["predicates"][0]["attestations"][0]["rules"][0]["outcome"],
        "error"
    );
    // A predicate nested deeper than JSON's cap is refused by attest, naming the file.
    let mut deep = String::new();
    for _ in 0..10_000 {
        deep.push_str("{\"a\":");
    }
    deep.push('1');
    for _ in 0..10_000 {
        deep.push('}');
    }
    let file = chain.dir.path().join("deep.json");
    fs::write(&file, &deep).expect("write");
    let out = run(tollgate()
        .args([
            "attest",
            "--step",
            "scan",
            "--predicate-type",
            "cyclonedx",
            "--subject",
            "dist/app.tar.gz",
        ])
        .arg("--predicate")
        .arg(&file)
        .arg("-k")
        .arg(&chain.layout.alice)
        .arg("--base-path")
        .arg(&chain.project)
        .arg("-d")
        .arg(chain.dir.path().join("other-links")));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("deep.json") && stderr(&out).contains("nesting too deep"),
        "{}",
        stderr(&out)
    );
    assert!(
        !chain.dir.path().join("other-links").exists()
            || fs::read_dir(chain.dir.path().join("other-links"))
                .expect("dir")
                .next()
                .is_none()
    );
}
