//! Private keys: generation, PEM files (PKCS#8, encrypted PKCS#8, PKCS#1, SEC1) and signing.
//!
//! Key material lives in types that zeroise on drop, and no `Debug` output shows it.
//!
//! Encrypted PKCS#8 is read in PBES2 with AES (what Tollgate, OpenSSL 1.1+ and
//! pyca/cryptography write), in PBES2 as OpenSSL 1.0 wrote it (3DES, PBKDF2 with HMAC-SHA1),
//! and in the legacy PBES1 `pbeWithMD5AndDES-CBC` (OpenSSL 1.0's default for
//! `openssl pkcs8 -topk8`): the reference reads them all. [`PrivateKey::legacy_encryption`]
//! says when a file uses the last, so that the caller can suggest re-encrypting it. Any other
//! scheme (PBES2 with single DES, which the reference refuses too, PKCS#12 schemes, ...) is
//! refused by name.

use std::fmt;

use md5::{Digest, Md5};
use pkcs8::der::asn1::ObjectIdentifier;
use pkcs8::der::pem::LineEnding;
use pkcs8::der::{AnyRef, Decode, Reader};
use pkcs8::pkcs5::{self, pbes1};
use pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rand_core::TryRng;
use rsa::signature::Signer;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{KeyError, PublicKey, Scheme, Verifying};

/// The kinds of key `tollgate keygen` creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyKind {
    /// Ed25519, the default.
    Ed25519,
    /// ECDSA on P-256.
    EcdsaP256,
    /// ECDSA on P-384.
    EcdsaP384,
    /// ECDSA on P-521.
    EcdsaP521,
    /// RSA with a modulus of the given number of bits, signing with RSA-PSS-SHA256.
    Rsa(usize),
}

enum Signing {
    Ed25519(ed25519_dalek::SigningKey),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    P521(p521::ecdsa::SigningKey),
    Rsa(Box<rsa::PrivateKey>),
}

/// A private key able to sign, with its public half.
pub struct PrivateKey {
    signing: Signing,
    public: PublicKey,
}

/// PBKDF2-SHA256 iterations for keys Tollgate encrypts (OWASP's recommendation), with
/// AES-256-CBC: the PBES2 variant OpenSSL and pyca/cryptography both read.
const PBKDF2_ITERATIONS: u32 = 600_000;

