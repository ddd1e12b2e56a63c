//! A realistic release chain recorded by the reference's own tools, verified by tollgate and by
//! `in-toto-verify` side by side: the honest chain in every envelope combination, and each kind
//! of tampering, which both must reject.
//!
//! Steps: source (alice, `in-toto-record start`/`stop`), review (alice and carl, threshold 2,
//! ed25519 and ECDSA), build (an RSA functionary), scan (bob), sign (bob, delegated through a
//! sublayout to alice, who writes the checksum). Inspections unpack the product and compare it
//! with the reviewed source, and check the checksum file.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{Value, json};

use crate::common::*;

const ALICE: &str = "ed25519";
const CARL: &str = "ecdsa-p256";
const BUILDER: &str = "rsa";
const BOB: &str = "bob-ed25519";
const OWNER: &str = "ecdsa-p384";

fn keyid(kind: &str) -> String {
    load_public(kind).keyid().to_string()
}

fn short(kind: &str) -> String {
    load_public(kind).keyid().short().to_owned()
}

fn entry(kind: &str) -> Value {
    let key = load_public(kind);
    key.to_layout_entry(&key.keyid())
}

fn step(name: &str, keys: &[&str], threshold: usize, materials: Value, products: Value) -> Value {
    json!({"_type": "step", "name": name, "threshold": threshold,
           "pubkeys": keys.iter().map(|k| keyid(k)).collect::<Vec<_>>(),
           "expected_command": [], "expected_materials": materials, "expected_products": products})
}

fn layout() -> Value {
    let keys: serde_json::Map<String, Value> = [ALICE, CARL, BUILDER, BOB]
        .iter()
        .map(|k| (keyid(k), entry(k)))
        .collect();
    json!({
        "_type": "layout",
        "expires": "2099-01-01T00:00:00Z",
        "readme": "release pipeline",
        "keys": keys,
        "steps": [
            step("source", &[ALICE], 1, json!([]),
                 json!([["CREATE", "src/*"], ["DISALLOW", "*"]])),
            step("review", &[ALICE, CARL], 2,
                 json!([["MATCH", "src/*", "WITH", "PRODUCTS", "FROM", "source"], ["DISALLOW", "*"]]),
                 json!([["DISALLOW", "*"]])),
            step("build", &[BUILDER], 1,
                 json!([["MATCH", "src/*", "WITH", "PRODUCTS", "FROM", "source"], ["DISALLOW", "*"]]),
                 json!([["CREATE", "dist/app.tar.gz"], ["DISALLOW", "*"]])),
            step("scan", &[BOB], 1,
                 json!([["MATCH", "dist/app.tar.gz", "WITH", "PRODUCTS", "FROM", "build"], ["DISALLOW", "*"]]),
                 json!([["REQUIRE", "scan-report.txt"], ["CREATE", "scan-report.txt"], ["DISALLOW", "*"]])),
            step("sign", &[BOB], 1,
                 json!([["MATCH", "dist/app.tar.gz", "WITH", "PRODUCTS", "FROM", "build"], ["DISALLOW", "*"]]),
                 json!([["CREATE", "dist/app.tar.gz.sha256"], ["DISALLOW", "*"]])),
        ],
        "inspect": [
            {"_type": "inspection", "name": "unpack",
             "run": ["sh", "-c", "mkdir -p unpacked && tar xzf dist/app.tar.gz -C unpacked"],
             "expected_materials": [["MATCH", "dist/app.tar.gz", "WITH", "PRODUCTS", "FROM", "build"],
                                    ["DISALLOW", "dist/app.tar.gz"], ["ALLOW", "*"]],
             "expected_products": [["MATCH", "src/*", "IN", "unpacked", "WITH", "PRODUCTS", "FROM", "source"],
                                   ["DISALLOW", "unpacked/*"], ["ALLOW", "*"]]},
            {"_type": "inspection", "name": "checksum",
             "run": ["sha256sum", "--check", "--quiet", "dist/app.tar.gz.sha256"],
             "expected_materials": [["MATCH", "dist/app.tar.gz.sha256", "WITH", "PRODUCTS", "FROM", "sign"],
                                    ["DISALLOW", "dist/app.tar.gz.sha256"], ["ALLOW", "*"]],
             "expected_products": [["ALLOW", "*"]]}
        ]
    })
}

