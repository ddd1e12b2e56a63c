//! SLSA Verification Summary Attestations: one made through the library validates with the
//! in-toto-attestation package, and `tollgate vsa check` accepts the right one and refuses each
//! way a summary can be wrong, with its reason (exit 1), or bad input (exit 2); `tollgate verify
//! --vsa` writes one after a pass only, about the verified chain's products.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use chrono::{Duration, Utc};
use serde_json::Value;
use tollgate::artifact::DigestSet;
use tollgate::envelope::{Envelope, Format};
use tollgate::policy::vsa::{self, LEVEL_LAYOUT_PASSED, Summary};

use sha2::Digest as _;

use crate::common::{
    Reference, TestLayout, code, example_key, load_private, run, stderr, stdout, tempdir,
    test_layout, tollgate,
};

const DIGEST: &str = "5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";
const RESOURCE: &str = "https://downloads.example.com/app-1.0.tar.gz";
const VERIFIER: &str = "https://ci.example.com/tollgate-verifier";

fn summary(age: Duration) -> Summary {
    let digest = DigestSet::new(
        "dist/app.tar.gz",
        BTreeMap::from([("sha256".to_owned(), DIGEST.to_owned())]),
    )
    .expect("a valid digest");
    Summary {
        verifier_id: VERIFIER.into(),
        resource_uri: RESOURCE.into(),
        time_verified: Utc::now() - age,
        policy_uri: Some("root.layout".into()),
        policy_sha256: "1".repeat(64),
        inputs: vec![
            ("build.776a00e2.link".into(), "2".repeat(64)),
            ("scan.776a00e2.cyclonedx.intoto.json".into(), "3".repeat(64)),
        ],
        verified_levels: vec![LEVEL_LAYOUT_PASSED.into()],
        subjects: vec![("dist/app.tar.gz".into(), digest)],
    }
}

/// A VSA signed by the example ed25519 key, written to `dir/name`.
fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).expect("write the VSA");
    path
}

fn signed(summary: &Summary) -> Vec<u8> {
    vsa::sign(summary, &load_private("ed25519")).expect("signs")
}

/// The Statement of a fresh summary, edited, then signed.
fn edited(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut statement = vsa::statement(&summary(Duration::minutes(1)));
    edit(&mut statement);
    Envelope::seal(&statement, Format::Dsse, &[&load_private("ed25519")]).expect("signs")
}

/// `vsa check FILE` with the right expectations, but for `extra` (flag, value) pairs, each
/// replacing the flag's default or added.
fn check(file: &Path, extra: &[&str]) -> std::process::Output {
    let digest = format!("sha256:{DIGEST}");
    let mut flags: Vec<(&str, &str)> = vec![
        ("--subject-digest", &digest),
        ("--resource-uri", RESOURCE),
        ("--verifier-id", VERIFIER),
        ("--max-age", "1h"),
    ];
    for pair in extra.chunks(2) {
        let (flag, value) = (pair[0], pair[1]);
        match flags.iter_mut().find(|(f, _)| *f == flag) {
            Some(entry) => entry.1 = value,
            None => flags.push((flag, value)),
        }
    }
    let mut command = tollgate();
    command
        .args(["vsa", "check"])
        .arg(file)
        .arg("--key")
        .arg(example_key("ed25519", "pub"));
    for (flag, value) in flags {
        command.arg(format!("{flag}={value}"));
    }
    run(&mut command)
}

fn assert_refused(out: &std::process::Output, reason: &str) {
    assert_eq!(
        code(out),
        1,
        "stdout: {}\nstderr: {}",
        stdout(out),
        stderr(out)
    );
    let err = stderr(out);
    assert!(err.contains("VSA refused"), "{err}");
    assert!(err.contains(reason), "expected {reason:?} in: {err}");
}

