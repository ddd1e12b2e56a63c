//! Writing layouts (`tollgate layout new/build/check/show/sign`), the demo, and the generated
//! completions and manual page.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{code, private_copy, repo, run, stderr, stdout, tempdir, tollgate};

/// Makes `dir/keys/NAME` and `NAME.pub` with `tollgate keygen`.
fn keygen(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join("keys").join(name);
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let out = run(tollgate().args(["keygen", "-o"]).arg(&path));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    path
}

fn pub_of(private: &Path) -> PathBuf {
    let mut name = private.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

#[test]
fn the_demo_passes_the_honest_chain_and_names_the_rule_that_catches_the_tamper() {
    let dir = tempdir();
    let kept = dir.path().join("demo");
    let out = run(tollgate().args(["demo", "--keep"]).arg(&kept));
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}{}", stderr(&out));
    assert!(
        text.contains("PASS: 5 step(s) and 2 inspection(s) passed"),
        "{text}"
    );
    // Issue 13, item 13: what happened first, in plain words, then the rule; the failing
    // check marked; the backdoor named where the chain shows it.
    assert!(
        text.contains(
            "FAIL: dist/app.tar.gz is not the file frank signed at step sign: inspection unpack, \
             expected_materials rule 2 (DISALLOW *): dist/app.tar.gz was not consumed by any \
             earlier rule; it differs from dist/app.tar.gz among the products of step sign (also \
             refused: dist/app.tar.gz.sha256)"
        ),
        "{text}"
    );
    assert!(
        text.contains("ok     step review: 2 of 2 required key(s) signed"),
        "{text}"
    );
    assert!(
        text.contains(
            "FAILED inspection unpack: `tar -xzf dist/app.tar.gz` exited 0\n   \
             \x20           expected_materials rule 2 (DISALLOW *) refused:\n   \
             \x20             dist/app.tar.gz is not the file frank signed at step sign\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "src/backdoor.c is not among the materials bob and alice signed at step review"
        ),
        "{text}"
    );
    // Issue 15, item 5: the scanner attests an SBOM (the demo's own, and it says so), the
    // honest release passes the policy over it, and a later release whose SBOM lists left-pad
    // is refused by the deny-list rule, with its message.
    for wanted in [
        "a stand-in for a real scanner such as syft",
        "-> links/scan.4f172783.cyclonedx.intoto.json",
        "https://cyclonedx.org/bom: 1 of 1 required attestation(s) passed every rule (erin \
         4f172783)",
        "5. A later release adds a web page that pulls in left-pad",
        "FAIL: step scan: the cyclonedx attestation \
         later/links/scan.4f172783.cyclonedx.intoto.json (signed by erin): rule 2",
        "is false: a denied component is in the release",
        "the release with a denied component was refused",
    ] {
        assert!(text.contains(wanted), "no {wanted:?} in {text}");
    }
    let later = verify_later(&kept);
    assert_eq!(code(&later), 1, "{}", stderr(&later));
    let report: serde_json::Value = serde_json::from_str(&stdout(&later)).expect("json");
    assert_eq!(report["failure"]["check"], "predicate", "{report:#}");
    assert_eq!(report["failure"]["predicate"]["rule"], 2, "{report:#}");
    assert_eq!(
        report["failure"]["predicate"]["debug"], "a denied component is in the release",
        "{report:#}"
    );
    // What it kept verifies with the command a user would type, on a fresh copy of what was
    // shipped (the demo's own buyer folder now holds the unpacked source too).
    let links = fs::read_dir(kept.join("links")).expect("links").count();
    assert_eq!(
        links, 7,
        "two review links, one per other step, and the scanner's SBOM attestation"
    );
    assert!(
        kept.join("links/scan.4f172783.cyclonedx.intoto.json")
            .is_file()
    );
    let buyer = dir.path().join("buyer");
    fs::create_dir_all(buyer.join("dist")).expect("mkdir");
    for file in ["app.tar.gz", "app.tar.gz.sha256"] {
        fs::copy(
            kept.join("project/dist").join(file),
            buyer.join("dist").join(file),
        )
        .expect("copy");
    }
    let verify = |workdir: &Path| {
        run(tollgate()
            .args(["verify", "--layout"])
            .arg(kept.join("root.layout"))
            .arg("--layout-key")
            .arg(kept.join("owner.pub"))
            .arg("--link-dir")
            .arg(kept.join("links"))
            .arg("--workdir")
            .arg(workdir))
    };
    let out = verify(&buyer);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("verified: 5 step(s) and 2 inspection(s) passed"));
    // The attacker's folder still fails the same way.
    let tampered = dir.path().join("tampered");
    fs::create_dir_all(tampered.join("dist")).expect("mkdir");
    for file in ["app.tar.gz", "app.tar.gz.sha256"] {
        fs::copy(
            kept.join("buyer-tampered/dist").join(file),
            tampered.join("dist").join(file),
        )
        .expect("copy");
    }
    let out = verify(&tampered);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("inspection unpack, expected_materials rule 2 (DISALLOW *)"),
        "{}",
        stderr(&out)
    );
    // `tollgate verify` shows the same per-step summary as the demo (keyids for names).
    for wanted in [
        "tollgate: verification FAILED: dist/app.tar.gz is not the file key 077f9619 signed at \
         step sign: inspection unpack",
        "  ok     step sign: 1 of 1 required key(s) signed (077f9619)",
        "  FAILED inspection unpack: `tar -xzf dist/app.tar.gz` exited 0",
        "src/backdoor.c is not among the materials keys 61dbe027 and b0cf0b49 signed at step \
         review",
        "  -      inspection checksum: `sha256sum --check --strict dist/app.tar.gz.sha256` exited \
         0; its rules were not checked",
    ] {
        assert!(
            stderr(&out).contains(wanted),
            "no {wanted:?} in {}",
            stderr(&out)
        );
    }
}