/// Bob's "link" for sign: a layout delegating the step to alice.
fn sublayout() -> Value {
    json!({
        "_type": "layout",
        "expires": "2099-01-01T00:00:00Z",
        "readme": "signing, delegated",
        "keys": { keyid(ALICE): entry(ALICE) },
        "steps": [step("checksum", &[ALICE], 1,
            json!([["ALLOW", "dist/app.tar.gz"], ["DISALLOW", "*"]]),
            json!([["CREATE", "dist/app.tar.gz.sha256"], ["DISALLOW", "*"]]))],
        "inspect": []
    })
}

struct Release {
    dir: tempfile::TempDir,
    dsse_links: bool,
}

impl Release {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn reference(&self, tool: &str, args: &[&str]) {
        let mut command = Reference::get().tool(tool);
        command.current_dir(self.dir.path()).args(args);
        if self.dsse_links {
            command.arg("--use-dsse");
        }
        let out = run(&mut command);
        assert_eq!(code(&out), 0, "{tool} {args:?}: {}", stderr(&out));
    }

    fn in_toto_run(&self, key: &str, step: &str, paths: &[&str], command: &str) {
        let key = format!("{key}.pem");
        let mut args = vec!["-n", step, "--signing-key", &key];
        args.extend_from_slice(paths);
        args.extend_from_slice(&["--", "sh", "-c", command]);
        self.reference("in-toto-run", &args);
    }

    fn sign_with_tollgate(&self, file: &Path, key: &str, dsse: bool) {
        let out = run(tollgate()
            .current_dir(self.dir.path())
            .arg("sign")
            .arg(file)
            .arg("--key")
            .arg(format!("{key}.pem"))
            .args(if dsse { &["--dsse"][..] } else { &[][..] }));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }

    fn write_layout(&self, layout: &Value, dsse: bool) {
        let path = self.path("root.layout");
        fs::write(&path, serde_json::to_vec(layout).expect("json")).expect("write");
        self.sign_with_tollgate(&path, OWNER, dsse);
    }

    /// The honest release, recorded by the reference.
    fn new(dsse_layout: bool, dsse_links: bool) -> Release {
        let release = Release {
            dir: tempdir(),
            dsse_links,
        };
        for kind in [ALICE, CARL, BUILDER, BOB, OWNER] {
            let to = release.path(&format!("{kind}.pem"));
            fs::copy(example_key(kind, "pem"), &to).expect("copy");
            set_mode(&to, 0o600);
        }
        release.write_layout(&layout(), dsse_layout);
        // source: a job that starts, checks out, stops.
        release.reference(
            "in-toto-record",
            &["start", "-n", "source", "--signing-key", "ed25519.pem"],
        );
        fs::create_dir_all(release.path("src")).expect("mkdir");
        fs::write(release.path("src/main.c"), "int main(void) { return 0; }\n").expect("write");
        fs::write(release.path("src/README"), "the app\n").expect("write");
        release.reference(
            "in-toto-record",
            &[
                "stop",
                "-n",
                "source",
                "--signing-key",
                "ed25519.pem",
                "-p",
                "src",
            ],
        );
        for reviewer in [ALICE, CARL] {
            release.in_toto_run(reviewer, "review", &["-m", "src"], "true");
        }
        release.in_toto_run(
            BUILDER,
            "build",
            &["-m", "src", "-p", "dist"],
            "mkdir -p dist && tar czf dist/app.tar.gz src",
        );
        release.in_toto_run(
            BOB,
            "scan",
            &["-m", "dist/app.tar.gz", "-p", "scan-report.txt"],
            "echo clean > scan-report.txt",
        );
        // sign: bob's link is a sublayout; alice performs its step.
        let delegated = release.path(&format!("sign.{}.link", short(BOB)));
        fs::write(&delegated, serde_json::to_vec(&sublayout()).expect("json")).expect("write");
        release.sign_with_tollgate(&delegated, BOB, dsse_links);
        let sub_dir = format!("sign.{}", short(BOB));
        fs::create_dir_all(release.path(&sub_dir)).expect("mkdir");
        release.in_toto_run(
            ALICE,
            "checksum",
            &[
                "-m",
                "dist/app.tar.gz",
                "-p",
                "dist/app.tar.gz.sha256",
                "-d",
                &sub_dir,
            ],
            "sha256sum dist/app.tar.gz > dist/app.tar.gz.sha256",
        );
        release
    }

