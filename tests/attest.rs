//! `tollgate attest` and attestations as data: a tool's JSON output signed as an in-toto
//! Statement bound to a step, valid for the framework's Python bindings, its subjects hashed as
//! `run -p` hashes products, its predicate kept value for value (floats too); and the
//! attestations that must not load.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tollgate::attestation::{
    self, AttestationError, STEP_ANNOTATION, load_attestation, unverified_attestation,
};
use tollgate::envelope::{Envelope, Format};
use tollgate::keyring::KeyRing;
use tollgate::limits::Limits;

use crate::common::{
    Reference, code, load_private, load_public, private_copy, run, stderr, stdout, tempdir,
    tollgate,
};

/// A report with floats and integers in every form a scanner writes them.
const REPORT: &str = r#"{"scanner": {"name": "grype", "version": "0.80.1"},
 "results": [{"id": "CVE-2024-0001", "cvss": 7.5, "epss": 0.00043, "fixed": null},
             {"id": "GHSA-xxxx", "cvss": 10.0, "epss": 1e-5, "count": 3}],
 "summary": {"max": 10.0, "mean": 8.75, "total": 2}}"#;

struct Project {
    dir: tempfile::TempDir,
    key: PathBuf,
}

impl Project {
    fn new() -> Project {
        let dir = tempdir();
        let key = private_copy("ed25519", dir.path());
        let work = dir.path().join("work");
        fs::create_dir_all(work.join("dist")).expect("mkdir");
        fs::create_dir_all(work.join("src/lib")).expect("mkdir");
        fs::write(work.join("dist/app.tar.gz"), "packed\n").expect("write");
        fs::write(work.join("src/main.c"), "int main;\n").expect("write");
        fs::write(work.join("src/lib/util.c"), "int util;\n").expect("write");
        fs::write(work.join("report.json"), REPORT).expect("write");
        Project { dir, key }
    }

    fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("attestations")
    }

    fn attest(&self, args: &[&str]) -> std::process::Output {
        run(tollgate()
            .current_dir(self.work())
            .args(["attest", "--step", "scan", "--key"])
            .arg(&self.key)
            .arg("-d")
            .arg(self.out())
            .args(args))
    }
}

fn payload(envelope: &Path) -> Value {
    let value: Value = serde_json::from_slice(&fs::read(envelope).expect("read")).expect("json");
    let bytes = tollgate::envelope::decode_base64(value["payload"].as_str().expect("payload"))
        .expect("base64");
    serde_json::from_slice(&bytes).expect("payload json")
}

fn trusted() -> KeyRing {
    KeyRing::from_keys([load_public("ed25519")]).expect("a ring")
}

