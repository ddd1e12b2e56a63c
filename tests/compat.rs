//! What other implementations wrote (issue 13, item 3): metadata and keys as a user migrating
//! from in-toto 3.1.0, older in-toto versions, in-toto-golang and OpenSSL 1.0 holds them.
//! The files come from the reference itself, from OpenSSL (`tests/data/keys-legacy/`, made by
//! its `make.sh`), or are written in the exact shape in-toto-golang emits.

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Value, json};
use tollgate::json;
use tollgate::keys::PrivateKey;

use crate::common::*;

/// The folder of OpenSSL-made legacy key files.
fn legacy(name: &str) -> PathBuf {
    repo().join("tests/data/keys-legacy").join(name)
}

/// Copies a legacy private key into `dir` with mode 0600 (git checks files out 0644).
fn legacy_private(name: &str, dir: &Path) -> PathBuf {
    let to = dir.join(name);
    fs::copy(legacy(name), &to).expect("copy key");
    set_mode(&to, 0o600);
    to
}

/// A bare link for a signing test.
fn bare_link(dir: &Path) -> PathBuf {
    let path = dir.join("bare.link.json");
    let link = json!({
        "_type": "link", "name": "build", "command": ["make"],
        "materials": {}, "products": {"app": {"sha256": "b".repeat(64)}},
        "byproducts": {}, "environment": {},
    });
    fs::write(&path, serde_json::to_vec(&link).expect("json")).expect("write");
    path
}

/// A bare layout made by the reference (`Layout.add_functionary_key_from_path` for each key),
/// with `keyval.private` set to `private` in every key as older in-toto versions wrote it and
/// a step `build` by alice, then signed by the reference with the example owner key: the
/// signature covers the field.
fn reference_layout_with_private(dir: &Path, private: &str) -> PathBuf {
    let reference = Reference::get();
    let bare = dir.join("bare.layout.json");
    let out = run(reference
        .script("make-layout")
        .arg("--out")
        .arg(&bare)
        .args(["--expires", "2099-01-01T00:00:00Z", "--readme", "migrated"])
        .arg("--key")
        .arg(example_key("alice", "pub"))
        .arg("--key")
        .arg(example_key("ecdsa-p256", "pub")));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut layout: Value = serde_json::from_slice(&fs::read(&bare).expect("read")).expect("json");
    let keys = layout["keys"].as_object_mut().expect("keys");
    assert_eq!(keys.len(), 2);
    for key in keys.values_mut() {
        key["keyval"]["private"] = Value::from(private);
    }
    layout["steps"] = json!([{
        "_type": "step", "name": "build", "threshold": 1,
        "pubkeys": [load_public("alice").keyid().to_string()],
        "expected_command": [], "expected_materials": [],
        "expected_products": [["ALLOW", "app"], ["DISALLOW", "*"]],
    }]);
    fs::write(&bare, serde_json::to_vec(&layout).expect("json")).expect("write");
    let signed = dir.join(format!("private-{}.layout", private.len()));
    let out = run(reference
        .script("sign-layout")
        .arg("--in")
        .arg(&bare)
        .arg("--key")
        .arg(private_copy("owner", dir))
        .arg("--out")
        .arg(&signed));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = fs::read_to_string(&signed).expect("read");
    assert_eq!(text.matches("\"private\"").count(), 2, "{text}");
    signed
}

fn verify_layout(layout: &Path, links: &Path) -> std::process::Output {
    run(tollgate()
        .arg("verify")
        .arg("--layout")
        .arg(layout)
        .arg("--layout-key")
        .arg(example_key("owner", "pub"))
        .arg("--link-dir")
        .arg(links))
}

#[test]
fn issue13_layout_keys_with_an_empty_private_field_are_read() {
    let dir = tempdir();
    let links = dir.path().join("links");
    fs::create_dir(&links).expect("mkdir");
    let layout = reference_layout_with_private(dir.path(), "");
    let alice = load_public("alice").keyid();
    let out = run(tollgate()
        .arg("sign")
        .arg(bare_link(dir.path()))
        .arg("--key")
        .arg(private_copy("alice", dir.path()))
        .arg("-o")
        .arg(links.join(format!("build.{}.link", alice.short()))));
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // The reference itself verifies it...
    let out = run(Reference::get()
        .tool("in-toto-verify")
        .arg("--layout")
        .arg(&layout)
        .arg("--verification-keys")
        .arg(example_key("owner", "pub"))
        .arg("--link-dir")
        .arg(&links));
    assert_eq!(code(&out), 0, "in-toto-verify: {}", stderr(&out));
    // ...and so does Tollgate: alice's key is read under its keyid and checks her link.
    let out = verify_layout(&layout, &links);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("verified"), "{}", stdout(&out));
    assert!(stdout(&out).contains(alice.short()), "{}", stdout(&out));
}

