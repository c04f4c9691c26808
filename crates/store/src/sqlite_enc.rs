//! `sqlite-enc`: one SQLCipher database per tenant in one directory, selected by a secret only
//! the tenant holds (the `DatabaseSecret` header). The server keeps no secret: it creates a
//! database and answers its secret once ([`Tenants::create`]); afterwards the secret both names
//! the file (its group id) and opens it (its 256-bit key).
//!
//! Requests reach their tenant's store through a task-local scope that the HTTP layer sets
//! ([`scope`]); [`TenantRouter`], the store the server holds, forwards each call to the store of
//! the current scope and refuses calls made outside one. At most [`OPEN_TENANTS`] databases stay
//! open; the least recently used are closed (once their in-flight requests end).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::sqlite::{CipherKey, SqliteStore};
use crate::{Grant, LocateQuery, ObjectStore, Obtained, Result, StoreError, StoredObject};

/// Tenant databases kept open at once.
pub const OPEN_TENANTS: usize = 64;

/// A tenant's secret: the group id naming its database and the key opening it. Never shown by
/// `Debug`.
pub struct DatabaseSecret {
    group_id: u128,
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for DatabaseSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseSecret(***)")
    }
}

/// Why a `DatabaseSecret` header was refused. The messages never repeat the secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error(
        "this server uses encrypted databases (sqlite-enc): send the secret that POST \
         /new_database answered in the DatabaseSecret header"
    )]
    Missing,
    #[error(
        "the DatabaseSecret header is not a database secret: send the base64 text that POST \
         /new_database answered, as it was given"
    )]
    Malformed,
    #[error(
        "no encrypted database opens with this DatabaseSecret: check the secret, or create a \
         database with POST /new_database"
    )]
    Unknown,
    #[error(
        "the NewDatabaseSecret must name the same database as the DatabaseSecret (same group_id) \
         with another key"
    )]
    NotARotation,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SecretJson {
    group_id: u128,
    key: String,
}

impl DatabaseSecret {
    /// A new random secret.
    pub fn generate() -> Result<DatabaseSecret> {
        let bytes = kms_crypto::random_key(48).map_err(|e| StoreError::Unavailable {
            backend: "sqlite-enc",
            reason: format!("cannot draw a secret: {e}"),
            source: None,
        })?;
        Self::from_bytes(&bytes).ok_or(StoreError::Unavailable {
            backend: "sqlite-enc",
            reason: "cannot draw a secret".into(),
            source: None,
        })
    }

    fn from_bytes(bytes: &[u8]) -> Option<DatabaseSecret> {
        let (id, key) = (bytes.get(..16)?, bytes.get(16..48)?);
        let mut k = Zeroizing::new([0u8; 32]);
        k.copy_from_slice(key);
        Some(DatabaseSecret {
            group_id: u128::from_be_bytes(id.try_into().ok()?),
            key: k,
        })
    }

    /// Parses the header value: base64 of `{"group_id": <u128>, "key": "<64 hex digits>"}`, or
    /// base64 of a JSON array of 48 bytes (16-byte big-endian group id, then the key).
    pub fn parse(text: &str) -> std::result::Result<DatabaseSecret, SecretError> {
        let text = text.trim().trim_matches('"');
        if text.is_empty() {
            return Err(SecretError::Missing);
        }
        let json = Zeroizing::new(
            STANDARD
                .decode(text)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text))
                .map_err(|_| SecretError::Malformed)?,
        );
        if let Ok(s) = serde_json::from_slice::<SecretJson>(&json) {
            let hex = Zeroizing::new(s.key);
            if hex.len() != 64 {
                return Err(SecretError::Malformed);
            }
            let mut key = Zeroizing::new([0u8; 32]);
            for (i, byte) in key.iter_mut().enumerate() {
                *byte = hex
                    .get(2 * i..2 * i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or(SecretError::Malformed)?;
            }
            return Ok(DatabaseSecret {
                group_id: s.group_id,
                key,
            });
        }
        let bytes: Zeroizing<Vec<u8>> = Zeroizing::new(
            serde_json::from_slice::<Vec<u8>>(&json).map_err(|_| SecretError::Malformed)?,
        );
        if bytes.len() != 48 {
            return Err(SecretError::Malformed);
        }
        Self::from_bytes(&bytes).ok_or(SecretError::Malformed)
    }

    /// The text handed to the tenant (the seed's JSON form, base64).
    pub fn encode(&self) -> Zeroizing<String> {
        let hex: Zeroizing<String> =
            Zeroizing::new(self.key.iter().map(|b| format!("{b:02x}")).collect());
        let json = Zeroizing::new(
            serde_json::to_vec(&SecretJson {
                group_id: self.group_id,
                key: hex.to_string(),
            })
            .unwrap_or_default(),
        );
        Zeroizing::new(STANDARD.encode(&json[..]))
    }
}

