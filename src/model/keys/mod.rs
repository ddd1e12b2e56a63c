//! Public keys as in-toto layouts hold them, their keyids, and signature verification.
//!
//! A key is known by three things that must not be confused:
//! - its **keyid**, the SHA-256 of the canonical JSON of its securesystemslib key object. The
//!   reference computes it in two ways ([`PublicKey::keyid`] and [`PublicKey::legacy_keyid`]);
//!   a layout may declare either, and nothing else.
//! - its **fingerprint**, the SHA-256 of its SubjectPublicKeyInfo DER. This is what makes two
//!   keys the same key whatever their keyid, encoding or scheme label, so thresholds count
//!   fingerprints, never keyids.
//! - its **key object**, `{"keytype", "scheme", "keyval": {"public"}}`, the form inside layouts.
//!
//! Supported: ed25519 (strict verification), ECDSA P-256, P-384 and P-521 with DER signatures
//! (SHA-256, SHA-384 and SHA-512), and RSA-PSS with SHA-256 and MGF1-SHA-256 (any salt length on
//! verification, as securesystemslib does). RSA moduli must be 2048 to 8192 bits.

mod private;

use std::fmt;
use std::str::FromStr;

use pkcs8::der::pem::LineEnding;
use rsa::signature::Verifier;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use spki::{DecodePublicKey, EncodePublicKey};

use crate::base::json;

pub use private::{KeyKind, MAX_PBKDF2_ITERATIONS, MAX_SCRYPT_MEMORY, PrivateKey};

/// The smallest RSA modulus accepted, in bits.
pub const RSA_MIN_BITS: usize = 2048;
/// The largest RSA modulus accepted, in bits.
pub const RSA_MAX_BITS: usize = 8192;

/// What went wrong with a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The PEM armour could not be read.
    #[error("not a PEM file: {source}")]
    Pem {
        /// Why: the PEM or base64 decoder's error, or what is missing.
        #[source]
        source: Cause,
    },
    /// The PEM label is one Tollgate does not read in this place.
    #[error("{found}; {hint}")]
    WrongKind {
        /// What the file holds.
        found: String,
        /// What to do instead.
        hint: &'static str,
    },
    /// The key's algorithm or curve is not supported.
    #[error("unsupported key: {0}")]
    Unsupported(String),
    /// The key material does not decode.
    #[error("malformed key: {source}")]
    Malformed {
        /// Why: the DER, PKCS#8 or key decoder's error, or what is wrong.
        #[source]
        source: Cause,
    },
    /// An RSA modulus outside the accepted range.
    #[error("RSA key of {bits} bits: Tollgate accepts {RSA_MIN_BITS} to {RSA_MAX_BITS} bits")]
    RsaSize {
        /// The modulus size found.
        bits: usize,
    },
    /// The key object's `keytype` and `scheme` do not go together, or do not fit the key.
    #[error("keytype {keytype:?} with scheme {scheme:?}: {reason}")]
    SchemeMismatch {
        /// The declared keytype.
        keytype: String,
        /// The declared scheme.
        scheme: String,
        /// Why they do not fit.
        reason: String,
    },
    /// The key object is not of the securesystemslib form.
    #[error("key object: {0}")]
    KeyObject(String),
    /// The private key is encrypted with a scheme Tollgate does not decrypt (legacy PKCS#5 v1.5
    /// and PKCS#12 schemes other than `pbeWithMD5AndDES-CBC`, or PBES2 with a cipher or PRF
    /// other than AES, 3DES and HMAC-SHA1/SHA-2): no password could open it, so it is not
    /// reported as a wrong password.
    #[error("the private key is encrypted with {scheme}, which Tollgate does not decrypt")]
    UnsupportedEncryption {
        /// The encryption scheme, by its name or OID.
        scheme: String,
    },
    /// The encrypted private key asks for a key derivation costlier than any real key file
    /// needs (see [`MAX_PBKDF2_ITERATIONS`] and [`MAX_SCRYPT_MEMORY`]):
    /// refused before any work, since a hostile file could otherwise hold the CPU or memory
    /// for hours whatever the password.
    #[error(
        "the private key's password derivation asks for {found}, above the {limit} Tollgate \
         accepts: re-encrypt the key with ordinary settings"
    )]
    KdfTooCostly {
        /// What the file asks for.
        found: String,
        /// The most Tollgate accepts.
        limit: String,
    },
    /// The private key is encrypted and no password was given.
    #[error("the private key is encrypted: give its password")]
    PasswordNeeded,
    /// The password does not decrypt the key, or the encrypted key is corrupt.
    #[error("cannot decrypt the private key: wrong password, or a corrupt file")]
    WrongPassword,
    /// Creating a key or a signature failed inside the cryptography.
    #[error("cryptographic operation failed: {source}")]
    Crypto {
        /// The cryptography's error.
        #[source]
        source: Cause,
    },
}

