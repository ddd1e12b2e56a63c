//! One test per row of the threat catalogue that the foundation covers, each asserting the
//! specific error, not just that something failed.

use std::collections::BTreeSet;

use base64::Engine as _;
use serde_json::{Value, json};
use tollgate::envelope::{self, Envelope, EnvelopeError, Format};
use tollgate::fsio::{self, FsError};
use tollgate::json::JsonError;
use tollgate::keyring::{KeyRing, KeyRingError};
use tollgate::keys::{KeyError, KeyId, PrivateKey, PublicKey};
use tollgate::layout::{Layout, LayoutError};
use tollgate::limits::{Limit, Limits};
use tollgate::link::{Link, LinkError};
use tollgate::metadata::{Kind, MetadataError};
use tollgate::rule::RuleProblem;

use crate::common::*;

fn limits() -> Limits {
    Limits::default()
}

/// A signed envelope around `payload` as file bytes.
fn signed(payload: Value, format: Format, keys: &[&PrivateKey]) -> Vec<u8> {
    let mut envelope = Envelope::unsigned(payload, format);
    for key in keys {
        envelope.sign(key).expect("sign");
    }
    envelope.to_bytes()
}

fn ring(keys: &[&PublicKey]) -> KeyRing {
    KeyRing::from_keys(keys.iter().map(|k| (*k).clone())).expect("ring")
}

fn verify(
    bytes: &[u8],
    ring: &KeyRing,
    threshold: usize,
) -> Result<envelope::Verified, EnvelopeError> {
    Envelope::from_bytes(bytes, &limits())?.verify(ring, threshold)
}

fn link_payload(name: &str) -> Value {
    json!({
        "_type": "link",
        "name": name,
        "command": ["make"],
        "materials": {"src/a.c": {"sha256": "a".repeat(64)}},
        "products": {"a.out": {"sha256": "b".repeat(64)}},
        "byproducts": {"return-value": 0, "stdout": TRICKY_TEXT},
        "environment": {},
    })
}

/// A layout with one step `build` performed by `alice` and an inspection `check`.
fn layout_payload(alice: &PublicKey) -> Value {
    let keyid = alice.keyid();
    json!({
        "_type": "layout",
        "expires": "2099-01-01T00:00:00Z",
        "readme": "",
        "keys": { keyid.as_str(): alice.to_layout_entry(&keyid) },
        "steps": [{
            "_type": "step",
            "name": "build",
            "threshold": 1,
            "pubkeys": [keyid.as_str()],
            "expected_command": ["make"],
            "expected_materials": [["ALLOW", "src/*"], ["DISALLOW", "*"]],
            "expected_products": [["CREATE", "a.out"], ["DISALLOW", "*"]],
        }],
        "inspect": [{
            "_type": "inspection",
            "name": "check",
            "run": ["true"],
            "expected_materials": [["MATCH", "*", "WITH", "PRODUCTS", "FROM", "build"]],
            "expected_products": [],
        }],
    })
}

fn layout_err(payload: &Value) -> LayoutError {
    Layout::from_value(payload, &limits()).expect_err("layout must be rejected")
}

#[test]
fn a_valid_layout_loads() {
    let alice = load_public("ed25519");
    let layout = Layout::from_value(&layout_payload(&alice), &limits()).expect("valid");
    assert_eq!(layout.steps[0].name.as_str(), "build");
    assert_eq!(layout.steps[0].pubkeys, vec![alice.keyid()]);
    assert_eq!(layout.inspections[0].run, vec!["true".to_owned()]);
    // The full form is stable: loading what to_value writes gives the same form.
    let again = Layout::from_value(&layout.to_value(), &limits()).expect("valid");
    assert_eq!(again.to_value(), layout.to_value());
}

#[test]
fn a2_duplicate_signature_counts_once() {
    let alice = load_private("ed25519");
    let bob = load_private("bob-ed25519");
    let mut value: Value =
        serde_json::from_slice(&signed(link_payload("build"), Format::Classic, &[&alice]))
            .expect("json");
    let first = value["signatures"][0].clone();
    value["signatures"] = json!([first.clone(), first]);
    let bytes = serde_json::to_vec(&value).expect("json");
    let both = ring(&[alice.public_key(), bob.public_key()]);
    match verify(&bytes, &both, 2) {
        Err(EnvelopeError::Threshold { source, signers }) => {
            assert_eq!(source.signed, BTreeSet::from([alice.public_key().keyid()]));
            assert_eq!(signers.repeats, 1);
        }
        other => panic!("expected a threshold failure, got {other:?}"),
    }
    // Two distinct keys do meet a threshold of two.
    let bytes = signed(link_payload("build"), Format::Classic, &[&alice, &bob]);
    assert_eq!(
        verify(&bytes, &both, 2)
            .expect("two keys")
            .signers()
            .keys
            .len(),
        2
    );
}

#[test]
fn a3_one_key_under_two_keyids_is_rejected() {
    let alice = load_public("ed25519");
    let mut payload = layout_payload(&alice);
    let legacy = alice.legacy_keyid();
    payload["keys"][legacy.as_str()] = alice.to_layout_entry(&legacy);
    assert!(matches!(
        layout_err(&payload),
        LayoutError::KeyRing(KeyRingError::DuplicateKey { .. })
    ));

    // The same ECDSA key with another keytype label and another PEM line ending.
    let p256 = load_public("ecdsa-p256");
    let object = p256.to_key_object();
    let mut relabelled = object.clone();
    relabelled["keytype"] = Value::from("ecdsa-sha2-nistp256");
    let mut crlf = object.clone();
    crlf["keyval"]["public"] = Value::from(
        object["keyval"]["public"]
            .as_str()
            .expect("pem")
            .replace('\n', "\r\n"),
    );
    for variant in [relabelled, crlf] {
        let key = PublicKey::from_key_object(&variant).expect("same key, other form");
        assert_ne!(key.keyid(), p256.keyid());
        let mut ring = KeyRing::from_keys([p256.clone()]).expect("ring");
        assert!(matches!(
            ring.insert(key.keyid(), key),
            Err(KeyRingError::DuplicateKey { .. })
        ));
    }
}

#[test]
fn a4_keyid_hint_never_attributes_a_signature() {
    let alice = load_private("ed25519");
    let bob = load_private("bob-ed25519");
    let mut value: Value =
        serde_json::from_slice(&signed(link_payload("build"), Format::Classic, &[&alice]))
            .expect("json");
    // Claim the signature is bob's.
    value["signatures"][0]["keyid"] = Value::from(bob.public_key().keyid().to_string());
    let bytes = serde_json::to_vec(&value).expect("json");
    match verify(&bytes, &ring(&[bob.public_key()]), 1) {
        Err(EnvelopeError::Threshold { source, signers }) => {
            assert!(source.signed.is_empty());
            assert_eq!(signers.unattributed, 1);
        }
        other => panic!("expected a threshold failure, got {other:?}"),
    }
    let verified = verify(&bytes, &ring(&[alice.public_key(), bob.public_key()]), 1)
        .expect("alice's key verifies it");
    assert_eq!(
        verified.signers().keys,
        BTreeSet::from([alice.public_key().keyid()])
    );
}

#[test]
fn a5_keyid_that_does_not_name_its_key_is_rejected() {
    let alice = load_public("ed25519");
    let bob = load_public("bob-ed25519");
    let mut payload = layout_payload(&alice);
    let entry = payload["keys"][alice.keyid().as_str()].clone();
    let mut wrong = entry.clone();
    wrong["keyid"] = Value::from(bob.keyid().to_string());
    payload["keys"] = json!({ bob.keyid().as_str(): wrong });
    payload["steps"][0]["pubkeys"] = json!([bob.keyid().as_str()]);
    let err = layout_err(&payload);
    assert!(
        matches!(
            err,
            LayoutError::KeyRing(KeyRingError::KeyIdMismatch { .. })
        ),
        "{err}"
    );

    // The legacy keyid form is accepted.
    let legacy = alice.legacy_keyid();
    let mut payload = layout_payload(&alice);
    payload["keys"] = json!({ legacy.as_str(): alice.to_layout_entry(&legacy) });
    payload["steps"][0]["pubkeys"] = json!([legacy.as_str()]);
    Layout::from_value(&payload, &limits()).expect("legacy keyid accepted");
}

