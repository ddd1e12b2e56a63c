//! Who signed, and whether enough of them did: the one threshold function that layouts and
//! links (and, later, sublayouts) all use.
//!
//! A signature's `keyid` is only a hint for where to look first. A signature counts for the
//! trusted key that actually verifies it (THREATS A4), each trusted key counts once however
//! many of its signatures appear (A2), and signatures no trusted key verifies count for
//! nothing (A6, A11). Because a [`KeyRing`] holds each key once, counting keyids counts keys.

use std::collections::BTreeSet;

use crate::base::parallel;
use crate::model::keyring::KeyRing;
use crate::model::keys::KeyId;

/// One signature as an envelope carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The keyid the signer claimed: a lookup hint, never trusted.
    pub keyid: Option<String>,
    /// The signature bytes, decoded from hex (classic) or base64 (DSSE).
    pub sig: Vec<u8>,
}

/// The distinct trusted keys whose signatures verified over some bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signers {
    /// Keyids (as the ring holds them) of the trusted keys that signed.
    pub keys: BTreeSet<KeyId>,
    /// Signatures that no trusted key verified (unknown signers, forgeries, duplicates of a
    /// key already counted are not in here: those are in `repeats`).
    pub unattributed: usize,
    /// Signatures that verified under a key already counted.
    pub repeats: usize,
}

/// Not enough distinct trusted keys signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} of {required} required keys signed", signed.len())]
pub struct ThresholdError {
    /// How many distinct keys were required.
    pub required: usize,
    /// The distinct trusted keys that did sign.
    pub signed: BTreeSet<KeyId>,
}

/// The trusted keys to try for `signature`, in order: the one its hint names first, then every
/// other.
fn candidates<'r>(
    signature: &Signature,
    ring: &'r KeyRing,
) -> impl Iterator<Item = (&'r KeyId, &'r crate::model::keys::PublicKey)> {
    let hinted = signature
        .keyid
        .as_ref()
        .and_then(|hint| ring.iter().find(|(id, _)| id.as_str() == hint));
    let hinted_id = hinted.map(|(id, _)| id);
    hinted
        .into_iter()
        .chain(ring.iter().filter(move |(id, _)| Some(*id) != hinted_id))
}

/// Finds which keys of `ring` made `signatures` over `message`.
pub fn signers(message: &[u8], signatures: &[Signature], ring: &KeyRing) -> Signers {
    let mut found = Signers::default();
    for signature in signatures {
        let verified_by = candidates(signature, ring)
            .filter(|(_, key)| key.verify(message, &signature.sig).is_ok())
            .map(|(id, _)| id.clone())
            .next();
        found.count(verified_by);
    }
    found
}

impl Signers {
    /// Counts one signature, which `verified_by` made (or no trusted key did).
    fn count(&mut self, verified_by: Option<KeyId>) {
        match verified_by {
            Some(keyid) => {
                if !self.keys.insert(keyid) {
                    self.repeats += 1;
                }
            }
            None => self.unattributed += 1,
        }
    }
}

/// How many (signature, key) checks [`StreamedSigners`] runs side by side at most; beyond
/// that, hashing the message once per pair costs more than holding it.
const MAX_STREAMED_PAIRS: usize = 8;

/// One pending check per (signature, candidate key) pair, rows in signature order and each row
/// in [`candidates`] order; `None` for a signature that cannot be valid under that key.
type Checks = Vec<Vec<(KeyId, Option<crate::model::keys::StreamCheck>)>>;

/// [`signers`], with the message written into this as it is made instead of held whole: each
/// (signature, trusted key) pair is checked as [`signers`] would, and each signature credited
/// to the first key in [`signers`]'s order that verifies it. The pieces are hashed on a thread
/// of their own while the writer goes on (with its next piece, or with other work once the
/// message is whole), and [`finish`](StreamedSigners::finish) waits for the verdict.
pub struct StreamedSigners {
    piece: Vec<u8>,
    pieces: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    checking: std::thread::JoinHandle<Signers>,
    signatures: usize,
}

/// The size of the pieces handed to the checking thread.
const PIECE: usize = 128 * 1024;

impl StreamedSigners {
    /// Starts checking `signatures` against `ring`; `None` when this cannot be done (a key
    /// that is not ed25519, too many pairs, or no thread to spare): call [`signers`].
    pub fn start(signatures: &[Signature], ring: &KeyRing) -> Option<StreamedSigners> {
        if signatures.len() * ring.len() > MAX_STREAMED_PAIRS {
            return None;
        }
        let mut checks: Checks = Vec::new();
        for signature in signatures {
            let mut row = Vec::new();
            for (id, key) in candidates(signature, ring) {
                row.push((id.clone(), key.stream_verifier(&signature.sig)?.ok()));
            }
            checks.push(row);
        }
        let (pieces, received) = std::sync::mpsc::sync_channel::<Vec<u8>>(2);
        let checking = parallel::spawn("signature checks", move || {
            for piece in received {
                for (_, check) in checks.iter_mut().flatten() {
                    if let Some(check) = check {
                        check.update(&piece);
                    }
                }
            }
            let mut found = Signers::default();
            for row in checks {
                found.count(
                    row.into_iter()
                        .find_map(|(id, check)| check.and_then(|c| c.finish().then_some(id))),
                );
            }
            found
        })
        // Without a thread to spare, the caller checks the whole message instead.
        .ok()?;
        Some(StreamedSigners {
            piece: Vec::with_capacity(PIECE),
            pieces: Some(pieces),
            checking,
            signatures: signatures.len(),
        })
    }