/// `tollgate verify --format json` of the kept demo's later release (its SBOM lists left-pad),
/// on a fresh copy of what was shipped.
fn verify_later(kept: &Path) -> std::process::Output {
    let buyer = kept.join("later/fresh-buyer");
    fs::create_dir_all(buyer.join("dist")).expect("mkdir");
    for file in ["app.tar.gz", "app.tar.gz.sha256"] {
        fs::copy(
            kept.join("later/project/dist").join(file),
            buyer.join("dist").join(file),
        )
        .expect("copy");
    }
    run(tollgate()
        .args(["verify", "--format", "json", "--layout"])
        .arg(kept.join("root.layout"))
        .arg("--layout-key")
        .arg(kept.join("owner.pub"))
        .arg("--link-dir")
        .arg(kept.join("later/links"))
        .arg("--workdir")
        .arg(&buyer))
}

#[test]
fn the_demo_leaves_nothing_behind_and_will_not_reuse_a_folder() {
    let dir = tempdir();
    let scratch = dir.path().join("tmp");
    fs::create_dir(&scratch).expect("mkdir");
    let out = run(tollgate().arg("demo").env("TMPDIR", &scratch));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("removed at the end"));
    assert_eq!(fs::read_dir(&scratch).expect("read").count(), 0);

    let out = run(tollgate().args(["demo", "--keep"]).arg(dir.path()));
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("it exists already"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_new_release_template_builds_checks_shows_and_verifies_once_its_keys_exist() {
    let dir = tempdir();
    let source = dir.path().join("layout.toml");
    let out = run(tollgate()
        .args(["layout", "new", "--template", "release", "-o"])
        .arg(&source));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = fs::read_to_string(&source).expect("read");
    assert!(text.contains("keys/alice.pub") && !text.contains("test-only"));
    // Not over an existing file.
    let again = run(tollgate()
        .args(["layout", "new", "--template", "release", "-o"])
        .arg(&source));
    assert_eq!(code(&again), 2);

    // Without the keys, building names the missing file.
    let owner = keygen(dir.path(), "owner");
    let out = run(tollgate()
        .args(["layout", "build"])
        .arg(&source)
        .arg("--key")
        .arg(&owner));
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("step[0] \"review\": functionary key \"keys/alice.pub\""),
        "{}",
        stderr(&out)
    );

    for name in ["alice", "bob", "carol", "dan", "erin", "frank"] {
        keygen(dir.path(), name);
    }
    let layout = dir.path().join("root.layout");
    let out = run(tollgate()
        .args(["layout", "build"])
        .arg(&source)
        .arg("--key")
        .arg(&owner)
        .arg("-o")
        .arg(&layout));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("5 step(s), 2 inspection(s), 6 functionary key(s)"));

    let out = run(tollgate()
        .args(["layout", "check"])
        .arg(&layout)
        .arg("--key")
        .arg(pub_of(&owner)));
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(
        stdout(&out).contains("0 error(s), 0 warning(s)"),
        "{}",
        stdout(&out)
    );

    let out = run(tollgate()
        .args(["layout", "show"])
        .arg(&layout)
        .arg("--key")
        .arg(pub_of(&owner)));
    let shown = stdout(&out);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(shown.contains("signed by 1 key(s) (verified)"), "{shown}");
    assert!(shown.contains("1. review: 2 of 2 functionary key(s) must agree"));
    assert!(shown.contains("3. build: 1 of 1"));
    assert!(shown.contains("command:   tar -czf dist/app.tar.gz src"));
    assert!(shown.contains("1. MATCH src/* WITH PRODUCTS FROM source"));
    assert!(shown.contains("2. checksum: runs sha256sum --check --strict"));

    // Rebuilding over it needs --overwrite.
    let out = run(tollgate()
        .args(["layout", "build"])
        .arg(&source)
        .arg("--key")
        .arg(&owner)
        .arg("-o")
        .arg(&layout));
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("--overwrite"), "{}", stderr(&out));
}

