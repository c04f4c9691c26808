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
    #[error("not supported by this server yet: {0}; ask for the key without it")]
    WrappingNotSupported(&'static str),
    #[error("key format type {0} is not supported for this object")]
    KeyFormatNotSupported(String),
    #[error("{0}")]
    NotQuantumSafe(String),
    #[error(
        "the response is {size} bytes, more than the MaximumResponseSize of {max}; raise it or ask for less"
    )]
    ResponseTooLarge { size: usize, max: i32 },
    #[error(
        "the request has {count} batch items, more than the {max} this server accepts; split it"
    )]
    TooManyBatchItems { count: usize, max: usize },
    #[error(
        "the responses to this request would exceed the server's limit of {max} bytes; ask for less in each request"
    )]
    ResponseBudgetExceeded { max: usize },
    #[error("object `{0}` kept changing concurrently; retry the operation")]
    Conflict(String),
    #[error(transparent)]
    Store(StoreError),
    #[error("KMIP decoding failed: {0}")]
    Codec(#[from] kmip::Error),
    #[error("the body is not valid JSON TTLV: {0}")]
    BadJson(kmip::Error),
    #[error(
        "`{0}` is neither an operation nor a RequestMessage; send e.g. {{\"tag\": \"Create\", ...}}"
    )]
    NotAnOperation(String),
    /// A configuration posted to the bootstrap server that cannot be used.
    #[error("{0}")]
    InvalidConfiguration(String),
    /// The bootstrap server already handed over to the KMS.
    #[error("the KMS is already starting with the configuration given; nothing more is accepted")]
    AlreadyStarted,
    /// A bootstrap request without the right `--bootstrap-token`.
    #[error(
        "this bootstrap request does not carry the bootstrap token; send it as `Authorization: Bearer TOKEN`"
    )]
    BootstrapToken,
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
            KmsError::InvalidMessage(_)
            | KmsError::Codec(_)
            | KmsError::BadJson(_)
            | KmsError::NotAnOperation(_) => ResultReason::InvalidMessage,
            KmsError::InvalidConfiguration(_) => ResultReason::InvalidField,
            KmsError::AlreadyStarted => ResultReason::IllegalOperation,
            KmsError::BootstrapToken => ResultReason::AuthenticationNotSuccessful,
            KmsError::MissingData(_) => ResultReason::MissingData,
            KmsError::WrongState { .. } => ResultReason::WrongKeyLifecycleState,
            KmsError::UsageNotAllowed { .. } => ResultReason::IncompatibleCryptographicUsageMask,
            KmsError::OperationNotSupported(_) => ResultReason::OperationNotSupported,
            KmsError::FeatureNotSupported(_) | KmsError::WrappingNotSupported(_) => {
                ResultReason::FeatureNotSupported
            }
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
            KmsError::ResponseTooLarge { .. } | KmsError::ResponseBudgetExceeded { .. } => {
                ResultReason::ResponseTooLarge
            }
            KmsError::TooManyBatchItems { .. } => ResultReason::ServerLimitExceeded,
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
            KmsError::InvalidMessage(_)
            | KmsError::Codec(_)
            | KmsError::BadJson(_)
            | KmsError::NotAnOperation(_)
            | KmsError::InvalidConfiguration(_) => 400,
            KmsError::AlreadyStarted => 409,
            KmsError::BootstrapToken => 401,
            KmsError::Destroyed(_)
            | KmsError::InvalidRequest(_)
            | KmsError::MissingData(_)
            | KmsError::WrongState { .. }
            | KmsError::UsageNotAllowed { .. }
            | KmsError::FeatureNotSupported(_)
            | KmsError::WrappingNotSupported(_)
            | KmsError::BadCryptographicParameters(_)
            | KmsError::Cryptographic(_)
            | KmsError::AttributeNotFound(_)
            | KmsError::AttributeReadOnly(_)
            | KmsError::AttributeSingleValued(_)
            | KmsError::NotExtractable(_)
            | KmsError::KeyFormatNotSupported(_)
            | KmsError::NotQuantumSafe(_)
            | KmsError::ResponseTooLarge { .. }
            | KmsError::ResponseBudgetExceeded { .. } => 422,
            KmsError::TooManyBatchItems { .. } => 413,
        }
    }
}

impl KmsError {
    /// What the client is told. A server-side failure (5xx) says what kind of failure it is and
    /// what to do, and repeats the request id; the details (database host, user, driver
    /// message) are only in the server's log, under that id.
    pub fn client_message(&self, request_id: &str) -> String {
        if self.http_status() < 500 {
            return self.to_string();
        }
        let kind = match self {
            KmsError::Store(StoreError::Unavailable { backend, .. }) => {
                format!("the {backend} database is unavailable; retry shortly")
            }
            KmsError::Store(StoreError::Open { backend, .. }) => {
                format!("the {backend} database cannot be opened")
            }
            KmsError::Store(StoreError::Query { backend, .. }) => {
                format!("the {backend} database refused the operation")
            }
            KmsError::Store(StoreError::Corrupt { uid, .. }) => {
                format!("stored object `{uid}` cannot be read")
            }
            KmsError::Store(StoreError::Upgrading) => {
                "the database is being upgraded to a new schema; retry in a few seconds".into()
            }
            other => return format!("{other} (request id {request_id})"),
        };
        format!("{kind}; the server log has the details under request id {request_id}")
    }
}

/// A fresh identifier for one request, repeated in the server's log and in failure answers.
pub fn request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_owned()
}

/// Result of KMS operations.
pub type KResult<T> = Result<T, KmsError>;
