//! The crate's fast path for large links: a file decoded and verified in one pass, a classic
//! payload parsed straight into its typed form from the file's bytes and its canonical bytes
//! streamed into the signature checks on another core. Crate-internal: outside, there is one
//! way to verify, [`Envelope::verify`].

use super::decode::{Decoded, decode};
use super::{Body, Envelope, EnvelopeError, Format, Verified};
use crate::base::json;
use crate::base::limits::Limits;
use crate::model::keyring::KeyRing;
use crate::model::threshold::{self, StreamedSigners};

/// From this file size on, a classic payload's signatures are checked as its canonical bytes
/// are made, on another thread; below it, starting that thread costs more than it saves.
const STREAM_FROM_BYTES: usize = 1024 * 1024;

/// Why [`Envelope::verify_owned_into`] failed.
pub(crate) enum StreamError<B> {
    /// The file does not decode as the type asked for; its bytes, handed back.
    Undecoded(EnvelopeError, B),
    /// It decoded, and did not verify.
    Unverified(EnvelopeError),
}

impl Envelope {
    /// Decodes and verifies a file in one pass, then applies `convert` to the payload. A
    /// classic payload is parsed straight into `T` from the file's bytes (no copy of its text
    /// is made, and the bytes are freed once parsed): the fast path for large links. `T` must
    /// do what [`Envelope::verify_as`] asks. For a classic file signed by ed25519 keys,
    /// `convert` runs while the last of the canonical bytes are still being hashed on another
    /// core; its result is returned only if the signatures verify. Errors in the payload and
    /// in the envelope around it are not told apart here; [`Envelope::from_bytes`] and
    /// [`Envelope::verify`] do that.
    #[cfg(test)]
    pub(crate) fn verify_bytes_into<T, U>(
        bytes: impl AsRef<[u8]>,
        ring: &KeyRing,
        threshold: usize,
        limits: &Limits,
        convert: impl FnOnce(T) -> U,
    ) -> Result<Verified<U>, EnvelopeError>
    where
        T: serde::de::DeserializeOwned + serde::Serialize + json::Canonical,
    {
        Envelope::verify_owned_into(bytes, ring, threshold, limits, convert).map_err(|e| match e {
            StreamError::Undecoded(e, _) | StreamError::Unverified(e) => e,
        })
    }

    /// The fast path itself (`verify_bytes_into` is its form for tests), handing
    /// the bytes back when they do not decode as a `T`, so that a caller can read them another
    /// way without keeping them alive through the fast path: they are freed as soon as they
    /// are parsed.
    pub(crate) fn verify_owned_into<B, T, U>(
        bytes: B,
        ring: &KeyRing,
        threshold: usize,
        limits: &Limits,
        convert: impl FnOnce(T) -> U,
    ) -> Result<Verified<U>, StreamError<B>>
    where
        B: AsRef<[u8]>,
        T: serde::de::DeserializeOwned + serde::Serialize + json::Canonical,
    {
        let size = bytes.as_ref().len();
        let decoded = match decode::<T>(bytes.as_ref(), limits) {
            Ok(decoded) => decoded,
            Err(e) => return Err(StreamError::Undecoded(e, bytes)),
        };
        drop(bytes);
        Envelope::verify_decoded(decoded, size, ring, threshold, convert)
            .map_err(StreamError::Unverified)
    }

