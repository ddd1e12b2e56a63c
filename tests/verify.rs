//! `tollgate verify` on chains recorded by tollgate: the verdict and its reason for the honest
//! chain and for each kind of tampering, beside the reference's `in-toto-verify` where the two
//! should agree, and the verification rows of the threat catalogue.

use std::fs;
use std::path::PathBuf;
use std::process::Output;

use serde_json::{Value, json};

use crate::common::*;

/// A two-step chain (source by alice, build by bob) and an inspection, in one folder.
struct Chain {
    dir: tempfile::TempDir,
}

fn entry(kind: &str) -> (String, Value) {
    let key = load_public(kind);
    let keyid = key.keyid();
    (keyid.to_string(), key.to_layout_entry(&keyid))
}

impl Chain {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The layout payload, for tests to edit before `sign_layout`.
    fn layout(&self) -> Value {
        let (alice, alice_entry) = entry("ed25519");
        let (bob, bob_entry) = entry("bob-ed25519");
        json!({
            "_type": "layout",
            "expires": "2099-01-01T00:00:00Z",
            "readme": "test chain",
            "keys": { alice.clone(): alice_entry, bob.clone(): bob_entry },
            "steps": [
                {"_type": "step", "name": "source", "threshold": 1, "pubkeys": [alice],
                 "expected_command": [], "expected_materials": [],
                 "expected_products": [["CREATE", "src/*"], ["DISALLOW", "*"]]},
                {"_type": "step", "name": "build", "threshold": 1, "pubkeys": [bob],
                 "expected_command": [],
                 "expected_materials": [["MATCH", "src/*", "WITH", "PRODUCTS", "FROM", "source"],
                                        ["DISALLOW", "*"]],
                 "expected_products": [["CREATE", "app"], ["DISALLOW", "*"]]}
            ],
            "inspect": [
                {"_type": "inspection", "name": "check",
                 // The marker's absolute path: the inspection runs in a scratch copy.
                 "run": ["sh", "-c", format!("test -f app && touch '{}'", self.path("inspected").display())],
                 "expected_materials": [["MATCH", "app", "WITH", "PRODUCTS", "FROM", "build"],
                                        ["DISALLOW", "app"], ["ALLOW", "*"]],
                 "expected_products": [["ALLOW", "*"]]}
            ]
        })
    }

    fn new() -> Chain {
        let chain = Chain { dir: tempdir() };
        for kind in ["ed25519", "bob-ed25519", "ecdsa-p256", "rsa"] {
            private_copy(kind, chain.dir.path());
        }
        chain
    }

    fn sign_layout(&self, payload: &Value, extra: &[&str]) {
        fs::write(
            self.path("root.layout"),
            serde_json::to_vec(payload).expect("json"),
        )
        .expect("write");
        let out = run(tollgate()
            .current_dir(self.dir.path())
            .args(["sign", "root.layout", "--key", "ecdsa-p256.pem"])
            .args(extra));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }

    fn tollgate_run(&self, key: &str, args: &[&str]) {
        let out = run(tollgate()
            .current_dir(self.dir.path())
            .args(["run", "-q", "--key", key])
            .args(args));
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
    }

    /// Records the source step: `src/main.c` holding `content`.
    fn record_source(&self, content: &str, extra: &[&str]) {
        let script = format!("mkdir -p src && echo '{content}' > src/main.c");
        let mut args = vec!["--step", "source", "-p", "src"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "sh", "-c", &script]);
        self.tollgate_run("ed25519.pem", &args);
    }

    /// Records the honest chain.
    fn record(&self, extra: &[&str]) {
        self.record_source("int main;", extra);
        let mut build = vec!["--step", "build", "-m", "src", "-p", "app"];
        build.extend_from_slice(extra);
        build.extend_from_slice(&["--", "sh", "-c", "cat src/main.c > app"]);
        self.tollgate_run("bob-ed25519.pem", &build);
    }

    fn honest() -> Chain {
        let chain = Chain::new();
        chain.sign_layout(&chain.layout(), &[]);
        chain.record(&[]);
        chain
    }

    fn verify(&self, extra: &[&str]) -> Output {
        run(tollgate()
            .current_dir(self.dir.path())
            .args(["verify", "--layout", "root.layout", "--layout-key"])
            .arg(example_key("ecdsa-p256", "pub"))
            .args(extra))
    }

    fn reference_verify(&self) -> Output {
        run(Reference::get()
            .tool("in-toto-verify")
            .current_dir(self.dir.path())
            .args(["--layout", "root.layout", "--verification-keys"])
            .arg(example_key("ecdsa-p256", "pub")))
    }

    fn link(&self, step: &str, kind: &str) -> PathBuf {
        self.path(&format!(
            "{step}.{}.link",
            load_public(kind).keyid().short()
        ))
    }
}