/// The cause kept inside a [`KeyError`]: the decoder's or the cryptography's own error (the
/// key crates each have their own type), or a message where Tollgate itself found the fault.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A cause with where in the key object it was found, shown as `AT: CAUSE`.
#[derive(Debug, thiserror::Error)]
#[error("{at}: {source}")]
pub struct At {
    /// The field.
    pub at: &'static str,
    /// The cause.
    #[source]
    pub source: Cause,
}

impl KeyError {
    /// A PEM armour that cannot be read, for `cause`.
    pub(crate) fn pem<E: Into<Cause>>(cause: E) -> KeyError {
        KeyError::Pem {
            source: cause.into(),
        }
    }

    /// Key material that does not decode, for `cause`.
    pub(crate) fn malformed<E: Into<Cause>>(cause: E) -> KeyError {
        KeyError::Malformed {
            source: cause.into(),
        }
    }

    /// A failure inside the cryptography, for `cause`.
    pub(crate) fn crypto<E: Into<Cause>>(cause: E) -> KeyError {
        KeyError::Crypto {
            source: cause.into(),
        }
    }
}

/// A keyid: 64 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(String);

impl KeyId {
    /// The keyid as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first eight characters, used in link file names (`STEP.KEYID8.link`).
    pub fn short(&self) -> &str {
        &self.0[..8]
    }

    fn of_sha256(bytes: &[u8]) -> KeyId {
        KeyId(hex::encode(Sha256::digest(bytes)))
    }
}

impl FromStr for KeyId {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(KeyId(s.to_owned()))
        } else {
            Err(KeyError::KeyObject(format!(
                "keyid {s:?} is not 64 lowercase hex characters"
            )))
        }
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The signature schemes Tollgate speaks, by their securesystemslib names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scheme {
    /// `ed25519`.
    Ed25519,
    /// `ecdsa-sha2-nistp256`: ECDSA on P-256 over SHA-256, DER signatures.
    EcdsaP256,
    /// `ecdsa-sha2-nistp384`: ECDSA on P-384 over SHA-384, DER signatures.
    EcdsaP384,
    /// `ecdsa-sha2-nistp521`: ECDSA on P-521 over SHA-512, DER signatures (in-toto-golang
    /// and securesystemslib support it).
    EcdsaP521,
    /// `rsassa-pss-sha256`: RSA-PSS, SHA-256, MGF1-SHA-256.
    RsaPssSha256,
}

impl Scheme {
    /// The scheme's securesystemslib name.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Ed25519 => "ed25519",
            Scheme::EcdsaP256 => "ecdsa-sha2-nistp256",
            Scheme::EcdsaP384 => "ecdsa-sha2-nistp384",
            Scheme::EcdsaP521 => "ecdsa-sha2-nistp521",
            Scheme::RsaPssSha256 => "rsassa-pss-sha256",
        }
    }

    /// The `keytype` a key object of this scheme carries.
    pub fn keytype(self) -> &'static str {
        match self {
            Scheme::Ed25519 => "ed25519",
            Scheme::EcdsaP256 | Scheme::EcdsaP384 | Scheme::EcdsaP521 => "ecdsa",
            Scheme::RsaPssSha256 => "rsa",
        }
    }
}

#[derive(Clone)]
enum Verifying {
    Ed25519(ed25519_dalek::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    P521(p521::ecdsa::VerifyingKey),
    Rsa(Box<rsa::PublicKey>),
}

/// A signature check fed the message in pieces (ed25519 only; see
/// [`PublicKey::stream_verifier`]).
pub struct StreamCheck(ed25519_dalek::StreamVerifier);

impl StreamCheck {
    /// Feeds the next piece of the message.
    pub fn update(&mut self, piece: &[u8]) {
        self.0.update(piece);
    }