#[test]
fn vsa_validates_with_the_in_toto_attestation_package() {
    let dir = tempdir();
    let file = write(
        dir.path(),
        "app.vsa.json",
        &signed(&summary(Duration::zero())),
    );
    let out = run(&mut Reference::get().attestation(&file));
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "ok https://slsa.dev/verification_summary/v1 1"
    );
    // The package's checks can fail: a VSA without its policy digest is refused.
    let file = write(
        dir.path(),
        "no-policy.vsa.json",
        &edited(|s| s["predicate"]["policy"] = serde_json::json!({"uri": "root.layout"})),
    );
    let out = run(&mut Reference::get().attestation(&file));
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(stdout(&out).contains("policy.digest"), "{}", stdout(&out));
}

#[test]
fn vsa_check_accepts_the_right_summary_and_says_what_it_accepted() {
    let dir = tempdir();
    let file = write(
        dir.path(),
        "app.vsa.json",
        &signed(&summary(Duration::minutes(5))),
    );
    let out = check(&file, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("VSA accepted"), "{text}");
    assert!(
        text.contains(&format!("dist/app.tar.gz (sha256:{DIGEST})")),
        "{text}"
    );
    assert!(text.contains(VERIFIER), "{text}");
    assert!(text.contains(LEVEL_LAYOUT_PASSED), "{text}");
    assert!(
        text.contains("(5m 0s ago)") || text.contains("(5m 1s ago)"),
        "{text}"
    );

    let out = check(&file, &["--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let json: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(json["accepted"], true);
    assert_eq!(json["vsa"]["subject"], "dist/app.tar.gz");
    assert_eq!(json["vsa"]["verified_levels"][0], LEVEL_LAYOUT_PASSED);
}

#[test]
fn vsa_check_refuses_each_wrong_summary_with_its_reason() {
    let dir = tempdir();
    let good = write(
        dir.path(),
        "good.vsa.json",
        &signed(&summary(Duration::minutes(1))),
    );

    let out = check(
        &good,
        &["--subject-digest", &format!("sha256:{}", "e".repeat(64))],
    );
    assert_refused(&out, "subject: expected one with the digest sha256:eeee");
    assert!(
        stderr(&out).contains(DIGEST),
        "names what it found: {}",
        stderr(&out)
    );

    let out = check(
        &good,
        &[
            "--resource-uri",
            "https://downloads.example.com/other.tar.gz",
        ],
    );
    assert_refused(
        &out,
        "resourceUri: expected \"https://downloads.example.com/other.tar.gz\", found \"https://downloads.example.com/app-1.0.tar.gz\"",
    );

    let out = check(
        &good,
        &["--verifier-id", "https://other.example.com/verifier"],
    );
    assert_refused(
        &out,
        "verifier.id: expected \"https://other.example.com/verifier\"",
    );

    let mut wrong_key = tollgate();
    wrong_key
        .args(["vsa", "check"])
        .arg(&good)
        .arg("--key")
        .arg(example_key("ecdsa-p256", "pub"))
        .args([
            "--subject-digest",
            &format!("sha256:{DIGEST}"),
            "--resource-uri",
            RESOURCE,
        ]);
    assert_refused(&run(&mut wrong_key), "signature:");

    let old = write(
        dir.path(),
        "old.vsa.json",
        &signed(&summary(Duration::hours(2))),
    );
    assert_refused(
        &check(&old, &[]),
        "timeVerified: expected at most 3600 s old",
    );
    // The same summary passes a laxer consumer: the age alone refused it.
    assert_eq!(code(&check(&old, &["--max-age", "1d"])), 0);

    let failed = write(
        dir.path(),
        "failed.vsa.json",
        &edited(|s| s["predicate"]["verificationResult"] = "FAILED".into()),
    );
    assert_refused(
        &check(&failed, &[]),
        "verificationResult: expected \"PASSED\", found \"FAILED\"",
    );

    let provenance = write(
        dir.path(),
        "provenance.vsa.json",
        &edited(|s| s["predicateType"] = "https://slsa.dev/provenance/v1".into()),
    );
    assert_refused(
        &check(&provenance, &[]),
        "predicateType: expected \"https://slsa.dev/verification_summary/v1\", found \"https://slsa.dev/provenance/v1\"",
    );

    // The payload changed after signing (another resource), the signature kept.
    let mut envelope: Value =
        serde_json::from_slice(&fs::read(&good).expect("read")).expect("JSON");
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = b64
        .decode(envelope["payload"].as_str().expect("payload"))
        .expect("base64");
    let payload = String::from_utf8(payload)
        .expect("UTF-8")
        .replace(RESOURCE, "https://downloads.example.com/evil.tar.gz");
    envelope["payload"] = b64.encode(payload).into();
    let tampered = write(
        dir.path(),
        "tampered.vsa.json",
        envelope.to_string().as_bytes(),
    );
    let out = check(
        &tampered,
        &[
            "--resource-uri",
            "https://downloads.example.com/evil.tar.gz",
        ],
    );
    assert_refused(&out, "signature:");

    // JSON output says why, too.
    let out = check(&failed, &["--format", "json"]);
    assert_eq!(code(&out), 1);
    let json: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(json["accepted"], false);
    assert!(
        json["reason"].as_str().expect("reason").contains("FAILED"),
        "{json}"
    );
}

#[test]
fn vsa_check_bad_input_exits_2() {
    let dir = tempdir();
    let good = write(
        dir.path(),
        "good.vsa.json",
        &signed(&summary(Duration::minutes(1))),
    );
    for (bad, says) in [
        ("5 minutes", "90s, 10m, 24h, 7d or 2w"),
        ("-5m", "has a sign"),
        ("", "empty duration"),
        ("99999999999999999999w", "too large"),
    ] {
        let out = check(&good, &["--max-age", bad]);
        assert_eq!(code(&out), 2, "{bad}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{bad}: {}", stderr(&out));
    }
    let out = check(&good, &["--subject-digest", "sha256:abc"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("64 hex characters"),
        "{}",
        stderr(&out)
    );
    let out = check(&dir.path().join("missing.json"), &[]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let not_json = write(dir.path(), "not.json", b"not json");
    assert_eq!(code(&check(&not_json, &[])), 2);
    let mut no_key = tollgate();
    no_key
        .args(["vsa", "check"])
        .arg(&good)
        .arg("--key")
        .arg(dir.path().join("nokey.pub"))
        .args([
            "--subject-digest",
            &format!("sha256:{DIGEST}"),
            "--resource-uri",
            RESOURCE,
        ]);
    assert_eq!(code(&run(&mut no_key)), 2);
}

const LAYOUT: &str = r#"
expires = "30d"
[[step]]
name = "build"
functionaries = ["keys/alice.pub"]
expected_materials = ["ALLOW src/*", "DISALLOW *"]
expected_products = ["CREATE out.txt", "DISALLOW *"]
[[step]]
name = "package"
functionaries = ["keys/alice.pub"]
expected_materials = ["MATCH out.txt WITH PRODUCTS FROM build", "DISALLOW *"]
expected_products = ["CREATE app.tar", "CREATE app.sig", "DISALLOW *"]
"#;

/// A two-step chain recorded with `tollgate run`, and the verifier's key.
struct Chain {
    dir: tempfile::TempDir,
    layout: TestLayout,
}

impl Chain {
    fn new() -> Chain {
        let dir = tempdir();
        let layout = test_layout(dir.path(), LAYOUT);
        let work = dir.path().join("work");
        fs::create_dir_all(work.join("src")).expect("mkdir");
        fs::write(work.join("src/main.c"), "int main;\n").expect("write");
        fs::write(work.join("out.txt"), "built\n").expect("write");
        fs::write(work.join("app.tar"), "packed\n").expect("write");
        fs::write(work.join("app.sig"), "signature\n").expect("write");
        let chain = Chain { dir, layout };
        chain.record("build", &["-m", "src/main.c", "-p", "out.txt"]);
        chain.record("package", &["-m", "out.txt", "-p", "app.tar", "app.sig"]);
        let out = run(tollgate()
            .args(["keygen", "-o"])
            .arg(chain.path("verifier")));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        chain
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn record(&self, step: &str, args: &[&str]) {
        let out = run(tollgate()
            .current_dir(self.path("work"))
            .args(["run", "-q", "--step", step, "--key"])
            .arg(&self.layout.alice)
            .args(args)
            .args(["--no-command", "--overwrite", "-d"])
            .arg(self.path("links")));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }

    /// `verify` of the chain with `extra` arguments.
    fn verify(&self, extra: &[&str]) -> std::process::Output {
        run(tollgate()
            .current_dir(self.path("work"))
            .args(["verify", "--layout"])
            .arg(&self.layout.layout)
            .arg("--layout-key")
            .arg(&self.layout.owner_pub)
            .arg("--link-dir")
            .arg(self.path("links"))
            .args(extra))
    }

    /// `verify --vsa OUT` with the verifier's key and names, and `extra` arguments.
    fn verify_vsa(&self, out: &Path, extra: &[&str]) -> std::process::Output {
        let key = self.path("verifier");
        let mut args = vec![
            "--vsa".to_owned(),
            out.display().to_string(),
            "--vsa-key".to_owned(),
            key.display().to_string(),
            "--verifier-id".to_owned(),
            VERIFIER.to_owned(),
            "--resource-uri".to_owned(),
            RESOURCE.to_owned(),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.verify(&args)
    }

    fn sha256(&self, path: &Path) -> String {
        hex::encode(sha2::Sha256::digest(fs::read(path).expect("read")))
    }

    /// `vsa check` of `vsa` for the artifact `work/NAME`, with the verifier's public key.
    fn check(&self, vsa: &Path, name: &str) -> std::process::Output {
        let digest = format!("sha256:{}", self.sha256(&self.path("work").join(name)));
        run(tollgate()
            .args(["vsa", "check"])
            .arg(vsa)
            .arg("--key")
            .arg(self.path("verifier.pub"))
            .args(["--subject-digest", &digest, "--resource-uri", RESOURCE])
            .args(["--verifier-id", VERIFIER, "--max-age", "10m"]))
    }
}

fn payload(envelope: &Path) -> Value {
    let value: Value = serde_json::from_slice(&fs::read(envelope).expect("read")).expect("json");
    let bytes = tollgate::envelope::decode_base64(value["payload"].as_str().expect("payload"))
        .expect("base64");
    serde_json::from_slice(&bytes).expect("payload json")
}

#[test]
fn verify_vsa_after_a_pass_states_the_chain_and_passes_vsa_check() {
    let chain = Chain::new();
    let out_file = chain.path("app.vsa.json");
    let out = chain.verify_vsa(&out_file, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("a VSA for 2 subject(s), resting on 2 file(s)"),
        "{}",
        stderr(&out)
    );

    let statement = payload(&out_file);
    let predicate = &statement["predicate"];
    assert_eq!(statement["predicateType"], vsa::VSA_PREDICATE);
    // Default subjects: every product of the last step, with the digests the chain verified.
    let subjects: Vec<(&str, &str)> = statement["subject"]
        .as_array()
        .expect("subjects")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().expect("name"),
                s["digest"]["sha256"].as_str().expect("digest"),
            )
        })
        .collect();
    let (tar, sig) = (
        chain.sha256(&chain.path("work/app.tar")),
        chain.sha256(&chain.path("work/app.sig")),
    );
    assert_eq!(
        subjects,
        [("app.sig", sig.as_str()), ("app.tar", tar.as_str())]
    );
    assert_eq!(predicate["verifier"]["id"], VERIFIER);
    assert_eq!(predicate["resourceUri"], RESOURCE);
    assert_eq!(predicate["verificationResult"], "PASSED");
    assert_eq!(
        predicate["verifiedLevels"],
        serde_json::json!([LEVEL_LAYOUT_PASSED])
    );
    assert_eq!(predicate["policy"]["uri"], "root.layout");
    assert_eq!(
        predicate["policy"]["digest"]["sha256"],
        chain.sha256(&chain.layout.layout)
    );
    // Every link that counted, by file name and digest.
    let mut inputs: Vec<(String, String)> = predicate["inputAttestations"]
        .as_array()
        .expect("inputs")
        .iter()
        .map(|a| {
            (
                a["uri"].as_str().expect("uri").to_owned(),
                a["digest"]["sha256"].as_str().expect("digest").to_owned(),
            )
        })
        .collect();
    inputs.sort();
    let mut links: Vec<(String, String)> = fs::read_dir(chain.path("links"))
        .expect("links")
        .map(|e| e.expect("entry").path())
        .map(|p| {
            (
                p.file_name().expect("name").to_string_lossy().into_owned(),
                chain.sha256(&p),
            )
        })
        .collect();
    links.sort();
    assert_eq!(inputs, links);
    assert_eq!(inputs.len(), 2);

    let out = run(&mut Reference::get().attestation(&out_file));
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let out = chain.check(&out_file, "app.tar");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("subject:  app.tar"),
        "{}",
        stdout(&out)
    );
    // The built file is not a subject of this VSA.
    assert_refused(
        &chain.check(&out_file, "out.txt"),
        "subject: expected one with the digest",
    );
}

#[test]
fn verify_vsa_subject_picks_verified_products_and_refuses_unknown_names() {
    let chain = Chain::new();
    let out_file = chain.path("build.vsa.json");
    let out = chain.verify_vsa(&out_file, &["--vsa-subject", "out.txt"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let statement = payload(&out_file);
    assert_eq!(statement["subject"].as_array().expect("subjects").len(), 1);
    assert_eq!(statement["subject"][0]["name"], "out.txt");
    assert_eq!(code(&chain.check(&out_file, "out.txt")), 0);

    let unknown = chain.path("unknown.vsa.json");
    let out = chain.verify_vsa(&unknown, &["--vsa-subject", "app.tar", "dist/missing.tar"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--vsa-subject \"dist/missing.tar\""),
        "{}",
        stderr(&out)
    );
    assert!(
        !unknown.exists(),
        "nothing is written for an unknown subject"
    );
}

#[test]
fn verify_vsa_from_a_bundle_names_the_bundle_as_its_policy() {
    let chain = Chain::new();
    let bundle = chain.path("release.bundle.json");
    let out = run(tollgate()
        .args(["bundle", "create", "--layout"])
        .arg(&chain.layout.layout)
        .arg("--link-dir")
        .arg(chain.path("links"))
        .arg("-o")
        .arg(&bundle));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out_file = chain.path("bundle.vsa.json");
    let out = run(tollgate()
        .current_dir(chain.path("work"))
        .args(["verify", "--bundle"])
        .arg(&bundle)
        .arg("--layout-key")
        .arg(&chain.layout.owner_pub)
        .arg("--vsa")
        .arg(&out_file)
        .arg("--vsa-key")
        .arg(chain.path("verifier"))
        .args(["--verifier-id", VERIFIER, "--resource-uri", RESOURCE]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let statement = payload(&out_file);
    assert_eq!(
        statement["predicate"]["policy"]["uri"],
        "release.bundle.json"
    );
    // The policy digest is still the layout's, whatever carried it.
    assert_eq!(
        statement["predicate"]["policy"]["digest"]["sha256"],
        chain.sha256(&chain.layout.layout)
    );
    assert_eq!(
        statement["predicate"]["inputAttestations"]
            .as_array()
            .expect("inputs")
            .len(),
        2
    );
    assert_eq!(code(&chain.check(&out_file, "app.sig")), 0);
}

#[test]
fn verify_vsa_is_never_written_after_a_failure() {
    let chain = Chain::new();
    // The package step's link is gone: verification fails.
    for entry in fs::read_dir(chain.path("links")).expect("links") {
        let path = entry.expect("entry").path();
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("package."))
        {
            fs::remove_file(path).expect("remove");
        }
    }
    let out_file = chain.path("app.vsa.json");
    let out = chain.verify_vsa(&out_file, &[]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("verification FAILED"),
        "{}",
        stderr(&out)
    );
    assert!(!out_file.exists(), "a failed verification wrote a VSA");
}

#[test]
fn verify_vsa_flags_come_together_and_are_checked_before_verifying() {
    let chain = Chain::new();
    let out_file = chain.path("app.vsa.json");
    let out_text = out_file.display().to_string();
    for args in [
        vec!["--vsa", out_text.as_str()],
        vec![
            "--vsa",
            out_text.as_str(),
            "--verifier-id",
            VERIFIER,
            "--resource-uri",
            RESOURCE,
        ],
        vec!["--verifier-id", VERIFIER],
        vec!["--vsa-subject", "app.tar"],
    ] {
        let out = chain.verify(&args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(
            !stderr(&out).contains("verified"),
            "{args:?} verified first: {}",
            stderr(&out)
        );
        assert!(!out_file.exists());
    }
    // A key that cannot be read stops before verification.
    let out = run(tollgate()
        .current_dir(chain.path("work"))
        .args([
            "verify",
            "--layout",
            "/nonexistent/root.layout",
            "--layout-key",
        ])
        .arg(&chain.layout.owner_pub)
        .args(["--vsa", &out_text, "--vsa-key"])
        .arg(chain.path("no-such-key"))
        .args(["--verifier-id", VERIFIER, "--resource-uri", RESOURCE]));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("no-such-key"), "{}", stderr(&out));
    // A verifier id that is no URI, likewise.
    let out = chain.verify(&[
        "--vsa",
        &out_text,
        "--vsa-key",
        &chain.path("verifier").display().to_string(),
        "--verifier-id",
        "me",
        "--resource-uri",
        RESOURCE,
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("a URI is expected"),
        "{}",
        stderr(&out)
    );
    assert!(!out_file.exists());
}

#[cfg(feature = "registry")]
#[test]
fn verify_vsa_with_image_is_about_the_image() {
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
    let bundle = dir.path().join("release.bundle.json");
    let out = run(tollgate()
        .args(["bundle", "create", "--layout"])
        .arg(&layout.layout)
        .arg("--link-dir")
        .arg(dir.path().join("links"))
        .arg("-o")
        .arg(&bundle));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let image = format!("{}/app:1.0", registry.address);
    let out = run(tollgate()
        .args(["push", &image, "--insecure-registry", "--bundle"])
        .arg(&bundle));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run(tollgate()
        .args(["keygen", "-o"])
        .arg(dir.path().join("verifier")));
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let vsa_file = dir.path().join("image.vsa.json");
    // With --image the subject is the image: naming artifacts is a usage error, before pulling.
    let out = run(tollgate()
        .args([
            "verify",
            "--image",
            &image,
            "--insecure-registry",
            "--layout-key",
        ])
        .arg(&layout.owner_pub)
        .arg("--vsa")
        .arg(&vsa_file)
        .arg("--vsa-key")
        .arg(dir.path().join("verifier"))
        .args(["--verifier-id", VERIFIER, "--resource-uri", &image])
        .args(["--vsa-subject", "oci:image"]));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("with --image the VSA is about the image"),
        "{}",
        stderr(&out)
    );
    assert!(!vsa_file.exists());
    let out = run(tollgate()
        .args([
            "verify",
            "--image",
            &image,
            "--insecure-registry",
            "--layout-key",
        ])
        .arg(&layout.owner_pub)
        .arg("--vsa")
        .arg(&vsa_file)
        .arg("--vsa-key")
        .arg(dir.path().join("verifier"))
        .args(["--verifier-id", VERIFIER, "--resource-uri", &image]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let statement = payload(&vsa_file);
    assert_eq!(statement["subject"].as_array().expect("subjects").len(), 1);
    assert_eq!(statement["subject"][0]["name"], image.as_str());
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        digest.trim_start_matches("sha256:")
    );
    assert_eq!(statement["predicate"]["policy"]["uri"], image.as_str());
    let out = run(tollgate()
        .args(["vsa", "check"])
        .arg(&vsa_file)
        .arg("--key")
        .arg(dir.path().join("verifier.pub"))
        .args(["--subject-digest", &digest, "--resource-uri", &image]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}