/// Asserts a failed verification whose reason contains `reason`, and that the reference agrees
/// that the chain fails.
fn fails_like_the_reference(chain: &Chain, reason: &str) {
    let out = chain.verify(&[]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(reason),
        "expected {reason:?} in:\n{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty(), "no success line on failure");
    let theirs = chain.reference_verify();
    assert_eq!(
        code(&theirs),
        1,
        "the reference passed: {}",
        stderr(&theirs)
    );
}

#[test]
fn the_honest_chain_passes_like_the_reference() {
    let chain = Chain::honest();
    let out = chain.verify(&[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("verified: 2 step(s) and 1 inspection(s) passed"));
    assert!(chain.path("inspected").exists(), "the inspection ran");
    assert_eq!(code(&chain.reference_verify()), 0);
}

#[test]
fn a_dsse_chain_and_the_mixed_forms_pass_like_the_reference() {
    let chain = Chain::new();
    chain.sign_layout(&chain.layout(), &["--dsse"]);
    chain.record(&[]);
    assert_eq!(code(&chain.verify(&[])), 0, "DSSE layout, classic links");
    assert_eq!(code(&chain.reference_verify()), 0);
    let chain = Chain::new();
    chain.sign_layout(&chain.layout(), &[]);
    chain.record(&["--dsse"]);
    assert_eq!(code(&chain.verify(&[])), 0, "classic layout, DSSE links");
    assert_eq!(code(&chain.reference_verify()), 0);
}

#[test]
fn a_source_file_changed_between_steps_fails_on_the_rule_that_catches_it() {
    let chain = Chain::new();
    chain.sign_layout(&chain.layout(), &[]);
    chain.record_source("int main;", &[]);
    fs::write(chain.path("src/main.c"), "int backdoor;").expect("write");
    chain.tollgate_run(
        "bob-ed25519.pem",
        &[
            "--step",
            "build",
            "-m",
            "src",
            "-p",
            "app",
            "--",
            "sh",
            "-c",
            "cat src/main.c > app",
        ],
    );
    fails_like_the_reference(
        &chain,
        "step build, expected_materials rule 2 (DISALLOW *): src/main.c was not consumed by any \
         earlier rule; it differs from src/main.c among the products of step source",
    );
    assert!(
        !chain.path("inspected").exists(),
        "I3: no inspection runs after a failed step"
    );
}

#[test]
fn an_unexpected_product_fails() {
    let chain = Chain::new();
    chain.sign_layout(&chain.layout(), &[]);
    chain.record_source("a", &[]);
    chain.tollgate_run(
        "bob-ed25519.pem",
        &[
            "--step",
            "build",
            "-m",
            "src",
            "-p",
            "app",
            "extra",
            "--",
            "sh",
            "-c",
            "cat src/main.c > app && echo x > extra",
        ],
    );
    fails_like_the_reference(
        &chain,
        "expected_products rule 2 (DISALLOW *): extra was not consumed",
    );
}

#[test]
fn e3_a_missing_link_fails() {
    let chain = Chain::honest();
    fs::remove_file(chain.link("build", "bob-ed25519")).expect("rm");
    fails_like_the_reference(
        &chain,
        &format!(
            "step build: 0 of 1 required functionaries signed a link (no link found in .); it \
             accepts links signed by key {}",
            load_public("bob-ed25519").keyid().short()
        ),
    );
}

#[test]
fn a6_e2_a_link_by_an_unauthorised_key_counts_for_nothing() {
    let chain = Chain::honest();
    // Alice signs a build link and stores it under bob's name.
    let bob_file = chain.link("build", "bob-ed25519");
    fs::remove_file(&bob_file).expect("rm");
    chain.tollgate_run(
        "ed25519.pem",
        &[
            "--step", "build", "-m", "src", "-p", "app", "-d", "alice", "--", "true",
        ],
    );
    fs::rename(
        chain.path(&format!(
            "alice/build.{}.link",
            load_public("ed25519").keyid().short()
        )),
        &bob_file,
    )
    .expect("mv");
    fails_like_the_reference(&chain, "not signed by a key authorised for step build");
}

#[test]
fn e2_a_link_signed_for_another_step_does_not_count() {
    let chain = Chain::honest();
    // Bob's genuine link for a step "test", stored as his build link: the reference accepts
    // it (it never compares the signed name); tollgate does not.
    chain.tollgate_run(
        "bob-ed25519.pem",
        &["--step", "test", "-m", "src", "-p", "app", "--", "true"],
    );
    fs::rename(
        chain.link("test", "bob-ed25519"),
        chain.link("build", "bob-ed25519"),
    )
    .expect("mv");
    let out = chain.verify(&[]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("it records step test, not build"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_link_edited_after_signing_fails() {
    let chain = Chain::honest();
    let path = chain.link("build", "bob-ed25519");
    let text = fs::read_to_string(&path).expect("read");
    fs::write(&path, text.replacen("\"app\"", "\"app2\"", 1)).expect("write");
    fails_like_the_reference(&chain, "signature check failed");
}

#[test]
fn a8_a_layout_signed_by_another_key_or_edited_fails() {
    let chain = Chain::honest();
    let out = run(tollgate()
        .current_dir(chain.dir.path())
        .args(["verify", "--layout", "root.layout", "--layout-key"])
        .arg(example_key("rsa", "pub")));
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("layout signature"),
        "{}",
        stderr(&out)
    );
    assert!(
        !chain.path("inspected").exists(),
        "I3: no inspection runs for an unverified layout"
    );

    let text = fs::read_to_string(chain.path("root.layout")).expect("read");
    fs::write(
        chain.path("root.layout"),
        text.replacen("test chain", "test chaim", 1),
    )
    .expect("write");
    fails_like_the_reference(&chain, "layout signature");
}

#[test]
fn d1_an_expired_layout_fails_and_equal_counts_as_expired() {
    let chain = Chain::new();
    let mut layout = chain.layout();
    layout["expires"] = json!("2020-01-01T00:00:00Z");
    chain.sign_layout(&layout, &[]);
    chain.record(&[]);
    fails_like_the_reference(&chain, "the layout expired at 2020-01-01T00:00:00Z");

    let chain = Chain::honest();
    let at = |time: &str| chain.verify(&["--reference-time", time]);
    assert_eq!(code(&at("2098-12-31T23:59:59Z")), 0);
    let out = at("2099-01-01T00:00:00Z");
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("expired at 2099-01-01T00:00:00Z (checked at 2099-01-01T00:00:00Z)")
    );
}

#[test]
fn i4_a_failing_or_missing_inspection_command_fails() {
    for (run, reason) in [
        (
            json!(["false"]),
            "inspection check: [\"false\"] exited with 1",
        ),
        (
            json!(["no-such-tool-tollgate"]),
            "inspection check: cannot run \"no-such-tool-tollgate\"",
        ),
        (json!([]), "inspection check has no command to run"),
    ] {
        let chain = Chain::new();
        let mut layout = chain.layout();
        layout["inspect"][0]["run"] = run;
        chain.sign_layout(&layout, &[]);
        chain.record(&[]);
        let out = chain.verify(&[]);
        assert_eq!(code(&out), 1);
        assert!(stderr(&out).contains(reason), "{reason}: {}", stderr(&out));
    }
}

#[test]
fn e1_links_for_unknown_steps_are_warned_about_and_ignored() {
    let chain = Chain::honest();
    chain.tollgate_run("ed25519.pem", &["--step", "stranger", "--no-command"]);
    let out = chain.verify(&[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("a link for a step the layout does not name"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a2_e4_thresholds_count_distinct_keys_and_links_must_agree() {
    let chain = Chain::new();
    let mut layout = chain.layout();
    let (alice, _) = entry("ed25519");
    let (bob, _) = entry("bob-ed25519");
    layout["steps"][1]["pubkeys"] = json!([bob, alice]);
    layout["steps"][1]["threshold"] = json!(2);
    chain.sign_layout(&layout, &[]);
    chain.record(&[]);
    // Only bob's link: 1 of 2.
    let out = chain.verify(&[]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("step build: 1 of 2 required"),
        "{}",
        stderr(&out)
    );
    // Alice's link with other products: they disagree.
    chain.tollgate_run(
        "ed25519.pem",
        &[
            "--step",
            "build",
            "-m",
            "src",
            "-p",
            "app",
            "--",
            "sh",
            "-c",
            "echo other > app",
        ],
    );
    fails_like_the_reference(&chain, "the links of its functionaries disagree");
}

#[test]
fn a11_extra_signatures_by_unauthorised_keys_do_not_fail_the_step() {
    let chain = Chain::honest();
    let path = chain.link("build", "bob-ed25519");
    let out = run(tollgate()
        .current_dir(chain.dir.path())
        .arg("sign")
        .arg(&path)
        .args(["--key", "bob-ed25519.pem", "-o", "both.link"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // A second signature, by alice, who is not authorised for build.
    let mut value: Value = serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
    let alice = load_private("ed25519");
    let canonical = tollgate::json::canonical(&value["signed"]).expect("canonical");
    value["signatures"]
        .as_array_mut()
        .expect("list")
        .push(json!({
            "keyid": alice.public_key().keyid().to_string(),
            "sig": hex::encode(alice.sign(&canonical).expect("sign")),
        }));
    fs::write(&path, serde_json::to_vec(&value).expect("json")).expect("write");
    let out = chain.verify(&[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("by keys not authorised for this step were not counted"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn i1_i2_parameters_are_literal_and_checked() {
    let chain = Chain::new();
    let mut layout = chain.layout();
    layout["steps"][1]["expected_products"] = json!([["CREATE", "{product}"], ["DISALLOW", "*"]]);
    chain.sign_layout(&layout, &[]);
    chain.record(&[]);
    assert_eq!(code(&chain.verify(&["--param", "product=app"])), 0);
    let out = chain.verify(&["--param", "product=x; rm -rf ~"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("values may hold only"),
        "{}",
        stderr(&out)
    );
    let out = chain.verify(&["--param", "product=../../etc/passwd"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("can never match"), "{}", stderr(&out));
    let out = chain.verify(&[]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("no --param product=VALUE was given"),
        "{}",
        stderr(&out)
    );
}

/// I1/I2: `{name}` in a step's `expected_command` and an inspection's `run` is replaced by the
/// `--param` value, and the substituted values are the ones checked and run.
#[test]
fn i1_i2_parameters_reach_the_expected_command_and_the_inspection_run() {
    let chain = Chain::new();
    let marker = chain.path("inspected");
    let marker = marker.to_str().expect("utf-8 temp path");
    let mut layout = chain.layout();
    layout["steps"][1]["expected_command"] = json!(["sh", "-c", "cat src/main.c > {out}"]);
    layout["inspect"][0]["run"] = json!(["sh", "-c", "test -f app && touch \"$0\"", "{marker}"]);
    chain.sign_layout(&layout, &[]);
    chain.record(&[]);
    let marker_param = format!("marker={marker}");

    // The value the build really used: no command warning, and the inspection ran with it.
    let out = chain.verify(&[
        "--param",
        "out=app",
        "--param",
        &marker_param,
        "--format",
        "json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        report["inspections"][0]["run"],
        json!(["sh", "-c", "test -f app && touch \"$0\"", marker]),
        "the report shows the substituted run"
    );
    assert_eq!(report["inspections"][0]["return_value"], json!(0));
    assert!(
        std::path::Path::new(marker).exists(),
        "the inspection ran the substituted command"
    );
    let build_warnings: Vec<&Value> = report["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter(|w| w["item"] == "build")
        .collect();
    assert!(
        build_warnings.is_empty(),
        "no command mismatch: {build_warnings:?}"
    );

    // Another value: the expected command no longer matches what bob ran, a warning as in
    // in-toto, naming the substituted command.
    fs::remove_file(marker).expect("remove marker");
    let out = chain.verify(&["--param", "out=other", "--param", &marker_param]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(r#"the layout expects ["sh", "-c", "cat src/main.c > other"]"#),
        "{}",
        stderr(&out)
    );
    assert!(std::path::Path::new(marker).exists());
}

#[test]
fn the_json_report_carries_the_verdict_and_the_reason() {
    let chain = Chain::honest();
    let out = chain.verify(&["--format", "json"]);
    assert_eq!(code(&out), 0);
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["failure"], Value::Null);
    assert_eq!(report["steps"][1]["name"], "build");
    assert_eq!(
        report["steps"][1]["rules"][0]["rules"][0]["consumed"],
        json!(["src/main.c"])
    );

    fs::write(chain.path("app"), "swapped").expect("write");
    let out = chain.verify(&["--format", "json"]);
    assert_eq!(code(&out), 1);
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["verdict"], "fail");
    assert_eq!(report["failure"]["check"], "inspection_rules");
    assert_eq!(report["failure"]["item"], "check");
}

#[test]
fn d6_an_inconsistent_layout_is_refused_before_any_link_or_inspection() {
    let chain = Chain::new();
    let mut layout = chain.layout();
    layout["steps"][1]["threshold"] = json!(3);
    fs::write(
        chain.path("root.layout"),
        serde_json::to_vec(&layout).expect("json"),
    )
    .expect("write");
    let mut envelope =
        tollgate::envelope::Envelope::unsigned(layout, tollgate::envelope::Format::Classic);
    envelope.sign(&load_private("ecdsa-p256")).expect("sign");
    fs::write(chain.path("root.layout"), envelope.to_bytes()).expect("write");
    chain.record(&[]);
    let out = chain.verify(&[]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("threshold 3 must be from 1 to the step's 1 key(s)"),
        "{}",
        stderr(&out)
    );
    assert!(!chain.path("inspected").exists());
}

#[test]
fn a_sublayout_stands_in_for_a_step_like_in_the_reference() {
    let chain = Chain::new();
    chain.sign_layout(&chain.layout(), &[]);
    chain.record_source("int main;", &[]);
    // Bob delegates build to alice: his "link" is a layout he signs, whose step alice performs.
    let (alice, alice_entry) = entry("ed25519");
    let sublayout = json!({
        "_type": "layout",
        "expires": "2099-01-01T00:00:00Z",
        "readme": "build, delegated",
        "keys": { alice.clone(): alice_entry },
        "steps": [{"_type": "step", "name": "compile", "threshold": 1, "pubkeys": [alice],
                   "expected_command": [],
                   "expected_materials": [["ALLOW", "src/*"], ["DISALLOW", "*"]],
                   "expected_products": [["CREATE", "app"], ["DISALLOW", "*"]]}],
        "inspect": []
    });
    let bob = load_public("bob-ed25519").keyid();
    let file = chain.link("build", "bob-ed25519");
    fs::write(&file, serde_json::to_vec(&sublayout).expect("json")).expect("write");
    let out = run(tollgate()
        .current_dir(chain.dir.path())
        .arg("sign")
        .arg(&file)
        .args(["--key", "bob-ed25519.pem"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let sub_dir = format!("build.{}", bob.short());
    chain.tollgate_run(
        "ed25519.pem",
        &[
            "--step",
            "compile",
            "-m",
            "src",
            "-p",
            "app",
            "-d",
            &sub_dir,
            "--",
            "sh",
            "-c",
            "cat src/main.c > app",
        ],
    );
    let out = chain.verify(&[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(code(&chain.reference_verify()), 0);

    fs::remove_file(chain.path(&format!(
        "{sub_dir}/compile.{}.link",
        load_public("ed25519").keyid().short()
    )))
    .expect("rm");
    fails_like_the_reference(&chain, "its sublayout failed: step compile: 0 of 1");
}

/// The same chain recorded by the reference's own `in-toto-run` and `in-toto-record`, classic
/// and DSSE: tollgate verifies it, and agrees with `in-toto-verify` when it is tampered with.
#[test]
fn chains_recorded_by_the_reference_verify_with_tollgate() {
    let reference = Reference::get();
    for dsse in [false, true] {
        let chain = Chain::new();
        chain.sign_layout(&chain.layout(), if dsse { &["--dsse"] } else { &[] });
        let envelope: &[&str] = if dsse { &["--use-dsse"] } else { &[] };
        let out = run(reference
            .tool("in-toto-run")
            .current_dir(chain.dir.path())
            .args(["-n", "source", "--signing-key", "ed25519.pem", "-p", "src"])
            .args(envelope)
            .args([
                "--",
                "sh",
                "-c",
                "mkdir -p src && echo 'int main;' > src/main.c",
            ]));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        for (command, paths) in [("start", ["-m", "src"]), ("stop", ["-p", "app"])] {
            if command == "stop" {
                fs::write(chain.path("app"), "int main;\n").expect("write");
            }
            let out = run(reference
                .tool("in-toto-record")
                .current_dir(chain.dir.path())
                .args([command, "-n", "build", "--signing-key", "bob-ed25519.pem"])
                .args(paths)
                .args(envelope));
            assert_eq!(code(&out), 0, "{}", stderr(&out));
        }
        let out = chain.verify(&[]);
        assert_eq!(code(&out), 0, "dsse={dsse}: {}", stderr(&out));
        assert_eq!(code(&chain.reference_verify()), 0);

        fs::write(chain.path("app"), "int backdoor;\n").expect("write");
        fails_like_the_reference(
            &chain,
            "inspection check, expected_materials rule 2 (DISALLOW app)",
        );
    }
}

#[test]
fn match_products_compares_local_files_with_a_link_classic_or_dsse() {
    for dsse in [false, true] {
        let chain = Chain::new();
        chain.sign_layout(&chain.layout(), &[]);
        chain.record(if dsse { &["--dsse"] } else { &[] });
        let link = chain.link("build", "bob-ed25519");
        let matching = |extra: &[&str]| {
            run(tollgate()
                .current_dir(chain.dir.path())
                .arg("match-products")
                .arg("--link")
                .arg(&link)
                .args(extra))
        };
        let bob = example_key("bob-ed25519", "pub");
        let bob = bob.to_str().expect("utf8");
        let out = matching(&["--key", bob, "-p", "app"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert!(stdout(&out).contains("the local files match the link's products"));

        fs::write(chain.path("app"), "changed").expect("write");
        fs::write(chain.path("stray"), "x").expect("write");
        let out = matching(&["--key", bob, "-p", "app", "stray"]);
        assert_eq!(code(&out), 1);
        assert!(
            stdout(&out).contains("digests differ: app"),
            "{}",
            stdout(&out)
        );
        assert!(
            stdout(&out).contains("not among the products: stray"),
            "{}",
            stdout(&out)
        );

        let alice = example_key("ed25519", "pub");
        let out = matching(&["--key", alice.to_str().expect("utf8"), "-p", "app"]);
        assert_eq!(
            code(&out),
            1,
            "a link not signed by the given key: {}",
            stderr(&out)
        );
        // Plain words, naming the keys: no "distinct trusted keys".
        let wanted = format!(
            "the link is not signed by the given key {} (its signatures name key {})",
            load_public("ed25519").keyid().short(),
            load_public("bob-ed25519").keyid().short()
        );
        assert!(stderr(&out).contains(&wanted), "{}", stderr(&out));
        assert!(!stderr(&out).contains("distinct"), "{}", stderr(&out));

        let out = matching(&["-p", "app"]);
        assert!(
            stderr(&out).contains("signature is not checked"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn d5_a_pinned_layout_digest_refuses_any_other_layout() {
    use sha2::Digest;
    let chain = Chain::honest();
    let digest = hex::encode(sha2::Sha256::digest(
        fs::read(chain.path("root.layout")).expect("read"),
    ));
    assert_eq!(code(&chain.verify(&["--layout-digest", &digest])), 0);
    assert_eq!(
        code(&chain.verify(&["--layout-digest", &format!("sha256:{digest}")])),
        0
    );
    // The owner re-signs an older layout (here: the same one, re-signed, so other bytes).
    chain.sign_layout(&chain.layout(), &["--dsse"]);
    let out = chain.verify(&["--layout-digest", &digest]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("not the pinned"), "{}", stderr(&out));
}

#[test]
fn f11_a_link_with_names_that_collide_on_other_file_systems_does_not_count() {
    let chain = Chain::honest();
    let path = chain.link("build", "bob-ed25519");
    let mut value: Value = serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
    let digest = value["signed"]["products"]["app"].clone();
    value["signed"]["products"]["APP"] = digest;
    let mut envelope = tollgate::envelope::Envelope::unsigned(
        value["signed"].clone(),
        tollgate::envelope::Format::Classic,
    );
    envelope.sign(&load_private("bob-ed25519")).expect("sign");
    fs::write(&path, envelope.to_bytes()).expect("write");
    let out = chain.verify(&[]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("\"APP\" and \"app\" name one file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn f7_f8_d3_warnings_and_strict_rules() {
    let chain = Chain::new();
    let mut layout = chain.layout();
    // A typo in a rule, a list without a final DISALLOW *, and an expiry far away.
    layout["steps"][1]["expected_products"] = json!([["CREATE", "ap"], ["ALLOW", "*"]]);
    layout["expires"] = json!("2099-06-01T00:00:00Z");
    chain.sign_layout(&layout, &[]);
    chain.record(&[]);
    let out = chain.verify(&[]);
    assert_eq!(
        code(&out),
        0,
        "warnings never change the verdict: {}",
        stderr(&out)
    );
    let text = stderr(&out);
    assert!(
        text.contains("build: expected_products rule 1 (CREATE ap) matched no artifact"),
        "{text}"
    );
    assert!(
        text.contains("build: expected_products does not end in DISALLOW *"),
        "{text}"
    );
    assert!(text.contains("more than a year away"), "{text}");
    let out = chain.verify(&["--strict-rules"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains(
            "step build, expected_products rule 1 (CREATE ap) matched no artifact (--strict-rules)"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn d4_the_report_records_the_time_it_checked_against() {
    let chain = Chain::honest();
    let out = chain.verify(&[
        "--format",
        "json",
        "--reference-time",
        "2030-05-05T05:05:05Z",
    ]);
    assert_eq!(code(&out), 0);
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["verified_at"], "2030-05-05T05:05:05Z");
    assert_eq!(report["expires"], "2099-01-01T00:00:00Z");
    let out = chain.verify(&["--reference-time", "2030-05-05"]);
    assert_eq!(code(&out), 2);
}

#[test]
fn e5_a_stale_link_from_an_earlier_run_fails_the_chain() {
    let chain = Chain::honest();
    // A new run of source: new sources and a new source link, but build's link is last run's.
    chain.record_source("int main2;", &["--overwrite"]);
    fails_like_the_reference(
        &chain,
        "step build, expected_materials rule 2 (DISALLOW *): src/main.c was not consumed",
    );
}

/// Every file under `dir` (relative path and bytes), to show a folder is exactly as it was.
fn snapshot(dir: &std::path::Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(folder) = todo.pop() {
        for entry in fs::read_dir(&folder).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("inside").to_path_buf();
                files.insert(rel, fs::read(&path).expect("read"));
            }
        }
    }
    files
}

#[test]
fn i5_inspections_cannot_change_what_was_verified_and_leave_no_links() {
    let chain = Chain::new();
    // Where the inspection leaves its evidence: outside the working folder, which must stay
    // untouched.
    let evidence = tempdir();
    let mut layout = chain.layout();
    // An inspection that overwrites build's link, drops a file, and fails if it can see a
    // secret of the verifier's environment; then it records where it ran and what it left.
    let build = format!("build.{}.link", load_public("bob-ed25519").keyid().short());
    layout["inspect"][0]["run"] = json!([
        "sh",
        "-c",
        format!(
            "test -f app && test -z \"$VERIFIER_SECRET\" && echo garbage > {build} && touch dropped \
             && pwd -P >> '{ran}' && cat {build} > '{seen}' && ls dropped > '{listed}'",
            ran = evidence.path().join("ran").display(),
            seen = evidence.path().join("seen").display(),
            listed = evidence.path().join("listed").display(),
        )
    ]);
    chain.sign_layout(&layout, &[]);
    chain.record(&[]);
    let before = snapshot(chain.dir.path());
    assert!(
        before.contains_key(&PathBuf::from(&build)),
        "the build link"
    );
    let workdir = fs::canonicalize(chain.dir.path()).expect("canonicalize");
    let verify = || {
        run(tollgate()
            .current_dir(chain.dir.path())
            .env("VERIFIER_SECRET", "hunter2")
            .args(["verify", "--layout", "root.layout", "--layout-key"])
            .arg(example_key("ecdsa-p256", "pub")))
    };
    for round in 1..=2 {
        let out = verify();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        // The inspection ran (once per verification), to its end, somewhere else: in a
        // scratch copy where its writes landed.
        let ran = fs::read_to_string(evidence.path().join("ran")).expect("the inspection ran");
        let dirs: Vec<&str> = ran.lines().collect();
        assert_eq!(dirs.len(), round, "one run per verification: {ran}");
        let here = PathBuf::from(dirs[round - 1]);
        assert_ne!(
            here, workdir,
            "it ran in a scratch copy, not the working folder"
        );
        assert!(!here.starts_with(&workdir), "{}", here.display());
        assert_eq!(
            fs::read_to_string(evidence.path().join("seen")).expect("seen"),
            "garbage\n",
            "its overwrite of the link happened, in its copy"
        );
        assert_eq!(
            fs::read_to_string(evidence.path().join("listed")).expect("listed"),
            "dropped\n"
        );
        // The working folder is exactly as it was: same files, same bytes, no link of the
        // inspection, nothing dropped.
        assert_eq!(
            snapshot(chain.dir.path()),
            before,
            "the working folder is untouched"
        );
        assert!(
            !chain.path("dropped").exists(),
            "nothing is written into the folder"
        );
        assert!(
            !chain.path("check.link").exists(),
            "inspection links are not written"
        );
    }
}

fn short(kind: &str) -> String {
    load_public(kind).keyid().short().to_owned()
}

fn full(kind: &str) -> String {
    load_public(kind).keyid().to_string()
}

/// Issue 13, item 8: the most common real mistake (the wrong CI secret) leaves a link signed
/// by a key the step does not accept; the failure names the file, who signed it and which keys
/// the step accepts, in the text and in the JSON report, instead of "no link found".
#[test]
fn issue13_a_link_signed_by_the_wrong_key_is_named_not_hidden() {
    let chain = Chain::honest();
    fs::remove_file(chain.link("build", "bob-ed25519")).expect("rm");
    // Alice (the source functionary) records build: her link is build.<alice>.link.
    chain.tollgate_run(
        "ed25519.pem",
        &["--step", "build", "-m", "src", "-p", "app", "--", "true"],
    );
    let (alice, bob) = (short("ed25519"), short("bob-ed25519"));
    let out = chain.verify(&[]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let text = stderr(&out);
    let wanted = format!(
        "tollgate: verification FAILED: step build: 0 of 1 required functionaries signed a link; \
         it accepts links signed by key {bob}; ignored ./build.{alice}.link: signed by key \
         {alice} (a key of step source), which step build does not accept: it accepts key {bob}"
    );
    assert!(text.contains(&wanted), "expected {wanted:?} in:\n{text}");
    assert!(!text.contains("no link found"), "{text}");
    // The per-step summary marks the failing step and lists what it ignored.
    assert!(
        text.contains(&format!(
            "  -      step source: 1 of 1 required key(s) signed ({alice}); its rules were not \
             checked"
        )),
        "{text}"
    );
    assert!(
        text.contains("  FAILED step build: 0 of 1 required key(s) signed (none)"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "          ignored ./build.{alice}.link: signed by key {alice}"
        )),
        "{text}"
    );

    let out = chain.verify(&["--format", "json"]);
    assert_eq!(code(&out), 1);
    let report: Value = serde_json::from_str(&stdout(&out)).expect("json");
    let build = &report["steps"][1];
    assert_eq!(build["name"], "build");
    assert_eq!(build["accepted_keys"], json!([full("bob-ed25519")]));
    assert_eq!(
        build["links"],
        json!([{
            "file": format!("./build.{alice}.link"),
            "accepted": false,
            "signers": [],
            "unauthorised_signers": [full("ed25519")],
            "reason": format!(
                "signed by key {alice} (a key of step source), which step build does not \
                 accept: it accepts key {bob}"
            ),
        }])
    );

    // A key the layout does not hold at all (the RSA key) is named by the keyid it claims.
    fs::remove_file(chain.path(&format!("build.{alice}.link"))).expect("rm");
    chain.tollgate_run(
        "rsa.pem",
        &["--step", "build", "-m", "src", "-p", "app", "--", "true"],
    );
    let rsa = short("rsa");
    let out = chain.verify(&[]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains(&format!(
            "ignored ./build.{rsa}.link: signed by key {rsa} (not a key of the layout), which \
             step build does not accept: it accepts key {bob}"
        )),
        "{}",
        stderr(&out)
    );

    // Stored under bob's name, the wrong signer is named too.
    fs::rename(
        chain.path(&format!("build.{rsa}.link")),
        chain.link("build", "bob-ed25519"),
    )
    .expect("mv");
    let out = chain.verify(&[]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains(&format!(
            "; it is signed by key {rsa} (not a key of the layout), which step build does not \
             accept: it accepts key {bob}"
        )),
        "{}",
        stderr(&out)
    );

    // Bob's genuine link under another name is found and said, but not counted.
    fs::remove_file(chain.link("build", "bob-ed25519")).expect("rm");
    chain.tollgate_run(
        "bob-ed25519.pem",
        &["--step", "build", "-m", "src", "-p", "app", "--", "true"],
    );
    fs::rename(
        chain.link("build", "bob-ed25519"),
        chain.path("build.0000beef.link"),
    )
    .expect("mv");
    let out = chain.verify(&[]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains(&format!(
            "ignored ./build.0000beef.link: signed by key {bob}, which step build accepts, but \
             links are counted only under the name build.{bob}.link: rename it"
        )),
        "{}",
        stderr(&out)
    );
}

/// Issue 13, item 9: a wrong owner key names the keyid that signed the layout and the one
/// given; a layout changed after signing says so.
#[test]
fn issue13_a_wrong_layout_key_names_who_signed_and_who_was_given() {
    let chain = Chain::honest();
    let out = run(tollgate()
        .current_dir(chain.dir.path())
        .args(["verify", "--layout", "root.layout", "--layout-key"])
        .arg(example_key("rsa", "pub")));
    assert_eq!(code(&out), 1);
    let wanted = format!(
        "tollgate: verification FAILED: layout signature: the given layout key(s) {} did not \
         sign it (its signatures name key(s) {}): pass the public key of the owner who signed it",
        short("rsa"),
        short("ecdsa-p256")
    );
    assert!(stderr(&out).contains(&wanted), "{}", stderr(&out));

    let text = fs::read_to_string(chain.path("root.layout")).expect("read");
    fs::write(
        chain.path("root.layout"),
        text.replacen("test chain", "test chaim", 1),
    )
    .expect("write");
    let out = chain.verify(&[]);
    assert_eq!(code(&out), 1);
    let wanted = format!(
        "layout signature: the signature by the given layout key(s) {} does not verify: the \
         layout was changed after it was signed",
        short("ecdsa-p256")
    );
    assert!(stderr(&out).contains(&wanted), "{}", stderr(&out));
}

/// Issue 13, item 9: a threshold short by one names who signed and who did not; links that
/// disagree name the artifact and each link's digest.
#[test]
fn issue13_a_threshold_names_the_missing_key_and_the_artifact_links_disagree_on() {
    use sha2::Digest;
    let chain = Chain::new();
    let mut layout = chain.layout();
    let (alice, _) = entry("ed25519");
    let (bob, _) = entry("bob-ed25519");
    layout["steps"][1]["pubkeys"] = json!([bob, alice]);
    layout["steps"][1]["threshold"] = json!(2);
    chain.sign_layout(&layout, &[]);
    chain.record(&[]);
    let (alice, bob) = (short("ed25519"), short("bob-ed25519"));
    let out = chain.verify(&[]);
    assert_eq!(code(&out), 1);
    let wanted = format!(
        "step build: 1 of 2 required functionaries signed a link; signed by key {bob}; no \
         accepted link from key {alice}"
    );
    assert!(stderr(&out).contains(&wanted), "{}", stderr(&out));

    chain.tollgate_run(
        "ed25519.pem",
        &[
            "--step",
            "build",
            "-m",
            "src",
            "-p",
            "app",
            "--",
            "sh",
            "-c",
            "echo other > app",
        ],
    );
    let digest = |text: &str| hex::encode(sha2::Sha256::digest(text))[..16].to_owned();
    let (ours, theirs) = (digest("int main;\n"), digest("other\n"));
    let mut records = [
        (alice.clone(), format!("sha256 {theirs}")),
        (bob.clone(), format!("sha256 {ours}")),
    ];
    records.sort();
    let [(first, first_digest), (second, second_digest)] = records;
    let out = chain.verify(&[]);
    assert_eq!(code(&out), 1);
    let wanted = format!(
        "step build: the links of its functionaries disagree on their materials or products: \
         product app: build.{first}.link (signed by key {first}) records {first_digest}, \
         build.{second}.link (signed by key {second}) records {second_digest}"
    );
    assert!(stderr(&out).contains(&wanted), "{}", stderr(&out));
}

/// A link file's name is outside input: one holding terminal escapes (clear the screen, colour
/// the text) is named in the failure with the escapes made visible, never sent to the terminal.
#[test]
fn issue13_a_stray_link_name_cannot_write_to_the_terminal() {
    let chain = Chain::honest();
    fs::remove_file(chain.link("build", "bob-ed25519")).expect("rm");
    chain.tollgate_run(
        "ed25519.pem",
        &["--step", "build", "-m", "src", "-p", "app", "--", "true"],
    );
    let alice = short("ed25519");
    fs::rename(
        chain.path(&format!("build.{alice}.link")),
        chain.path("build.\u{1b}[2J\u{1b}[32mPASS\u{202e}.link"),
    )
    .expect("rename");
    let out = chain.verify(&[]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains("ignored ./build.\\u{1b}[2J\\u{1b}[32mPASS\\u{202e}.link: signed by key"),
        "{text}"
    );
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{202e}'),
        "{text:?}"
    );
}

/// A link source held in memory: verification reads links through any source, by name.
#[derive(Debug)]
struct InMemory(std::collections::BTreeMap<String, Vec<u8>>);

impl tollgate::verify::source::LinkSource for InMemory {
    fn read(
        &self,
        path: &std::path::Path,
        _max_bytes: u64,
    ) -> Result<Option<std::borrow::Cow<'_, [u8]>>, tollgate::fsio::FsError> {
        let name = path.to_string_lossy();
        Ok(self
            .0
            .get(name.as_ref())
            .map(|b| std::borrow::Cow::Borrowed(b.as_slice())))
    }

    fn list(&self, dir: &std::path::Path) -> Option<Vec<String>> {
        assert_eq!(
            dir,
            std::path::Path::new(""),
            "only the top folder is listed"
        );
        Some(self.0.keys().cloned().collect())
    }

    fn place(&self, _dir: &std::path::Path) -> String {
        "memory".to_owned()
    }
}

/// A one-step layout (build, by the ed25519 example key, any product), signed by the
/// ecdsa-p256 example key, and build's link with one product of the given SHA-256.
fn one_step_chain(product_sha256: &str) -> (Vec<u8>, tollgate::keyring::KeyRing, String, Vec<u8>) {
    use tollgate::envelope::{Envelope, Format};
    let owner = load_private("ecdsa-p256");
    let functionary = load_private("ed25519");
    let (keyid, key_entry) = entry("ed25519");
    let layout = json!({
        "_type": "layout", "expires": "2099-01-01T00:00:00Z", "readme": "",
        "keys": { keyid.as_str(): key_entry },
        "steps": [{"_type": "step", "name": "build", "threshold": 1, "pubkeys": [keyid],
                   "expected_command": [], "expected_materials": [],
                   "expected_products": [["ALLOW", "*"]]}],
        "inspect": [],
    });
    let link = json!({
        "_type": "link", "name": "build", "command": [], "materials": {},
        "products": {"app.tar": {"sha256": product_sha256}}, "byproducts": {},
        "environment": {},
    });
    let mut ring = tollgate::keyring::KeyRing::new();
    let public = owner.public_key().clone();
    ring.insert(public.keyid(), public).expect("owner key");
    let step = tollgate::name::StepName::new("build").expect("step name");
    let name = tollgate::files::link_file_name(&step, Some(&functionary.public_key().keyid()));
    (
        Envelope::seal(&layout, Format::Classic, &[&owner]).expect("layout"),
        ring,
        name,
        Envelope::seal(&link, Format::Dsse, &[&functionary]).expect("link"),
    )
}

#[test]
fn issue14_an_image_digest_not_among_the_products_fails_the_chain_in_the_library() {
    let product = "ab".repeat(32);
    let (layout, ring, name, link) = one_step_chain(&product);
    let dir = tempdir();
    fs::write(dir.path().join(&name), &link).expect("write link");
    let verify = |digest: Option<String>| {
        let mut options = tollgate::verify::VerifyOptions::new(dir.path());
        options.workdir = Some(dir.path().to_owned());
        options.image_digest = digest;
        tollgate::verify::verify(&layout, &ring, &options).expect("verifiable input")
    };
    // Without a digest, and with the product's, the chain passes.
    assert!(verify(None).passed());
    assert!(verify(Some(format!("sha256:{product}"))).passed());
    // With another image's digest, the library fails it, naming the image.
    let other = format!("sha256:{}", "cd".repeat(32));
    let report = serde_json::to_value(verify(Some(other.clone()))).expect("report json");
    assert_eq!(report["verdict"], "fail", "{report}");
    assert_eq!(report["failure"]["check"], "product", "{report}");
    assert_eq!(
        report["failure"]["reason"],
        format!(
            "the image {other} is not among the products of any step of the chain: the \
             attestation is about another image"
        ),
        "{report}"
    );
}

#[test]
fn issue14_verification_reads_links_from_any_source() {
    let product = "ab".repeat(32);
    let (layout, ring, name, link) = one_step_chain(&product);
    let workdir = tempdir();
    let source = InMemory([(name.clone(), link)].into_iter().collect());
    let mut options = tollgate::verify::VerifyOptions::with_source(std::sync::Arc::new(source));
    options.workdir = Some(workdir.path().to_owned());
    let report = tollgate::verify::verify(&layout, &ring, &options).expect("verifiable input");
    assert!(report.passed(), "{report:?}");
    assert_eq!(report.steps[0].links[0].file, name);
    // Empty, the source is where the failure says no link was found.
    let mut options = tollgate::verify::VerifyOptions::with_source(std::sync::Arc::new(InMemory(
        Default::default(),
    )));
    options.workdir = Some(workdir.path().to_owned());
    let report = tollgate::verify::verify(&layout, &ring, &options).expect("verifiable input");
    let failure = report.failure.expect("a failure");
    assert!(
        failure.reason.contains("(no link found in memory)"),
        "{}",
        failure.reason
    );
}

#[test]
fn issue15_a_pass_keeps_its_evidence_only_when_asked() {
    use sha2::Digest;
    let product = "cd".repeat(32);
    let (layout, ring, name, link) = one_step_chain(&product);
    let dir = tempdir();
    fs::write(dir.path().join(&name), &link).expect("write link");
    let mut options = tollgate::verify::VerifyOptions::new(dir.path());
    options.workdir = Some(dir.path().to_owned());
    let report = tollgate::verify::verify(&layout, &ring, &options).expect("verifiable input");
    assert!(report.passed(), "{report:?}");
    assert!(
        report.evidence.is_none(),
        "evidence is kept only on request"
    );

    options.keep_evidence = true;
    let report = tollgate::verify::verify(&layout, &ring, &options).expect("verifiable input");
    assert!(report.passed(), "{report:?}");
    let evidence = report.evidence.expect("evidence kept");
    assert_eq!(
        evidence.layout_sha256,
        hex::encode(sha2::Sha256::digest(&layout))
    );
    assert_eq!(
        evidence.inputs,
        vec![(name.clone(), hex::encode(sha2::Sha256::digest(&link)))],
        "the one link that counted, named relative to the link folder"
    );
    assert_eq!(evidence.last_step.as_deref(), Some("build"));
    let products = &evidence.products["build"];
    assert_eq!(products.len(), 1);
    let (artifact, digests) = products.iter().next().expect("one product");
    assert_eq!(artifact.as_str(), "app.tar");
    assert_eq!(digests.get("sha256").as_deref(), Some(product.as_str()));
    // Serialised reports do not carry it.
    let json =
        serde_json::to_string(&tollgate::verify::verify(&layout, &ring, &options).expect("ok"))
            .expect("serialise");
    assert!(!json.contains("evidence"), "{json}");
}
