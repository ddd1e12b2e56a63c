//! SLSA Verification Summary Attestations: one made through the library validates with the
//! in-toto-attestation package, and `tollgate vsa check` accepts the right one and refuses each
//! way a summary can be wrong, with its reason (exit 1), or bad input (exit 2).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use chrono::{Duration, Utc};
use serde_json::Value;
use tollgate::artifact::DigestSet;
use tollgate::envelope::{Envelope, Format};
use tollgate::policy::vsa::{self, LEVEL_LAYOUT_PASSED, Summary};

use crate::common::{
    Reference, code, example_key, load_private, run, stderr, stdout, tempdir, tollgate,
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