    /// Whether the signature verifies over everything fed.
    pub fn finish(self) -> bool {
        self.0.finalize_and_verify().is_ok()
    }
}

impl std::fmt::Debug for StreamCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamCheck")
    }
}

/// A public key that can verify signatures, with the key object it came from.
#[derive(Clone)]
pub struct PublicKey {
    verifying: Verifying,
    scheme: Scheme,
    /// `keytype` exactly as the key object holds it (older files say `ecdsa-sha2-nistp256`
    /// where newer ones say `ecdsa`): keyids hash this text.
    keytype: String,
    /// `keyval.public` exactly as the key object holds it: keyids hash this text.
    public: String,
    /// `keyid_hash_algorithms` when the key object declared it (legacy securesystemslib).
    hash_algorithms: Option<Value>,
    fingerprint: [u8; 32],
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The signature bytes are not of the form the scheme defines (length, DER).
    #[error("invalid signature encoding for {0}")]
    Encoding(&'static str),
    /// Well-formed, but not made by this key over these bytes.
    #[error("signature does not verify")]
    Mismatch,
}

impl PublicKey {
    /// Reads a public key from PEM: SubjectPublicKeyInfo (`PUBLIC KEY`) or PKCS#1
    /// (`RSA PUBLIC KEY`). The key object's `public` text is re-encoded the way the reference
    /// writes it (SPKI PEM, 64-character lines, final newline), so the keyid matches the one
    /// `in-toto-run` and `in-toto-verify` compute for the same file.
    pub fn from_pem(pem: &str) -> Result<PublicKey, KeyError> {
        let (label, der) = pkcs8::der::pem::decode_vec(pem.as_bytes()).map_err(KeyError::pem)?;
        match label {
            "PUBLIC KEY" => PublicKey::from_spki_der(&der),
            "RSA PUBLIC KEY" => {
                PublicKey::from_verifying(rsa_from_pkcs1(&der)?, Scheme::RsaPssSha256)
            }
            other => Err(private::wrong_label(other, "a public key")),
        }
    }

    /// Reads a SubjectPublicKeyInfo DER of any supported algorithm, with the scheme the
    /// reference gives that key type by default.
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, KeyError> {
        let (verifying, scheme) = decode_spki(der)?;
        PublicKey::from_verifying(verifying, scheme)
    }

    fn from_verifying(verifying: Verifying, scheme: Scheme) -> Result<PublicKey, KeyError> {
        let spki = spki_der(&verifying)?;
        let public = match &verifying {
            Verifying::Ed25519(key) => hex::encode(key.as_bytes()),
            _ => pkcs8::der::pem::encode_string("PUBLIC KEY", LineEnding::LF, &spki)
                .map_err(KeyError::malformed)?,
        };
        Ok(PublicKey {
            fingerprint: Sha256::digest(&spki).into(),
            verifying,
            scheme,
            keytype: scheme.keytype().to_owned(),
            public,
            hash_algorithms: None,
        })
    }