/// A layout, signed by the owner, with step `build` performed by alice and step `test` by bob,
/// and no inspection.
fn two_step_layout(owner: &PrivateKey, alice: &PublicKey, bob: &PublicKey) -> Vec<u8> {
    let (a, b) = (alice.keyid(), bob.keyid());
    let step = |name: &str, keyid: &KeyId, materials: Value, products: Value| {
        json!({"_type": "step", "name": name, "threshold": 1, "pubkeys": [keyid.as_str()],
               "expected_command": [], "expected_materials": materials,
               "expected_products": products})
    };
    let payload = json!({
        "_type": "layout",
        "expires": "2099-01-01T00:00:00Z",
        "readme": "",
        "keys": { a.as_str(): alice.to_layout_entry(&a), b.as_str(): bob.to_layout_entry(&b) },
        "steps": [
            step("build", &a, json!([["ALLOW", "src/*"], ["DISALLOW", "*"]]),
                 json!([["CREATE", "a.out"], ["DISALLOW", "*"]])),
            step("test", &b, json!([["ALLOW", "*"]]), json!([["ALLOW", "*"]])),
        ],
        "inspect": [],
    });
    signed(payload, Format::Classic, &[owner])
}

/// Verifies the two-step layout over `links` (file name, signed link file bytes) and returns
/// the report as JSON.
fn verify_links(links: &[(String, Vec<u8>)]) -> Value {
    let owner = load_private("ecdsa-p256");
    let layout = two_step_layout(&owner, &load_public("ed25519"), &load_public("bob-ed25519"));
    let dir = tempdir();
    for (name, bytes) in links {
        std::fs::write(dir.path().join(name), bytes).expect("write link");
    }
    let mut options = tollgate::verify::VerifyOptions::new(dir.path());
    options.workdir = Some(dir.path().to_owned());
    let report = tollgate::verify::verify(&layout, &ring(&[owner.public_key()]), &options)
        .expect("verifiable input");
    serde_json::to_value(&report).expect("report json")
}

/// The report's entry for `file` among step `step`'s links.
fn link_entry<'a>(report: &'a Value, step: &str, file: &str) -> &'a Value {
    let step = report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["name"] == step)
        .unwrap_or_else(|| panic!("no step {step} in {report}"));
    step["links"]
        .as_array()
        .expect("links")
        .iter()
        .find(|l| l["file"].as_str().is_some_and(|f| f.ends_with(file)))
        .unwrap_or_else(|| panic!("no {file} in {step}"))
}

/// Asserts that step `build` failed its threshold with no signer, and that `file` was
/// considered for it and refused.
fn build_counts_nothing(report: &Value, file: &str) -> String {
    assert_eq!(report["verdict"], "fail", "{report}");
    assert_eq!(report["failure"]["check"], "threshold", "{report}");
    assert_eq!(report["failure"]["item"], "build", "{report}");
    let build = &report["steps"][0];
    assert_eq!(build["name"], "build");
    assert_eq!(build["signers"], json!([]), "{report}");
    let entry = link_entry(report, "build", file);
    assert_eq!(entry["accepted"], false, "{entry}");
    assert_eq!(entry["signers"], json!([]), "{entry}");
    entry["reason"].as_str().expect("a reason").to_owned()
}

#[test]
fn a6_a7_e2_links_count_only_for_their_verified_key() {
    // Bob's link for alice's step, stored under alice's keyid prefix, adds nothing.
    let alice = load_private("ed25519");
    let bob = load_private("bob-ed25519");
    let bytes = signed(link_payload("build"), Format::Classic, &[&bob]);
    match verify(&bytes, &ring(&[alice.public_key()]), 1) {
        Err(EnvelopeError::Threshold { source, .. }) => assert!(source.signed.is_empty()),
        other => panic!("expected a threshold failure, got {other:?}"),
    }
    // A link signed by alice but naming another step says so when read as that step's link.
    let bytes = signed(link_payload("test"), Format::Classic, &[&alice]);
    let verified = verify(&bytes, &ring(&[alice.public_key()]), 1).expect("signature ok");
    let link = Link::from_value(verified.payload(), &limits()).expect("valid link");
    assert_eq!(link.name.as_str(), "test");

    // The same, end to end: file names hold only a hint, the signed name and the verified key
    // decide.
    let (a8, b8) = (
        alice.public_key().keyid().short().to_owned(),
        bob.public_key().keyid().short().to_owned(),
    );
    let link_file =
        |step: &str, key: &PrivateKey| signed(link_payload(step), Format::Classic, &[key]);
    let bob_test = (format!("test.{b8}.link"), link_file("test", &bob));

    // The honest pair passes, so that each failure below is the one named.
    let report = verify_links(&[
        (format!("build.{a8}.link"), link_file("build", &alice)),
        bob_test.clone(),
    ]);
    assert_eq!(report["verdict"], "pass", "{report}");
    assert_eq!(
        report["steps"][0]["signers"],
        json!([alice.public_key().keyid().as_str()])
    );

    // A6: a build link signed by bob, stored under alice's prefix, counts for no one.
    let file = format!("build.{a8}.link");
    let report = verify_links(&[(file.clone(), link_file("build", &bob)), bob_test.clone()]);
    let reason = build_counts_nothing(&report, &file);
    assert!(
        reason.contains("not signed by a key authorised for step build"),
        "{reason}"
    );
    assert_eq!(
        link_entry(&report, "build", &file)["unauthorised_signers"],
        json!([bob.public_key().keyid().as_str()])
    );

    // A7: bob, authorised for test only, signs a build link under his own prefix: read as a
    // stray of build, never counted.
    let file = format!("build.{b8}.link");
    let report = verify_links(&[(file.clone(), link_file("build", &bob)), bob_test.clone()]);
    let reason = build_counts_nothing(&report, &file);
    assert!(
        reason.contains(&format!(
            "signed by key {b8} (a key of step test), which step build does not accept"
        )),
        "{reason}"
    );
    assert_eq!(
        link_entry(&report, "build", &file)["unauthorised_signers"],
        json!([bob.public_key().keyid().as_str()])
    );

    // E2: alice signs a link for step test, saved under build's name with her prefix: her
    // signature is good, but the signed name is not the file's, so it is refused for build.
    let file = format!("build.{a8}.link");
    let report = verify_links(&[(file.clone(), link_file("test", &alice)), bob_test]);
    let reason = build_counts_nothing(&report, &file);
    assert!(
        reason.contains("it records step test, not build"),
        "{reason}"
    );
}

#[test]
fn a8_unsigned_or_foreign_signed_layout_is_rejected() {
    let alice = load_private("ed25519");
    let bob = load_private("bob-ed25519");
    let payload = layout_payload(alice.public_key());
    let unsigned = Envelope::unsigned(payload.clone(), Format::Dsse).to_bytes();
    assert!(matches!(
        verify(&unsigned, &ring(&[alice.public_key()]), 1),
        Err(EnvelopeError::NoSignatures)
    ));
    let by_bob = signed(payload, Format::Dsse, &[&bob]);
    assert!(matches!(
        verify(&by_bob, &ring(&[alice.public_key()]), 1),
        Err(EnvelopeError::Threshold { .. })
    ));
}

