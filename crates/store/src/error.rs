//! The store's error type.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object `{uid}` not found")]
    NotFound { uid: String },
    #[error("an object with identifier `{uid}` already exists")]
    AlreadyExists { uid: String },
    #[error("the {backend} database is unavailable: {reason}")]
    Unavailable {
        backend: &'static str,
        reason: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    #[error("stored object `{uid}` is corrupt: {reason}")]
    Corrupt { uid: String, reason: String },
    #[error("object `{uid}` was changed concurrently; retry the operation")]
    Conflict { uid: String },
    #[error("the database is being upgraded to a new schema; retry in a few seconds")]
    Upgrading,
    #[error("the {backend} database refused a statement: {reason}")]
    Query {
        backend: &'static str,
        reason: String,
    },
    #[error("cannot open the {backend} database at {location}: {reason}")]
    Open {
        backend: &'static str,
        location: String,
        reason: String,
    },
}