    /// Reads a securesystemslib key object, `{"keytype", "scheme", "keyval": {"public"}}`, as
    /// a layout's `keys` map holds it. `keyid_hash_algorithms` (legacy key files) is accepted
    /// and kept, because the legacy keyid hashes it; any other field is an error, and so is
    /// private key material. An empty `keyval.private` (older in-toto versions and
    /// in-toto-golang wrote `"private": ""` into layouts) holds none and is accepted; keyids
    /// never hash it.
    pub fn from_key_object(value: &Value) -> Result<PublicKey, KeyError> {
        let object = value
            .as_object()
            .ok_or_else(|| KeyError::KeyObject("expected a JSON object".into()))?;
        for field in object.keys() {
            if !matches!(
                field.as_str(),
                "keytype" | "scheme" | "keyval" | "keyid_hash_algorithms"
            ) {
                return Err(KeyError::KeyObject(format!("unknown field {field:?}")));
            }
        }
        let text = |name: &str| -> Result<&str, KeyError> {
            object
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| KeyError::KeyObject(format!("{name:?} must be a string")))
        };
        let keytype = text("keytype")?;
        let scheme_name = text("scheme")?;
        let keyval = object
            .get("keyval")
            .and_then(Value::as_object)
            .ok_or_else(|| KeyError::KeyObject("\"keyval\" must be an object".into()))?;
        for (field, value) in keyval {
            match (field.as_str(), value) {
                ("public", _) => {}
                // Older in-toto versions wrote `"private": ""`: no key material.
                ("private", Value::String(text)) if text.is_empty() => {}
                ("private", _) => {
                    return Err(KeyError::KeyObject(
                        "\"keyval.private\" is not empty: a layout must not hold private key \
                         material; remove the field (an empty \"private\": \"\" is accepted) and \
                         rotate the key, which anyone who saw this file may hold"
                            .into(),
                    ));
                }
                _ => {
                    return Err(KeyError::KeyObject(format!(
                        "\"keyval\" may hold only \"public\" (unknown field {field:?})"
                    )));
                }
            }
        }
        let public = keyval
            .get("public")
            .and_then(Value::as_str)
            .ok_or_else(|| KeyError::KeyObject("\"keyval.public\" must be a string".into()))?;
        let hash_algorithms = match object.get("keyid_hash_algorithms") {
            None => None,
            Some(list @ Value::Array(items)) if items.iter().all(Value::is_string) => {
                Some(list.clone())
            }
            Some(_) => {
                return Err(KeyError::KeyObject(
                    "\"keyid_hash_algorithms\" must be a list of strings".into(),
                ));
            }
        };

        let mismatch = |reason: &str| KeyError::SchemeMismatch {
            keytype: keytype.to_owned(),
            scheme: scheme_name.to_owned(),
            reason: reason.to_owned(),
        };
        let scheme = match scheme_name {
            "ed25519" => Scheme::Ed25519,
            "ecdsa-sha2-nistp256" => Scheme::EcdsaP256,
            "ecdsa-sha2-nistp384" => Scheme::EcdsaP384,
            "ecdsa-sha2-nistp521" => Scheme::EcdsaP521,
            "rsassa-pss-sha256" => Scheme::RsaPssSha256,
            _ => return Err(mismatch("unsupported scheme")),
        };
        // Older securesystemslib wrote the scheme name as the ECDSA keytype.
        let keytype_fits = keytype == scheme.keytype()
            || (matches!(
                scheme,
                Scheme::EcdsaP256 | Scheme::EcdsaP384 | Scheme::EcdsaP521
            ) && keytype == scheme_name);
        if !keytype_fits {
            return Err(mismatch("the scheme belongs to another key type"));
        }