    fn send(&mut self) -> std::io::Result<()> {
        let piece = std::mem::replace(&mut self.piece, Vec::with_capacity(PIECE));
        match &self.pieces {
            Some(pieces) if pieces.send(piece).is_ok() => Ok(()),
            _ => Err(std::io::Error::other("the signature checks stopped")),
        }
    }

    /// The signers, once everything written has been checked. Should the checking thread
    /// have failed, no signature counts.
    pub fn finish(mut self) -> Signers {
        let sent = if self.piece.is_empty() {
            Ok(())
        } else {
            self.send()
        };
        self.pieces = None;
        match (sent, self.checking.join()) {
            (Ok(()), Ok(found)) => found,
            _ => Signers {
                unattributed: self.signatures,
                ..Signers::default()
            },
        }
    }
}

impl std::io::Write for StreamedSigners {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let room = PIECE - self.piece.len();
        let taken = bytes.len().min(room);
        self.piece.extend_from_slice(&bytes[..taken]);
        if self.piece.len() == PIECE {
            self.send()?;
        }
        Ok(taken)
    }

    /// The canonical encoder writes many small pieces (a quote, a name, a colon); those that
    /// fit are copied with no further ado.
    #[inline]
    fn write_all(&mut self, mut bytes: &[u8]) -> std::io::Result<()> {
        if bytes.len() < PIECE - self.piece.len() {
            self.piece.extend_from_slice(bytes);
            return Ok(());
        }
        while !bytes.is_empty() {
            let taken = self.write(bytes)?;
            bytes = &bytes[taken..];
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::fmt::Debug for StreamedSigners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamedSigners")
            .field("signatures", &self.signatures)
            .finish_non_exhaustive()
    }
}

/// Passes when at least `required` distinct trusted keys are in `signed`. A requirement of zero
/// is raised to one: nothing passes unsigned.
pub fn require(signed: &BTreeSet<KeyId>, required: usize) -> Result<(), ThresholdError> {
    let required = required.max(1);
    if signed.len() >= required {
        Ok(())
    } else {
        Err(ThresholdError {
            required,
            signed: signed.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::model::keys::{KeyKind, PrivateKey};

    fn signature(key: &PrivateKey, hint: Option<&PrivateKey>, message: &[u8]) -> Signature {
        Signature {
            keyid: hint.map(|k| k.public_key().keyid().to_string()),
            sig: key.sign(message).expect("sign"),
        }
    }

    /// Streaming must credit exactly what checking the whole message credits.
    #[test]
    fn streaming_counts_signers_exactly_as_the_whole_message_does() {
        let message = b"{\"_type\":\"link\",\"name\":\"build\"}".repeat(5000);
        let alice = PrivateKey::generate(KeyKind::Ed25519).expect("key");
        let bob = PrivateKey::generate(KeyKind::Ed25519).expect("key");
        let mallory = PrivateKey::generate(KeyKind::Ed25519).expect("key");
        let ring = KeyRing::from_keys([alice.public_key().clone(), bob.public_key().clone()])
            .expect("ring");
        let mut corrupted = signature(&alice, Some(&alice), &message);
        corrupted.sig[10] ^= 1;
        let mut small_order_r = signature(&bob, Some(&bob), &message);
        small_order_r.sig[..32].copy_from_slice(&{
            let mut identity = [0u8; 32];
            identity[0] = 1;
            identity
        });
        let cases: Vec<Vec<Signature>> = vec![
            vec![signature(&alice, Some(&alice), &message)],
            // A hint naming the other key: still credited to the key that verifies.
            vec![signature(&alice, Some(&bob), &message)],
            vec![
                signature(&alice, None, &message),
                signature(&bob, Some(&bob), &message),
            ],
            // The same key twice counts once.
            vec![
                signature(&alice, Some(&alice), &message),
                signature(&alice, None, &message),
            ],
            vec![signature(&mallory, Some(&mallory), &message)],
            vec![corrupted],
            vec![small_order_r],
            vec![Signature {
                keyid: None,
                sig: vec![0; 12],
            }],
            // Over another message.
            vec![signature(&alice, Some(&alice), b"other")],
        ];
        for (i, signatures) in cases.iter().enumerate() {
            let whole = signers(&message, signatures, &ring);
            let mut stream = StreamedSigners::start(signatures, &ring).expect("ed25519 streams");
            // In uneven pieces, some across the pieces handed to the checking thread.
            for part in message.chunks(PIECE / 3 + 7) {
                stream.write_all(part).expect("written");
            }
            assert_eq!(stream.finish(), whole, "case {i}");
        }
        // A key that cannot stream, or too many pairs: the caller checks the whole message.
        let ecdsa = PrivateKey::generate(KeyKind::EcdsaP256).expect("key");
        let mixed = KeyRing::from_keys([alice.public_key().clone(), ecdsa.public_key().clone()])
            .expect("ring");
        let one = [signature(&alice, None, &message)];
        assert!(StreamedSigners::start(&one, &mixed).is_none());
        let many: Vec<Signature> = (0..5).map(|_| signature(&alice, None, &message)).collect();
        assert!(StreamedSigners::start(&many, &ring).is_none());
    }
}