impl PrivateKey {
    /// Creates a new key from the operating system's random source.
    pub fn generate(kind: KeyKind) -> Result<PrivateKey, KeyError> {
        let mut rng = getrandom::SysRng;
        let signing = match kind {
            KeyKind::Ed25519 => {
                let mut seed = Zeroizing::new([0u8; 32]);
                rng.try_fill_bytes(seed.as_mut())
                    .map_err(KeyError::crypto)?;
                Signing::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed))
            }
            KeyKind::EcdsaP256 => Signing::P256(random_scalar::<_, 32>(|b| {
                p256::ecdsa::SigningKey::from_slice(b).ok()
            })?),
            KeyKind::EcdsaP384 => Signing::P384(random_scalar::<_, 48>(|b| {
                p384::ecdsa::SigningKey::from_slice(b).ok()
            })?),
            // A P-521 scalar is 521 bits in 66 bytes: the top seven bits are cleared so that
            // nearly every draw is below the group order.
            KeyKind::EcdsaP521 => Signing::P521(random_scalar::<_, 66>(|b| {
                let mut bytes = Zeroizing::new([0u8; 66]);
                bytes.copy_from_slice(b);
                bytes[0] &= 0x01;
                p521::ecdsa::SigningKey::from_slice(bytes.as_ref()).ok()
            })?),
            KeyKind::Rsa(bits) => {
                if !(super::RSA_MIN_BITS..=super::RSA_MAX_BITS).contains(&bits) {
                    return Err(KeyError::RsaSize { bits });
                }
                Signing::Rsa(Box::new(
                    rsa::PrivateKey::new(&mut rng, bits).map_err(KeyError::crypto)?,
                ))
            }
        };
        PrivateKey::from_signing(signing)
    }

    /// Whether a PEM text holds an encrypted private key, so that the caller knows to ask for
    /// a password before [`PrivateKey::from_pem`].
    pub fn pem_is_encrypted(pem: &str) -> bool {
        matches!(
            pkcs8::der::pem::decode_label(pem.as_bytes()),
            Ok("ENCRYPTED PRIVATE KEY")
        )
    }

    /// The legacy scheme an encrypted PKCS#8 PEM uses, by name, when it is one Tollgate reads
    /// but that should not be kept because it encrypts with single (56-bit) DES under an MD5
    /// key derivation: `pbeWithMD5AndDES-CBC`. `None` for anything else.
    pub fn legacy_encryption(pem: &str) -> Option<&'static str> {
        let (label, der) = pkcs8::der::pem::decode_vec(pem.as_bytes()).ok()?;
        if label != "ENCRYPTED PRIVATE KEY" {
            return None;
        }
        let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(der.as_slice()).ok()?;
        match &info.encryption_algorithm {
            pkcs5::EncryptionScheme::Pbes1(algorithm)
                if algorithm.encryption == pbes1::EncryptionScheme::PbeWithMd5AndDesCbc =>
            {
                Some("pbeWithMD5AndDES-CBC")
            }
            _ => None,
        }
    }

    /// Reads a private key from PEM: PKCS#8 (`PRIVATE KEY`), encrypted PKCS#8
    /// (`ENCRYPTED PRIVATE KEY`, needs `password`; PBES2 with AES or 3DES, or the legacy
    /// PBES1 `pbeWithMD5AndDES-CBC`), PKCS#1 (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`): the
    /// forms the reference's `--signing-key` reads.
    pub fn from_pem(pem: &str, password: Option<&[u8]>) -> Result<PrivateKey, KeyError> {
        let (label, der) = pkcs8::der::pem::decode_vec(pem.as_bytes()).map_err(KeyError::pem)?;
        let der = Zeroizing::new(der);
        let signing = match label {
            "PRIVATE KEY" => from_pkcs8_der(&der)?,
            "ENCRYPTED PRIVATE KEY" => {
                // A scheme no password can open is named, whether or not a password is given.
                let info = match pkcs8::EncryptedPrivateKeyInfoRef::try_from(der.as_slice()) {
                    Ok(info) => info,
                    Err(e) => {
                        return Err(match encryption_oid(&der) {
                            // The scheme Tollgate reads, with parameters it cannot: damaged.
                            Some(oid) if oid == pbes1::PBE_WITH_MD5_AND_DES_CBC_OID => {
                                KeyError::malformed(e)
                            }
                            Some(oid) if !is_pbes2(&oid) => KeyError::UnsupportedEncryption {
                                scheme: scheme_name(&oid),
                            },
                            Some(_) => KeyError::UnsupportedEncryption {
                                scheme: "PBES2 with a cipher other than AES or 3DES".into(),
                            },
                            None => KeyError::malformed(e),
                        });
                    }
                };
                let plain = match &info.encryption_algorithm {
                    pkcs5::EncryptionScheme::Pbes1(algorithm) => {
                        if algorithm.encryption != pbes1::EncryptionScheme::PbeWithMd5AndDesCbc {
                            return Err(KeyError::UnsupportedEncryption {
                                scheme: scheme_name(&algorithm.oid()),
                            });
                        }
                        let password = password.ok_or(KeyError::PasswordNeeded)?;
                        decrypt_md5_des(
                            password,
                            &algorithm.parameters,
                            info.encrypted_data.as_bytes(),
                        )?
                    }
                    pkcs5::EncryptionScheme::Pbes2(parameters) => {
                        check_kdf_cost(&parameters.kdf)?;
                        let password = password.ok_or(KeyError::PasswordNeeded)?;
                        match info.decrypt(password) {
                            Ok(plain) => Zeroizing::new(plain.as_bytes().to_vec()),
                            Err(pkcs8::Error::EncryptedPrivateKey(
                                pkcs5::Error::UnsupportedAlgorithm { oid },
                            )) => {
                                return Err(KeyError::UnsupportedEncryption {
                                    scheme: format!("PBES2 with algorithm {oid}"),
                                });
                            }
                            Err(pkcs8::Error::EncryptedPrivateKey(
                                pkcs5::Error::AlgorithmParametersInvalid { oid },
                            )) => {
                                return Err(KeyError::malformed(format!(
                                    "invalid PBES2 parameters for algorithm {oid}"
                                )));
                            }
                            Err(_) => return Err(KeyError::WrongPassword),
                        }
                    }
                    other => {
                        return Err(KeyError::UnsupportedEncryption {
                            scheme: scheme_name(&other.oid()),
                        });
                    }
                };
                // A wrong password that happens to leave valid padding gives garbage, which is
                // no PKCS#8 structure; one that is, but holds a bad key, is a damaged key.
                if pkcs8::PrivateKeyInfoRef::try_from(plain.as_slice()).is_err() {
                    return Err(KeyError::WrongPassword);
                }
                from_pkcs8_der(&plain)?
            }
            "RSA PRIVATE KEY" => {
                use rsa::pkcs1::DecodeRsaPrivateKey;
                Signing::Rsa(Box::new(
                    rsa::PrivateKey::from_pkcs1_der(&der).map_err(KeyError::malformed)?,
                ))
            }
            "EC PRIVATE KEY" => {
                if let Ok(key) = p256::SecretKey::from_sec1_der(&der) {
                    Signing::P256(key.into())
                } else if let Ok(key) = p384::SecretKey::from_sec1_der(&der) {
                    Signing::P384(key.into())
                } else if let Ok(key) = p521::SecretKey::from_sec1_der(&der) {
                    Signing::P521(key.into())
                } else {
                    return Err(KeyError::Unsupported(
                        "an EC key that is not on P-256, P-384 or P-521, or a malformed SEC1 file"
                            .into(),
                    ));
                }
            }
            other => return Err(wrong_label(other, "a private key")),
        };
        PrivateKey::from_signing(signing)
    }

    fn from_signing(signing: Signing) -> Result<PrivateKey, KeyError> {
        let (verifying, scheme) = match &signing {
            Signing::Ed25519(k) => (Verifying::Ed25519(k.verifying_key()), Scheme::Ed25519),
            Signing::P256(k) => (Verifying::P256(*k.verifying_key()), Scheme::EcdsaP256),
            Signing::P384(k) => (Verifying::P384(*k.verifying_key()), Scheme::EcdsaP384),
            Signing::P521(k) => (Verifying::P521(*k.verifying_key()), Scheme::EcdsaP521),
            Signing::Rsa(k) => {
                use rsa::traits::PublicKeyParts;
                let bits = k.n().bit_width() as usize;
                if !(super::RSA_MIN_BITS..=super::RSA_MAX_BITS).contains(&bits) {
                    return Err(KeyError::RsaSize { bits });
                }
                (
                    Verifying::Rsa(Box::new(k.to_public_key())),
                    Scheme::RsaPssSha256,
                )
            }
        };
        Ok(PrivateKey {
            public: PublicKey::from_verifying(verifying, scheme)?,
            signing,
        })
    }

    /// The public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Writes the key as PKCS#8 PEM, encrypted with `password` when one is given.
    pub fn to_pkcs8_pem(&self, password: Option<&[u8]>) -> Result<Zeroizing<String>, KeyError> {
        let der = match &self.signing {
            // PKCS#8 v1, without the optional public key: OpenSSL 3.0 and pyca/cryptography
            // (so the reference) cannot read the v2 form ed25519-dalek writes by default.
            Signing::Ed25519(k) => ed25519_dalek::pkcs8::KeypairBytes {
                secret_key: k.to_bytes(),
                public_key: None,
            }
            .to_pkcs8_der(),
            Signing::P256(k) => k.to_pkcs8_der(),
            Signing::P384(k) => k.to_pkcs8_der(),
            Signing::P521(k) => k.to_pkcs8_der(),
            Signing::Rsa(k) => k.to_pkcs8_der(),
        }
        .map_err(KeyError::crypto)?;
        let (label, der) = match password {
            None => ("PRIVATE KEY", der),
            Some(password) => {
                let mut rng = getrandom::SysRng;
                let mut salt = [0u8; 16];
                let mut iv = [0u8; 16];
                rng.try_fill_bytes(&mut salt)
                    .and_then(|()| rng.try_fill_bytes(&mut iv))
                    .map_err(KeyError::crypto)?;
                let params = pkcs8::pkcs5::pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(
                    PBKDF2_ITERATIONS,
                    &salt,
                    iv,
                )
                .map_err(KeyError::crypto)?;
                let info =
                    pkcs8::PrivateKeyInfoRef::try_from(der.as_bytes()).map_err(KeyError::crypto)?;
                let encrypted = info
                    .encrypt_with_params(params, password)
                    .map_err(KeyError::crypto)?;
                ("ENCRYPTED PRIVATE KEY", encrypted)
            }
        };
        pkcs8::der::pem::encode_string(label, LineEnding::LF, der.as_bytes())
            .map(Zeroizing::new)
            .map_err(KeyError::crypto)
    }

    /// Signs `message` under the key's scheme: raw ed25519, DER ECDSA over SHA-256 (P-256),
    /// SHA-384 (P-384) or SHA-512 (P-521), or RSA-PSS-SHA256 with a salt as long as the digest.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let crypto = KeyError::crypto::<rsa::signature::Error>;
        Ok(match &self.signing {
            Signing::Ed25519(k) => k.try_sign(message).map_err(crypto)?.to_bytes().to_vec(),
            Signing::P256(k) => {
                let sig: p256::ecdsa::Signature = k.try_sign(message).map_err(crypto)?;
                sig.to_der().as_bytes().to_vec()
            }
            Signing::P384(k) => {
                let sig: p384::ecdsa::Signature = k.try_sign(message).map_err(crypto)?;
                sig.to_der().as_bytes().to_vec()
            }
            Signing::P521(k) => {
                let sig: p521::ecdsa::Signature = k.try_sign(message).map_err(crypto)?;
                sig.to_der().as_bytes().to_vec()
            }
            Signing::Rsa(k) => k.pss_sign::<Sha256>(message).map_err(KeyError::crypto)?,
        })
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// Draws random scalars until one is a valid secret key (all but a negligible share are).
fn random_scalar<K, const N: usize>(accept: impl Fn(&[u8]) -> Option<K>) -> Result<K, KeyError> {
    let mut rng = getrandom::SysRng;
    for _ in 0..64 {
        let mut bytes = Zeroizing::new([0u8; N]);
        rng.try_fill_bytes(bytes.as_mut())
            .map_err(KeyError::crypto)?;
        if let Some(key) = accept(bytes.as_ref()) {
            return Ok(key);
        }
    }
    Err(KeyError::crypto("no valid scalar drawn"))
}