struct Open {
    store: Arc<SqliteStore>,
    /// SHA-256 of the key, compared in constant time before an open database is handed out.
    key_digest: [u8; 32],
    last_used: u64,
}

#[derive(Default)]
struct OpenSet {
    open: HashMap<u128, Open>,
    /// Closed from the set but possibly still in use by a request: reused rather than opened a
    /// second time (the lock file allows one opening per file).
    closing: HashMap<u128, (Weak<SqliteStore>, [u8; 32])>,
    tick: u64,
}

/// The tenant databases of one directory.
pub struct Tenants {
    dir: PathBuf,
    set: Mutex<OpenSet>,
}

impl Tenants {
    pub fn new(dir: &Path) -> Tenants {
        Tenants {
            dir: dir.to_owned(),
            set: Mutex::new(OpenSet::default()),
        }
    }

    fn path(&self, group_id: u128) -> PathBuf {
        self.dir.join(format!("tenant-{group_id}.db"))
    }

    fn remember(&self, id: u128, store: Arc<SqliteStore>, key_digest: [u8; 32]) {
        let Ok(mut set) = self.set.lock() else {
            return;
        };
        set.tick += 1;
        let tick = set.tick;
        set.open.insert(
            id,
            Open {
                store,
                key_digest,
                last_used: tick,
            },
        );
        set.closing.remove(&id);
        while set.open.len() > OPEN_TENANTS {
            let Some(oldest) = set
                .open
                .iter()
                .min_by_key(|(_, o)| o.last_used)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some(o) = set.open.remove(&oldest) {
                set.closing
                    .insert(oldest, (Arc::downgrade(&o.store), o.key_digest));
            }
        }
        set.closing.retain(|_, (w, _)| w.strong_count() > 0);
    }

    fn cached(
        &self,
        secret: &DatabaseSecret,
        digest: &[u8; 32],
    ) -> Option<std::result::Result<Arc<SqliteStore>, SecretError>> {
        let mut set = self.set.lock().ok()?;
        set.tick += 1;
        let tick = set.tick;
        if let Some(o) = set.open.get_mut(&secret.group_id) {
            if !bool::from(o.key_digest.ct_eq(digest)) {
                return Some(Err(SecretError::Unknown));
            }
            o.last_used = tick;
            return Some(Ok(o.store.clone()));
        }
        let (weak, known) = set.closing.get(&secret.group_id)?;
        if !bool::from(known.ct_eq(digest)) {
            return Some(Err(SecretError::Unknown));
        }
        weak.upgrade().map(Ok)
    }

    /// The store of the tenant holding `secret`; [`SecretError::Unknown`] when no database
    /// opens with it (nothing is created).
    pub async fn open(
        &self,
        secret: &DatabaseSecret,
    ) -> std::result::Result<Arc<SqliteStore>, OpenError> {
        let digest = kms_crypto::sha256(&secret.key[..]);
        if let Some(found) = self.cached(secret, &digest) {
            let store = found.map_err(OpenError::Secret)?;
            self.remember(secret.group_id, store.clone(), digest);
            return Ok(store);
        }
        let path = self.path(secret.group_id);
        let key = CipherKey::raw(&secret.key);
        let store =
            tokio::task::spawn_blocking(move || SqliteStore::open_encrypted(&path, &key, false))
                .await
                .map_err(|e| {
                    OpenError::Store(StoreError::Unavailable {
                        backend: "sqlite-enc",
                        reason: format!("opening stopped: {e}"),
                        source: None,
                    })
                })?
                .map_err(|e| match e {
                    StoreError::NotFound { .. } => OpenError::Secret(SecretError::Unknown),
                    other => OpenError::Store(other),
                })?;
        let store = Arc::new(store);
        self.remember(secret.group_id, store.clone(), digest);
        Ok(store)
    }