#[test]
fn a9_malformed_signature_bytes_are_rejected_without_panic() {
    let message = b"message";
    for kind in KEY_TYPES {
        let key = load_private(kind);
        let public = key.public_key();
        let good = key.sign(message).expect("sign");
        assert!(public.verify(message, &good).is_ok(), "{kind}");
        let mut longer = good.clone();
        longer.push(0);
        for bad in [
            Vec::new(),
            vec![0u8; 3],
            good[..good.len() - 1].to_vec(),
            longer,
        ] {
            assert!(public.verify(message, &bad).is_err(), "{kind}");
        }
    }
    // A non-canonical ed25519 S (S + L) is refused by strict verification.
    let key = load_private("ed25519");
    let mut sig = key.sign(b"m").expect("sign");
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(sig[32 + i]) + u16::from(L[i]) + carry;
        sig[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    assert!(key.public_key().verify(b"m", &sig).is_err());

    // Signature text that is not hex or base64, or uppercase hex, is an encoding error.
    let alice = load_private("ed25519");
    let mut value: Value =
        serde_json::from_slice(&signed(link_payload("build"), Format::Classic, &[&alice]))
            .expect("json");
    for bad in ["zz", "ABCD", "abc"] {
        value["signatures"][0]["sig"] = Value::from(bad);
        let bytes = serde_json::to_vec(&value).expect("json");
        assert!(matches!(
            Envelope::from_bytes(&bytes, &limits()),
            Err(EnvelopeError::SignatureEncoding { index: 0, .. })
        ));
    }
}

/// The classic file `{"signatures": [...], "signed": payload}` with the given raw signature
/// bytes, which no private key need have made.
fn classic_with_signature(payload: &Value, keyid: &KeyId, sig: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "signatures": [{"keyid": keyid.as_str(), "sig": hex::encode(sig)}],
        "signed": payload,
    }))
    .expect("json")
}

/// A link payload whose canonical form is about `bytes` long.
fn link_of_size(bytes: usize) -> Value {
    let materials: serde_json::Map<String, Value> = (0..bytes / 100)
        .map(|i| {
            (
                format!("src/file{i:08}.c"),
                json!({"sha256": "a".repeat(64)}),
            )
        })
        .collect();
    let mut payload = link_payload("build");
    payload["materials"] = Value::Object(materials);
    payload
}

/// A9 asks for strict ed25519. Lax verification accepts two forgeries that strict refuses:
/// a small-order ("weak") public key, for which `R = [S]B` verifies every message with no
/// private key at all, and a small-order `R` (here the identity, with `S = k·a`), a second
/// signature for a message that its signer never made. Both must count for nothing, over a
/// small file (the whole canonical message checked at once) and over a file of more than
/// 1 MiB (whose canonical bytes are streamed into the checks on another thread), for a layout
/// and for a link.
#[test]
fn a9_weak_keys_and_small_order_signatures_forge_nothing() {
    use curve25519_dalek::constants::ED25519_BASEPOINT_COMPRESSED;
    use curve25519_dalek::scalar::Scalar;
    use sha2::Digest as _;

    const IDENTITY: [u8; 32] = {
        let mut point = [0u8; 32];
        point[0] = 1;
        point
    };
    // The identity point as a public key: weak, of order one.
    let weak = PublicKey::from_key_object(&json!({
        "keytype": "ed25519",
        "scheme": "ed25519",
        "keyval": {"public": hex::encode(IDENTITY)},
    }))
    .expect("the identity is a point, and loads as a key");
    // R = B, S = 1: [S]B = R + [k]A for every message, as A is the identity.
    let any_message = [
        ED25519_BASEPOINT_COMPRESSED.to_bytes(),
        Scalar::ONE.to_bytes(),
    ]
    .concat();

    let signing = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let honest = PublicKey::from_key_object(&json!({
        "keytype": "ed25519",
        "scheme": "ed25519",
        "keyval": {"public": hex::encode(signing.verifying_key().as_bytes())},
    }))
    .expect("key");
    // R = identity, S = k·a: [S]B = R + [k]A, the signer's own key but a small-order R.
    let small_order_r = |message: &[u8]| -> Vec<u8> {
        let k = Scalar::from_bytes_mod_order_wide(
            &sha2::Sha512::new()
                .chain_update(IDENTITY)
                .chain_update(signing.verifying_key().as_bytes())
                .chain_update(message)
                .finalize()
                .into(),
        );
        [IDENTITY, (k * signing.to_scalar()).to_bytes()].concat()
    };

    // The signature checks themselves.
    for message in [&b"m"[..], b"any message at all"] {
        assert!(weak.verify(message, &any_message).is_err());
        assert!(honest.verify(message, &small_order_r(message)).is_err());
    }

    let small_link = link_payload("build");
    let large_link = link_of_size(2 * 1024 * 1024);
    let weak_layout = layout_payload(&weak);
    let honest_layout = layout_payload(&honest);
    for (what, payload, key, small_r) in [
        ("small link, weak key", &small_link, &weak, false),
        ("large link, weak key", &large_link, &weak, false),
        ("layout, weak key", &weak_layout, &weak, false),
        ("small link, small-order R", &small_link, &honest, true),
        ("large link, small-order R", &large_link, &honest, true),
        ("layout, small-order R", &honest_layout, &honest, true),
    ] {
        let message = Envelope::unsigned(payload.clone(), Format::Classic)
            .signed_bytes()
            .expect("canonical");
        let sig = if small_r {
            small_order_r(&message)
        } else {
            any_message.clone()
        };
        let file = classic_with_signature(payload, &key.keyid(), &sig);
        assert_eq!(
            file.len() > 1024 * 1024,
            what.starts_with("large"),
            "{what}: {} bytes",
            file.len()
        );
        let keys = ring(&[key]);
        // Through the whole-message check, and for large files through the streamed one the
        // crate's fast path for links uses (tested where it lives, in `envelope::stream`).
        match verify(&file, &keys, 1) {
            Err(EnvelopeError::Threshold { signers, .. }) => {
                assert!(signers.keys.is_empty(), "{what}");
                assert_eq!(signers.unattributed, 1, "{what}");
            }
            other => panic!("{what}: {:?}", other.map(|v| v.signers().clone())),
        }
    }
}

#[test]
fn a10_scheme_and_key_type_confusion_is_rejected() {
    let ed = load_public("ed25519");
    let mut object = ed.to_key_object();
    object["scheme"] = Value::from("rsassa-pss-sha256");
    assert!(matches!(
        PublicKey::from_key_object(&object),
        Err(KeyError::SchemeMismatch { .. })
    ));
    object["scheme"] = Value::from("ed448");
    assert!(matches!(
        PublicKey::from_key_object(&object),
        Err(KeyError::SchemeMismatch { .. })
    ));
    let p256 = load_public("ecdsa-p256");
    let mut object = p256.to_key_object();
    object["scheme"] = Value::from("ecdsa-sha2-nistp384");
    assert!(matches!(
        PublicKey::from_key_object(&object),
        Err(KeyError::SchemeMismatch { .. })
    ));

    // RSA below 2048 bits, and absurdly large moduli, are refused.
    use rsa::pkcs8::EncodePublicKey;
    let small = rsa::PrivateKey::new(&mut getrandom::SysRng, 1024).expect("generate");
    let pem = small
        .to_public_key()
        .to_public_key_pem(Default::default())
        .expect("pem");
    assert!(matches!(
        PublicKey::from_pem(&pem),
        Err(KeyError::RsaSize { bits: 1024 })
    ));
    let mut modulus = vec![0xffu8; 16384 / 8];
    modulus[2047] = 0xfb;
    let n = rsa::BoxedUint::from_be_slice(&modulus, 16384).expect("n");
    let e = rsa::BoxedUint::from_be_slice(&[1, 0, 1], 32).expect("e");
    let huge = rsa::PublicKey::new_unchecked(n, e);
    let der = huge.to_public_key_der().expect("der");
    assert!(matches!(
        PublicKey::from_spki_der(der.as_bytes()),
        Err(KeyError::RsaSize { bits: 16384 })
    ));
}

#[test]
fn a11_extra_signatures_from_unauthorised_keys_do_not_count_or_fail() {
    let alice = load_private("ed25519");
    let bob = load_private("bob-ed25519");
    let bytes = signed(link_payload("build"), Format::Dsse, &[&bob, &alice]);
    let verified = verify(&bytes, &ring(&[alice.public_key()]), 1).expect("alice suffices");
    assert_eq!(
        verified.signers().keys,
        BTreeSet::from([alice.public_key().keyid()])
    );
    assert_eq!(verified.signers().unattributed, 1);
}