fn from_pkcs8_der(der: &[u8]) -> Result<Signing, KeyError> {
    let info = pkcs8::PrivateKeyInfoRef::try_from(der).map_err(KeyError::malformed)?;
    let malformed = KeyError::malformed::<pkcs8::Error>;
    match info.algorithm.oid.to_string().as_str() {
        "1.3.101.112" => Ok(Signing::Ed25519(
            ed25519_dalek::SigningKey::from_pkcs8_der(der).map_err(malformed)?,
        )),
        "1.2.840.10045.2.1" => {
            if let Ok(key) = p256::ecdsa::SigningKey::from_pkcs8_der(der) {
                Ok(Signing::P256(key))
            } else if let Ok(key) = p384::ecdsa::SigningKey::from_pkcs8_der(der) {
                Ok(Signing::P384(key))
            } else if let Ok(key) = p521::ecdsa::SigningKey::from_pkcs8_der(der) {
                Ok(Signing::P521(key))
            } else {
                Err(KeyError::Unsupported(
                    "an ECDSA key on a curve other than P-256, P-384 or P-521".into(),
                ))
            }
        }
        "1.2.840.113549.1.1.1" => Ok(Signing::Rsa(Box::new(
            rsa::PrivateKey::from_pkcs8_der(der).map_err(malformed)?,
        ))),
        other => Err(KeyError::Unsupported(format!("key algorithm {other}"))),
    }
}