        let verifying = match scheme {
            Scheme::Ed25519 => {
                let bytes: [u8; 32] = hex_lower(public)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| {
                        KeyError::KeyObject(
                            "an ed25519 \"public\" must be 64 lowercase hex characters".into(),
                        )
                    })?;
                Verifying::Ed25519(
                    ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(KeyError::malformed)?,
                )
            }
            _ => {
                let (label, der) = pkcs8::der::pem::decode_vec(public.as_bytes()).map_err(|e| {
                    KeyError::pem(At {
                        at: "keyval.public",
                        source: e.into(),
                    })
                })?;
                if label != "PUBLIC KEY" {
                    return Err(KeyError::KeyObject(format!(
                        "keyval.public holds a {label:?} PEM block, expected \"PUBLIC KEY\""
                    )));
                }
                let (verifying, natural) = decode_spki(&der)?;
                if natural != scheme {
                    return Err(mismatch(&format!("the key is a {} key", natural.name())));
                }
                verifying
            }
        };
        let spki = spki_der(&verifying)?;
        Ok(PublicKey {
            fingerprint: Sha256::digest(&spki).into(),
            verifying,
            scheme,
            keytype: keytype.to_owned(),
            public: public.to_owned(),
            hash_algorithms,
        })
    }

    /// The key object as the reference writes it into a layout.
    pub fn to_key_object(&self) -> Value {
        json!({
            "keytype": self.keytype,
            "scheme": self.scheme.name(),
            "keyval": { "public": self.public },
        })
    }

    /// The entry a layout's `keys` map holds for this key under `keyid`: the key object with
    /// `keyid` inside it (the reference requires that field when it reads a layout) and, for a
    /// legacy key, its `keyid_hash_algorithms`.
    pub fn to_layout_entry(&self, keyid: &KeyId) -> Value {
        let mut entry = self.to_key_object();
        if let Value::Object(map) = &mut entry {
            map.insert("keyid".into(), Value::String(keyid.to_string()));
            if let Some(algorithms) = &self.hash_algorithms {
                map.insert("keyid_hash_algorithms".into(), algorithms.clone());
            }
        }
        entry
    }

    /// The keyid the current reference computes: the SHA-256 of the canonical JSON of
    /// `{"keytype", "scheme", "keyval"}`.
    pub fn keyid(&self) -> KeyId {
        KeyId::of_sha256(&canonical_key_object(self.to_key_object()))
    }

    /// The keyid legacy securesystemslib computed, which also hashes
    /// `keyid_hash_algorithms` (`["sha256", "sha512"]` unless the key object said otherwise).
    pub fn legacy_keyid(&self) -> KeyId {
        let mut object = self.to_key_object();
        if let Value::Object(map) = &mut object {
            map.insert(
                "keyid_hash_algorithms".into(),
                self.hash_algorithms
                    .clone()
                    .unwrap_or_else(|| json!(["sha256", "sha512"])),
            );
        }
        KeyId::of_sha256(&canonical_key_object(object))
    }

    /// Whether `keyid` names this key in either of the reference's two forms.
    pub fn is_named_by(&self, keyid: &KeyId) -> bool {
        *keyid == self.keyid() || *keyid == self.legacy_keyid()
    }

    /// The SHA-256 of the key's SubjectPublicKeyInfo DER: one key, one fingerprint, whatever
    /// its keyid, PEM formatting or scheme label.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// The key's signature scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The key as SubjectPublicKeyInfo PEM.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        let der = spki_der(&self.verifying)?;
        pkcs8::der::pem::encode_string("PUBLIC KEY", LineEnding::LF, &der)
            .map_err(KeyError::malformed)
    }

    /// A check of `signature` over a message fed in pieces, for an ed25519 key; `None` for any
    /// other key type. It is [`PublicKey::verify`]'s strict check: a non-canonical `S`, a
    /// small-order key and a small-order or invalid `R` fail at once, before any message.
    pub fn stream_verifier(&self, signature: &[u8]) -> Option<Result<StreamCheck, SignatureError>> {
        let Verifying::Ed25519(key) = &self.verifying else {
            return None;
        };
        Some((|| {
            let sig = ed25519_dalek::Signature::from_slice(signature)
                .map_err(|_| SignatureError::Encoding("ed25519"))?;
            let r = curve25519_dalek::edwards::CompressedEdwardsY(sig.r_bytes().to_owned())
                .decompress()
                .ok_or(SignatureError::Mismatch)?;
            if r.is_small_order() || key.is_weak() {
                return Err(SignatureError::Mismatch);
            }
            let stream = key
                .verify_stream(&sig)
                .map_err(|_| SignatureError::Mismatch)?;
            Ok(StreamCheck(stream))
        })())
    }

    /// Checks `signature` over `message`. Ed25519 is verified strictly (canonical `S`, no
    /// small-order keys); ECDSA signatures must be exact DER; RSA-PSS accepts any salt length.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        match &self.verifying {
            Verifying::Ed25519(key) => {
                let sig = ed25519_dalek::Signature::from_slice(signature)
                    .map_err(|_| SignatureError::Encoding("ed25519"))?;
                key.verify_strict(message, &sig)
                    .map_err(|_| SignatureError::Mismatch)
            }
            Verifying::P256(key) => {
                let sig = p256::ecdsa::Signature::from_der(signature)
                    .map_err(|_| SignatureError::Encoding("ecdsa-sha2-nistp256"))?;
                key.verify(message, &sig)
                    .map_err(|_| SignatureError::Mismatch)
            }
            Verifying::P384(key) => {
                let sig = p384::ecdsa::Signature::from_der(signature)
                    .map_err(|_| SignatureError::Encoding("ecdsa-sha2-nistp384"))?;
                key.verify(message, &sig)
                    .map_err(|_| SignatureError::Mismatch)
            }
            Verifying::P521(key) => {
                let sig = p521::ecdsa::Signature::from_der(signature)
                    .map_err(|_| SignatureError::Encoding("ecdsa-sha2-nistp521"))?;
                key.verify(message, &sig)
                    .map_err(|_| SignatureError::Mismatch)
            }
            Verifying::Rsa(key) => {
                use rsa::traits::PublicKeyParts;
                if signature.len() != key.size() {
                    return Err(SignatureError::Encoding("rsassa-pss-sha256"));
                }
                let sig = rsa::pss::Signature::try_from(signature)
                    .map_err(|_| SignatureError::Encoding("rsassa-pss-sha256"))?;
                rsa::pss::VerifyingKey::<Sha256>::new_with_auto_salt_len((**key).clone())
                    .verify(message, &sig)
                    .map_err(|_| SignatureError::Mismatch)
            }
        }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("scheme", &self.scheme.name())
            .field("keyid", &self.keyid().as_str())
            .finish()
    }
}

