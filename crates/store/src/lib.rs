//! The object store: one trait in domain types ([`ObjectStore`]), its backends, and the schema
//! migrations. The trait module pulls in no database driver; each backend lives in its own
//! module. [`conformance`] holds the one test suite every backend must pass.

mod backend;
mod cache;
#[cfg(any(test, feature = "test-support"))]
pub mod conformance;
mod error;
mod model;
pub mod sql;
pub mod sqlite;

pub use backend::{Backend, BackendError, DEFAULT_POOL_SIZE, Secret, Settings};
pub use error::StoreError;
pub use model::{DateRange, LocateQuery, StoredObject};

use async_trait::async_trait;

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Persistent storage of managed objects, their attributes, owner and tags.
///
/// Every method is one atomic, durable step: when it returns `Ok`, the change survives a crash.
#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// A short name of the backend for messages (`sqlite`, `postgresql`, ...).
    fn backend(&self) -> &'static str;

    /// Inserts a new object (its revision becomes 1); fails with [`StoreError::AlreadyExists`] if
    /// the uid is taken.
    async fn create(&self, object: StoredObject) -> Result<()>;

    /// The object with this uid, if any.
    async fn get(&self, uid: &str) -> Result<Option<StoredObject>>;

    /// Replaces an existing object (material, attributes, state, tags) if its revision is still
    /// `object.revision`; fails with [`StoreError::NotFound`] if it does not exist and
    /// [`StoreError::Conflict`] if another write changed it since it was read.
    async fn update(&self, object: StoredObject) -> Result<()>;

    /// Removes an object and its tags for good.
    async fn delete(&self, uid: &str) -> Result<()>;

    /// The uids of the objects matching the query, in creation order.
    async fn locate(&self, query: &LocateQuery) -> Result<Vec<String>>;

    /// Checks the database answers.
    async fn health(&self) -> Result<()>;

    /// Deletes every object and tag (`--cleanup-on-startup`).
    async fn clear(&self) -> Result<()>;
}