    /// Verifies a decoded file of `size` bytes, then applies `convert` to its payload.
    fn verify_decoded<T, U>(
        decoded: Decoded<T>,
        size: usize,
        ring: &KeyRing,
        threshold: usize,
        convert: impl FnOnce(T) -> U,
    ) -> Result<Verified<U>, EnvelopeError>
    where
        T: serde::de::DeserializeOwned + serde::Serialize + json::Canonical,
    {
        match decoded {
            Decoded::Classic { signed, signatures } => {
                if signatures.is_empty() {
                    return Err(EnvelopeError::NoSignatures);
                }
                // The canonical bytes of a large file go straight into the signature checks
                // (on a thread of their own) where the keys allow it, and are never held
                // whole; a small file's are simply made and checked here.
                let streamed = (size >= STREAM_FROM_BYTES)
                    .then(|| StreamedSigners::start(&signatures, ring))
                    .flatten();
                let (payload, signers) = match streamed {
                    Some(mut stream) => {
                        signed.write_canonical(&mut stream)?;
                        let payload = convert(signed);
                        (payload, stream.finish())
                    }
                    None => {
                        let message = signed.canonical_bytes()?;
                        let signers = threshold::signers(&message, &signatures, ring);
                        (convert(signed), signers)
                    }
                };
                if let Err(source) = threshold::require(&signers.keys, threshold) {
                    return Err(EnvelopeError::Threshold { source, signers });
                }
                Ok(Verified {
                    payload,
                    format: Format::Classic,
                    signers,
                })
            }
            Decoded::Dsse {
                payload_type,
                payload,
                signatures,
            } => {
                let verified: Verified<T> = Envelope {
                    body: Body::Dsse {
                        payload_type,
                        payload,
                    },
                    signatures,
                }
                .into_verified(ring, threshold)?;
                Ok(verified.map(convert))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::model::keys::PrivateKey;

    /// A file large enough for its signature to be hashed on another thread verifies, gives
    /// the converted payload, and fails once a byte of its payload changes; so does a small
    /// one, checked in place.
    #[test]
    fn large_and_small_classic_files_verify_only_as_signed() {
        use crate::model::keys::KeyKind;
        let key = PrivateKey::generate(KeyKind::Ed25519).expect("key");
        let ring = KeyRing::from_keys([key.public_key().clone()]).expect("ring");
        let limits = Limits::default();
        for count in [10, 40_000] {
            let materials: serde_json::Map<String, Value> = (0..count)
                .map(|i| {
                    let digest = format!("{:064x}", i);
                    (
                        format!("src/file{i:06}.c"),
                        serde_json::json!({ "sha256": digest }),
                    )
                })
                .collect();
            let payload = serde_json::json!({
                "_type": "link", "byproducts": {}, "command": [], "environment": {},
                "materials": materials, "name": "build", "products": {},
            });
            let file = Envelope::seal(&payload, Format::Classic, &[&key]).expect("seal");
            assert_eq!(file.len() >= STREAM_FROM_BYTES, count > 10, "{count}");
            let verified =
                Envelope::verify_bytes_into(&file, &ring, 1, &limits, |v: json::Strict| {
                    v.0["materials"].as_object().map(|m| m.len())
                })
                .expect("verifies");
            assert_eq!(verified.payload, Some(count));
            assert!(verified.signers.keys.contains(&key.public_key().keyid()));
            // The last material's digest, changed by one digit.
            let text = String::from_utf8(file).expect("utf8");
            let last = format!("{:064x}", count - 1);
            let forged = text.replacen(&last, &format!("{:064x}", count + 7), 1);
            assert_ne!(forged, text);
            match Envelope::verify_bytes_into(
                forged.as_bytes(),
                &ring,
                1,
                &limits,
                |v: json::Strict| v,
            ) {
                Err(EnvelopeError::Threshold { signers, .. }) => {
                    assert!(signers.keys.is_empty());
                    assert_eq!(signers.unattributed, 1);
                }
                other => panic!("{count}: {:?}", other.map(|v| v.signers)),
            }
        }
    }

    /// A link payload with `count` materials, `src/a.c` first.
    fn link_with(count: usize) -> Value {
        let materials: serde_json::Map<String, Value> = (0..count)
            .map(|i| {
                let name = if i == 0 {
                    "src/a.c".to_owned()
                } else {
                    format!("src/file{i:08}.c")
                };
                (name, serde_json::json!({ "sha256": "a".repeat(64) }))
            })
            .collect();
        serde_json::json!({
            "_type": "link", "byproducts": {}, "command": ["make"], "environment": {},
            "materials": materials, "name": "build", "products": {},
        })
    }

    /// THREATS A9 through the streamed check (moved here from `tests/threats.rs` when this
    /// path became crate-internal): a small-order ("weak") public key, for which `R = [S]B`
    /// verifies every message, and a small-order `R` (the identity, `S = k·a`) under an
    /// honest key count for nothing, in a small file and in one streamed on another thread.
    #[test]
    fn a9_weak_keys_and_small_order_signatures_forge_nothing_when_streamed() {
        use curve25519_dalek::constants::ED25519_BASEPOINT_COMPRESSED;
        use curve25519_dalek::scalar::Scalar;
        use sha2::Digest as _;

        use crate::model::keys::PublicKey;

        const IDENTITY: [u8; 32] = {
            let mut point = [0u8; 32];
            point[0] = 1;
            point
        };
        let weak = PublicKey::from_key_object(&serde_json::json!({
            "keytype": "ed25519", "scheme": "ed25519",
            "keyval": {"public": hex::encode(IDENTITY)},
        }))
        .expect("the identity is a point, and loads as a key");
        let any_message = [
            ED25519_BASEPOINT_COMPRESSED.to_bytes(),
            Scalar::ONE.to_bytes(),
        ]
        .concat();
        let signing = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let honest = PublicKey::from_key_object(&serde_json::json!({
            "keytype": "ed25519", "scheme": "ed25519",
            "keyval": {"public": hex::encode(signing.verifying_key().as_bytes())},
        }))
        .expect("key");
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
        let limits = Limits::default();
        for count in [1, 30_000] {
            let payload = link_with(count);
            let message = json::canonical(&payload).expect("canonical");
            for (what, key, sig) in [
                ("weak key", &weak, any_message.clone()),
                ("small-order R", &honest, small_order_r(&message)),
            ] {
                let file = serde_json::to_vec(&serde_json::json!({
                    "signatures": [{"keyid": key.keyid().as_str(), "sig": hex::encode(sig)}],
                    "signed": payload,
                }))
                .expect("json");
                assert_eq!(file.len() >= STREAM_FROM_BYTES, count > 1, "{what}");
                let ring = KeyRing::from_keys([key.clone()]).expect("ring");
                match Envelope::verify_bytes_into(&file, &ring, 1, &limits, |v: json::Strict| v) {
                    Err(EnvelopeError::Threshold { signers, .. }) => {
                        assert!(signers.keys.is_empty(), "{what}, {count}");
                        assert_eq!(signers.unattributed, 1, "{what}, {count}");
                    }
                    other => panic!("{what}, {count}: {:?}", other.map(|v| v.signers)),
                }
            }
        }
    }

    /// THREATS B1 through the typed reads (moved here from `tests/threats.rs` when they became
    /// crate-internal): a duplicate key in an artifact map is refused when a link is read
    /// straight into its type, before any signature counts.
    #[test]
    fn b1_a_link_read_into_its_type_refuses_duplicate_keys() {
        use crate::model::keys::KeyKind;
        use crate::model::link::RawLink;

        let key = PrivateKey::generate(KeyKind::Ed25519).expect("key");
        let trusted = KeyRing::from_keys([key.public_key().clone()]).expect("ring");
        let limits = Limits::default();
        let file = Envelope::seal(&link_with(1), Format::Classic, &[&key]).expect("seal");
        let text = String::from_utf8(file).expect("utf8");
        let digest = "a".repeat(64);
        let entry = format!("\"src/a.c\": {{\n    \"sha256\": \"{digest}\"\n   }}");
        assert!(text.contains(&entry), "the file's layout changed");
        let doubled = text.replacen(&entry, &format!("{entry},\n   {entry}"), 1);
        let envelope = Envelope::from_bytes(doubled.as_bytes(), &limits).expect("framing");
        match envelope.verify_as::<RawLink>(&trusted, 1) {
            Err(EnvelopeError::Payload(json::JsonError::DuplicateKey { key, .. })) => {
                assert_eq!(key, "src/a.c")
            }
            other => panic!("expected a duplicate key error, got {other:?}"),
        }
        match Envelope::verify_bytes_into(doubled.as_bytes(), &trusted, 1, &limits, |l: RawLink| l)
        {
            Err(
                EnvelopeError::Payload(json::JsonError::DuplicateKey { key, .. })
                | EnvelopeError::Json(json::JsonError::DuplicateKey { key, .. }),
            ) => assert_eq!(key, "src/a.c"),
            other => panic!(
                "expected a duplicate key error, got {:?}",
                other.map(|_| ())
            ),
        }
    }

    /// With no thread to spare, a classic file is sealed to the same bytes, and a large one
    /// is checked as a whole message instead of streamed: the same signers, the same refusal
    /// of a forgery.
    #[test]
    fn without_threads_sealing_and_checking_give_the_same_answers() {
        use crate::base::parallel::without_threads;
        use crate::model::keys::KeyKind;

        let key = PrivateKey::generate(KeyKind::Ed25519).expect("key");
        let ring = KeyRing::from_keys([key.public_key().clone()]).expect("ring");
        let limits = Limits::default();
        let payload = link_with(30_000);
        let file = Envelope::seal(&payload, Format::Classic, &[&key]).expect("seal");
        assert!(file.len() >= STREAM_FROM_BYTES);
        let alone = without_threads(|| Envelope::seal(&payload, Format::Classic, &[&key]))
            .expect("seal without threads");
        assert_eq!(alone, file);
        let verified = without_threads(|| {
            Envelope::verify_bytes_into(&file, &ring, 1, &limits, |v: json::Strict| v)
        })
        .expect("verifies without threads");
        assert!(verified.signers.keys.contains(&key.public_key().keyid()));
        let text = String::from_utf8(file).expect("utf8");
        let forged = text.replacen("src/file00000009.c", "src/file00000009.h", 1);
        assert_ne!(forged, text);
        assert!(matches!(
            without_threads(|| Envelope::verify_bytes_into(
                forged.as_bytes(),
                &ring,
                1,
                &limits,
                |v: json::Strict| v
            )),
            Err(EnvelopeError::Threshold { .. })
        ));
    }
}