fn canonical_key_object(object: Value) -> Vec<u8> {
    // A key object holds only strings and lists of strings, which always canonicalise.
    json::canonical(&object).unwrap_or_default()
}

fn hex_lower(s: &str) -> Option<Vec<u8>> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    hex::decode(s).ok()
}

fn decode_spki(der: &[u8]) -> Result<(Verifying, Scheme), KeyError> {
    let info = spki::SubjectPublicKeyInfoRef::try_from(der).map_err(KeyError::malformed)?;
    let oid = info.algorithm.oid.to_string();
    match oid.as_str() {
        // id-Ed25519
        "1.3.101.112" => ed25519_dalek::VerifyingKey::from_public_key_der(der)
            .map(|k| (Verifying::Ed25519(k), Scheme::Ed25519))
            .map_err(KeyError::malformed),
        // id-ecPublicKey: the curve decides.
        "1.2.840.10045.2.1" => {
            if let Ok(key) = p256::ecdsa::VerifyingKey::from_public_key_der(der) {
                Ok((Verifying::P256(key), Scheme::EcdsaP256))
            } else if let Ok(key) = p384::ecdsa::VerifyingKey::from_public_key_der(der) {
                Ok((Verifying::P384(key), Scheme::EcdsaP384))
            } else if let Ok(key) = p521::ecdsa::VerifyingKey::from_public_key_der(der) {
                Ok((Verifying::P521(key), Scheme::EcdsaP521))
            } else {
                Err(KeyError::Unsupported(
                    "an ECDSA key on a curve other than P-256, P-384 or P-521".into(),
                ))
            }
        }
        // rsaEncryption
        "1.2.840.113549.1.1.1" => Ok((
            rsa_from_pkcs1(info.subject_public_key.raw_bytes())?,
            Scheme::RsaPssSha256,
        )),
        other => Err(KeyError::Unsupported(format!("key algorithm {other}"))),
    }
}

/// Decodes a PKCS#1 RSA public key, checking its size against Tollgate's window before the
/// crate's own (which would report an oversized key only as malformed).
fn rsa_from_pkcs1(der: &[u8]) -> Result<Verifying, KeyError> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    let parsed = rsa::pkcs1::RsaPublicKeyRef::try_from(der).map_err(KeyError::malformed)?;
    let bits = bit_length(parsed.modulus.as_bytes());
    if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
        return Err(KeyError::RsaSize { bits });
    }
    let key = rsa::PublicKey::from_pkcs1_der(der).map_err(KeyError::malformed)?;
    Ok(Verifying::Rsa(Box::new(key)))
}

pub(crate) fn bit_length(big_endian: &[u8]) -> usize {
    let trimmed: &[u8] = match big_endian.iter().position(|&b| b != 0) {
        Some(start) => &big_endian[start..],
        None => &[],
    };
    match trimmed.first() {
        Some(first) => trimmed.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

fn spki_der(verifying: &Verifying) -> Result<Vec<u8>, KeyError> {
    let doc = match verifying {
        Verifying::Ed25519(k) => k.to_public_key_der(),
        Verifying::P256(k) => k.to_public_key_der(),
        Verifying::P384(k) => k.to_public_key_der(),
        Verifying::P521(k) => k.to_public_key_der(),
        Verifying::Rsa(k) => k.to_public_key_der(),
    }
    .map_err(KeyError::malformed)?;
    Ok(doc.as_bytes().to_vec())
}
