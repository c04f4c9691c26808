//! Parsed private keys, kept between requests so that an RSA decryption or an ECDSA signature
//! does not parse (and check) its key every time.
//!
//! Entries are keyed by the SHA-256 of the key material as stored (its format and bytes), not by
//! identifier: a hit is the same key material by construction, so the cache can never serve a key that was replaced,
//! re-imported or destroyed — every request still loads the object from the store and checks
//! its state, rights and usage first. The cache is bounded ([`CAPACITY`] keys; the least
//! recently used one leaves), and a key that leaves is freed and cleared.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use kms_crypto::asymmetric::{KeyKind, LoadedPrivateKey};

/// Most parsed private keys kept.
pub const CAPACITY: usize = 1024;

/// A parsed key and the clock value of its last use, by digest of its material.
type Entries = HashMap<[u8; 32], (Arc<LoadedPrivateKey>, u64)>;

#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<Entries>,
    clock: AtomicU64,
}

impl KeyCache {
    /// The parsed form of the private key `der` (canonical form) of `kind`.
    pub fn private(&self, kind: KeyKind, der: &[u8]) -> Arc<LoadedPrivateKey> {
        let id = kms_crypto::sha256(der);
        match self.get_or_load(id, || {
            Ok::<_, std::convert::Infallible>(LoadedPrivateKey::new(kind, der))
        }) {
            Ok(key) => key,
            Err(never) => match never {},
        }
    }

    /// The key cached under `id` (a digest of its material), or the one `load` makes, kept.
    pub fn get_or_load<E>(
        &self,
        id: [u8; 32],
        load: impl FnOnce() -> Result<LoadedPrivateKey, E>,
    ) -> Result<Arc<LoadedPrivateKey>, E> {
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        {
            let mut entries = self
                .entries
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((key, used)) = entries.get_mut(&id) {
                *used = now;
                return Ok(key.clone());
            }
        }
        // Converted and made outside the lock.
        let key = Arc::new(load()?);
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= CAPACITY
            && let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k)
        {
            entries.remove(&oldest);
        }
        entries.insert(id, (key.clone(), now));
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn the_same_material_is_parsed_once_and_the_cache_stays_bounded() {
        let cache = KeyCache::default();
        let a = cache.private(KeyKind::X25519, b"key a");
        let again = cache.private(KeyKind::X25519, b"key a");
        assert!(Arc::ptr_eq(&a, &again));
        let b = cache.private(KeyKind::X25519, b"key b");
        assert!(!Arc::ptr_eq(&a, &b));
        for i in 0..CAPACITY + 10 {
            cache.private(KeyKind::X25519, format!("k{i}").as_bytes());
        }
        assert!(cache.entries.lock().unwrap().len() <= CAPACITY);
    }
}
