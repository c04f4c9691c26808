//! The KMS error type, mapped once to a KMIP result reason and an HTTP status.

use kmip::ResultReason;
use kms_store::StoreError;

/// Why an operation failed. Messages say what to do and never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    #[error("object `{0}` not found")]
    NotFound(String),
    #[error("object `{0}` is destroyed: its key material is gone")]
    Destroyed(String),
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("invalid message: {0}")]
    InvalidMessage(String),
    #[error("missing data: {0}")]
    MissingData(String),
    #[error("object `{uid}` is {state}; {action}")]
    WrongState {
        uid: String,
        state: &'static str,
        action: String,
    },
    #[error(
        "object `{uid}` may not be used to {operation}: its cryptographic usage mask does not allow it"
    )]
    UsageNotAllowed {
        uid: String,
        operation: &'static str,
    },
    #[error("operation {0} is not supported by this server")]
    OperationNotSupported(String),
    #[error("not supported: {0}")]
    FeatureNotSupported(String),
    #[error("bad cryptographic parameters: {0}")]
    BadCryptographicParameters(String),
    #[error("{0}")]
    Cryptographic(#[from] kms_crypto::Error),
    #[error("attribute {0} not found")]
    AttributeNotFound(String),
    #[error("attribute {0} is read-only: the server manages it")]
    AttributeReadOnly(String),
    #[error("attribute {0} has a single value; use SetAttribute or ModifyAttribute to change it")]
    AttributeSingleValued(String),
    #[error(
        "an object with identifier `{0}` already exists; choose another identifier or set ReplaceExisting"
    )]
    AlreadyExists(String),
    #[error("object `{0}` is not extractable")]
    NotExtractable(String),
    #[error("key format type {0} is not supported for this object")]
    KeyFormatNotSupported(String),
    #[error("{0}")]
    NotQuantumSafe(String),
    #[error(
        "the response is {size} bytes, more than the MaximumResponseSize of {max}; raise it or ask for less"
    )]
    ResponseTooLarge { size: usize, max: i32 },
    #[error("object `{0}` kept changing concurrently; retry the operation")]
    Conflict(String),
    #[error(transparent)]
    Store(StoreError),
    #[error("KMIP decoding failed: {0}")]
    Codec(#[from] kmip::Error),
}

impl From<StoreError> for KmsError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { uid } => KmsError::NotFound(uid),
            StoreError::AlreadyExists { uid } => KmsError::AlreadyExists(uid),
            StoreError::Conflict { uid } => KmsError::Conflict(uid),
            other => KmsError::Store(other),
        }
    }
}

impl KmsError {
    /// The KMIP result reason of this error.
    pub fn reason(&self) -> ResultReason {
        match self {
            // KMIP 2.x names a missing object "Object Not Found"; 1.x clients get "Item Not
            // Found" (see kmip::v1).
            KmsError::NotFound(_) => ResultReason::ObjectNotFound,
            KmsError::Destroyed(_) => ResultReason::ObjectDestroyed,
            KmsError::PermissionDenied(_) => ResultReason::PermissionDenied,
            KmsError::InvalidRequest(_) => ResultReason::InvalidField,
            KmsError::InvalidMessage(_) | KmsError::Codec(_) => ResultReason::InvalidMessage,
            KmsError::MissingData(_) => ResultReason::MissingData,
            KmsError::WrongState { .. } => ResultReason::WrongKeyLifecycleState,
            KmsError::UsageNotAllowed { .. } => ResultReason::IncompatibleCryptographicUsageMask,
            KmsError::OperationNotSupported(_) => ResultReason::OperationNotSupported,
            KmsError::FeatureNotSupported(_) => ResultReason::FeatureNotSupported,
            KmsError::BadCryptographicParameters(_) => ResultReason::BadCryptographicParameters,
            KmsError::Cryptographic(e) => match e {
                kms_crypto::Error::AuthenticationFailed | kms_crypto::Error::InvalidPadding => {
                    ResultReason::CryptographicFailure
                }
                // The OASIS test cases expect these two reasons for these errors.
                kms_crypto::Error::MissingIv { .. } => ResultReason::InvalidMessage,
                kms_crypto::Error::InvalidTagLength { .. } => ResultReason::GeneralFailure,
                _ => ResultReason::BadCryptographicParameters,
            },
            KmsError::AttributeNotFound(_) => ResultReason::AttributeNotFound,
            KmsError::AttributeReadOnly(_) => ResultReason::AttributeReadOnly,
            KmsError::AttributeSingleValued(_) => ResultReason::AttributeSingleValued,
            KmsError::AlreadyExists(_) => ResultReason::ObjectAlreadyExists,
            KmsError::NotExtractable(_) => ResultReason::NotExtractable,
            KmsError::KeyFormatNotSupported(_) => ResultReason::KeyFormatTypeNotSupported,
            KmsError::Store(_) | KmsError::NotQuantumSafe(_) | KmsError::Conflict(_) => {
                ResultReason::GeneralFailure
            }
            KmsError::ResponseTooLarge { .. } => ResultReason::ResponseTooLarge,
        }
    }

    /// The HTTP status of this error when a single operation fails.
    pub fn http_status(&self) -> u16 {
        match self {
            KmsError::NotFound(_) => 404,
            KmsError::PermissionDenied(_) => 403,
            KmsError::AlreadyExists(_) | KmsError::Conflict(_) => 409,
            KmsError::Store(StoreError::Unavailable { .. } | StoreError::Upgrading) => 503,
            KmsError::Store(_) => 500,
            KmsError::OperationNotSupported(_) => 501,
            KmsError::InvalidMessage(_) | KmsError::Codec(_) => 400,
            KmsError::Destroyed(_)
            | KmsError::InvalidRequest(_)
            | KmsError::MissingData(_)
            | KmsError::WrongState { .. }
            | KmsError::UsageNotAllowed { .. }
            | KmsError::FeatureNotSupported(_)
            | KmsError::BadCryptographicParameters(_)
            | KmsError::Cryptographic(_)
            | KmsError::AttributeNotFound(_)
            | KmsError::AttributeReadOnly(_)
            | KmsError::AttributeSingleValued(_)
            | KmsError::NotExtractable(_)
            | KmsError::KeyFormatNotSupported(_)
            | KmsError::NotQuantumSafe(_)
            | KmsError::ResponseTooLarge { .. } => 422,
        }
    }
}

/// Result of KMS operations.
pub type KResult<T> = Result<T, KmsError>;