#[test]
fn b1_duplicate_keys_in_an_artifact_map_are_rejected() {
    let alice = load_private("ed25519");
    let text =
        String::from_utf8(signed(link_payload("build"), Format::Classic, &[&alice])).expect("utf8");
    let digest = "a".repeat(64);
    let entry = format!("\"src/a.c\": {{\n    \"sha256\": \"{digest}\"\n   }}");
    assert!(text.contains(&entry), "fixture layout changed");
    let doubled = text.replacen(&entry, &format!("{entry},\n   {entry}"), 1);
    // The envelope decodes; its payload is refused whichever way it is read, before any
    // signature counts.
    let envelope = Envelope::from_bytes(doubled.as_bytes(), &limits()).expect("framing is fine");
    let trusted = ring(&[alice.public_key()]);
    match envelope.verify(&trusted, 1) {
        Err(EnvelopeError::Payload(JsonError::DuplicateKey { key, .. })) => {
            assert_eq!(key, "src/a.c")
        }
        other => panic!("expected a duplicate key error, got {other:?}"),
    }
    // (Read straight into a link by the crate's fast path, it is refused too: tested in
    // `envelope::stream`.)
    assert!(matches!(
        envelope.unverified_payload(),
        Err(EnvelopeError::Payload(JsonError::DuplicateKey { .. }))
    ));
    // A duplicate at the top level is refused while decoding.
    let top = text.replacen(
        "{\n \"signatures\"",
        "{\"signed\": {}, \n \"signatures\"",
        1,
    );
    assert!(matches!(
        Envelope::from_bytes(top.as_bytes(), &limits()),
        Err(EnvelopeError::Json(JsonError::DuplicateKey { .. }))
    ));
}

#[test]
fn b2_unknown_and_case_variant_fields_are_rejected() {
    let alice = load_public("ed25519");
    let mut payload = layout_payload(&alice);
    payload["inspect"][0]["Run"] = json!(["rm", "-rf", "/"]);
    match layout_err(&payload) {
        LayoutError::Schema { path, message } => {
            assert_eq!(path, "inspect[0].Run");
            assert!(message.contains("unknown field `Run`"), "{message}");
        }
        other => panic!("expected a schema error, got {other}"),
    }
    let mut link = link_payload("build");
    link["Products"] = json!({});
    assert!(matches!(
        Link::from_value(&link, &limits()),
        Err(LinkError::Schema { .. })
    ));
}

/// `value` as JSON text no canonical encoder would write: every object's keys in reverse
/// order, whitespace around every separator, and every string fully `\u`-escaped (`/` as `\/`,
/// astral characters as surrogate pairs).
fn scrambled(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            keys.reverse();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{} :\n\t{}", scrambled_str(k), scrambled(&map[k])))
                .collect();
            format!("{{ {} }}", fields.join(" ,\r\n  "))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(scrambled).collect();
            format!("[ {} ]", items.join(" , "))
        }
        Value::String(text) => scrambled_str(text),
        other => other.to_string(),
    }
}

fn scrambled_str(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        if c == '/' {
            out.push_str("\\/");
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out.push('"');
    out
}

#[test]
fn b3_reformatted_classic_metadata_still_verifies() {
    let alice = load_private("ed25519");
    let bytes = signed(link_payload("build"), Format::Classic, &[&alice]);
    let value: Value = serde_json::from_slice(&bytes).expect("json");
    let canonical = Envelope::from_bytes(&bytes, &limits())
        .expect("envelope")
        .signed_bytes()
        .expect("canonical");
    let text = scrambled(&value);
    // It really is out of order and escaped: "signed" before "signatures", "products" before
    // "materials", no key or path written plainly.
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle} in {text}"))
    };
    assert!(at(&scrambled_str("signed")) < at(&scrambled_str("signatures")));
    assert!(at(&scrambled_str("products")) < at(&scrambled_str("materials")));
    assert!(at(&scrambled_str("_type")) > at(&scrambled_str("name")));
    assert!(
        !text.contains("\"name\"") && !text.contains("src/a.c"),
        "{text}"
    );
    assert!(
        text.contains("\\ud83d\\ude00") && text.contains("\\/"),
        "{text}"
    );
    let reformatted = Envelope::from_bytes(text.as_bytes(), &limits()).expect("envelope");
    assert_eq!(
        String::from_utf8_lossy(&reformatted.signed_bytes().expect("canonical")),
        String::from_utf8_lossy(&canonical),
        "the same canonical bytes"
    );
    let verified =
        verify(text.as_bytes(), &ring(&[alice.public_key()]), 1).expect("still verifies");
    assert_eq!(verified.payload(), &value["signed"]);
}