#[test]
fn layout_sign_adds_an_owner_and_keeps_the_others() {
    let dir = tempdir();
    let layout = dir.path().join("release.layout");
    let owner = private_copy("owner", dir.path());
    let out = run(tollgate()
        .args(["layout", "build"])
        .arg(repo().join("layouts/release.toml"))
        .arg("--key")
        .arg(&owner)
        .arg("-o")
        .arg(&layout)
        .arg("--dsse"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let second = keygen(dir.path(), "second-owner");
    let out = run(tollgate()
        .args(["layout", "sign"])
        .arg(&layout)
        .arg("--key")
        .arg(&second));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("added 1 signature(s); 2 in all"));
    let out = run(tollgate()
        .args(["sign", "--verify"])
        .arg(&layout)
        .arg("--key")
        .arg(repo().join("keys-example/test-only-owner.pub"))
        .arg("--key")
        .arg(pub_of(&second)));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("layout signed by all 2 given key(s) (DSSE envelope)"));
    // The same key again is refused; a link is not a layout.
    let out = run(tollgate()
        .args(["layout", "sign"])
        .arg(&layout)
        .arg("--key")
        .arg(&second));
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("has already signed"),
        "{}",
        stderr(&out)
    );
    let link = dir.path().join("x.link");
    fs::write(
        &link,
        r#"{"_type":"link","name":"x","command":[],"materials":{},"products":{},"byproducts":{},"environment":{}}"#,
    )
    .expect("write");
    let out = run(tollgate()
        .args(["layout", "sign"])
        .arg(&link)
        .arg("--key")
        .arg(&second));
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("not a layout"), "{}", stderr(&out));
}

#[test]
fn layout_check_reports_signatures_load_errors_and_warnings_with_exit_codes() {
    let dir = tempdir();
    let owner = private_copy("owner", dir.path());
    let layout = dir.path().join("root.layout");
    let out = run(tollgate()
        .args(["layout", "build"])
        .arg(repo().join("layouts/release.toml"))
        .arg("--key")
        .arg(&owner)
        .arg("-o")
        .arg(&layout));
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // The wrong owner key: an error, exit 1.
    let out = run(tollgate()
        .args(["layout", "check"])
        .arg(&layout)
        .arg("--key")
        .arg(repo().join("keys-example/test-only-alice.pub")));
    assert_eq!(code(&out), 1);
    assert!(
        stdout(&out).contains("error: signatures:"),
        "{}",
        stdout(&out)
    );

    // An unsigned layout with a list that does not end in DISALLOW *: warnings, exit 0, or 1
    // with --deny-warnings; the JSON form says the same.
    let mut payload: serde_json::Value = {
        let bytes = fs::read(&layout).expect("read");
        let envelope: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        envelope["signed"].clone()
    };
    payload["steps"][2]["expected_products"]
        .as_array_mut()
        .expect("rules")
        .pop();
    let unsigned = dir.path().join("unsigned.layout");
    fs::write(&unsigned, serde_json::to_vec(&payload).expect("json")).expect("write");
    let out = run(tollgate().args(["layout", "check"]).arg(&unsigned));
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("warning: the layout is not signed"), "{text}");
    assert!(
        text.contains("warning: step build, expected_products: does not end in DISALLOW *"),
        "{text}"
    );
    let out = run(tollgate()
        .args(["layout", "check", "--deny-warnings"])
        .arg(&unsigned));
    assert_eq!(code(&out), 1);
    let out = run(tollgate()
        .args(["layout", "check", "--format", "json"])
        .arg(&unsigned));
    let findings: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let build = findings
        .as_array()
        .expect("array")
        .iter()
        .find(|f| f["location"]["name"] == "build")
        .expect("a finding about build");
    assert_eq!(build["severity"], "warning");
    assert_eq!(build["location"]["field"], "expected_products");

    // A layout that does not load: an error naming the step.
    payload["steps"][2]["threshold"] = serde_json::json!(5);
    fs::write(&unsigned, serde_json::to_vec(&payload).expect("json")).expect("write");
    let out = run(tollgate().args(["layout", "check"]).arg(&unsigned));
    assert_eq!(code(&out), 1);
    assert!(
        stdout(&out).contains("error: the layout does not load: step \"build\": threshold 5"),
        "{}",
        stdout(&out)
    );
    // A source that does not compile.
    let source = dir.path().join("bad.toml");
    fs::write(&source, "expires = \"90d\"\n[[step]]\nname = \"x\"\n").expect("write");
    let out = run(tollgate().args(["layout", "check"]).arg(&source));
    assert_eq!(code(&out), 1);
    assert!(stdout(&out).contains("functionaries"), "{}", stdout(&out));
}