/// The OID of an `EncryptedPrivateKeyInfo`'s encryption algorithm, read on its own so that a
/// scheme the PKCS#8 decoder does not know can still be named.
fn encryption_oid(der: &[u8]) -> Option<ObjectIdentifier> {
    let outer = AnyRef::from_der(der).ok()?;
    outer
        .sequence(|reader| {
            let algorithm: spki::AlgorithmIdentifierRef<'_> = reader.decode()?;
            let _data: AnyRef<'_> = reader.decode()?;
            Ok::<_, pkcs8::der::Error>(algorithm.oid)
        })
        .ok()
}

fn is_pbes2(oid: &ObjectIdentifier) -> bool {
    *oid == pkcs5::pbes2::PBES2_OID
}

/// The name of a legacy password-based encryption scheme (PKCS#5 v1.5 and PKCS#12), or its
/// OID when it is none of them.
fn scheme_name(oid: &ObjectIdentifier) -> String {
    let name = match oid.to_string().as_str() {
        "1.2.840.113549.1.5.1" => "pbeWithMD2AndDES-CBC",
        "1.2.840.113549.1.5.3" => "pbeWithMD5AndDES-CBC",
        "1.2.840.113549.1.5.4" => "pbeWithMD2AndRC2-CBC",
        "1.2.840.113549.1.5.6" => "pbeWithMD5AndRC2-CBC",
        "1.2.840.113549.1.5.10" => "pbeWithSHA1AndDES-CBC",
        "1.2.840.113549.1.5.11" => "pbeWithSHA1AndRC2-CBC",
        "1.2.840.113549.1.12.1.1" => "pbeWithSHAAnd128BitRC4",
        "1.2.840.113549.1.12.1.2" => "pbeWithSHAAnd40BitRC4",
        "1.2.840.113549.1.12.1.3" => "pbeWithSHAAnd3-KeyTripleDES-CBC",
        "1.2.840.113549.1.12.1.4" => "pbeWithSHAAnd2-KeyTripleDES-CBC",
        "1.2.840.113549.1.12.1.5" => "pbeWithSHAAnd128BitRC2-CBC",
        "1.2.840.113549.1.12.1.6" => "pbeWithSHAAnd40BitRC2-CBC",
        other => return format!("the encryption scheme {other}"),
    };
    name.to_owned()
}