#[test]
fn b8_type_confusion_is_rejected() {
    let alice = load_public("ed25519");
    let layout = layout_payload(&alice);
    let link = link_payload("build");
    match Layout::from_value(&link, &limits()) {
        Err(LayoutError::Schema { path, message }) => {
            assert_eq!(path, "_type");
            assert!(
                message.contains("expected \"layout\", got \"link\""),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    match Link::from_value(&layout, &limits()) {
        Err(LinkError::Schema { path, message }) => {
            assert_eq!(path, "_type");
            assert!(message.contains("got \"layout\""), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        Kind::Layout.expect(&link),
        Err(MetadataError::WrongType {
            expected: "layout",
            ..
        })
    ));
    let mut untyped = link.clone();
    untyped.as_object_mut().expect("object").remove("_type");
    assert!(matches!(
        Kind::of(&untyped),
        Err(MetadataError::WrongType { .. })
    ));
    let mut step = layout.clone();
    step["steps"][0]["_type"] = Value::from("inspection");
    assert!(matches!(layout_err(&step), LayoutError::Schema { .. }));
}

#[test]
fn c1_wrong_payload_type_is_rejected_after_the_signature_check() {
    let alice = load_private("ed25519");
    let payload = tollgate::json::to_python_json(
        &link_payload("build"),
        tollgate::json::PythonStyle::OneLine,
    );
    for payload_type in [
        "application/json",
        "application/vnd.in-toto+JSON",
        "application/vnd.in-toto+json ",
        "application/vnd.in-toto.provenance+json",
    ] {
        let pae = envelope::pae(payload_type, &payload);
        let sig = alice.sign(&pae).expect("sign");
        let b64 = base64::engine::general_purpose::STANDARD;
        let doc = json!({
            "payload": b64.encode(&payload),
            "payloadType": payload_type,
            "signatures": [{"keyid": alice.public_key().keyid().as_str(), "sig": b64.encode(sig)}],
        });
        let bytes = serde_json::to_vec(&doc).expect("json");
        match verify(&bytes, &ring(&[alice.public_key()]), 1) {
            Err(EnvelopeError::WrongPayloadType(found)) => assert_eq!(found, payload_type),
            other => panic!("{payload_type:?}: {other:?}"),
        }
    }
}

#[test]
fn c2_pae_matches_the_dsse_test_vector() {
    assert_eq!(
        envelope::pae("http://example.com/HelloWorld", b"hello world"),
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    );
    // Lengths are in bytes, not characters.
    assert_eq!(
        envelope::pae("t\u{e9}", "\u{2713}".as_bytes()),
        "DSSEv1 3 t\u{e9} 3 \u{2713}".as_bytes()
    );
}

#[test]
fn c3_base64_is_decoded_strictly() {
    let standard = envelope::decode_base64("+/+/AA==").expect("standard, padded");
    assert_eq!(
        envelope::decode_base64("-_-_AA==").expect("url-safe"),
        standard
    );
    assert_eq!(
        envelope::decode_base64("-_-_AA").expect("unpadded"),
        standard
    );
    for bad in [
        "+/-_AA==",
        "+/+/ AA==",
        "+/+/\nAA==",
        "+/+/AA=",
        "+/+/AA===",
        "+/+/AB==",
        "*a==",
        "A",
    ] {
        assert!(envelope::decode_base64(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn c4_empty_signature_list_or_signature_is_rejected() {
    let alice = load_private("ed25519");
    let bytes = signed(link_payload("build"), Format::Dsse, &[&alice]);
    let mut value: Value = serde_json::from_slice(&bytes).expect("json");
    value["signatures"][0]["sig"] = Value::from("");
    assert!(matches!(
        Envelope::from_bytes(&serde_json::to_vec(&value).expect("json"), &limits()),
        Err(EnvelopeError::SignatureEncoding { .. })
    ));
    value["signatures"] = json!([]);
    assert!(matches!(
        verify(
            &serde_json::to_vec(&value).expect("json"),
            &ring(&[alice.public_key()]),
            1
        ),
        Err(EnvelopeError::NoSignatures)
    ));
}

#[test]
fn c5_unverified_payload_is_never_parsed() {
    let alice = load_private("ed25519");
    let bob = load_private("bob-ed25519");
    let hostile = "[".repeat(100_000).into_bytes();
    let b64 = base64::engine::general_purpose::STANDARD;
    let sig = bob
        .sign(&envelope::pae(envelope::PAYLOAD_TYPE, &hostile))
        .expect("sign");
    let doc = json!({
        "payload": b64.encode(&hostile),
        "payloadType": envelope::PAYLOAD_TYPE,
        "signatures": [{"keyid": "x", "sig": b64.encode(sig)}],
    });
    let bytes = serde_json::to_vec(&doc).expect("json");
    assert!(matches!(
        verify(&bytes, &ring(&[alice.public_key()]), 1),
        Err(EnvelopeError::Threshold { .. })
    ));
    // Signed by a trusted key, the same body is parsed, and refused as too deep.
    assert!(matches!(
        verify(&bytes, &ring(&[bob.public_key()]), 1),
        Err(EnvelopeError::Payload(JsonError::TooDeep))
    ));
}

#[test]
fn d2_layout_expiry_must_be_strict() {
    let alice = load_public("ed25519");
    for bad in [
        "2099-01-01T00:00:00+00:00",
        "2099-01-01T00:00:00.0Z",
        "2099-01-01",
    ] {
        let mut payload = layout_payload(&alice);
        payload["expires"] = Value::from(bad);
        assert!(
            matches!(layout_err(&payload), LayoutError::Expires(_)),
            "{bad}"
        );
    }
}

#[test]
fn d6_inconsistent_layouts_are_rejected_at_load() {
    let alice = load_public("ed25519");
    let bob = load_public("bob-ed25519");
    let base = layout_payload(&alice);

    let mut twice = base.clone();
    let step = twice["steps"][0].clone();
    twice["steps"] = json!([step.clone(), step]);
    assert!(matches!(layout_err(&twice), LayoutError::DuplicateName(n) if n == "build"));

    let mut clash = base.clone();
    clash["inspect"][0]["name"] = Value::from("build");
    assert!(matches!(layout_err(&clash), LayoutError::DuplicateName(_)));

    for threshold in [json!(0), json!(-1), json!(2)] {
        let mut t = base.clone();
        t["steps"][0]["threshold"] = threshold.clone();
        assert!(
            matches!(layout_err(&t), LayoutError::Threshold { .. }),
            "{threshold}"
        );
    }
    let mut boolean = base.clone();
    boolean["steps"][0]["threshold"] = Value::from(true);
    assert!(matches!(layout_err(&boolean), LayoutError::Schema { .. }));

    let mut missing = base.clone();
    missing["steps"][0]["pubkeys"] = json!([bob.keyid().as_str()]);
    assert!(matches!(layout_err(&missing), LayoutError::Pubkeys { .. }));

    let mut unknown = base.clone();
    unknown["steps"][0]["expected_materials"] =
        json!([["MATCH", "*", "WITH", "PRODUCTS", "FROM", "biuld"]]);
    match layout_err(&unknown) {
        LayoutError::MatchTarget { location, step, .. } => {
            assert_eq!(location, "step \"build\" expected_materials[0]");
            assert_eq!(step, "biuld");
        }
        other => panic!("{other}"),
    }

    let mut to_inspection = base.clone();
    to_inspection["steps"][0]["expected_materials"] =
        json!([["MATCH", "*", "WITH", "PRODUCTS", "FROM", "check"]]);
    assert!(matches!(
        layout_err(&to_inspection),
        LayoutError::MatchTarget { .. }
    ));
}

#[test]
fn e6_path_like_names_are_rejected_in_layouts_and_links() {
    let alice = load_public("ed25519");
    for name in ["../x", "/abs", "a/b", ".", "..", "a\u{0}b"] {
        let mut payload = layout_payload(&alice);
        payload["steps"][0]["name"] = Value::from(name);
        assert!(
            matches!(layout_err(&payload), LayoutError::Name { .. }),
            "{name:?}"
        );
        assert!(
            matches!(
                Link::from_value(&link_payload(name), &limits()),
                Err(LinkError::Name(_))
            ),
            "{name:?}"
        );
    }
}

#[test]
fn f1_to_f4_f10_bad_artifacts_in_links_are_rejected() {
    for path in [
        "dir/../foo",
        "./foo",
        "foo//bar",
        "foo/",
        "/etc/passwd",
        "C:\\x",
        "a\\b",
        "a\nb",
    ] {
        let mut link = link_payload("build");
        link["products"] = json!({ path: {"sha256": "b".repeat(64)} });
        assert!(
            matches!(
                Link::from_value(&link, &limits()),
                Err(LinkError::Artifact {
                    field: "products",
                    ..
                })
            ),
            "{path:?}"
        );
    }
    for digest in [
        json!({"sha256": "B".repeat(64)}),
        json!({"sha256": "b"}),
        json!({}),
    ] {
        let mut link = link_payload("build");
        link["materials"] = json!({ "a": digest });
        assert!(matches!(
            Link::from_value(&link, &limits()),
            Err(LinkError::Artifact {
                field: "materials",
                ..
            })
        ));
    }
}

#[test]
fn f5_rule_grammar_errors_name_the_step_and_index() {
    let alice = load_public("ed25519");
    let mut payload = layout_payload(&alice);
    payload["steps"][0]["expected_products"] = json!([
        ["CREATE", "a.out"],
        ["MATCH", "foo", "WITH", "PRODUCTS", "FROM"]
    ]);
    let err = layout_err(&payload);
    assert!(
        matches!(
            &err,
            LayoutError::Rule { location, source }
                if location == "step \"build\" expected_products[1]"
                    && source.problem == RuleProblem::MatchForm
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("step \"build\" expected_products[1]"),
        "{err}"
    );
    // Each edge case THREATS F5 names is refused for what it is, at load, with its index.
    for (rule, problem) in [
        (
            json!(["MATCH", "foo", "WITH", "PRODUCTS", "FROM"]),
            RuleProblem::MatchForm,
        ),
        (
            json!(["MATCH", "foo", "WITH", "PRODUCTS", "FROM", "build", "x"]),
            RuleProblem::MatchForm,
        ),
        (
            json!(["MATCH", "*", "WITH", "THINGS", "FROM", "build"]),
            RuleProblem::ArtifactKind,
        ),
        (
            json!(["MATCH", "*", "IN", "", "WITH", "PRODUCTS", "FROM", "build"]),
            RuleProblem::Prefix,
        ),
        (json!(["COPY", "a.out"]), RuleProblem::UnknownType),
        (json!(["CREATE", "a.out", "b.out"]), RuleProblem::Arity),
        (json!(["ALLOW", "../*"]), RuleProblem::Pattern),
    ] {
        payload["steps"][0]["expected_products"] = json!([["CREATE", "a.out"], rule.clone()]);
        match layout_err(&payload) {
            LayoutError::Rule { location, source } => {
                assert_eq!(location, "step \"build\" expected_products[1]", "{rule}");
                assert_eq!(source.problem, problem, "{rule}");
            }
            other => panic!("{rule}: {other:?}"),
        }
    }
    // Lowercase keywords are not among them: the reference reads keywords in any case, and
    // so does Tollgate (decision recorded in src/model/rule.rs and the README).
    payload["steps"][0]["expected_products"] = json!([["create", "a.out"], ["disallow", "*"]]);
    Layout::from_value(&payload, &limits()).expect("lowercase keywords load");
}

#[test]
fn h1_oversized_metadata_is_refused_before_reading_it_all() {
    let dir = tempdir();
    let path = dir.path().join("big.link");
    std::fs::write(&path, vec![b' '; 4096]).expect("write");
    assert!(matches!(
        fsio::read_capped(&path, 1024, Limit::MetadataBytes),
        Err(FsError::TooLarge { max: 1024, .. })
    ));
    let small = Limits {
        max_metadata_bytes: 100,
        ..Limits::default()
    };
    assert!(matches!(
        Envelope::from_bytes(&[b' '; 101], &small),
        Err(EnvelopeError::TooLarge {
            limit: Limit::MetadataBytes,
            ..
        })
    ));
}

#[test]
fn h2_too_many_signatures_are_refused_before_any_cryptography() {
    let alice = load_private("ed25519");
    let mut value: Value =
        serde_json::from_slice(&signed(link_payload("build"), Format::Classic, &[&alice]))
            .expect("json");
    let one = value["signatures"][0].clone();
    value["signatures"] = Value::Array(vec![one; 65]);
    let bytes = serde_json::to_vec(&value).expect("json");
    assert!(matches!(
        Envelope::from_bytes(&bytes, &limits()),
        Err(EnvelopeError::TooManySignatures {
            count: 65,
            max: 64,
            ..
        })
    ));
}

#[test]
fn h3_too_many_artifacts_are_refused() {
    let small = Limits {
        max_artifacts: 1,
        ..Limits::default()
    };
    let mut link = link_payload("build");
    link["materials"] = json!({"a": {"sha256": "a".repeat(64)}, "b": {"sha256": "a".repeat(64)}});
    assert!(matches!(
        Link::from_value(&link, &small),
        Err(LinkError::TooManyArtifacts {
            count: 2,
            limit: Limit::Artifacts,
            ..
        })
    ));
}

#[test]
fn j4_public_key_where_private_expected_and_the_reverse() {
    let public = std::fs::read_to_string(example_key("ed25519", "pub")).expect("read");
    let private = std::fs::read_to_string(example_key("ed25519", "pem")).expect("read");
    assert!(matches!(
        PrivateKey::from_pem(&public, None),
        Err(KeyError::WrongKind { .. })
    ));
    assert!(matches!(
        PublicKey::from_pem(&private),
        Err(KeyError::WrongKind { .. })
    ));
    let encrypted = std::fs::read_to_string(example_key("ed25519-encrypted", "pem")).expect("read");
    assert!(matches!(
        PrivateKey::from_pem(&encrypted, None),
        Err(KeyError::PasswordNeeded)
    ));
    assert!(matches!(
        PrivateKey::from_pem(&encrypted, Some(b"wrong")),
        Err(KeyError::WrongPassword)
    ));
    let key = PrivateKey::from_pem(&encrypted, Some(b"correct horse battery staple"))
        .expect("right password");
    assert_eq!(
        key.public_key().keyid(),
        load_public("ed25519-encrypted").keyid()
    );
}

#[test]
fn keys_round_trip_through_pem_and_sign_in_every_kind() {
    use tollgate::keys::KeyKind;
    for kind in [
        KeyKind::Ed25519,
        KeyKind::EcdsaP256,
        KeyKind::EcdsaP384,
        KeyKind::EcdsaP521,
        KeyKind::Rsa(2048),
    ] {
        let key = PrivateKey::generate(kind).expect("generate");
        for password in [None, Some(&b"pw"[..])] {
            let pem = key.to_pkcs8_pem(password).expect("pem");
            let again = PrivateKey::from_pem(&pem, password).expect("read back");
            assert_eq!(again.public_key().keyid(), key.public_key().keyid());
        }
        let sig = key.sign(b"payload").expect("sign");
        key.public_key().verify(b"payload", &sig).expect("verify");
        assert!(key.public_key().verify(b"payloaD", &sig).is_err());
        let public = PublicKey::from_pem(&key.public_key().to_pem().expect("pem")).expect("pem");
        assert_eq!(public.keyid(), key.public_key().keyid());
        assert_eq!(KeyId::clone(&public.keyid()), key.public_key().keyid());
    }
}

mod no_panic {
    use std::sync::OnceLock;

    use proptest::prelude::*;
    use tollgate::metadata::Metadata;

    use super::*;

    /// How many cases: proptest's own `PROPTEST_CASES` (`.ci/run` sets the 10,000 THREATS
    /// asks for; they take about 30 s here in a debug build), or a quicker 1,000.
    fn cases() -> u32 {
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1000)
    }

    /// The keys that signed the documents below: alice (links) and the example owner
    /// (layouts).
    fn trusted() -> &'static KeyRing {
        static RING: OnceLock<KeyRing> = OnceLock::new();
        RING.get_or_init(|| ring(&[&load_public("ed25519"), &load_public("owner")]))
    }

    /// Real signed documents, each with its payload: links classic and DSSE, a Statement in
    /// DSSE, and the committed layouts.
    fn documents() -> &'static [(Vec<u8>, Value)] {
        static DOCUMENTS: OnceLock<Vec<(Vec<u8>, Value)>> = OnceLock::new();
        DOCUMENTS.get_or_init(|| {
            let alice = load_private("ed25519");
            let link = link_payload("build");
            let statement = tollgate::statement::from_link(
                &Link::from_value(&link, &limits()).expect("valid link"),
            )
            .expect("a Statement");
            let mut documents = vec![
                (
                    signed(link.clone(), Format::Classic, &[&alice]),
                    link.clone(),
                ),
                (signed(link.clone(), Format::Dsse, &[&alice]), link),
                (
                    signed(statement.clone(), Format::Dsse, &[&alice]),
                    statement,
                ),
            ];
            for name in ["release", "container", "demo"] {
                let bytes = std::fs::read(repo().join(format!("layouts/{name}.layout")))
                    .expect("read layout");
                let value: Value = serde_json::from_slice(&bytes).expect("json");
                documents.push((bytes, value["signed"].clone()));
            }
            documents
        })
    }

    /// How far one input got through the parsers (for [`generators_reach_deep_parsing`]).
    #[derive(Debug, Default, Clone, Copy)]
    struct Reach {
        /// Decoded as an envelope.
        envelope: bool,
        /// Its payload parsed as JSON.
        payload: bool,
        /// The payload's `_type` named a layout or a link, so its fields were checked.
        typed: bool,
        /// The payload was a valid layout or link.
        valid: bool,
        /// A Statement's predicate was read as a link.
        statement: bool,
    }

    /// Decodes, verifies and checks `bytes` the way every consumer does, and checks the
    /// payload (verified or not) as a layout, link and Statement, to reach their parsers; any
    /// outcome but a panic is acceptable, and one that verifies must carry `original`.
    fn consume(bytes: &[u8], ring: &KeyRing, original: &Value) -> Reach {
        let mut reach = Reach::default();
        let _ = tollgate::json::parse(bytes);
        if let Ok(envelope) = Envelope::from_bytes(bytes, &limits()) {
            reach.envelope = true;
            if let Ok(payload) = envelope.unverified_payload() {
                reach.payload = true;
                let more = check_payload(&payload);
                reach.typed = more.typed;
                reach.valid = more.valid;
                reach.statement = more.statement;
            }
            if let Ok(verified) = envelope.verify(ring, 1) {
                assert_eq!(verified.payload(), original);
                let _ = Metadata::from_value(verified.payload(), &limits());
            }
        }
        // The one link loader, whose classic fast path decodes, verifies and parses in one
        // pass; a file that loads must be the one that was signed.
        if let Ok(loaded) = tollgate::document::load_link(bytes, ring, 1, &limits()) {
            let link = loaded.into_link(&limits());
            if let Ok(expected) = Link::from_value(original, &limits()) {
                assert_eq!(link.ok().map(|l| l.to_value()), Some(expected.to_value()));
            }
        }
        reach
    }

    /// Checks a payload as a layout or link and as a Statement.
    fn check_payload(payload: &Value) -> Reach {
        let mut reach = Reach::default();
        match Metadata::from_value(payload, &limits()) {
            Ok(_) => {
                reach.typed = true;
                reach.valid = true;
            }
            Err(MetadataError::WrongType { .. }) => {}
            Err(_) => reach.typed = true,
        }
        if tollgate::statement::is_statement(payload) {
            reach.statement = tollgate::statement::to_link(payload, &limits()).is_ok();
        }
        reach
    }

    /// One edit of a document's bytes.
    #[derive(Debug, Clone)]
    enum Edit {
        /// XOR a byte with a mask.
        Flip(prop::sample::Index, u8),
        /// Insert a byte, often one JSON gives meaning to.
        Insert(prop::sample::Index, u8),
        /// Delete a run of bytes.
        Delete(prop::sample::Index, usize),
        /// Cut the document short.
        Truncate(prop::sample::Index),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        let byte = prop_oneof![
            any::<u8>(),
            prop::sample::select(b"{}[]\":,\\ 0-e.tfn".to_vec()),
        ];
        prop_oneof![
            // Mostly low bits, which keep text text.
            4 => (any::<prop::sample::Index>(), prop_oneof![3 => 1u8..16, 1 => 1u8..])
                .prop_map(|(i, m)| Edit::Flip(i, m)),
            3 => (any::<prop::sample::Index>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
            3 => (any::<prop::sample::Index>(), 1usize..8).prop_map(|(i, n)| Edit::Delete(i, n)),
            1 => any::<prop::sample::Index>().prop_map(Edit::Truncate),
        ]
    }

    fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
        let at = |i: &prop::sample::Index, len: usize| i.index(len.max(1)).min(len);
        match edit {
            Edit::Flip(i, mask) if !bytes.is_empty() => {
                let i = at(i, bytes.len() - 1);
                bytes[i] ^= mask;
            }
            Edit::Flip(..) => {}
            Edit::Insert(i, byte) => {
                let i = at(i, bytes.len() + 1);
                bytes.insert(i, *byte);
            }
            Edit::Delete(i, n) => {
                let i = at(i, bytes.len());
                bytes.drain(i..(i + n).min(bytes.len()));
            }
            Edit::Truncate(i) => bytes.truncate(at(i, bytes.len())),
        }
    }

    /// Keys and words of in-toto documents, so that generated JSON looks like them.
    const KEYS: &[&str] = &[
        "_type",
        "signed",
        "signatures",
        "payloadType",
        "payload",
        "keyid",
        "sig",
        "name",
        "command",
        "materials",
        "products",
        "byproducts",
        "environment",
        "expires",
        "readme",
        "keys",
        "steps",
        "inspect",
        "pubkeys",
        "threshold",
        "expected_materials",
        "expected_products",
        "expected_command",
        "run",
        "keytype",
        "scheme",
        "keyval",
        "public",
        "keyid_hash_algorithms",
        "subject",
        "predicateType",
        "predicate",
        "digest",
        "sha256",
        "sha512",
        "md5",
        "return-value",
        "stdout",
        "stderr",
    ];
    const WORDS: &[&str] = &[
        "link",
        "layout",
        "step",
        "inspection",
        "application/vnd.in-toto+json",
        "https://in-toto.io/Statement/v1",
        "https://in-toto.io/attestation/link/v0.3",
        "ed25519",
        "ecdsa-sha2-nistp256",
        "rsassa-pss-sha256",
        "rsa",
        "2099-01-01T00:00:00Z",
        "2000-01-01T00:00:00Z",
        "MATCH",
        "ALLOW",
        "DISALLOW",
        "CREATE",
        "REQUIRE",
        "*",
        "WITH",
        "PRODUCTS",
        "MATERIALS",
        "FROM",
        "IN",
        "build",
        "a.out",
        "src/a.c",
        "../x",
        "e30=",
        "eyJfdHlwZSI6ImxpbmsifQ==",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "63273c364d72fe2722a2d1e30466d2c97c1e6cf4dce71574e03dfa2d4449e457",
    ];

    /// JSON with in-toto's keys and words (and some of anything), nested a few levels.
    fn shaped_json() -> impl Strategy<Value = Value> {
        let key = prop_oneof![
            4 => prop::sample::select(KEYS).prop_map(str::to_owned),
            1 => "[a-z_]{0,6}",
        ];
        let word = prop_oneof![
            3 => prop::sample::select(WORDS).prop_map(str::to_owned),
            1 => "[ -~]{0,10}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-2i64..100).prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            word.prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 96, 8, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map(key.clone(), inner, 0..7)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// A real payload with a few of its values, at any depth, replaced by shaped JSON (a
    /// threshold by another number, an artifact's digests by an odd object, a rule by a
    /// list of words), and some top-level fields added or removed.
    fn altered_payload() -> impl Strategy<Value = Value> {
        let place = prop::collection::vec(any::<prop::sample::Index>(), 1..6);
        (
            any::<prop::sample::Index>(),
            prop::collection::vec((place, shaped_json()), 0..3),
            prop::collection::vec((prop::sample::select(KEYS), shaped_json()), 0..2),
            prop::collection::vec(prop::sample::select(KEYS), 0..2),
        )
            .prop_map(|(which, replace, put, remove)| {
                let documents = documents();
                let mut payload = documents[which.index(documents.len())].1.clone();
                for (place, value) in replace {
                    *descend(&mut payload, &place) = value;
                }
                if let Some(object) = payload.as_object_mut() {
                    for (key, value) in put {
                        object.insert(key.to_owned(), value);
                    }
                    for key in remove {
                        object.remove(key);
                    }
                }
                payload
            })
    }

    /// The value reached from `value` by taking, at each level, the child that `place` picks,
    /// until `place` or the nesting ends.
    fn descend<'a>(value: &'a mut Value, place: &[prop::sample::Index]) -> &'a mut Value {
        let Some((pick, rest)) = place.split_first() else {
            return value;
        };
        let len = match &*value {
            Value::Object(map) => map.len(),
            Value::Array(items) => items.len(),
            _ => 0,
        };
        if len == 0 {
            return value;
        }
        let i = pick.index(len);
        match value {
            Value::Object(map) => match map.values_mut().nth(i) {
                Some(child) => descend(child, rest),
                None => unreachable!("index within the map"),
            },
            Value::Array(items) => descend(&mut items[i], rest),
            _ => unreachable!("a value with children"),
        }
    }

    /// Which document to edit, and a few edits.
    fn mutations() -> impl Strategy<Value = (prop::sample::Index, Vec<Edit>)> {
        (
            any::<prop::sample::Index>(),
            prop::collection::vec(edit(), 1..5),
        )
    }

    /// Envelope-shaped files around shaped JSON or, more often, an altered real payload.
    fn shaped_files() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![1 => enveloped(shaped_json()), 3 => enveloped(altered_payload())]
    }

    /// A signature list: mostly well formed (keyids and signatures of the right look, some
    /// by a trusted keyid), sometimes anything.
    fn signatures() -> impl Strategy<Value = Value> {
        let keyid = prop_oneof![
            Just(load_public("ed25519").keyid().as_str().to_owned()),
            "[0-9a-f]{64}",
            "[ -~]{0,8}",
        ];
        let sig = prop_oneof!["[0-9a-f]{0,128}", "[A-Za-z0-9+/]{0,88}={0,2}"];
        prop_oneof![
            4 => prop::collection::vec(
                (keyid, sig).prop_map(|(keyid, sig)| json!({"keyid": keyid, "sig": sig})),
                0..3,
            )
            .prop_map(Value::Array),
            1 => shaped_json(),
        ]
    }

    /// Files of JSON shaped like an envelope of either form around `payload`.
    fn enveloped(payload: impl Strategy<Value = Value>) -> impl Strategy<Value = Vec<u8>> {
        let b64 = base64::engine::general_purpose::STANDARD;
        (payload, signatures(), 0u8..3, prop::sample::select(WORDS)).prop_map(
            move |(payload, signatures, form, payload_type)| {
                let value = match form {
                    0 => json!({"signatures": signatures, "signed": payload}),
                    1 => json!({
                        "payloadType": payload_type,
                        "payload": b64.encode(serde_json::to_vec(&payload).expect("json")),
                        "signatures": signatures,
                    }),
                    _ => payload,
                };
                serde_json::to_vec(&value).expect("json")
            },
        )
    }

    /// Mutated documents and JSON-shaped files get past the first byte, as random bytes never
    /// do: a good share decode as envelopes and reach the layout, link and Statement parsers,
    /// valid or not.
    #[test]
    fn generators_reach_deep_parsing() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        let mut runner = TestRunner::deterministic();
        let tally = |reach: &mut [usize; 5], r: Reach| {
            for (count, hit) in
                reach
                    .iter_mut()
                    .zip([r.envelope, r.payload, r.typed, r.valid, r.statement])
            {
                *count += usize::from(hit);
            }
        };
        let (mutated, shaped) = (mutations(), shaped_files());
        let random = prop::collection::vec(any::<u8>(), 0..512);
        let (mut by_mutation, mut by_shape, mut by_chance) = ([0; 5], [0; 5], [0; 5]);
        for _ in 0..1000 {
            let (which, edits) = mutated.new_tree(&mut runner).expect("case").current();
            let (original, payload) = &documents()[which.index(documents().len())];
            let mut bytes = original.clone();
            for edit in &edits {
                apply(&mut bytes, edit);
            }
            tally(&mut by_mutation, consume(&bytes, trusted(), payload));
            let bytes = shaped.new_tree(&mut runner).expect("case").current();
            tally(&mut by_shape, consume(&bytes, trusted(), &Value::Null));
            let bytes = random.new_tree(&mut runner).expect("case").current();
            tally(&mut by_chance, consume(&bytes, trusted(), &Value::Null));
        }
        let seen = format!(
            "[envelope, payload, typed, valid, statement] of 1000: mutated {by_mutation:?}, \
             shaped {by_shape:?}, random bytes {by_chance:?}"
        );
        for reach in [by_mutation, by_shape] {
            assert!(reach[0] >= 100 && reach[2] >= 50, "{seen}");
            assert!(reach[3] >= 10 && reach[4] >= 1, "{seen}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases()))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            consume(&bytes, trusted(), &Value::Null);
        }

        #[test]
        fn mutated_documents_never_panic((which, edits) in mutations()) {
            let (original, payload) = &documents()[which.index(documents().len())];
            let mut bytes = original.clone();
            for edit in &edits {
                apply(&mut bytes, edit);
            }
            consume(&bytes, trusted(), payload);
        }

        #[test]
        fn json_shaped_documents_never_panic(
            bytes in shaped_files(),
        ) {
            // Nothing generated is signed by a trusted key, so nothing may verify.
            consume(&bytes, trusted(), &Value::from("never verifies"));
        }

        #[test]
        fn json_shaped_payloads_never_panic(payload in prop_oneof![1 => shaped_json(), 3 => altered_payload()]) {
            check_payload(&payload);
        }
    }
}

#[test]
fn rsa_pss_signatures_verify_whatever_their_salt_length() {
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::{SignatureEncoding, Signer};
    let pem = std::fs::read_to_string(example_key("rsa", "pem")).expect("read");
    let private = rsa::PrivateKey::from_pkcs8_pem(&pem).expect("rsa key");
    let public = load_public("rsa");
    // 0, the digest length, and the maximum for a 3072-bit key (384 - 32 - 2).
    for salt in [0, 20, 32, 64, 350] {
        let signer = rsa::pss::SigningKey::<sha2::Sha256>::new_with_salt_len(private.clone(), salt);
        let sig = signer.try_sign(b"payload").expect("sign").to_vec();
        public
            .verify(b"payload", &sig)
            .unwrap_or_else(|e| panic!("salt {salt}: {e}"));
        assert!(public.verify(b"other", &sig).is_err());
    }
}

#[test]
fn dsse_signatures_in_the_url_safe_alphabet_verify() {
    let alice = load_private("ed25519");
    let mut payload = link_payload("build");
    // Text whose base64 needs the two characters the alphabets disagree on.
    payload["byproducts"]["stdout"] = Value::from("???>>>???>>>");
    let bytes = signed(payload.clone(), Format::Dsse, &[&alice]);
    let mut value: Value = serde_json::from_slice(&bytes).expect("json");
    let standard = base64::engine::general_purpose::STANDARD;
    let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let to_url_safe = |field: &Value| {
        let raw = standard
            .decode(field.as_str().expect("b64"))
            .expect("decode");
        Value::from(url_safe.encode(raw))
    };
    value["payload"] = to_url_safe(&value["payload"]);
    value["signatures"][0]["sig"] = to_url_safe(&value["signatures"][0]["sig"]);
    assert!(value["payload"].as_str().expect("b64").contains(['-', '_']));
    let bytes = serde_json::to_vec(&value).expect("json");
    let verified = verify(&bytes, &ring(&[alice.public_key()]), 1).expect("url-safe verifies");
    assert_eq!(verified.payload(), &payload);
}

/// Verifies a layout whose step `test` must `MATCH` its material `a.out` with the product
/// `a.out` of step `build`, over links recording `a.out` with the digests `built` (build's
/// product) and `tested` (test's material); returns the report as JSON.
fn verify_match(built: Value, tested: Value) -> Value {
    let owner = load_private("ecdsa-p256");
    let (alice, bob) = (load_private("ed25519"), load_private("bob-ed25519"));
    let (a, b) = (alice.public_key().keyid(), bob.public_key().keyid());
    let step = |name: &str, keyid: &KeyId, materials: Value, products: Value| {
        json!({"_type": "step", "name": name, "threshold": 1, "pubkeys": [keyid.as_str()],
               "expected_command": [], "expected_materials": materials,
               "expected_products": products})
    };
    let layout = signed(
        json!({
            "_type": "layout",
            "expires": "2099-01-01T00:00:00Z",
            "readme": "",
            "keys": {
                a.as_str(): alice.public_key().to_layout_entry(&a),
                b.as_str(): bob.public_key().to_layout_entry(&b),
            },
            "steps": [
                step("build", &a, json!([]), json!([["CREATE", "a.out"], ["DISALLOW", "*"]])),
                step("test", &b,
                     json!([["MATCH", "a.out", "WITH", "PRODUCTS", "FROM", "build"],
                            ["DISALLOW", "*"]]),
                     json!([])),
            ],
            "inspect": [],
        }),
        Format::Classic,
        &[&owner],
    );
    let link = |name: &str, materials: Value, products: Value, key: &PrivateKey| {
        let payload = json!({"_type": "link", "name": name, "command": [],
                             "materials": materials, "products": products,
                             "byproducts": {}, "environment": {}});
        signed(payload, Format::Classic, &[key])
    };
    let dir = tempdir();
    let files = [
        (
            format!("build.{}.link", a.short()),
            link("build", json!({}), json!({"a.out": built}), &alice),
        ),
        (
            format!("test.{}.link", b.short()),
            link("test", json!({"a.out": tested}), json!({}), &bob),
        ),
    ];
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).expect("write link");
    }
    let mut options = tollgate::verify::VerifyOptions::new(dir.path());
    options.workdir = Some(dir.path().to_owned());
    let report = tollgate::verify::verify(&layout, &ring(&[owner.public_key()]), &options)
        .expect("verifiable input");
    serde_json::to_value(&report).expect("report json")
}

#[test]
fn f9_match_needs_every_common_algorithm_to_agree() {
    let (sha256, sha512) = ("a".repeat(64), "b".repeat(128));
    let both = json!({"sha256": sha256, "sha512": sha512});
    // Both algorithms agree: the match holds, so the failures below are the disagreement.
    let report = verify_match(both.clone(), both.clone());
    assert_eq!(report["verdict"], "pass", "{report}");
    // sha256 agrees but sha512 differs: not the same file, whatever the first digest says.
    for (built, tested) in [
        (
            both.clone(),
            json!({"sha256": sha256, "sha512": "c".repeat(128)}),
        ),
        (
            json!({"sha256": sha256, "sha512": "c".repeat(128)}),
            both.clone(),
        ),
    ] {
        let report = verify_match(built, tested);
        assert_eq!(report["verdict"], "fail", "{report}");
        assert_eq!(report["failure"]["item"], "test", "{report}");
        let explanation = report["failure"]["reason"]
            .as_str()
            .unwrap_or_else(|| panic!("a reason in {report}"));
        assert!(
            explanation.contains("a.out was not consumed by any earlier rule; it differs from a.out among the products of step build"),
            "{explanation}"
        );
    }
    // Agreeing on md5 and sha1 alone proves nothing.
    let weak = json!({"md5": "d".repeat(32), "sha1": "e".repeat(40)});
    let report = verify_match(weak.clone(), weak);
    assert_eq!(report["verdict"], "fail", "{report}");
    let reason = report["failure"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("hold no approved algorithm (sha256 or stronger)"),
        "{report}"
    );
}
