//! A set of trusted public keys, each under the keyid it was declared with.
//!
//! A ring holds every key once: adding a key whose fingerprint is already present, under any
//! keyid, encoding or scheme label, is an error (THREATS A3), so a count of distinct keyids in
//! a ring is a count of distinct keys. A declared keyid must name its key in one of the
//! reference's two forms (A5).

use std::collections::BTreeMap;

use crate::model::keys::{KeyId, PublicKey};

/// Why a key cannot join a ring.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyRingError {
    /// The keyid is neither form of the key's keyid.
    #[error(
        "keyid {declared} does not match its key: the key's keyid is {computed} \
         (or, in the legacy form, {legacy})"
    )]
    KeyIdMismatch {
        /// The keyid the key was declared under.
        declared: KeyId,
        /// The key's keyid as the reference computes it now.
        computed: KeyId,
        /// The legacy securesystemslib keyid.
        legacy: KeyId,
    },
    /// The same public key is already in the ring under another keyid.
    #[error("duplicate public key: {keyid} is the same key as {existing}")]
    DuplicateKey {
        /// The keyid being added.
        keyid: KeyId,
        /// The keyid the key is already held under.
        existing: KeyId,
    },
}

/// Trusted public keys by keyid, each key at most once.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    keys: BTreeMap<KeyId, PublicKey>,
    by_fingerprint: BTreeMap<[u8; 32], KeyId>,
}

impl KeyRing {
    /// An empty ring.
    pub fn new() -> KeyRing {
        KeyRing::default()
    }

    /// A ring of `keys`, each under its keyid as the reference computes it.
    pub fn from_keys(keys: impl IntoIterator<Item = PublicKey>) -> Result<KeyRing, KeyRingError> {
        let mut ring = KeyRing::new();
        for key in keys {
            ring.insert(key.keyid(), key)?;
        }
        Ok(ring)
    }

    /// Adds `key` under `keyid`, which must name it (A5) and must not hold a key already in the
    /// ring (A3).
    pub fn insert(&mut self, keyid: KeyId, key: PublicKey) -> Result<(), KeyRingError> {
        if !key.is_named_by(&keyid) {
            return Err(KeyRingError::KeyIdMismatch {
                declared: keyid,
                computed: key.keyid(),
                legacy: key.legacy_keyid(),
            });
        }
        if let Some(existing) = self.by_fingerprint.get(&key.fingerprint()) {
            return Err(KeyRingError::DuplicateKey {
                keyid,
                existing: existing.clone(),
            });
        }
        self.by_fingerprint.insert(key.fingerprint(), keyid.clone());
        self.keys.insert(keyid, key);
        Ok(())
    }

    /// The key held under `keyid`.
    pub fn get(&self, keyid: &KeyId) -> Option<&PublicKey> {
        self.keys.get(keyid)
    }

    /// Whether the ring holds a key under `keyid`.
    pub fn contains(&self, keyid: &KeyId) -> bool {
        self.keys.contains_key(keyid)
    }

    /// The keys with their keyids, in keyid order.
    pub fn iter(&self) -> impl Iterator<Item = (&KeyId, &PublicKey)> {
        self.keys.iter()
    }

    /// The keyids, in order.
    pub fn keyids(&self) -> impl Iterator<Item = &KeyId> {
        self.keys.keys()
    }

    /// How many keys the ring holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the ring is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The sub-ring of the keys named in `keyids` (names not in the ring are skipped).
    pub fn subset<'a>(&self, keyids: impl IntoIterator<Item = &'a KeyId>) -> KeyRing {
        let mut ring = KeyRing::new();
        for keyid in keyids {
            if let Some(key) = self.keys.get(keyid) {
                ring.by_fingerprint.insert(key.fingerprint(), keyid.clone());
                ring.keys.insert(keyid.clone(), key.clone());
            }
        }
        ring
    }
}
