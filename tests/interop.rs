//! Interoperability with the Python reference implementation, in-toto 3.1.0: keyids, and
//! signatures in both envelopes and both directions, for every key type.

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;
use tollgate::envelope::Envelope;
use tollgate::json;
use tollgate::keyring::KeyRing;
use tollgate::limits::Limits;

use crate::common::*;

const FORMATS: [&str; 2] = ["classic", "dsse"];

/// `tollgate keygen --type` for each key type of `keys-example/`.
fn keygen_type(kind: &str) -> &'static str {
    match kind {
        "ed25519" => "ed25519",
        "ecdsa-p256" => "ecdsa",
        "ecdsa-p384" => "ecdsa-p384",
        _ => "rsa",
    }
}

fn keygen(dir: &Path, kind: &str) -> PathBuf {
    let path = dir.join(format!("{kind}.key"));
    let out = run(tollgate()
        .args(["keygen", "--type", keygen_type(kind), "-o"])
        .arg(&path));
    assert_eq!(code(&out), 0, "keygen: {}", stderr(&out));
    path
}

fn pub_of(private: &Path) -> PathBuf {
    let mut p = private.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

#[test]
fn keyids_match_the_reference_for_every_key_type() {
    let reference = Reference::get();
    let dir = tempdir();
    let mut public_keys: Vec<PathBuf> = KEY_TYPES.iter().map(|k| example_key(k, "pub")).collect();
    public_keys.push(example_key("ed25519-encrypted", "pub"));
    for kind in KEY_TYPES {
        public_keys.push(pub_of(&keygen(dir.path(), kind)));
    }
    for public in &public_keys {
        let ours = run(tollgate().args(["key", "id"]).arg(public));
        assert_eq!(code(&ours), 0, "{}", stderr(&ours));
        let theirs = run(reference.script("keyid").arg(public));
        assert_eq!(code(&theirs), 0, "{}", stderr(&theirs));
        assert_eq!(
            stdout(&ours).trim(),
            stdout(&theirs).trim(),
            "{}",
            public.display()
        );

        // The layout entry is the one the reference writes into a layout's keys map.
        let shown = run(tollgate()
            .args(["key", "show", "--format", "json"])
            .arg(public));
        let shown: Value = serde_json::from_slice(&shown.stdout).expect("json");
        let keyobj = run(reference.script("keyobj").arg(public));
        let keyobj: Value = serde_json::from_slice(&keyobj.stdout).expect("json");
        let keyid = stdout(&ours).trim().to_owned();
        assert_eq!(shown[&keyid], keyobj, "{}", public.display());
    }
}

/// Rewrites the readme inside a signed layout file without re-signing it.
fn tamper_readme(path: &Path) {
    let bytes = fs::read(path).expect("read");
    let mut value: Value = serde_json::from_slice(&bytes).expect("json");
    if let Some(signed) = value.get_mut("signed") {
        signed["readme"] = Value::from("tampered");
    } else {
        let b64 = base64::engine::general_purpose::STANDARD;
        let payload = b64
            .decode(value["payload"].as_str().expect("payload"))
            .expect("b64");
        let text = String::from_utf8(payload).expect("utf8");
        let tampered = text.replacen("\"readme\": \"", "\"readme\": \"X", 1);
        assert_ne!(text, tampered);
        value["payload"] = Value::from(b64.encode(tampered));
    }
    fs::write(path, serde_json::to_vec(&value).expect("json")).expect("write");
}

#[test]
fn layouts_signed_by_tollgate_verify_with_the_reference() {
    let reference = Reference::get();
    let dir = tempdir();
    let links = dir.path().join("links");
    fs::create_dir(&links).expect("mkdir");
    for kind in KEY_TYPES {
        let key = keygen(dir.path(), kind);
        for format in FORMATS {
            let layout = dir.path().join(format!("{kind}-{format}.layout"));
            fs::write(
                &layout,
                serde_json::to_vec(&bare_layout(TRICKY_TEXT)).expect("json"),
            )
            .expect("write");
            let out = run(tollgate()
                .arg("sign")
                .arg(&layout)
                .arg("-k")
                .arg(&key)
                .arg(format!("--{format}")));
            assert_eq!(code(&out), 0, "{kind} {format}: {}", stderr(&out));

            let check = |expect: i32| {
                let out = run(reference
                    .tool("in-toto-sign")
                    .arg("-f")
                    .arg(&layout)
                    .arg("-k")
                    .arg(pub_of(&key))
                    .arg("--verify"));
                assert_eq!(
                    code(&out),
                    expect,
                    "in-toto-sign {kind} {format}: {}",
                    stderr(&out)
                );
                let out = run(reference
                    .tool("in-toto-verify")
                    .arg("--layout")
                    .arg(&layout)
                    .arg("--verification-keys")
                    .arg(pub_of(&key))
                    .arg("--link-dir")
                    .arg(&links));
                assert_eq!(
                    code(&out),
                    expect,
                    "in-toto-verify {kind} {format}: {}",
                    stderr(&out)
                );
            };
            check(0);
            tamper_readme(&layout);
            check(1);
        }
    }
}

#[test]
fn links_signed_by_tollgate_verify_with_the_reference() {
    let reference = Reference::get();
    let dir = tempdir();
    for kind in KEY_TYPES {
        let key = private_copy(kind, dir.path());
        for format in FORMATS {
            let unsigned = dir.path().join(format!("{kind}-{format}.unsigned"));
            let link = serde_json::json!({
                "_type": "link",
                "name": "build",
                "command": ["sh", "-c", TRICKY_TEXT],
                "materials": {"h\u{e9}llo w\u{f6}rld.txt": {"sha256": "a".repeat(64)}},
                "products": {},
                "byproducts": {"return-value": 0, "stdout": TRICKY_TEXT, "stderr": ""},
                "environment": {},
            });
            fs::write(&unsigned, serde_json::to_vec(&link).expect("json")).expect("write");
            let signed = dir.path().join(format!("{kind}-{format}.link"));
            let out = run(tollgate()
                .arg("sign")
                .arg(&unsigned)
                .arg("-k")
                .arg(&key)
                .arg("-o")
                .arg(&signed)
                .arg(format!("--{format}")));
            assert_eq!(code(&out), 0, "{}", stderr(&out));
            let out = run(reference
                .tool("in-toto-sign")
                .arg("-f")
                .arg(&signed)
                .arg("-k")
                .arg(example_key(kind, "pub"))
                .arg("--verify"));
            assert_eq!(
                code(&out),
                0,
                "in-toto-sign {kind} {format}: {}",
                stderr(&out)
            );
        }
    }
}

#[test]
fn the_example_layout_verifies_with_tollgate_and_the_reference() {
    let reference = Reference::get();
    let layout = repo().join("layouts/demo.layout");
    let owner = example_key("ed25519", "pub");
    let out = run(tollgate()
        .args(["sign", "--verify"])
        .arg(&layout)
        .arg("--key")
        .arg(&owner));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run(reference
        .tool("in-toto-sign")
        .arg("-f")
        .arg(&layout)
        .arg("-k")
        .arg(&owner)
        .arg("--verify"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // The readable source and the signed file hold the same layout.
    let source: Value =
        serde_json::from_slice(&fs::read(repo().join("layouts/demo.layout.json")).expect("read"))
            .expect("json");
    let signed: Value = serde_json::from_slice(&fs::read(&layout).expect("read")).expect("json");
    assert_eq!(signed["signed"], source);
}

#[test]
fn a_layout_signed_by_several_tollgate_keys_verifies_with_the_reference() {
    let reference = Reference::get();
    let dir = tempdir();
    let layout = dir.path().join("root.layout");
    fs::write(
        &layout,
        serde_json::to_vec(&bare_layout("two owners")).expect("json"),
    )
    .expect("write");
    let rsa = private_copy("rsa", dir.path());
    let encrypted = private_copy("ed25519-encrypted", dir.path());
    let out = run(tollgate().arg("sign").arg(&layout).arg("-k").arg(&rsa));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run(tollgate()
        .arg("sign")
        .arg(&layout)
        .arg("--append")
        .arg("-k")
        .arg(&encrypted)
        .arg("--password-file")
        .arg(repo().join("keys-example/test-only-password.txt")));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run(reference
        .tool("in-toto-verify")
        .arg("--layout")
        .arg(&layout)
        .arg("--verification-keys")
        .arg(example_key("rsa", "pub"))
        .arg(example_key("ed25519-encrypted", "pub"))
        .arg("--link-dir")
        .arg(dir.path()));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// Reference-made fixtures for one key type: a layout signed with `ref.py` and a link
/// recorded by `in-toto-run` with tricky stdout, in both envelopes.
fn reference_fixtures(reference: &Reference, dir: &Path, kind: &str) -> Vec<PathBuf> {
    let bare = dir.join("bare.layout");
    fs::write(
        &bare,
        serde_json::to_vec(&bare_layout(TRICKY_TEXT)).expect("json"),
    )
    .expect("write");
    let key = private_copy(kind, dir);
    fs::write(dir.join("artifact"), "contents\n").expect("write");
    let mut files = Vec::new();
    for format in FORMATS {
        let layout = dir.join(format!("{kind}-{format}.layout"));
        let mut command = reference.script("sign-layout");
        command
            .arg("--in")
            .arg(&bare)
            .arg("--key")
            .arg(&key)
            .arg("--out")
            .arg(&layout);
        if format == "dsse" {
            command.arg("--dsse");
        }
        let out = run(&mut command);
        assert_eq!(code(&out), 0, "ref.py sign-layout: {}", stderr(&out));
        files.push(layout);

        let link_dir = dir.join(format!("links-{format}"));
        fs::create_dir(&link_dir).expect("mkdir");
        let mut command = reference.tool("in-toto-run");
        command
            .current_dir(dir)
            .args(["--step-name", "build", "--signing-key"])
            .arg(&key)
            .args([
                "--materials",
                "artifact",
                "--products",
                "artifact",
                "-s",
                "-d",
            ])
            .arg(&link_dir);
        if format == "dsse" {
            command.arg("--use-dsse");
        }
        command.args(["--", "python3", "-c", &format!("print({TRICKY_TEXT:?})")]);
        let out = run(&mut command);
        assert_eq!(code(&out), 0, "in-toto-run: {}", stderr(&out));
        let link = fs::read_dir(&link_dir)
            .expect("read link dir")
            .map(|e| e.expect("entry").path())
            .find(|p| p.extension().is_some_and(|e| e == "link"))
            .expect("in-toto-run wrote a link");
        files.push(link);
    }
    files
}

#[test]
fn metadata_signed_by_the_reference_verifies_with_tollgate() {
    let reference = Reference::get();
    for kind in KEY_TYPES {
        let dir = tempdir();
        for file in reference_fixtures(reference, dir.path(), kind) {
            let out = run(tollgate()
                .args(["sign", "--verify"])
                .arg(&file)
                .arg("-k")
                .arg(example_key(kind, "pub")));
            assert_eq!(code(&out), 0, "{}: {}", file.display(), stderr(&out));
            let out = run(tollgate()
                .args(["sign", "--verify"])
                .arg(&file)
                .arg("-k")
                .arg(example_key("bob-ed25519", "pub")));
            assert_eq!(
                code(&out),
                1,
                "wrong key on {}: {}",
                file.display(),
                stderr(&out)
            );

            // Nothing was lost on the way: the recorded stdout came through intact.
            if file.extension().is_some_and(|e| e == "link") {
                let bytes = fs::read(&file).expect("read");
                let ring = KeyRing::from_keys([load_public(kind)]).expect("ring");
                let verified = Envelope::from_bytes(&bytes, &Limits::default())
                    .expect("decode")
                    .verify(&ring, 1)
                    .expect("verify");
                assert_eq!(
                    verified.payload()["byproducts"]["stdout"],
                    Value::from(format!("{TRICKY_TEXT}\n"))
                );
            }
        }
    }
}

/// THREATS A1: every single-byte change to a signed file either fails to verify or leaves the
/// signed content as it was (a change of whitespace, an escape, or the unsigned keyid hint).
#[test]
fn a1_every_single_byte_mutation_of_reference_metadata_is_rejected() {
    let reference = Reference::get();
    let limits = Limits::default();
    for kind in KEY_TYPES {
        let dir = tempdir();
        let ring = KeyRing::from_keys([load_public(kind)]).expect("ring");
        for file in reference_fixtures(reference, dir.path(), kind) {
            let original = fs::read(&file).expect("read");
            let signed = Envelope::from_bytes(&original, &limits)
                .expect("decode")
                .verify(&ring, 1)
                .expect("the fixture verifies");
            let signed = json::canonical(signed.payload()).expect("canonical");
            let mut accepted = 0;
            for i in 0..original.len() {
                for flip in [0x01u8, 0x20] {
                    let mut mutated = original.clone();
                    mutated[i] ^= flip;
                    let Ok(envelope) = Envelope::from_bytes(&mutated, &limits) else {
                        continue;
                    };
                    if let Ok(verified) = envelope.verify(&ring, 1) {
                        let payload = json::canonical(verified.payload()).expect("canonical");
                        assert_eq!(
                            payload,
                            signed,
                            "{}: mutation at byte {i} changed the content and still verified",
                            file.display()
                        );
                        accepted += 1;
                    }
                }
            }
            // Some mutations are harmless (the keyid hint, whitespace); most are not.
            assert!(
                accepted < original.len() / 4,
                "{}: {accepted} accepted",
                file.display()
            );
        }
    }
}

#[test]
fn keys_written_by_tollgate_load_in_the_reference() {
    let reference = Reference::get();
    let dir = tempdir();
    let password = dir.path().join("password");
    fs::write(&password, "hunter2 with spaces\n").expect("write");
    let bare = dir.path().join("bare.layout");
    fs::write(
        &bare,
        serde_json::to_vec(&bare_layout("keys")).expect("json"),
    )
    .expect("write");
    for kind in KEY_TYPES {
        for encrypted in [false, true] {
            let key = dir.path().join(format!("{kind}-{encrypted}.key"));
            let mut keygen = tollgate();
            keygen
                .args(["keygen", "--type", keygen_type(kind), "-o"])
                .arg(&key);
            if encrypted {
                keygen.arg("--password-file").arg(&password);
            }
            let out = run(&mut keygen);
            assert_eq!(code(&out), 0, "{}", stderr(&out));
            let signed = dir.path().join(format!("{kind}-{encrypted}.layout"));
            let mut sign = reference.script("sign-layout");
            sign.arg("--in")
                .arg(&bare)
                .arg("--key")
                .arg(&key)
                .arg("--out")
                .arg(&signed);
            if encrypted {
                sign.arg("--password-file").arg(&password);
            }
            let out = run(&mut sign);
            assert_eq!(
                code(&out),
                0,
                "the reference cannot use {kind}: {}",
                stderr(&out)
            );
            let out = run(tollgate()
                .args(["sign", "--verify"])
                .arg(&signed)
                .arg("-k")
                .arg(pub_of(&key)));
            assert_eq!(code(&out), 0, "{}", stderr(&out));
        }
    }
}

#[test]
fn a_layout_built_with_the_reference_api_loads_and_keeps_its_form() {
    let reference = Reference::get();
    let dir = tempdir();
    let bare = dir.path().join("bare.layout");
    let out = run(reference
        .script("make-layout")
        .arg("--out")
        .arg(&bare)
        .args(["--expires", "2099-01-01T00:00:00Z", "--readme", TRICKY_TEXT])
        .arg("--key")
        .arg(example_key("ed25519", "pub"))
        .arg("--key")
        .arg(example_key("rsa", "pub"))
        .arg("--steps"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let signed = dir.path().join("root.layout");
    let key = private_copy("ecdsa-p384", dir.path());
    let out = run(reference
        .script("sign-layout")
        .arg("--in")
        .arg(&bare)
        .arg("--key")
        .arg(&key)
        .arg("--out")
        .arg(&signed));
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let bytes = fs::read(&signed).expect("read");
    let ring = KeyRing::from_keys([load_public("ecdsa-p384")]).expect("ring");
    let verified = Envelope::from_bytes(&bytes, &Limits::default())
        .expect("decode")
        .verify(&ring, 1)
        .expect("verify");
    let layout = tollgate::layout::Layout::from_value(verified.payload(), &Limits::default())
        .expect("the reference's layout is valid for tollgate");
    let names: Vec<&str> = layout.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["clone", "package"]);
    assert_eq!(layout.steps[1].threshold, 2);
    assert_eq!(layout.steps[1].pubkeys.len(), 2);
    assert_eq!(layout.inspections[0].run, ["tar", "xzf", "project.tar.gz"]);
    assert_eq!(layout.readme, TRICKY_TEXT);
    // Tollgate's full form of a layout is the reference's, field for field.
    assert_eq!(&layout.to_value(), verified.payload());

    // Signed by tollgate with a deterministic (ed25519) key, the file is byte for byte the one
    // the reference writes with the same key, in both envelopes.
    let ed25519 = private_copy("ed25519", dir.path());
    for format in FORMATS {
        let theirs = dir.path().join(format!("theirs-{format}.layout"));
        let mut command = reference.script("sign-layout");
        command
            .arg("--in")
            .arg(&bare)
            .arg("--key")
            .arg(&ed25519)
            .arg("--out")
            .arg(&theirs);
        if format == "dsse" {
            command.arg("--dsse");
        }
        assert_eq!(code(&run(&mut command)), 0);
        let ours = dir.path().join(format!("ours-{format}.layout"));
        let out = run(tollgate()
            .arg("sign")
            .arg(&bare)
            .arg("-k")
            .arg(&ed25519)
            .arg("-o")
            .arg(&ours)
            .arg(format!("--{format}")));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert_eq!(
            String::from_utf8(fs::read(&ours).expect("read")).expect("utf8"),
            String::from_utf8(fs::read(&theirs).expect("read")).expect("utf8"),
            "{format}"
        );
    }
}