    fn verify_both(&self, owner: &str) -> (Output, Output) {
        let ours = run(tollgate()
            .current_dir(self.dir.path())
            .args(["verify", "--layout", "root.layout", "--layout-key"])
            .arg(example_key(owner, "pub")));
        let theirs = run(Reference::get()
            .tool("in-toto-verify")
            .current_dir(self.dir.path())
            .args(["--layout", "root.layout", "--verification-keys"])
            .arg(example_key(owner, "pub")));
        // Inspections leave their output in the working folder: start the next check clean.
        let _ = fs::remove_dir_all(self.path("unpacked"));
        (ours, theirs)
    }

    fn assert_passes(&self) {
        let (ours, theirs) = self.verify_both(OWNER);
        assert_eq!(code(&ours), 0, "tollgate: {}", stderr(&ours));
        assert_eq!(code(&theirs), 0, "in-toto-verify: {}", stderr(&theirs));
    }

    fn assert_both_reject(&self, case: &str, reason: &str) {
        self.assert_both_reject_with(case, reason, OWNER);
    }

    fn assert_both_reject_with(&self, case: &str, reason: &str, owner: &str) {
        let (ours, theirs) = self.verify_both(owner);
        assert_eq!(
            code(&ours),
            1,
            "{case}: tollgate did not reject: {}",
            stderr(&ours)
        );
        assert!(
            stderr(&ours).contains(reason),
            "{case}: expected {reason:?} in:\n{}",
            stderr(&ours)
        );
        assert_ne!(
            code(&theirs),
            0,
            "{case}: in-toto-verify passed: {}",
            stderr(&theirs)
        );
    }

    fn link(&self, step: &str, kind: &str) -> PathBuf {
        self.path(&format!("{step}.{}.link", short(kind)))
    }
}

#[test]
fn the_release_chain_passes_in_every_envelope_combination() {
    for (dsse_layout, dsse_links) in [(false, false), (true, true), (true, false), (false, true)] {
        let release = Release::new(dsse_layout, dsse_links);
        release.assert_passes();
    }
}

#[test]
fn tampering_with_artifacts_is_rejected_by_both() {
    let release = Release::new(false, false);
    // A well-formed tarball with other contents, swapped in after the last step.
    let evil = release.path("evil/src");
    fs::create_dir_all(&evil).expect("mkdir");
    fs::write(evil.join("main.c"), "int backdoor;\n").expect("write");
    let status = std::process::Command::new("tar")
        .current_dir(release.dir.path())
        .args(["czf", "dist/app.tar.gz", "-C", "evil", "src"])
        .status()
        .expect("tar");
    assert!(status.success());
    fs::remove_dir_all(release.path("evil")).expect("rm");
    // Every inspection runs before any inspection rule (the reference's order): the checksum
    // check catches the swap first.
    release.assert_both_reject("product changed after the last step",
        "inspection checksum: [\"sha256sum\", \"--check\", \"--quiet\", \"dist/app.tar.gz.sha256\"] exited with 1");

    let release = Release::new(false, true);
    fs::write(release.path("src/main.c"), "int backdoor;\n").expect("write");
    release.in_toto_run(
        BUILDER,
        "build",
        &["-m", "src", "-p", "dist"],
        "mkdir -p dist && tar czf dist/app.tar.gz src",
    );
    release.assert_both_reject(
        "source changed between steps",
        "step build, expected_materials rule 2 (DISALLOW *): src/main.c was not consumed",
    );

    let release = Release::new(false, false);
    fs::write(release.path("dist/extra"), "x").expect("write");
    release.in_toto_run(
        BUILDER,
        "build",
        &["-m", "src", "-p", "dist"],
        "tar czf dist/app.tar.gz src",
    );
    release.assert_both_reject(
        "unexpected artifact",
        "step build, expected_products rule 2 (DISALLOW *): dist/",
    );

    let release = Release::new(false, false);
    fs::remove_file(release.path("scan-report.txt")).expect("rm");
    release.in_toto_run(BOB, "scan", &["-m", "dist/app.tar.gz"], "true");
    release.assert_both_reject(
        "required artifact missing",
        "step scan, expected_products rule 1 (REQUIRE scan-report.txt)",
    );
}

