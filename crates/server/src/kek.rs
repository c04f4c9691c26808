//! `--key-encryption-key hsm::<slot>::<label>`: every secret key the KMS stores (symmetric
//! keys, private keys, secret data, split keys) is kept wrapped by an AES key that never leaves
//! the HSM. [`KekStore`] sits between the core and the store: it wraps key material on every
//! write and unwraps it on every read, so nothing else changes. Public keys, certificates and
//! the attributes stay in clear (Locate works on attributes).
//!
//! The wrapped form is KMIP's own: the key block's `KeyValue` becomes the AES-GCM ciphertext (and
//! tag) of its TTLV encoding, computed inside the HSM under a random 96-bit IV with the object's
//! uid as associated data, and its `KeyWrappingData` names the KEK and carries the IV.
//!
//! Unwrapped values are kept a short, configurable time in a bounded cache (keyed by the digest
//! of the wrapped bytes, so a changed key is never served stale; wiped when evicted), sparing the
//! HSM a call per use. Losing the KEK loses every stored key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use kmip::model::{Item, KeyValue, Object};
use kmip::{ObjectType, Tag, Ttlv, Value, binary};
use kms_hsm::{Cipher, Hsm, HsmRef};
use kms_store::{Grant, LocateQuery, ObjectStore, Obtained, Result, StoreError, StoredObject};
use zeroize::Zeroizing;

/// Unwrapped keys kept at once.
const CACHE_ENTRIES: usize = 1024;
const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// `WrappingMethod` Encrypt.
const ENCRYPT: u32 = 1;
/// `BlockCipherMode` GCM.
const GCM: u32 = 9;

pub struct KekStore {
    inner: Arc<dyn ObjectStore>,
    hsm: Arc<Hsm>,
    kek: HsmRef,
    ttl: Duration,
    cache: Mutex<HashMap<[u8; 32], Unwrapped>>,
}

/// When a key was unwrapped, and its encoded key value.
type Unwrapped = (Instant, Zeroizing<Vec<u8>>);

fn failed(uid: &str, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        uid: uid.to_owned(),
        reason: format!("key encryption key: {reason}"),
    }
}

/// Whether the objects of this type hold secret key material.
fn secret(t: ObjectType) -> bool {
    matches!(
        t,
        ObjectType::SymmetricKey
            | ObjectType::PrivateKey
            | ObjectType::SecretData
            | ObjectType::SplitKey
    )
}

