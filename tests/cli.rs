//! The command line: what a user types and what they see, files written and exit codes.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::common::*;

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

#[test]
fn j3_keygen_writes_a_private_key_0600_and_never_overwrites() {
    let dir = tempdir();
    let key = dir.path().join("alice");
    let out = run(tollgate().args(["keygen", "-o"]).arg(&key));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(&dir.path().join("alice.pub")), 0o644);
    let printed = stdout(&out).trim().to_owned();
    let id = run(tollgate()
        .args(["key", "id"])
        .arg(dir.path().join("alice.pub")));
    assert_eq!(stdout(&id).trim(), printed);
    assert_eq!(printed.len(), 64);
    // The private key is never printed.
    let pem = fs::read_to_string(&key).expect("read");
    let body: String = pem.lines().nth(1).expect("pem body").to_owned();
    assert!(!stdout(&out).contains(&body) && !stderr(&out).contains(&body));

    let before = fs::read(&key).expect("read");
    let again = run(tollgate().args(["keygen", "-o"]).arg(&key));
    assert_eq!(code(&again), 2);
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    assert_eq!(fs::read(&key).expect("read"), before);
}

#[test]
fn j3_signing_refuses_a_key_others_can_read() {
    let dir = tempdir();
    let key = private_copy("ed25519", dir.path());
    set_mode(&key, 0o644);
    let layout = dir.path().join("root.layout");
    fs::write(
        &layout,
        serde_json::to_vec(&bare_layout("x")).expect("json"),
    )
    .expect("write");
    let out = run(tollgate().arg("sign").arg(&layout).arg("-k").arg(&key));
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("accessible by others (mode 0644)"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("chmod 600"), "{}", stderr(&out));
    let out = run(tollgate()
        .arg("sign")
        .arg(&layout)
        .arg("-k")
        .arg(&key)
        .arg("--insecure-key-permissions"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// A "key" over the key-file cap is refused before it is parsed, naming the limit that
/// refused it, and the layout is left as it was.
#[test]
fn a_key_file_over_its_cap_is_refused_naming_the_cap() {
    let dir = tempdir();
    let key = dir.path().join("huge.pem");
    fs::write(&key, vec![b'A'; 1024 * 1024 + 1]).expect("write");
    set_mode(&key, 0o600);
    let layout = dir.path().join("root.layout");
    let text = serde_json::to_vec(&bare_layout("x")).expect("json");
    fs::write(&layout, &text).expect("write");
    let out = run(tollgate().arg("sign").arg(&layout).arg("-k").arg(&key));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("huge.pem: too large: over the limit max_key_file_bytes"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fs::read(&layout).expect("read"), text);
}

#[test]
fn encrypted_keys_need_their_password() {
    let dir = tempdir();
    let key = dir.path().join("owner");
    let password = dir.path().join("pw");
    fs::write(&password, "s3cret\n").expect("write");
    let out = run(tollgate()
        .args(["keygen", "--type", "ecdsa", "-o"])
        .arg(&key)
        .arg("--password-file")
        .arg(&password));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        fs::read_to_string(&key)
            .expect("read")
            .starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    );

    let layout = dir.path().join("root.layout");
    fs::write(
        &layout,
        serde_json::to_vec(&bare_layout("x")).expect("json"),
    )
    .expect("write");
    let sign = || {
        let mut command = tollgate();
        command.arg("sign").arg(&layout).arg("-k").arg(&key);
        command
    };
    let out = run(&mut sign());
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("encrypted"), "{}", stderr(&out));
    let out = run(sign()
        .args(["--password-env", "TOLLGATE_TEST_PW"])
        .env("TOLLGATE_TEST_PW", "nope"));
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("wrong password"), "{}", stderr(&out));
    let out = run(sign()
        .args(["--password-env", "TOLLGATE_TEST_PW"])
        .env("TOLLGATE_TEST_PW", "s3cret"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run(tollgate()
        .args(["sign", "--verify"])
        .arg(&layout)
        .arg("-k")
        .arg(dir.path().join("owner.pub")));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn signing_a_link_names_it_after_step_and_keyid() {
    let dir = tempdir();
    let key = private_copy("ed25519", dir.path());
    let link = dir.path().join("unsigned.link");
    fs::write(
        &link,
        r#"{"_type": "link", "name": "build", "command": [], "materials": {}, "products": {},
            "byproducts": {}, "environment": {}}"#,
    )
    .expect("write");
    let out = run(tollgate()
        .arg("sign")
        .arg(&link)
        .arg("-k")
        .arg(&key)
        .arg("--dsse"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let keyid = load_public("ed25519").keyid();
    let written = dir.path().join(format!("build.{}.link", keyid.short()));
    let out = run(tollgate()
        .args(["sign", "--verify"])
        .arg(&written)
        .arg("-k")
        .arg(example_key("ed25519", "pub")));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("link signed by all 1 given key(s) (DSSE envelope)"));

    // A link takes one key, and no --append.
    let bob = private_copy("bob-ed25519", dir.path());
    let out = run(tollgate()
        .arg("sign")
        .arg(&written)
        .arg("-k")
        .arg(&key)
        .arg(&bob));
    assert_eq!(code(&out), 2);
    let out = run(tollgate()
        .arg("sign")
        .arg(&written)
        .arg("-k")
        .arg(&bob)
        .arg("--append"));
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("--append is for layouts"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn verification_failures_exit_1_and_bad_input_exits_2_naming_the_file() {
    let dir = tempdir();
    let key = private_copy("ed25519", dir.path());
    let layout = dir.path().join("root.layout");
    fs::write(
        &layout,
        serde_json::to_vec(&bare_layout("x")).expect("json"),
    )
    .expect("write");
    assert_eq!(
        code(&run(tollgate()
            .arg("sign")
            .arg(&layout)
            .arg("-k")
            .arg(&key))),
        0
    );

    let out = run(tollgate()
        .args(["sign", "--verify"])
        .arg(&layout)
        .arg("-k")
        .arg(example_key("ed25519", "pub"))
        .arg(example_key("rsa", "pub")));
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("1 of 2 required keys signed"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty(), "no success line on failure");

    let broken = dir.path().join("broken.layout");
    fs::write(&broken, "{\"signed\": {}, \"signed\": {}}").expect("write");
    let out = run(tollgate()
        .args(["sign", "--verify"])
        .arg(&broken)
        .arg("-k")
        .arg(example_key("ed25519", "pub")));
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("broken.layout: duplicate key \"signed\""),
        "{}",
        stderr(&out)
    );

    let out = run(tollgate()
        .args(["sign", "--verify"])
        .arg(dir.path().join("missing.layout"))
        .arg("-k")
        .arg(example_key("ed25519", "pub")));
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("missing.layout: cannot read"),
        "{}",
        stderr(&out)
    );

    let out = run(tollgate()
        .args(["sign", "--verify"])
        .arg(&layout)
        .arg("-k")
        .arg(&key));
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("pass the public key file"),
        "{}",
        stderr(&out)
    );

    let out = run(tollgate().args(["sign", "--bogus"]));
    assert_eq!(code(&out), 2);
}

#[test]
fn signing_rejects_an_invalid_layout_and_writes_nothing() {
    let dir = tempdir();
    let key = private_copy("ed25519", dir.path());
    let layout = dir.path().join("root.layout");
    let mut payload = bare_layout("x");
    payload["steps"] = serde_json::json!([{"_type": "step", "name": "../evil", "threshold": 1,
        "pubkeys": [], "expected_command": [], "expected_materials": [], "expected_products": []}]);
    let original = serde_json::to_vec(&payload).expect("json");
    fs::write(&layout, &original).expect("write");
    let out = run(tollgate().arg("sign").arg(&layout).arg("-k").arg(&key));
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("steps[0].name"), "{}", stderr(&out));
    assert_eq!(fs::read(&layout).expect("read"), original);
}

#[test]
fn key_show_prints_the_layout_entry() {
    let out = run(tollgate()
        .args(["key", "show", "--format", "json"])
        .arg(example_key("ed25519", "pub")));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let key = load_public("ed25519");
    let keyid = key.keyid();
    assert_eq!(shown[keyid.as_str()], key.to_layout_entry(&keyid));
    assert_eq!(
        shown[keyid.as_str()]["keyval"]["public"]
            .as_str()
            .map(str::len),
        Some(64)
    );
}