    /// Creates a new encrypted database and answers its secret, which the server then forgets.
    pub async fn create(&self) -> Result<Zeroizing<String>> {
        let secret = DatabaseSecret::generate()?;
        let path = self.path(secret.group_id);
        let key = CipherKey::raw(&secret.key);
        let store =
            tokio::task::spawn_blocking(move || SqliteStore::open_encrypted(&path, &key, true))
                .await
                .map_err(|e| StoreError::Unavailable {
                    backend: "sqlite-enc",
                    reason: format!("creation stopped: {e}"),
                    source: None,
                })??;
        self.remember(
            secret.group_id,
            Arc::new(store),
            kms_crypto::sha256(&secret.key[..]),
        );
        Ok(secret.encode())
    }

    /// Re-encrypts the tenant database of `current` under the key of `new` (same group id),
    /// while it serves. Idempotent and resumable: when the database already opens with `new`
    /// (a rotation that finished before its answer was lost), it succeeds without change.
    pub async fn rotate(
        &self,
        current: &DatabaseSecret,
        new: &DatabaseSecret,
    ) -> std::result::Result<(), OpenError> {
        if current.group_id != new.group_id || *current.key == *new.key {
            return Err(OpenError::Secret(SecretError::NotARotation));
        }
        if self.open(new).await.is_ok() {
            return Ok(());
        }
        let store = self.open(current).await?;
        store
            .rekey(CipherKey::raw(&new.key))
            .await
            .map_err(OpenError::Store)?;
        // From now on only the new secret opens it, here as on disk.
        self.remember(new.group_id, store, kms_crypto::sha256(&new.key[..]));
        Ok(())
    }

    /// How many tenant databases are open (tests).
    pub fn open_count(&self) -> usize {
        self.set.lock().map(|s| s.open.len()).unwrap_or(0)
    }
}

/// Why a tenant's store could not be had.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Secret(SecretError),
    #[error(transparent)]
    Store(StoreError),
}

tokio::task_local! {
    static TENANT: Arc<SqliteStore>;
}

/// Runs `f` with `store` as the tenant every [`TenantRouter`] call goes to.
pub fn scope<F: std::future::Future>(
    store: Arc<SqliteStore>,
    f: F,
) -> impl std::future::Future<Output = F::Output> {
    // Not an async fn: it would hold `f` twice, as given and as awaited.
    TENANT.scope(store, f)
}

/// The store the server holds with `sqlite-enc`: each call goes to the current request's tenant.
pub struct TenantRouter {
    tenants: Tenants,
}

impl TenantRouter {
    pub fn new(dir: &Path) -> Result<TenantRouter> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
            backend: "sqlite-enc",
            location: dir.display().to_string(),
            reason: format!("cannot create the directory: {e}"),
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
        Ok(TenantRouter {
            tenants: Tenants::new(dir),
        })
    }

    fn current(&self) -> Result<Arc<SqliteStore>> {
        TENANT
            .try_with(Arc::clone)
            .map_err(|_| StoreError::Unavailable {
                backend: "sqlite-enc",
                reason: "no tenant database: the request carried no DatabaseSecret".into(),
                source: None,
            })
    }
}