impl KekStore {
    /// Checks that the KEK is an AES key of the HSM, then wraps `inner`.
    pub async fn new(
        inner: Arc<dyn ObjectStore>,
        hsm: Arc<Hsm>,
        kek: HsmRef,
        ttl: Duration,
    ) -> std::result::Result<KekStore, String> {
        let (h, r) = (hsm.clone(), kek.clone());
        let described = tokio::task::spawn_blocking(move || h.describe(&r))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("--key-encryption-key {}: {e}", kek.uid()))?;
        if described.kind != kms_hsm::KeyKind::Aes {
            return Err(format!(
                "--key-encryption-key {} must be an AES key of the HSM",
                kek.uid()
            ));
        }
        Ok(KekStore {
            inner,
            hsm,
            kek,
            ttl,
            cache: Mutex::new(HashMap::new()),
        })
    }

    fn wrapping_data(&self, iv: &[u8]) -> Ttlv {
        Ttlv::structure(
            Tag::KEY_WRAPPING_DATA,
            vec![
                Ttlv::new(Tag::WRAPPING_METHOD, Value::Enumeration(ENCRYPT)),
                Ttlv::structure(
                    Tag::ENCRYPTION_KEY_INFORMATION,
                    vec![
                        Ttlv::new(Tag::UNIQUE_IDENTIFIER, Value::TextString(self.kek.uid())),
                        Ttlv::structure(
                            Tag::CRYPTOGRAPHIC_PARAMETERS,
                            vec![Ttlv::new(Tag::BLOCK_CIPHER_MODE, Value::Enumeration(GCM))],
                        ),
                    ],
                ),
                Ttlv::new(Tag::IV_COUNTER_NONCE, Value::ByteString(iv.to_vec())),
            ],
        )
    }

    /// The IV of a key block wrapped by this KEK (`None`: not wrapped by it).
    fn wrapped_iv(&self, data: &Ttlv) -> Option<Vec<u8>> {
        let info = data.child(Tag::ENCRYPTION_KEY_INFORMATION)?;
        let uid = info.child(Tag::UNIQUE_IDENTIFIER)?.as_str().ok()?;
        if uid != self.kek.uid() {
            return None;
        }
        Some(data.child(Tag::IV_COUNTER_NONCE)?.as_bytes().ok()?.to_vec())
    }

    async fn hsm_call<T: Send + 'static>(
        &self,
        uid: &str,
        f: impl FnOnce(&Hsm, &HsmRef) -> kms_hsm::Result<T> + Send + 'static,
    ) -> Result<T> {
        let (hsm, kek) = (self.hsm.clone(), self.kek.clone());
        tokio::task::spawn_blocking(move || f(&hsm, &kek))
            .await
            .map_err(|e| failed(uid, e))?
            .map_err(|e| StoreError::Unavailable {
                backend: "hsm",
                reason: format!("the key encryption key cannot be used: {e}"),
                source: None,
            })
    }

    /// The object with its secret key material wrapped.
    async fn wrap(&self, mut o: StoredObject) -> Result<StoredObject> {
        if !secret(o.object_type) {
            return Ok(o);
        }
        let uid = o.uid.clone();
        let Some(kb) = o.object.as_mut().and_then(Object::key_block_mut) else {
            return Ok(o);
        };
        let Some(KeyValue::Plain(plain)) = &kb.key_value else {
            return Ok(o);
        };
        if kb.key_wrapping_data.is_some() {
            return Ok(o);
        }
        let encoded = Zeroizing::new(binary::encode(&plain.to_ttlv(Tag::KEY_VALUE)));
        let iv = kms_crypto::random_bytes(IV_LEN).map_err(|e| failed(&uid, e))?;
        let (iv_in, aad) = (iv.clone(), uid.clone().into_bytes());
        let sealed = self
            .hsm_call(&uid, move |hsm, kek| {
                hsm.encrypt(
                    kek,
                    Cipher::AesGcm {
                        iv: &iv_in,
                        aad: &aad,
                        tag_len: TAG_LEN,
                    },
                    &encoded,
                )
            })
            .await?;
        kb.key_value = Some(KeyValue::Wrapped(sealed));
        kb.key_wrapping_data = Some(self.wrapping_data(&iv));
        Ok(o)
    }

    /// The object with its key material unwrapped (objects not wrapped by this KEK unchanged).
    async fn unwrap(&self, mut o: StoredObject) -> Result<StoredObject> {
        let uid = o.uid.clone();
        let Some(kb) = o.object.as_mut().and_then(Object::key_block_mut) else {
            return Ok(o);
        };
        let (Some(KeyValue::Wrapped(sealed)), Some(iv)) = (
            &kb.key_value,
            kb.key_wrapping_data
                .as_ref()
                .and_then(|d| self.wrapped_iv(d)),
        ) else {
            return Ok(o);
        };
        let digest = kms_crypto::sha256(sealed);
        let cached = self.cache.lock().ok().and_then(|c| {
            c.get(&digest)
                .filter(|(at, _)| at.elapsed() < self.ttl)
                .map(|(_, v)| v.clone())
        });
        let encoded = match cached {
            Some(v) => v,
            None => {
                let (sealed_in, aad) = (sealed.clone(), uid.clone().into_bytes());
                let plain = self
                    .hsm_call(&uid, move |hsm, kek| {
                        hsm.decrypt(
                            kek,
                            Cipher::AesGcm {
                                iv: &iv,
                                aad: &aad,
                                tag_len: TAG_LEN,
                            },
                            &sealed_in,
                        )
                    })
                    .await?;
                self.remember(digest, plain.clone());
                plain
            }
        };
        let value = binary::decode(&encoded, &binary::Limits::default())
            .and_then(|t| KeyValue::from_ttlv(&t))
            .map_err(|e| failed(&uid, e))?;
        kb.key_value = Some(value);
        kb.key_wrapping_data = None;
        Ok(o)
    }

    fn remember(&self, digest: [u8; 32], plain: Zeroizing<Vec<u8>>) {
        if self.ttl.is_zero() {
            return;
        }
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        let ttl = self.ttl;
        cache.retain(|_, (at, _)| at.elapsed() < ttl);
        if cache.len() >= CACHE_ENTRIES
            && let Some(oldest) = cache.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| *k)
        {
            cache.remove(&oldest);
        }
        cache.insert(digest, (Instant::now(), plain));
    }

    /// Wraps every stored key still in clear (created before the option was set); answers how
    /// many. Run at start.
    pub async fn wrap_existing(&self) -> Result<usize> {
        let all = self
            .inner
            .locate(&LocateQuery {
                include_destroyed: false,
                ..LocateQuery::default()
            })
            .await?;
        let mut wrapped = 0;
        for uid in all {
            let Some(o) = self.inner.get(&uid).await? else {
                continue;
            };
            let clear = secret(o.object_type)
                && o.object
                    .as_ref()
                    .and_then(Object::key_block)
                    .is_some_and(|kb| {
                        matches!(kb.key_value, Some(KeyValue::Plain(_)))
                            && kb.key_wrapping_data.is_none()
                    });
            if clear {
                let o = self.wrap(o).await?;
                match self.inner.update(o).await {
                    Ok(()) => wrapped += 1,
                    // Changed meanwhile: that write wrapped it.
                    Err(StoreError::Conflict { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(wrapped)
    }
}

#[async_trait]
impl ObjectStore for KekStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn tenants(&self) -> Option<&kms_store::sqlite_enc::Tenants> {
        self.inner.tenants()
    }

    async fn create(&self, object: StoredObject) -> Result<()> {
        let o = self.wrap(object).await?;
        self.inner.create(o).await
    }

    async fn get(&self, uid: &str) -> Result<Option<StoredObject>> {
        match self.inner.get(uid).await? {
            Some(o) => Ok(Some(self.unwrap(o).await?)),
            None => Ok(None),
        }
    }

    async fn update(&self, object: StoredObject) -> Result<()> {
        let o = self.wrap(object).await?;
        self.inner.update(o).await
    }

    async fn delete(&self, uid: &str) -> Result<()> {
        self.inner.delete(uid).await
    }

    async fn grant(&self, uid: &str, user: &str, operations: &[String]) -> Result<()> {
        self.inner.grant(uid, user, operations).await
    }

    async fn revoke_grant(&self, uid: &str, user: &str, operations: &[String]) -> Result<()> {
        self.inner.revoke_grant(uid, user, operations).await
    }

    async fn grants(&self, uid: &str) -> Result<Vec<Grant>> {
        self.inner.grants(uid).await
    }

    async fn rights(&self, uid: &str, user: &str) -> Result<Vec<String>> {
        self.inner.rights(uid, user).await
    }

    async fn obtained(&self, user: &str) -> Result<Vec<Obtained>> {
        self.inner.obtained(user).await
    }

    async fn locate(&self, query: &LocateQuery) -> Result<Vec<String>> {
        self.inner.locate(query).await
    }

    async fn health(&self) -> Result<()> {
        self.inner.health().await
    }

    async fn clear(&self) -> Result<()> {
        self.inner.clear().await
    }
}