#[test]
fn tampering_with_links_and_keys_is_rejected_by_both() {
    let release = Release::new(false, false);
    let build = release.link("build", BUILDER);
    fs::remove_file(&build).expect("rm");
    // Bob records build and stores his link under the builder's name.
    release.in_toto_run(BOB, "build", &["-m", "src", "-p", "dist"], "true");
    fs::rename(release.link("build", BOB), &build).expect("mv");
    release.assert_both_reject("link by an unauthorised key", "step build: 0 of 1");

    let release = Release::new(true, false);
    fs::remove_file(release.link("review", CARL)).expect("rm");
    release.assert_both_reject("threshold not met", "step review: 1 of 2");

    let release = Release::new(false, true);
    fs::write(release.path("src/README"), "changed for carl's review\n").expect("write");
    release.in_toto_run(CARL, "review", &["-m", "src"], "true");
    release.assert_both_reject(
        "threshold links disagree",
        "the links of its functionaries disagree",
    );

    let release = Release::new(false, false);
    let scan = release.link("scan", BOB);
    let text = fs::read_to_string(&scan).expect("read");
    let value: Value = serde_json::from_str(&text).expect("json");
    let digest = value["signed"]["products"]["scan-report.txt"]["sha256"]
        .as_str()
        .expect("digest")
        .to_owned();
    fs::write(&scan, text.replacen(&digest, &"0".repeat(64), 1)).expect("write");
    release.assert_both_reject("link edited after signing", "step scan: 0 of 1");

    let release = Release::new(false, false);
    fs::remove_file(release.link("scan", BOB)).expect("rm");
    release.assert_both_reject("missing link", "step scan: 0 of 1");
}

#[test]
fn tampering_with_the_layout_is_rejected_by_both() {
    let release = Release::new(false, false);
    let mut expired = layout();
    expired["expires"] = json!("2021-01-01T00:00:00Z");
    release.write_layout(&expired, false);
    release.assert_both_reject(
        "expired layout",
        "the layout expired at 2021-01-01T00:00:00Z",
    );

    let release = Release::new(true, false);
    release.assert_both_reject_with("layout checked with the wrong key", "layout signature", BOB);

    let release = Release::new(false, false);
    let text = fs::read_to_string(release.path("root.layout")).expect("read");
    fs::write(
        release.path("root.layout"),
        text.replacen("release pipeline", "release pipelinf", 1),
    )
    .expect("write");
    release.assert_both_reject("layout edited after signing", "layout signature");

    let release = Release::new(false, false);
    let mut failing = layout();
    failing["inspect"][1]["run"] = json!(["sha256sum", "--check", "--quiet", "no-such.sha256"]);
    release.write_layout(&failing, false);
    release.assert_both_reject("failing inspection", "inspection checksum:");
}

#[test]
fn tampering_with_the_sublayout_is_rejected_by_both() {
    let release = Release::new(false, false);
    let sub_link = release.path(&format!(
        "sign.{}/checksum.{}.link",
        short(BOB),
        short(ALICE)
    ));
    fs::remove_file(sub_link).expect("rm");
    release.assert_both_reject(
        "sublayout missing a link",
        "its sublayout failed: step checksum: 0 of 1",
    );

    let release = Release::new(false, false);
    let delegated = release.link("sign", BOB);
    fs::write(&delegated, serde_json::to_vec(&sublayout()).expect("json")).expect("write");
    release.sign_with_tollgate(&delegated, CARL, false);
    release.assert_both_reject("sublayout signed by the wrong key", "step sign: 0 of 1");
}