#[async_trait]
impl ObjectStore for TenantRouter {
    fn backend(&self) -> &'static str {
        "sqlite-enc"
    }

    fn tenants(&self) -> Option<&Tenants> {
        Some(&self.tenants)
    }

    async fn create(&self, object: StoredObject) -> Result<()> {
        self.current()?.create(object).await
    }

    async fn get(&self, uid: &str) -> Result<Option<StoredObject>> {
        self.current()?.get(uid).await
    }

    async fn get_shared(&self, uid: &str) -> Result<Option<std::sync::Arc<StoredObject>>> {
        self.current()?.get_shared(uid).await
    }

    async fn update(&self, object: StoredObject) -> Result<()> {
        self.current()?.update(object).await
    }

    async fn delete(&self, uid: &str) -> Result<()> {
        self.current()?.delete(uid).await
    }

    async fn grant(&self, uid: &str, user: &str, operations: &[String]) -> Result<()> {
        self.current()?.grant(uid, user, operations).await
    }

    async fn revoke_grant(&self, uid: &str, user: &str, operations: &[String]) -> Result<()> {
        self.current()?.revoke_grant(uid, user, operations).await
    }

    async fn grants(&self, uid: &str) -> Result<Vec<Grant>> {
        self.current()?.grants(uid).await
    }

    async fn rights(&self, uid: &str, user: &str) -> Result<Vec<String>> {
        self.current()?.rights(uid, user).await
    }

    async fn obtained(&self, user: &str) -> Result<Vec<Obtained>> {
        self.current()?.obtained(user).await
    }

    async fn locate(&self, query: &LocateQuery) -> Result<Vec<String>> {
        self.current()?.locate(query).await
    }

    /// Outside a request, the directory must be usable.
    async fn health(&self) -> Result<()> {
        match self.current() {
            Ok(store) => store.health().await,
            Err(_) => std::fs::metadata(&self.tenants.dir).map(drop).map_err(|e| {
                StoreError::Unavailable {
                    backend: "sqlite-enc",
                    reason: format!("the database directory is not readable: {e}"),
                    source: None,
                }
            }),
        }
    }

    /// Clears the current tenant's database; outside a request there is no database to clear
    /// (the server keeps no secret): tenants' files are deleted by hand.
    async fn clear(&self) -> Result<()> {
        match self.current() {
            Ok(store) => store.clear().await,
            Err(_) => Err(StoreError::Open {
                backend: "sqlite-enc",
                location: self.tenants.dir.display().to_string(),
                reason: "--cleanup-on-startup cannot clear encrypted databases (the server holds \
                         none of their secrets): delete the tenant-*.db files to remove them"
                    .into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_parse_in_both_forms_and_never_show() {
        let s = DatabaseSecret::generate().expect("secret");
        let text = s.encode();
        let back = DatabaseSecret::parse(&text).expect("parse");
        assert_eq!(back.group_id, s.group_id);
        assert_eq!(*back.key, *s.key);
        let mut bytes = s.group_id.to_be_bytes().to_vec();
        bytes.extend_from_slice(&s.key[..]);
        let array = STANDARD.encode(serde_json::to_vec(&bytes).expect("json"));
        let back = DatabaseSecret::parse(&array).expect("parse array");
        assert_eq!((back.group_id, *back.key), (s.group_id, *s.key));
        assert!(!format!("{s:?}").contains(&s.group_id.to_string()));
        assert_eq!(DatabaseSecret::parse("").err(), Some(SecretError::Missing));
        assert_eq!(
            DatabaseSecret::parse("not base64!").err(),
            Some(SecretError::Malformed)
        );
        assert_eq!(
            DatabaseSecret::parse(&STANDARD.encode(b"{\"group_id\": 1, \"key\": \"00\"}")).err(),
            Some(SecretError::Malformed)
        );
        // The seed's example secret parses.
        let seed = "eyJncm91cF9pZCI6MzE0ODQ3NTQzOTU4OTM2Mjk5OTY2ODU4MTY1NzE0MTk0MjU5NjUyLCJrZXkiOiIzZDAyNzg3YjUyZGY5OTYzNGNkOTVmM2QxODEyNDk4YTRiZWU1Nzc1NmM5NDI0NjdhZDI5ZTYxZjFmMmM0OWViIn0=";
        let s = DatabaseSecret::parse(seed).expect("seed secret");
        assert_eq!(s.group_id, 314847543958936299966858165714194259652);
        assert_eq!(s.key[0], 0x3d);
    }
}