#[test]
fn the_committed_release_layout_is_built_from_its_source_and_signed_by_the_owner() {
    crate::common::assert_committed_layout("release");
}

#[test]
fn completions_and_the_manual_page_come_from_the_cli_definition() {
    let out = run(tollgate().args(["completions", "bash"]));
    assert_eq!(code(&out), 0);
    let script = stdout(&out);
    assert!(
        script.contains("tollgate__subcmd__layout__subcmd__build"),
        "bash completes subcommands"
    );
    assert!(script.contains("--layout-key"));
    let out = run(tollgate().args(["completions", "zsh"]));
    assert!(stdout(&out).starts_with("#compdef tollgate"));
    let out = run(tollgate().arg("man"));
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains(".TH tollgate 1"));
    let dir = tempdir();
    let out = run(tollgate().args(["man", "--dir"]).arg(dir.path()));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let page = fs::read_to_string(dir.path().join("tollgate-verify.1")).expect("verify page");
    assert!(page.contains("inspection\\-timeout"), "{page}");
}

/// `demo --keep` with a relative folder: the tools it runs work in folders of their own, so the
/// demo must not hand them the relative name (tar failed with "Cannot open").
#[test]
fn the_demo_keeps_a_relative_folder() {
    let dir = tempdir();
    let out = run(tollgate()
        .current_dir(dir.path())
        .args(["demo", "--keep", "kept"]));
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("Demo complete: the honest chain passed"),
        "{}",
        stdout(&out)
    );
    assert!(
        dir.path()
            .join("kept/buyer-tampered/dist/app.tar.gz")
            .is_file()
    );
    // The command it suggests works as printed, from the folder it names.
    let suggested = stdout(&out)
        .lines()
        .find_map(|l| l.trim().strip_prefix("cd ").map(str::to_owned))
        .expect("a suggested command");
    let (folder, command) = suggested
        .split_once(" && tollgate ")
        .expect("cd ... && tollgate");
    assert_eq!(
        command,
        "verify --layout ../root.layout --layout-key ../owner.pub --link-dir ../links"
    );
    let out = run(tollgate().current_dir(folder).args(command.split(' ')));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("verified: 5 step(s) and 2 inspection(s) passed"));
}

#[test]
fn every_template_checks_clean_once_its_keys_exist_and_check_names_every_missing_key() {
    for (template, names) in [
        ("minimal", &["builder"][..]),
        (
            "release",
            &["alice", "bob", "carol", "dan", "erin", "frank"][..],
        ),
    ] {
        let dir = tempdir();
        let source = dir.path().join("layout.toml");
        let out = run(tollgate()
            .args(["layout", "new", "--template", template, "-o"])
            .arg(&source));
        assert_eq!(code(&out), 0, "{}", stderr(&out));

        // Before the keys exist: one error per key file, not only the first.
        let out = run(tollgate().args(["layout", "check"]).arg(&source));
        let text = stdout(&out);
        assert_eq!(code(&out), 1, "{template}: {text}");
        for name in names {
            assert!(
                text.contains(&format!("functionary key \"keys/{name}.pub\"")),
                "{template}: {name}: {text}"
            );
        }
        assert!(
            text.contains(&format!("{} error(s), 0 warning(s)", names.len())),
            "{template}: {text}"
        );

        // Once they do, the template has no findings at all.
        for name in names {
            keygen(dir.path(), name);
        }
        let out = run(tollgate()
            .args(["layout", "check", "--deny-warnings"])
            .arg(&source));
        let text = stdout(&out);
        assert_eq!(code(&out), 0, "{template}: {text}");
        assert_eq!(
            text,
            format!("{}: 0 error(s), 0 warning(s)\n", source.display()),
            "{template}"
        );
    }
}

#[test]
fn a_step_written_with_single_brackets_is_explained() {
    let dir = tempdir();
    let source = dir.path().join("layout.toml");
    fs::write(
        &source,
        "expires = \"90d\"\n\n[step]\nname = \"build\"\nfunctionaries = []\n",
    )
    .expect("write");
    for command in ["check", "build"] {
        let mut cmd = tollgate();
        cmd.args(["layout", command]).arg(&source);
        if command == "build" {
            cmd.args(["--key", "owner.pem"]);
        }
        let out = run(&mut cmd);
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert_eq!(code(&out), if command == "check" { 1 } else { 2 }, "{text}");
        assert!(
            text.contains(
                "layout.toml: line 3: [step] is one table, but a layout source lists each step \
                 in its own [[step]] (two pairs of brackets): write [[step]]"
            ),
            "{text}"
        );
        assert!(!text.contains("expected a sequence"), "{text}");
    }
}