/// PBES1 `pbeWithMD5AndDES-CBC` (RFC 8018 section 6.1.2): PBKDF1 with MD5 over the password
/// and the salt, iterated `iteration_count` times; the first eight bytes of the result are
/// the DES key, the next eight the IV; DES-CBC with PKCS#5 padding.
fn decrypt_md5_des(
    password: &[u8],
    parameters: &pbes1::Parameters,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    use cbc::cipher::block_padding::Pkcs7;
    use cbc::cipher::{BlockModeDecrypt, KeyIvInit};

    if parameters.iteration_count == 0 {
        return Err(KeyError::malformed(
            "pbeWithMD5AndDES-CBC with an iteration count of 0",
        ));
    }
    // RFC 8018 6.1.2: a ciphertext that is empty or not whole DES blocks is a damaged file,
    // whatever the password.
    if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(8) {
        return Err(KeyError::malformed(format!(
            "pbeWithMD5AndDES-CBC ciphertext of {} bytes: not a whole number of 8-byte blocks",
            ciphertext.len()
        )));
    }
    let mut derived = Zeroizing::new([0u8; 16]);
    let mut hasher = Md5::new();
    hasher.update(password);
    hasher.update(parameters.salt);
    derived.copy_from_slice(&hasher.finalize());
    for _ in 1..parameters.iteration_count {
        let next = Md5::digest(derived.as_ref());
        derived.copy_from_slice(&next);
    }
    let decryptor = cbc::Decryptor::<des::Des>::new_from_slices(&derived[..8], &derived[8..])
        .map_err(KeyError::crypto)?;
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    let length = decryptor
        .decrypt_padded::<Pkcs7>(&mut buffer)
        .map_err(|_| KeyError::WrongPassword)?
        .len();
    buffer.truncate(length);
    Ok(buffer)
}