fn files_in(dir: &Path) -> Vec<String> {
    match fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn an_attestation_of_a_file_and_a_folder_is_valid_for_the_framework_and_bound_to_its_step() {
    let project = Project::new();
    let out = project.attest(&[
        "--predicate-type",
        "vulns",
        "--predicate",
        "report.json",
        "--subject",
        "dist/app.tar.gz",
        "dir:src",
        "--dsse",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let keyid = load_public("ed25519").keyid();
    let name = format!("scan.{}.vulns.intoto.json", keyid.short());
    let path = project.out().join(&name);
    assert_eq!(stdout(&out).trim(), path.display().to_string());
    assert_eq!(files_in(&project.out()), vec![name.clone()]);
    assert!(tollgate::files::names_an_attestation_of(
        &tollgate::name::StepName::new("scan").expect("step"),
        &name
    ));

    // The framework's own bindings accept the Statement and its subjects.
    let checked = run(Reference::get().attestation(&path).arg("--any-predicate"));
    assert_eq!(
        code(&checked),
        0,
        "{}{}",
        stdout(&checked),
        stderr(&checked)
    );
    assert_eq!(
        stdout(&checked).trim(),
        "ok https://in-toto.io/attestation/vulns/v0.2 2"
    );

    // Every subject is bound to the step in signed content.
    let statement = payload(&path);
    let subjects = statement["subject"].as_array().expect("subjects");
    assert_eq!(subjects.len(), 2);
    for subject in subjects {
        assert_eq!(subject["annotations"][STEP_ANNOTATION], "scan", "{subject}");
    }

    // The subjects are named and hashed exactly as `run -p` records products.
    let links = project.dir.path().join("links");
    let recorded = run(tollgate()
        .current_dir(project.work())
        .args(["run", "-q", "--step", "build", "--key"])
        .arg(&project.key)
        .args(["-p", "dist/app.tar.gz", "dir:src", "--no-command", "-d"])
        .arg(&links));
    assert_eq!(code(&recorded), 0, "{}", stderr(&recorded));
    let link_file = links.join(format!("build.{}.link", keyid.short()));
    let link: Value = serde_json::from_slice(&fs::read(&link_file).expect("link")).expect("json");
    let products = link["signed"]["products"].as_object().expect("products");
    assert_eq!(products.len(), 2);
    for subject in subjects {
        let name = subject["name"].as_str().expect("name");
        assert_eq!(products[name], subject["digest"], "{name}");
    }

    // Loaded back: the step, the signer, the file's hash, and the predicate value for value.
    let bytes = fs::read(&path).expect("read");
    let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let loaded = load_attestation(bytes, &trusted(), &Limits::default()).expect("it loads");
    assert_eq!(loaded.attestation.step.as_str(), "scan");
    assert_eq!(
        loaded.attestation.predicate_type,
        "https://in-toto.io/attestation/vulns/v0.2"
    );
    assert_eq!(loaded.signers.iter().collect::<Vec<_>>(), vec![&keyid]);
    assert_eq!(loaded.sha256, sha256);
    let input: Value = serde_json::from_str(REPORT).expect("the report");
    assert_eq!(loaded.attestation.predicate(), &input);
    assert_eq!(loaded.attestation.predicate()["results"][0]["cvss"], 7.5);
    assert!(loaded.attestation.subjects.contains_key("dir:src"));
    assert!(loaded.attestation.subjects.contains_key("dist/app.tar.gz"));
}

#[test]
fn short_names_resolve_and_an_unknown_one_is_refused_with_the_list() {
    let project = Project::new();
    let out = project.attest(&[
        "--predicate-type",
        "cyclonedx",
        "--predicate",
        "report.json",
        "--subject",
        "dist/app.tar.gz",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let path = PathBuf::from(stdout(&out).trim());
    assert!(
        path.to_string_lossy().ends_with(".cyclonedx.intoto.json"),
        "{}",
        path.display()
    );
    assert_eq!(payload(&path)["predicateType"], "https://cyclonedx.org/bom");

    // A URI is taken as it is; its file name carries a hash of it.
    let uri = "https://example.com/attestation/custom/v1";
    let out = project.attest(&[
        "--predicate-type",
        uri,
        "--predicate",
        "report.json",
        "--subject",
        "dist/app.tar.gz",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let path = PathBuf::from(stdout(&out).trim());
    assert!(
        path.to_string_lossy()
            .ends_with(&format!(".{}.intoto.json", attestation::slug(uri))),
        "{}",
        path.display()
    );
    assert_eq!(payload(&path)["predicateType"], uri);

    let before = files_in(&project.out());
    let out = project.attest(&[
        "--predicate-type",
        "sbom",
        "--predicate",
        "report.json",
        "--subject",
        "dist/app.tar.gz",
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    for name in [
        "cyclonedx",
        "spdx",
        "vulns",
        "test-result",
        "provenance",
        "vsa",
        "link",
    ] {
        assert!(err.contains(name), "{err}");
    }
    assert!(err.contains("\"sbom\""), "{err}");
    assert_eq!(files_in(&project.out()), before);
}

#[test]
fn a_missing_or_bad_predicate_file_exits_2_naming_it_and_writes_nothing() {
    let project = Project::new();
    fs::write(project.work().join("list.json"), "[1, 2]").expect("write");
    fs::write(project.work().join("text.json"), "not json at all").expect("write");
    let secret = fs::read_to_string(&project.key).expect("key");
    let secret_body: String = secret.lines().filter(|l| !l.starts_with("-----")).collect();
    for (file, expected, what_to_do) in [
        (
            "missing.json",
            "missing.json: cannot read",
            "hint: pass with --predicate the JSON file the tool wrote",
        ),
        (
            "text.json",
            "predicate file text.json: not valid JSON",
            "pass the JSON document the tool wrote",
        ),
        (
            "list.json",
            "predicate file list.json: holds a list",
            "pass the tool's JSON report itself",
        ),
    ] {
        let out = project.attest(&[
            "--predicate-type",
            "vulns",
            "--predicate",
            file,
            "--subject",
            "dist/app.tar.gz",
        ]);
        assert_eq!(code(&out), 2, "{file}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(expected), "{file}: {err}");
        assert!(err.contains(what_to_do), "{file}: {err}");
        assert!(stdout(&out).is_empty(), "{file}: {}", stdout(&out));
        assert!(files_in(&project.out()).is_empty(), "{file}");
        // The private key is never printed.
        for text in [stdout(&out), err] {
            assert!(!text.contains("PRIVATE KEY"), "{text}");
            assert!(!text.contains(&secret_body[..40]), "{text}");
        }
    }
    // A subject that does not exist is a recording error, and nothing is written either.
    let out = project.attest(&[
        "--predicate-type",
        "vulns",
        "--predicate",
        "report.json",
        "--subject",
        "dist/gone.tar.gz",
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("dist/gone.tar.gz"),
        "{}",
        stderr(&out)
    );
    assert!(files_in(&project.out()).is_empty());
}

/// An attestation made by hand (or by another tool), sealed with `key`.
fn sealed(statement: &Value, format: Format, kind: &str) -> Vec<u8> {
    Envelope::seal(statement, format, &[&load_private(kind)]).expect("sealed")
}

fn good_statement() -> Value {
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [
            {"name": "dist/app.tar.gz", "digest": {"sha256": "ab".repeat(32)},
             "annotations": {STEP_ANNOTATION: "scan"}},
            {"name": "dir:src", "digest": {"sha256": "cd".repeat(32)},
             "annotations": {STEP_ANNOTATION: "scan"}},
        ],
        "predicateType": "https://cyclonedx.org/bom",
        "predicate": {"components": [{"name": "left-pad", "score": 1.5}]},
    })
}

#[test]
fn attestations_that_must_not_count_are_refused_with_their_reason() {
    let limits = Limits::default();
    // The control: the same Statement, signed by the trusted key, loads.
    let good = sealed(&good_statement(), Format::Dsse, "ed25519");
    let loaded = load_attestation(good.clone(), &trusted(), &limits).expect("the control loads");
    assert_eq!(loaded.attestation.step.as_str(), "scan");
    assert_eq!(
        unverified_attestation(&good, &limits).expect("reads"),
        loaded.attestation
    );

    // Signed by a key that is not trusted: the error names the keyid the signature claims.
    let stranger = load_public("ecdsa-p256").keyid();
    match load_attestation(
        sealed(&good_statement(), Format::Dsse, "ecdsa-p256"),
        &trusted(),
        &limits,
    ) {
        Err(e @ AttestationError::NotSigned { .. }) => {
            assert!(e.to_string().contains(stranger.as_str()), "{e}")
        }
        other => panic!("expected NotSigned, got {other:?}"),
    }

    // Made by hand without the step annotation: not bound to a step.
    let mut unbound = good_statement();
    for subject in unbound["subject"].as_array_mut().expect("subjects") {
        subject
            .as_object_mut()
            .expect("object")
            .remove("annotations");
    }
    match load_attestation(
        sealed(&unbound, Format::Dsse, "ed25519"),
        &trusted(),
        &limits,
    ) {
        Err(e @ AttestationError::Unbound { .. }) => {
            let text = e.to_string();
            assert!(text.contains("not bound to a step"), "{text}");
            assert!(text.contains("tollgate attest"), "{text}");
        }
        other => panic!("expected Unbound, got {other:?}"),
    }
    // One subject bound and one not is unbound too.
    let mut half = good_statement();
    half["subject"][1]
        .as_object_mut()
        .expect("object")
        .remove("annotations");
    assert!(matches!(
        load_attestation(sealed(&half, Format::Dsse, "ed25519"), &trusted(), &limits),
        Err(AttestationError::Unbound { .. })
    ));

    // Subjects bound to two steps.
    let mut two = good_statement();
    two["subject"][1]["annotations"][STEP_ANNOTATION] = json!("build");
    match load_attestation(sealed(&two, Format::Dsse, "ed25519"), &trusted(), &limits) {
        Err(e @ AttestationError::TwoSteps { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("\"scan\"") && text.contains("\"build\""),
                "{text}"
            );
        }
        other => panic!("expected TwoSteps, got {other:?}"),
    }

    // A classic envelope is no attestation.
    let mut integers_only = good_statement();
    integers_only["predicate"] = json!({"components": []});
    let classic = sealed(&integers_only, Format::Classic, "ed25519");
    match load_attestation(classic, &trusted(), &limits) {
        Err(e @ AttestationError::Classic) => assert!(e.to_string().contains("DSSE"), "{e}"),
        other => panic!("expected Classic, got {other:?}"),
    }

    // A payload changed after signing.
    let mut file: Value = serde_json::from_slice(&good).expect("json");
    let mut changed = good_statement();
    changed["predicate"]["components"] = json!([]);
    file["payload"] = json!(base64_encode(&serde_json::to_vec(&changed).expect("json")));
    let tampered = serde_json::to_vec(&file).expect("json");
    assert!(matches!(
        load_attestation(tampered, &trusted(), &limits),
        Err(AttestationError::NotSigned { .. })
    ));
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
