//! The object store: one trait in domain types ([`ObjectStore`]), its backends, and the schema
//! migrations. The trait module pulls in no database driver; each backend lives in its own
//! module. [`conformance`] holds the one test suite every backend must pass.

mod backend;
mod cache;
#[cfg(any(test, feature = "test-support"))]
pub mod conformance;
mod error;
mod findex;
mod model;
pub mod redis;
pub mod sql;
pub mod sqlite;
pub mod sqlite_enc;

pub use backend::{Backend, BackendError, ClientCert, DEFAULT_POOL_SIZE, Secret, Settings};
pub use error::StoreError;
pub use model::{DateRange, EVERY_USER, Grant, LocateQuery, Obtained, StoredObject};

use async_trait::async_trait;

tokio::task_local! {
    /// Set while an operation that changes objects runs: its reads bypass the caches of the
    /// shared backends, so that it decides on the database's state, not one up to
    /// [`sql::CACHE_BOUND`] old.
    static FRESH: ();
}

/// Runs `f` with reads that bypass the shared backends' caches (see [`FRESH`]).
pub fn fresh<F: std::future::Future>(f: F) -> impl std::future::Future<Output = F::Output> {
    // Not an async fn: it would hold `f` twice, as given and as awaited.
    FRESH.scope((), f)
}

/// Whether the running task asked for fresh reads.
pub(crate) fn wants_fresh() -> bool {
    FRESH.try_with(|()| ()).is_ok()
}

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Persistent storage of managed objects, their attributes, owner and tags.
///
/// Every method is one atomic, durable step: when it returns `Ok`, the change survives a crash.
#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// A short name of the backend for messages (`sqlite`, `postgresql`, ...).
    fn backend(&self) -> &'static str;

    /// The tenant databases, when the store is one per tenant (`sqlite-enc`): each request must
    /// then run in its tenant's [`sqlite_enc::scope`].
    fn tenants(&self) -> Option<&sqlite_enc::Tenants> {
        None
    }

    /// Inserts a new object (its revision becomes 1); fails with [`StoreError::AlreadyExists`] if
    /// the uid is taken.
    async fn create(&self, object: StoredObject) -> Result<()>;

    /// The object with this uid, if any.
    async fn get(&self, uid: &str) -> Result<Option<StoredObject>>;

    /// The object with this uid, if any, shared rather than copied: what reads an object
    /// without changing it (Encrypt, Get, ...) takes it from a cache at the cost of a reference
    /// count instead of a copy of its attributes and key material.
    async fn get_shared(&self, uid: &str) -> Result<Option<std::sync::Arc<StoredObject>>> {
        Ok(self.get(uid).await?.map(std::sync::Arc::new))
    }

    /// Replaces an existing object (material, attributes, state, tags) if its revision is still
    /// `object.revision`; fails with [`StoreError::NotFound`] if it does not exist and
    /// [`StoreError::Conflict`] if another write changed it since it was read.
    async fn update(&self, object: StoredObject) -> Result<()>;

    /// Removes an object, its tags and the rights granted on it, for good.
    async fn delete(&self, uid: &str) -> Result<()>;

    /// Grants `operations` on `uid` to `user` (or to [`EVERY_USER`]); granting a right held
    /// already changes nothing.
    async fn grant(&self, uid: &str, user: &str, operations: &[String]) -> Result<()>;

    /// Takes `operations` on `uid` back from `user`; rights not held are ignored.
    async fn revoke_grant(&self, uid: &str, user: &str, operations: &[String]) -> Result<()>;

    /// The rights granted on `uid`, one entry per user (sorted), operations sorted.
    async fn grants(&self, uid: &str) -> Result<Vec<Grant>>;

    /// The operations `user` may run on `uid` through grants (its own and those to
    /// [`EVERY_USER`]), sorted and deduplicated; empty when none.
    async fn rights(&self, uid: &str, user: &str) -> Result<Vec<String>>;

    /// The objects `user` does not own but holds rights on, in creation order.
    async fn obtained(&self, user: &str) -> Result<Vec<Obtained>>;

    /// The uids of the objects matching the query, in creation order.
    async fn locate(&self, query: &LocateQuery) -> Result<Vec<String>>;

    /// Checks the database answers.
    async fn health(&self) -> Result<()>;

    /// Deletes every object, tag and grant (`--cleanup-on-startup`).
    async fn clear(&self) -> Result<()>;

    /// How many objects there are of each (object type, state), in one query, for the metrics
    /// at start-up; `None` where the backend cannot count without opening every record.
    async fn census(&self) -> Result<Option<Vec<Census>>> {
        Ok(None)
    }

    /// The connection pool's use, where the backend has one.
    fn pool(&self) -> Option<PoolUse> {
        None
    }
}

/// The number of objects of one type in one state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Census {
    pub object_type: kmip::ObjectType,
    pub state: kmip::State,
    pub count: u64,
}

/// A connection pool's use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolUse {
    /// The most connections it opens.
    pub max: usize,
    /// Connections open.
    pub open: usize,
    /// Open connections not in use.
    pub idle: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
}

/// Decodes a census row (object type and state as stored).
pub(crate) fn census_row(object_type: i64, state: i64, count: i64) -> Option<Census> {
    use kmip::KmipEnum;
    Some(Census {
        object_type: kmip::ObjectType::from_u32(u32::try_from(object_type).ok()?)?,
        state: kmip::State::from_u32(u32::try_from(state).ok()?)?,
        count: u64::try_from(count).ok()?,
    })
}