/// The most PBKDF2 iterations an encrypted private key may ask for: 10,000,000, well above
/// what any tool writes (OpenSSL 2,048; Tollgate and current guidance 600,000) and a few
/// seconds of work at most.
pub const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

/// The most memory an scrypt-encrypted private key may ask for (128 · r · N · p bytes): 1 GiB.
pub const MAX_SCRYPT_MEMORY: u64 = 1 << 30;

/// Refuses a PBES2 key derivation whose cost, read from the key file, is beyond any real key's,
/// before any of it is done.
fn check_kdf_cost(kdf: &pkcs5::pbes2::Kdf) -> Result<(), KeyError> {
    match kdf {
        pkcs5::pbes2::Kdf::Pbkdf2(params) if params.iteration_count > MAX_PBKDF2_ITERATIONS => {
            Err(KeyError::KdfTooCostly {
                found: format!("{} PBKDF2 iterations", params.iteration_count),
                limit: format!("{MAX_PBKDF2_ITERATIONS}"),
            })
        }
        pkcs5::pbes2::Kdf::Scrypt(params) => {
            let memory = 128u64
                .saturating_mul(u64::from(params.block_size))
                .saturating_mul(params.cost_parameter)
                .saturating_mul(u64::from(params.parallelization.max(1)));
            if memory > MAX_SCRYPT_MEMORY || params.parallelization > 16 {
                return Err(KeyError::KdfTooCostly {
                    found: format!(
                        "scrypt with N={}, r={}, p={} ({memory} bytes of work memory)",
                        params.cost_parameter, params.block_size, params.parallelization
                    ),
                    limit: format!("{MAX_SCRYPT_MEMORY} bytes and p=16"),
                });
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The error for a PEM block of the wrong kind, with what to do about it.
pub(super) fn wrong_label(label: &str, wanted: &str) -> KeyError {
    let hint = match label {
        "PUBLIC KEY" | "RSA PUBLIC KEY" => "this is a public key: pass the private key file",
        "PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" => {
            "this is a private key: pass the public key file (.pub)"
        }
        "OPENSSH PRIVATE KEY" => {
            "OpenSSH keys are not read: convert with `ssh-keygen -p -m PKCS8 -f KEY`"
        }
        _ => "expected PEM of type PUBLIC KEY or PRIVATE KEY",
    };
    KeyError::WrongKind {
        found: format!("the file holds a {label:?} block where {wanted} was expected"),
        hint,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use pkcs8::der::Encode;
    use pkcs8::der::asn1::OctetStringRef;
    use pkcs8::pkcs5::pbes2::{Kdf, Parameters, ScryptParams};

    use super::*;

    /// An encrypted PKCS#8 PEM with the given PBES2 parameters around bytes that no password
    /// decrypts: the cost check must come before any decryption is tried.
    fn encrypted_pem(parameters: Parameters) -> String {
        let data = [7u8; 48];
        let info = pkcs8::EncryptedPrivateKeyInfoRef {
            encryption_algorithm: pkcs5::EncryptionScheme::Pbes2(parameters),
            encrypted_data: OctetStringRef::new(&data).expect("octet string"),
        };
        let der = info.to_der().expect("encode");
        pkcs8::der::pem::encode_string("ENCRYPTED PRIVATE KEY", LineEnding::LF, &der).expect("pem")
    }

    /// PBES2 with PBKDF2-SHA256 and AES-256-CBC; the iteration count is set after the fact, as
    /// a hostile file would hold it, since pkcs5 refuses to make some counts.
    fn pbkdf2(iterations: u32) -> Parameters {
        let mut parameters =
            Parameters::generate_pbkdf2_sha256_aes256cbc(2048, &[1u8; 16], [2u8; 16])
                .expect("parameters");
        if let Kdf::Pbkdf2(params) = &mut parameters.kdf {
            params.iteration_count = iterations;
        }
        parameters
    }

    /// THREATS bounded work: a key file asking for 2^32-1 PBKDF2 iterations, or scrypt work
    /// memory of 2^63 bytes (a capacity-overflow panic inside scrypt), is refused at once.
    #[test]
    fn a_key_derivation_costlier_than_any_real_key_is_refused_before_it_runs() {
        let started = Instant::now();
        let err = PrivateKey::from_pem(&encrypted_pem(pbkdf2(u32::MAX)), Some(b"password"))
            .expect_err("refused");
        assert!(
            matches!(&err, KeyError::KdfTooCostly { found, .. } if found == "4294967295 PBKDF2 iterations"),
            "{err}"
        );
        let mut scrypt = pbkdf2(1);
        let salt = match &scrypt.kdf {
            Kdf::Pbkdf2(params) => params.salt,
            _ => unreachable!("made as PBKDF2"),
        };
        scrypt.kdf = Kdf::Scrypt(ScryptParams {
            salt,
            cost_parameter: 1 << 53,
            block_size: 8,
            parallelization: 1,
            key_length: Some(32),
        });
        let err =
            PrivateKey::from_pem(&encrypted_pem(scrypt), Some(b"password")).expect_err("refused");
        assert!(
            matches!(&err, KeyError::KdfTooCostly { found, .. } if found.starts_with("scrypt with N=9007199254740992, r=8, p=1")),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        // An ordinary cost is tried, and these bytes are no key under any password.
        let err = PrivateKey::from_pem(&encrypted_pem(pbkdf2(2048)), Some(b"password"))
            .expect_err("garbage");
        assert!(matches!(err, KeyError::WrongPassword), "{err}");
    }

    /// A pbeWithMD5AndDES-CBC file whose ciphertext is not whole DES blocks is damaged, not
    /// opened with the wrong password.
    #[test]
    fn a_md5_des_ciphertext_of_broken_blocks_is_a_damaged_file() {
        for length in [0usize, 7, 17] {
            let data = vec![7u8; length];
            let info = pkcs8::EncryptedPrivateKeyInfoRef {
                encryption_algorithm: pkcs5::EncryptionScheme::Pbes1(pbes1::Algorithm {
                    encryption: pbes1::EncryptionScheme::PbeWithMd5AndDesCbc,
                    parameters: pbes1::Parameters {
                        salt: [3u8; 8],
                        iteration_count: 2048,
                    },
                }),
                encrypted_data: OctetStringRef::new(&data).expect("octet string"),
            };
            let der = info.to_der().expect("encode");
            let pem = pkcs8::der::pem::encode_string("ENCRYPTED PRIVATE KEY", LineEnding::LF, &der)
                .expect("pem");
            let err = PrivateKey::from_pem(&pem, Some(b"password")).expect_err("damaged");
            assert!(
                matches!(&err, KeyError::Malformed { source } if source.to_string().contains(&format!("{length} bytes"))),
                "{length}: {err}"
            );
        }
    }

    /// A key that does not decode keeps the decoder's own error as its source, for callers
    /// that tell causes apart, and still says it in its message.
    #[test]
    fn a_decoding_failure_keeps_its_cause() {
        let err = PrivateKey::from_pem("not a PEM file", None).expect_err("not PEM");
        let source = std::error::Error::source(&err).expect("a source");
        assert!(
            source.downcast_ref::<pkcs8::der::pem::Error>().is_some(),
            "{source:?}"
        );
        assert_eq!(err.to_string(), format!("not a PEM file: {source}"));

        let pem = pkcs8::der::pem::encode_string("PRIVATE KEY", LineEnding::LF, &[0x30, 0x00])
            .expect("pem");
        let err = PrivateKey::from_pem(&pem, None).expect_err("empty sequence");
        assert!(matches!(err, KeyError::Malformed { .. }), "{err}");
        let source = std::error::Error::source(&err).expect("a source");
        assert!(
            source.downcast_ref::<pkcs8::der::Error>().is_some()
                || source.downcast_ref::<pkcs8::Error>().is_some(),
            "{source:?}"
        );
    }
}