#[test]
fn issue13_layout_keys_holding_private_key_material_are_refused() {
    let dir = tempdir();
    let links = dir.path().join("links");
    fs::create_dir(&links).expect("mkdir");
    let material = fs::read_to_string(example_key("alice", "pem")).expect("read");
    let layout = reference_layout_with_private(dir.path(), &material);
    let out = verify_layout(&layout, &links);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "\"keyval.private\" is not empty: a layout must not hold private key material"
        ),
        "{err}"
    );
    assert!(
        err.contains(load_public("alice").keyid().as_str())
            || err.contains(load_public("ecdsa-p256").keyid().as_str()),
        "the message names the key: {err}"
    );
}

/// A classic link file exactly as in-toto-golang writes it: `signed` first with the fields in
/// its struct order, two-space indentation, and `"cert"` in every signature.
fn golang_link(key: &PrivateKey, cert: &str, extra: &str) -> String {
    let signed = json!({
        "_type": "link", "name": "write-code", "materials": {},
        "products": {"foo.py": {"sha256": "74dc3727c6e89308b39e4dfedf787e37841198b1fa165a27c013544a60502549"}},
        "byproducts": {}, "command": [], "environment": {},
    });
    let sig = hex::encode(
        key.sign(&json::canonical(&signed).expect("canonical"))
            .expect("sign"),
    );
    let keyid = key.public_key().keyid();
    let cert = serde_json::to_string(cert).expect("json");
    format!(
        "{{\n  \"signed\": {{\n    \"_type\": \"link\",\n    \"name\": \"write-code\",\n    \
         \"materials\": {{}},\n    \"products\": {{\n      \"foo.py\": {{\n        \"sha256\": \
         \"74dc3727c6e89308b39e4dfedf787e37841198b1fa165a27c013544a60502549\"\n      }}\n    \
         }},\n    \"byproducts\": {{}},\n    \"command\": [],\n    \"environment\": {{}}\n  }},\n  \
         \"signatures\": [\n    {{\n      \"keyid\": \"{keyid}\",\n      \"sig\": \"{sig}\",\n      \
         \"cert\": {cert}{extra}\n    }}\n  ]\n}}"
    )
}

/// The same link in a DSSE envelope whose signature carries `"cert"`.
fn dsse_link_with_cert(key: &PrivateKey, cert: &str) -> String {
    let payload = br#"{"_type": "link", "byproducts": {}, "command": [], "environment": {}, "materials": {}, "name": "write-code", "products": {}}"#;
    let payload_type = "application/vnd.in-toto+json";
    let pae = tollgate::envelope::pae(payload_type, payload);
    let b64 = base64::engine::general_purpose::STANDARD;
    json!({
        "payload": b64.encode(payload),
        "payloadType": payload_type,
        "signatures": [{
            "keyid": key.public_key().keyid().to_string(),
            "sig": b64.encode(key.sign(&pae).expect("sign")),
            "cert": cert,
        }],
    })
    .to_string()
}

const CERTIFICATE: &str =
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUZm9v\n-----END CERTIFICATE-----\n";

