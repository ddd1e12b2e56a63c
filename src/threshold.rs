//! Who signed, and whether enough of them did: the one threshold function that layouts and
//! links (and, later, sublayouts) all use.
//!
//! A signature's `keyid` is only a hint for where to look first. A signature counts for the
//! trusted key that actually verifies it (THREATS A4), each trusted key counts once however
//! many of its signatures appear (A2), and signatures no trusted key verifies count for
//! nothing (A6, A11). Because a [`KeyRing`] holds each key once, counting keyids counts keys.

use std::collections::BTreeSet;

use crate::keyring::KeyRing;
use crate::keys::KeyId;

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
#[error("{} of {required} required distinct trusted keys signed", signed.len())]
pub struct ThresholdError {
    /// How many distinct keys were required.
    pub required: usize,
    /// The distinct trusted keys that did sign.
    pub signed: BTreeSet<KeyId>,
}

/// Finds which keys of `ring` made `signatures` over `message`.
pub fn signers(message: &[u8], signatures: &[Signature], ring: &KeyRing) -> Signers {
    let mut found = Signers::default();
    for signature in signatures {
        // Try the key the hint names first, then every other trusted key.
        let hinted = signature
            .keyid
            .as_ref()
            .and_then(|hint| ring.iter().find(|(id, _)| id.as_str() == hint));
        let candidates = hinted.into_iter().chain(
            ring.iter()
                .filter(|(id, _)| Some(*id) != hinted.map(|(h, _)| h)),
        );
        let verified_by = candidates
            .filter(|(_, key)| key.verify(message, &signature.sig).is_ok())
            .map(|(id, _)| id.clone())
            .next();
        match verified_by {
            Some(keyid) => {
                if !found.keys.insert(keyid) {
                    found.repeats += 1;
                }
            }
            None => found.unattributed += 1,
        }
    }
    found
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