#[test]
fn issue13_signatures_with_an_empty_cert_field_verify() {
    let dir = tempdir();
    let key = load_private("ed25519");
    let check = |name: &str, text: String| {
        let path = dir.path().join(name);
        fs::write(&path, text).expect("write");
        run(tollgate()
            .args(["sign", "--verify"])
            .arg(&path)
            .arg("--key")
            .arg(example_key("ed25519", "pub")))
    };

    for (name, text) in [
        ("golang.link", golang_link(&key, "", "")),
        ("dsse.link", dsse_link_with_cert(&key, "")),
    ] {
        let out = check(name, text);
        assert_eq!(code(&out), 0, "{name}: {}", stderr(&out));
    }

    // The signature covers `signed` only: changing the link still fails with the field there.
    let forged = golang_link(&key, "", "").replace("\"command\": []", "\"command\": [\"rm\"]");
    let out = check("forged.link", forged);
    assert_eq!(code(&out), 1, "{}", stderr(&out));

    // A certificate is in-toto-golang's X.509 functionaries, which Tollgate does not verify.
    for (name, text) in [
        ("golang-cert.link", golang_link(&key, CERTIFICATE, "")),
        ("dsse-cert.link", dsse_link_with_cert(&key, CERTIFICATE)),
    ] {
        let out = check(name, text);
        assert_eq!(code(&out), 2, "{name}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(
                "signature 0 carries an X.509 certificate (\"cert\"): in-toto-golang's X.509 \
                 functionaries are not supported by Tollgate yet"
            ),
            "{name}: {}",
            stderr(&out)
        );
    }

    // Any other extra field in a signature is still refused.
    let out = check(
        "extra.link",
        golang_link(&key, "", ",\n      \"note\": \"\""),
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("unknown field `note`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn issue13_a_golang_link_with_cert_passes_verification_of_its_step() {
    let dir = tempdir();
    let key = load_private("ed25519");
    let keyid = key.public_key().keyid();
    let source = format!(
        "expires = \"2099-01-01T00:00:00Z\"\n\n[[step]]\nname = \"write-code\"\n\
         functionaries = [\"{}\"]\nexpected_materials = [\"DISALLOW *\"]\n\
         expected_products = [\"ALLOW foo.py\", \"DISALLOW *\"]\n",
        example_key("ed25519", "pub").display()
    );
    let source_path = dir.path().join("layout.toml");
    fs::write(&source_path, source).expect("write");
    let layout = dir.path().join("root.layout");
    let out = run(tollgate()
        .args(["layout", "build"])
        .arg(&source_path)
        .arg("--key")
        .arg(private_copy("owner", dir.path()))
        .arg("-o")
        .arg(&layout));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let links = dir.path().join("links");
    fs::create_dir(&links).expect("mkdir");
    fs::write(
        links.join(format!("write-code.{}.link", keyid.short())),
        golang_link(&key, "", ""),
    )
    .expect("write");
    let out = verify_layout(&layout, &links);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// The OpenSSL-made encrypted keys of `tests/data/keys-legacy/` that Tollgate (and the
/// reference) read, with the legacy scheme Tollgate warns about.
const READABLE_LEGACY_KEYS: [(&str, Option<&str>); 4] = [
    ("md5-des-ed25519", Some("pbeWithMD5AndDES-CBC")),
    ("md5-des-p256", Some("pbeWithMD5AndDES-CBC")),
    ("md5-des-rsa", Some("pbeWithMD5AndDES-CBC")),
    ("pbes2-des3-sha1-ed25519", None),
];

#[test]
fn issue13_keys_encrypted_as_openssl_1_0_did_are_read_with_a_warning_for_md5_des() {
    let reference = Reference::get();
    let dir = tempdir();
    let bare = bare_link(dir.path());
    let password = legacy("password.txt");
    for (name, warned) in READABLE_LEGACY_KEYS {
        let key = legacy_private(&format!("{name}.pem"), dir.path());
        let public = legacy(&format!("{name}.pub"));
        let signed = dir.path().join(format!("{name}.link"));
        let out = run(tollgate()
            .arg("sign")
            .arg(&bare)
            .arg("--key")
            .arg(&key)
            .arg("--password-file")
            .arg(&password)
            .arg("-o")
            .arg(&signed));
        assert_eq!(code(&out), 0, "{name}: {}", stderr(&out));
        let err = stderr(&out);
        match warned {
            Some(scheme) => {
                assert!(
                    err.contains(&format!(
                        "warning: {}: the key is encrypted with {scheme}, a legacy scheme \
                         (56-bit DES)",
                        key.display()
                    )),
                    "{name}: {err}"
                );
                assert!(
                    err.contains(&format!(
                        "openssl pkcs8 -topk8 -v2 aes-256-cbc -iter 600000 -provider legacy \
                         -provider default -in {} -out {}.new",
                        key.display(),
                        key.display()
                    )),
                    "{name}: {err}"
                );
            }
            None => assert!(!err.contains("warning"), "{name}: {err}"),
        }
        // The signature is the key's: the reference checks it with the OpenSSL public key.
        let out = run(reference
            .tool("in-toto-sign")
            .arg("-f")
            .arg(&signed)
            .arg("-k")
            .arg(&public)
            .arg("--verify"));
        assert_eq!(code(&out), 0, "{name}: in-toto-sign: {}", stderr(&out));

        // The reference reads the same file; Tollgate checks what it signed.
        let theirs = dir.path().join(format!("{name}.ref.link"));
        let out = run(reference
            .script("sign-link")
            .arg("--in")
            .arg(&bare)
            .arg("--key")
            .arg(&key)
            .arg("--password-file")
            .arg(&password)
            .arg("--out")
            .arg(&theirs));
        assert_eq!(code(&out), 0, "{name}: ref.py: {}", stderr(&out));
        let out = run(tollgate()
            .args(["sign", "--verify"])
            .arg(&theirs)
            .arg("--key")
            .arg(&public));
        assert_eq!(code(&out), 0, "{name}: {}", stderr(&out));
    }

    // A wrong password is still a wrong password.
    let wrong = dir.path().join("wrong.txt");
    fs::write(&wrong, "not the password\n").expect("write");
    let key = legacy_private("md5-des-ed25519.pem", dir.path());
    let out = run(tollgate()
        .arg("sign")
        .arg(&bare)
        .arg("--key")
        .arg(&key)
        .arg("--password-file")
        .arg(&wrong)
        .arg("-o")
        .arg(dir.path().join("wrong.link")));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot decrypt the private key: wrong password"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("wrong.link").exists());
}

#[test]
fn issue13_keys_encrypted_with_other_legacy_schemes_are_refused_by_name() {
    let dir = tempdir();
    let bare = bare_link(dir.path());
    for (name, scheme) in [
        ("sha1-3des-ed25519.pem", "pbeWithSHAAnd3-KeyTripleDES-CBC"),
        (
            "pbes2-des-sha1-ed25519.pem",
            "PBES2 with a cipher other than AES or 3DES",
        ),
    ] {
        let key = legacy_private(name, dir.path());
        for password in [Some(legacy("password.txt")), None] {
            let mut command = tollgate();
            command
                .arg("sign")
                .arg(&bare)
                .arg("--key")
                .arg(&key)
                .arg("-o")
                .arg(dir.path().join("out.link"));
            if let Some(password) = &password {
                command.arg("--password-file").arg(password);
            }
            let out = run(&mut command);
            assert_eq!(code(&out), 2, "{name}: {}", stderr(&out));
            let err = stderr(&out);
            assert!(
                err.contains(&format!(
                    "the private key is encrypted with {scheme}, which Tollgate does not decrypt"
                )),
                "{name}: {err}"
            );
            assert!(
                err.contains("hint: re-encrypt it with AES (PBES2)")
                    && err.contains("openssl pkcs8 -topk8 -v2 aes-256-cbc"),
                "{name}: {err}"
            );
            assert!(!err.contains("wrong password"), "{name}: {err}");
            assert!(!dir.path().join("out.link").exists());
        }
    }
}

fn pub_of(private: &Path) -> PathBuf {
    let mut p = private.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

#[test]
fn issue13_ecdsa_p521_keys_sign_and_verify_with_the_reference() {
    let reference = Reference::get();
    let dir = tempdir();
    let key = dir.path().join("p521");
    let out = run(tollgate()
        .args(["keygen", "--type", "ecdsa-p521", "-o"])
        .arg(&key));
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // Keyids and key objects as securesystemslib computes them, for Tollgate's key and for
    // OpenSSL's.
    for public in [pub_of(&key), legacy("p521.pub")] {
        let ours = run(tollgate().args(["key", "id"]).arg(&public));
        assert_eq!(code(&ours), 0, "{}", stderr(&ours));
        let theirs = run(reference.script("keyid").arg(&public));
        assert_eq!(code(&theirs), 0, "{}", stderr(&theirs));
        assert_eq!(stdout(&ours).trim(), stdout(&theirs).trim());
        let shown = run(tollgate()
            .args(["key", "show", "--format", "json"])
            .arg(&public));
        let shown: Value = serde_json::from_slice(&shown.stdout).expect("json");
        let keyobj = run(reference.script("keyobj").arg(&public));
        let keyobj: Value = serde_json::from_slice(&keyobj.stdout).expect("json");
        assert_eq!(keyobj["scheme"], "ecdsa-sha2-nistp521");
        assert_eq!(keyobj["keytype"], "ecdsa");
        assert_eq!(shown[stdout(&ours).trim()], keyobj);
    }

    let bare = bare_link(dir.path());
    for format in ["classic", "dsse"] {
        // Tollgate signs, the reference verifies (and refuses a tampered copy).
        let signed = dir.path().join(format!("ours-{format}.link"));
        let out = run(tollgate()
            .arg("sign")
            .arg(&bare)
            .arg("--key")
            .arg(&key)
            .arg(format!("--{format}"))
            .arg("-o")
            .arg(&signed));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let ref_verify = |path: &Path| {
            code(&run(reference
                .tool("in-toto-sign")
                .arg("-f")
                .arg(path)
                .arg("-k")
                .arg(pub_of(&key))
                .arg("--verify")))
        };
        assert_eq!(ref_verify(&signed), 0, "{format}");
        if format == "classic" {
            let text = fs::read_to_string(&signed).expect("read");
            let tampered = dir.path().join("tampered.link");
            fs::write(&tampered, text.replace("\"make\"", "\"make install\"")).expect("write");
            assert_eq!(ref_verify(&tampered), 1);
        }

        // The reference signs with the key Tollgate made; Tollgate verifies.
        let theirs = dir.path().join(format!("theirs-{format}.link"));
        let mut command = reference.script("sign-link");
        command
            .arg("--in")
            .arg(&bare)
            .arg("--key")
            .arg(&key)
            .arg("--out")
            .arg(&theirs);
        if format == "dsse" {
            command.arg("--dsse");
        }
        let out = run(&mut command);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let out = run(tollgate()
            .args(["sign", "--verify"])
            .arg(&theirs)
            .arg("--key")
            .arg(pub_of(&key)));
        assert_eq!(code(&out), 0, "{format}: {}", stderr(&out));
    }

    // OpenSSL's P-521 key, as PKCS#8 and as SEC1, signs what its public key verifies.
    for name in ["p521.pem", "p521-sec1.pem"] {
        let private = legacy_private(name, dir.path());
        let signed = dir.path().join(format!("{name}.link"));
        let out = run(tollgate()
            .arg("sign")
            .arg(&bare)
            .arg("--key")
            .arg(&private)
            .arg("-o")
            .arg(&signed));
        assert_eq!(code(&out), 0, "{name}: {}", stderr(&out));
        let out = run(reference
            .tool("in-toto-sign")
            .arg("-f")
            .arg(&signed)
            .arg("-k")
            .arg(legacy("p521.pub"))
            .arg("--verify"));
        assert_eq!(code(&out), 0, "{name}: {}", stderr(&out));
    }
}

/// A layout key object as in-toto-golang writes it for a P-521 key: keytype `ecdsa`, scheme
/// `ecdsa-sha2-nistp521`, `keyid_hash_algorithms`, and `"private": ""`.
#[test]
fn issue13_a_golang_p521_key_object_is_read_with_its_keyid() {
    let public = fs::read_to_string(legacy("p521.pub")).expect("read");
    let object = json!({
        "keyid_hash_algorithms": ["sha256", "sha512"],
        "keytype": "ecdsa",
        "keyval": {"private": "", "public": public},
        "scheme": "ecdsa-sha2-nistp521",
    });
    let key = tollgate::keys::PublicKey::from_key_object(&object).expect("read");
    assert_eq!(key.scheme().name(), "ecdsa-sha2-nistp521");
    // in-toto-golang's keyid hashes keyid_hash_algorithms, keytype, keyval.public and scheme.
    let golang_keyid = {
        use sha2::Digest;
        let hashed = json!({
            "keyid_hash_algorithms": ["sha256", "sha512"],
            "keytype": "ecdsa",
            "keyval": {"public": public},
            "scheme": "ecdsa-sha2-nistp521",
        });
        hex::encode(sha2::Sha256::digest(
            json::canonical(&hashed).expect("canonical"),
        ))
    };
    assert_eq!(key.legacy_keyid().as_str(), golang_keyid);
}
